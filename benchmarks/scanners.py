"""Run the rewriter with its C scanner or with the pure-Python one, in the same process.

The rewriter keeps each C-accelerated function under a module-level name and its pattern twin
under ``NAME_pattern``; swapping the names is how tests/test_speedups.py compares the two. This
is the one place the benchmarks know those names, so a rewriter split into several modules
needs only this file adapted (which module holds the names, and what they are called).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from types import ModuleType

#: The C functions and the modules that may hold them (the first that has them all wins).
_ACCELERATED_DEFAULT = ("_scan_data", "_tag_end", "_last_candidate")
_MODULES = ("reqio_middleware.tokenizer", "reqio_middleware.rewriter")


def _holder() -> tuple[ModuleType, tuple[str, ...]]:
    for name in _MODULES:
        module = importlib.import_module(name)
        names = tuple(getattr(module, "_ACCELERATED", _ACCELERATED_DEFAULT))
        if all(hasattr(module, n) and hasattr(module, n + "_pattern") for n in names):
            return module, names
    raise RuntimeError(f"no module of {_MODULES} holds the scanner functions and their twins")


def c_available() -> bool:
    """Whether the C scanner is built (without it both modes run the Python one)."""
    module, names = _holder()
    return any(getattr(module, n) is not getattr(module, n + "_pattern") for n in names)


@contextlib.contextmanager
def scanner(kind: str) -> Iterator[None]:
    """``with scanner("Python"):`` runs the pattern twins; ``"C"`` leaves the module as it is."""
    if kind not in ("C", "Python"):
        raise ValueError(f"scanner must be 'C' or 'Python', not {kind!r}")
    module, names = _holder()
    saved = {n: getattr(module, n) for n in names}
    if kind == "Python":
        for n in names:
            setattr(module, n, getattr(module, n + "_pattern"))
    try:
        yield
    finally:
        for n, fn in saved.items():
            setattr(module, n, fn)
