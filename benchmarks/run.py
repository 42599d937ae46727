"""Benchmarks: ``python -m benchmarks.run [--quick] [--e2e]`` (or ``python benchmarks/run.py``)
prints one table.

Every figure is measured in the same run as what it is compared with, because absolute
numbers drift with machine load while ratios taken side by side hold. Timings are medians of
repeated batches (``time.perf_counter_ns``, gc disabled while timing). Each section is a module
of this folder; this one only picks them and prints the table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the section modules, flat

from adversarial import bench_adversarial
from compressed import bench_compressed
from configs_bench import bench_configs
from e2e import bench_e2e
from e2e_configs import bench_e2e_configs
from inprocess import bench_asgi, bench_wsgi
from memory import bench_asgi_stream, bench_stream
from report import NOTES, machine, print_table, write_markdown, write_readme
from rewriter_bench import REWRITER, bench_rewriter
from timing import Timer
from tokens_bench import bench_tokens

#: In-process sections, in the order they run; ``e2e`` and ``e2e-configs`` need ``--e2e``.
SECTIONS = ("rewriter", "adversarial", "stream", "asgi", "wsgi", "configs", "compressed")
E2E_SECTIONS = ("e2e", "e2e-configs")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    only = {s for s in args.only.split(",") if s}
    unknown = only - {*SECTIONS, *E2E_SECTIONS, "token"}
    if unknown:
        print(f"unknown section(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2

    def want(name: str) -> bool:
        if name in E2E_SECTIONS:
            return name in only or (args.e2e and (not only or name in only))
        return not only or name in only

    timer = Timer(args.quick)
    started = time.monotonic()
    print(f"machine: {machine()}", flush=True)
    t_jwt, token = bench_tokens(timer)  # always: the other sections compare against it
    runs = {
        "rewriter": lambda: bench_rewriter(timer, args.quick, token),
        "adversarial": lambda: bench_adversarial(timer, token),
        "stream": lambda: (bench_stream(timer, token), bench_asgi_stream(timer)),
        "asgi": lambda: bench_asgi(timer, t_jwt),
        "wsgi": lambda: bench_wsgi(timer, t_jwt),
        "configs": lambda: bench_configs(timer),
        "compressed": lambda: bench_compressed(timer),
        "e2e": lambda: bench_e2e(args.quick),
        "e2e-configs": lambda: bench_e2e_configs(args.quick),
    }
    for name, run in runs.items():
        if want(name):
            run()
    print()
    print_table()
    if args.plot and REWRITER:
        from plot import plot

        plot(args.plot)
    for note in NOTES:
        print(f"note: {note}")
    seconds = time.monotonic() - started
    command = "python -m benchmarks.run " + " ".join(argv or sys.argv[1:])
    if args.write:
        write_markdown(args.write, command, seconds)
    if args.readme:
        write_readme(args.readme, command)
    print(f"\n({seconds:.0f} s; figures are medians, MB = 10^6 bytes)")
    return 1 if any(n.startswith("WRONG") for n in NOTES) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, a rougher table")
    parser.add_argument(
        "--e2e",
        action="store_true",
        help="also run real servers (uvicorn, gunicorn, waitress, granian, nginx) under wrk",
    )
    parser.add_argument("--plot", metavar="PNG", help="also draw rewriter time vs page size")
    parser.add_argument("--write", metavar="MD", help="also write the table as Markdown here")
    parser.add_argument(
        "--readme", metavar="MD", help="also rewrite this README's block of targets from the run"
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated sections: " + ",".join((*SECTIONS, *E2E_SECTIONS)),
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
