"""The one table: rows as they are measured, notes, the machine line, and the number formats."""

from __future__ import annotations

import functools
import os
import platform
import sys
from pathlib import Path

Row = tuple[str, str, str, str, str]
ROWS: list[Row] = []
NOTES: list[str] = []


def row(section: str, case: str, ours: str, compared: str, verdict: str) -> None:
    ROWS.append((section, case, ours, compared, verdict))
    print(f"  {section} | {case} | {ours} | {compared} | {verdict}", file=sys.stderr, flush=True)


def skipped(section: str, case: str, why: str) -> None:
    """A row that could not be measured here, with the reason in the table itself."""
    row(section, case, f"n/a ({why})", "", "")


def fmt_t(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_delta(seconds: float) -> str:
    """A difference of two medians, which noise can make negative."""
    return ("+" if seconds >= 0 else "-") + fmt_t(abs(seconds))


def fmt_rate(nbytes: int, seconds: float) -> str:
    rate = nbytes / seconds
    if rate >= 1e9:
        return f"{rate / 1e9:.2f} GB/s"
    if rate >= 10e6:
        return f"{rate / 1e6:.0f} MB/s"
    if rate >= 1e6:
        return f"{rate / 1e6:.1f} MB/s"
    return f"{rate / 1e3:.0f} kB/s"


def fmt_size(n: int) -> str:
    return f"{n // 1_000_000} MB" if n >= 1_000_000 else f"{n // 1000} KB"


def verdict(ok: bool, text: str) -> str:
    return f"{text}: {'met' if ok else 'NOT met'}"


@functools.lru_cache(maxsize=1)
def load_at_start() -> float:
    """The one-minute load average when the run began, per core."""
    return os.getloadavg()[0] / (os.cpu_count() or 1)


@functools.lru_cache(maxsize=1)
def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for dist in ("reqio-middleware", "python-lolhtml", "PyJWT", "starlette"):
        try:
            from importlib.metadata import version

            versions.append(f"{dist} {version(dist)}")
        except Exception:
            versions.append(f"{dist} -")
    load_at_start()  # remembered now, before the run loads the machine itself
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, {cpu}, load average {load} at start; "
        f"Python {platform.python_version()} "
        f"({platform.python_implementation()}); {platform.system()} {platform.release()}; "
        + ", ".join(versions)
    )


def table() -> str:
    header = ("section", "case", "ours", "compared with (same run)", "ratio / target")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in ROWS]
    return "\n".join(lines)


def print_table() -> None:
    print(table())


def _load_warning() -> str:
    per_core = load_at_start()
    if per_core <= 1.5:
        return ""
    return (
        f"**This run shared its cores with other work** (load average {per_core:.1f}x the core "
        "count at start): every figure is noisy, and the end-to-end ratios (a server and wrk "
        "competing with that work) can be off by a factor of two or more either way. Compare "
        "them with a run on a quiet machine before drawing conclusions.\n\n"
    )


SECTIONS_TEXT = """\
Sections, in the order they run (`--only` picks some):

- **token**: minting a token, ours against PyJWT's `encode` of the same claims.
- **rewriter**: 20 KB to 10 MB pages without the widget, with it near the top and near the end,
  whole and in 64 KiB chunks, against the `bytes.find` floor, python-lolhtml, a naive regex and
  `html.parser`.
- **adversarial**: inputs built to make a tag scanner slow (many `<script ` with no near `>` in
  script text, in an attribute, in a comment; unclosed comments and quotes; `<script><!--<script>`
  nesting; 100k widget tags; a held tag fed one byte at a time), for the C and the pure-Python
  scanner, next to a normal page.
- **stream**: 100 MB in 64 KiB chunks through `HTMLRewriter` and through `ReqioMiddleware`:
  throughput and tracemalloc peak.
- **asgi**, **wsgi**: the middlewares called in-process with the identity in the scope/environ,
  against the bare app and a wrapper that only forwards.
- **configs**: the configurations the README documents (Starlette `AuthenticationMiddleware` +
  `user_resolver`, FastAPI with a dependency, Django `MIDDLEWARE`, Flask `Reqio`), in-process,
  anonymous, signed-in and JSON, against the same app without Reqio, a forwarding middleware and
  the seeds' way (no middleware: the view mints with `jwt.encode`, the template writes the
  attribute). A configuration whose integration is not importable is listed with the reason.
- **compressed**: a gzip page rewritten and re-encoded for a signed-in visitor against the same
  page passed through for an anonymous one.
- **e2e** (`--e2e`): uvicorn + Starlette, gunicorn and waitress + Flask under
  `wrk -t1 -c16 -d3s`, wrapped against bare, the server's RSS while streaming 100 MB, and nginx
  `sub_filter` as the C reference for a body edit.
- **e2e-configs** (`--e2e`): the configurations above under uvicorn, granian, gunicorn
  (gthread) and waitress, one server process each, rounds interleaved.
"""


def write_markdown(path: str, command: str, seconds: float) -> None:
    """The whole run as a Markdown page: how it was made, on what, the table and the notes."""
    notes = "".join(f"- {note}\n" for note in NOTES) or "- none\n"
    Path(path).write_text(
        "# Benchmark results\n\n"
        "[README](../README.md) · the full table behind the README's performance summary.\n\n"
        f"Made with `{command}` ({seconds:.0f} s) on: {machine()}.\n\n"
        "Every ratio compares figures measured side by side (round-robin) in this one run; "
        "absolute figures move with the machine's load.\n\n"
        f"{_load_warning()}{SECTIONS_TEXT}\n{table()}\n\nNotes:\n\n{notes}",
        encoding="utf-8",
    )
    print(f"table written to {path}")


#: The README block this run rewrites (``--readme``), between these two lines.
README_START = "<!-- benchmarks: made by python -m benchmarks.run --readme; do not edit -->"
README_END = "<!-- benchmarks: end -->"


def target_rows() -> list[Row]:
    """The rows with a target: what the README summarises."""
    return [r for r in ROWS if ": met" in r[4] or ": NOT met" in r[4]]


def write_readme(path: str, command: str) -> None:
    """Replace the README's benchmark block with every row that has a target, from this run."""
    text = Path(path).read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        print(f"{path} has no benchmark block ({README_START!r} ... {README_END!r})")
        return
    before, rest = text.split(README_START, 1)
    after = rest.split(README_END, 1)[1]
    header = ("section", "case", "ours", "ratio / target")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += [
        "| " + " | ".join(c.replace("|", "\\|") for c in (r[0], r[1], r[2], r[4])) + " |"
        for r in target_rows()
    ]
    load = load_at_start()
    block = (
        f"{README_START}\n"
        f"`{command}` on {os.cpu_count()} cores (load {load:.1f}x the cores at start); "
        "every ratio side by side in that one run, the whole table in "
        "[docs/benchmarks.md](docs/benchmarks.md).\n\n"
        "<details><summary>Every target, measured</summary>\n\n" + "\n".join(lines) + "\n\n"
        "</details>\n"
    )
    Path(path).write_text(before + block + README_END + after, encoding="utf-8")
    print(f"README block written to {path}")
