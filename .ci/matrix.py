"""The interpreter matrix of ``.ci/run``: the core tests on every CPython here, and on the floors.

``.ci/run`` runs the whole suite once, on the default interpreter with the latest releases of
every dependency. This script adds, with ``uv`` (fast virtualenvs from one shared cache):

- for every other CPython 3.10+ found (pyenv's versions, or ``python3.X`` on ``PATH``), the
  core tests: everything except the whole-system tests listed in ``SYSTEM_TESTS``, which
  exercise browsers, external verifiers and long-running servers rather than Python itself;
- once, on the oldest interpreter found, the core tests against the declared floors: every
  direct dependency at the lowest release ``pyproject.toml`` allows (uv's ``lowest-direct``).

Usage: ``python .ci/matrix.py [--only 3.12 ...] [--no-floors] [--list]``. Each cell prints its
pytest summary and time; the script exits non-zero if any cell fails. Standard library only, so
it runs on any Python 3.10+.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".ci" / ".cache" / "venvs"
PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
OLDEST_SUPPORTED = (3, 10)
NEWEST_PROBED = 20

# Whole-system tests: run once, by the main step, on the default interpreter.
SYSTEM_TESTS = (
    "tests/test_browser.py",  # Chromium through playwright
    "tests/test_demo.py",  # the demo in Chromium
    "tests/test_soak.py",  # minutes of load against real servers
    "tests/test_fuzz.py",  # the fuzz corpus and atheris
    "tests/test_verifiers.py",  # node, ruby and go cross-checks of the tokens
    "tests/test_servers.py",  # every app under every real server
    "tests/test_packaging.py",  # builds the sdist and wheels, installs from the sdist
)

# One cell's install and test run may take this long before it counts as a failure.
INSTALL_TIMEOUT = 900
TEST_TIMEOUT = 900


@dataclass(frozen=True)
class Interpreter:
    version: tuple[int, int, int]
    path: Path

    @property
    def name(self) -> str:
        return "{}.{}.{}".format(*self.version)

    @property
    def minor(self) -> str:
        return "{}.{}".format(*self.version[:2])


@dataclass
class Cell:
    label: str
    interpreter: Interpreter
    floors: bool
    summary: str = "not run"
    seconds: float = 0.0
    ok: bool = False


def _version_of(python: Path) -> tuple[int, int, int] | None:
    """The interpreter's version when it is CPython with the GIL, else None."""
    probe = (
        "import sys, sysconfig, platform;"
        "gil = not sysconfig.get_config_var('Py_GIL_DISABLED');"
        "print(platform.python_implementation(), gil, *sys.version_info[:3])"
    )
    try:
        out = subprocess.run(
            [str(python), "-c", probe], capture_output=True, text=True, timeout=30, check=True
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    if len(out) != 5 or out[0] != "CPython" or out[1] != "True":
        return None
    return (int(out[2]), int(out[3]), int(out[4]))


def _candidates() -> list[Path]:
    found: list[Path] = []
    if PYENV_VERSIONS.is_dir():
        for entry in sorted(PYENV_VERSIONS.iterdir()):
            if re.fullmatch(r"3\.\d+\.\d+", entry.name):
                found.append(entry / "bin" / "python")
    for minor in range(OLDEST_SUPPORTED[1], NEWEST_PROBED + 1):
        on_path = shutil.which(f"python3.{minor}")
        if on_path:
            found.append(Path(on_path))
    return found


def discover() -> list[Interpreter]:
    """The newest patch release of each CPython minor version from 3.10 on, oldest first."""
    best: dict[tuple[int, int], Interpreter] = {}
    for python in _candidates():
        version = _version_of(python)
        if version is None or version[:2] < OLDEST_SUPPORTED:
            continue
        current = best.get(version[:2])
        if current is None or version > current.version:
            best[version[:2]] = Interpreter(version, python)
    return [best[key] for key in sorted(best)]


def _uv() -> str:
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.is_file() else shutil.which("uv")
    if found is None:
        sys.exit("matrix: uv not found (it is in the dev extra: pip install -e '.[dev]')")
    return found


def _run(command: list[str], timeout: int, env: dict[str, str] | None = None) -> int:
    print("+", " ".join(command), flush=True)
    try:
        return subprocess.run(command, cwd=ROOT, env=env, timeout=timeout, check=False).returncode
    except subprocess.TimeoutExpired:
        print(f"matrix: timed out after {timeout} s", flush=True)
        return 124


def _install(cell: Cell, uv: str) -> Path | None:
    venv = VENVS / cell.label
    python = venv / "bin" / "python"
    if _run([uv, "venv", "-q", "--clear", "-p", str(cell.interpreter.path), str(venv)], 120):
        return None
    command = [uv, "pip", "install", "-q", "--python", str(python), "-e", ".[test]"]
    if cell.floors:
        command[3:3] = ["--resolution", "lowest-direct"]
    if _run(command, INSTALL_TIMEOUT):
        return None
    _run([uv, "pip", "list", "--python", str(python)], 60)
    return python


def core_tests() -> list[str]:
    """The test files of the core subset: every tests/test_*.py not in SYSTEM_TESTS."""
    every = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py"))
    return [name for name in every if name not in SYSTEM_TESTS]


def _summary(output: str) -> str:
    lines = [line.strip("= ") for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _run_tests(command: list[str]) -> tuple[str, int]:
    """Runs pytest in its own process group, so a timeout also ends the servers it started."""
    print("+", " ".join(command), flush=True)
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=TEST_TIMEOUT)
        return output, proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        return f"{output}\ntimed out after {TEST_TIMEOUT} s", 124


def run_cell(cell: Cell, uv: str) -> None:
    started = time.monotonic()
    python = _install(cell, uv)
    if python is None:
        cell.summary = "install failed"
    else:
        command = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *core_tests()]
        output, code = _run_tests(command)
        print(output[-20_000:], flush=True)
        cell.summary = _summary(output)
        cell.ok = code == 0
    cell.seconds = time.monotonic() - started


def plan(interpreters: list[Interpreter], only: list[str], floors: bool) -> list[Cell]:
    """One latest-dependencies cell per interpreter other than this one, and one floors cell."""
    this = sys.version_info[:2]
    cells = [
        Cell(f"py{i.minor}", i, floors=False)
        for i in interpreters
        if i.version[:2] != this and (not only or i.minor in only)
    ]
    if floors and interpreters:
        oldest = interpreters[0]
        cells.append(Cell(f"py{oldest.minor}-floors", oldest, floors=True))
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], help="minor versions, e.g. 3.12")
    parser.add_argument("--no-floors", action="store_true", help="skip the floors cell")
    parser.add_argument("--list", action="store_true", help="print the plan and stop")
    args = parser.parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):  # keep our lines in order with the children's
        sys.stdout.reconfigure(line_buffering=True)

    interpreters = discover()
    print("interpreters:", ", ".join(f"{i.name} ({i.path})" for i in interpreters) or "none")
    print("core tests:", " ".join(core_tests()))
    cells = plan(interpreters, args.only, floors=not args.no_floors)
    if args.list or not cells:
        for cell in cells:
            print(f"  {cell.label}: CPython {cell.interpreter.name}")
        return 0
    uv = _uv()
    for cell in cells:
        print(f"\n==> [matrix] {cell.label}: CPython {cell.interpreter.name}", flush=True)
        run_cell(cell, uv)
        print(f"==> [matrix] {cell.label}: {cell.summary} ({cell.seconds:.0f}s)", flush=True)

    print("\n==> [matrix] summary")
    for cell in cells:
        deps = "floors" if cell.floors else "latest"
        verdict = "ok" if cell.ok else "FAILED"
        print(
            f"  {cell.label:14} CPython {cell.interpreter.name:8} {deps:6} "
            f"{verdict:6} {cell.summary} ({cell.seconds:.0f}s)"
        )
    return 0 if all(cell.ok for cell in cells) else 1


if __name__ == "__main__":
    sys.exit(main())
