"""Rewriter time per page against page size, for the README."""

from __future__ import annotations

from report import fmt_size, machine
from rewriter_bench import REWRITER


def plot(path: str) -> None:
    """Time per page against page size: ours, python-lolhtml and the ``bytes.find`` floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    series = (
        ("whole", "rewrite_html (whole)", "-o"),
        ("stream", "HTMLRewriter (64 KiB chunks)", "-s"),
        ("lol", "python-lolhtml (64 KiB chunks)", "--^"),
        ("find", "bytes.find floor", ":."),
    )
    panels = zip(axes, ("end", None), ("widget near the end", "no widget"), strict=True)
    for ax, where, title in panels:
        sizes = sorted(size for size, w in REWRITER if w == where)
        for key, label, style in series:
            points = [(n, REWRITER[(n, where)][key]) for n in sizes if key in REWRITER[(n, where)]]
            if points:
                ax.loglog(
                    [n / 1e6 for n, _ in points], [t * 1e3 for _, t in points], style, label=label
                )
        ax.set_title(title)
        ax.set_xticks([n / 1e6 for n in sizes], [fmt_size(n) for n in sizes])
        ax.set_xlabel("page size")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("time per page (ms)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"reqio-middleware rewriter vs lol-html; {machine().split(';')[0]}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}")
