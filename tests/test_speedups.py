"""The C data-state scanner and the pattern it stands in for agree on every input."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rewriter import PIECES  # the same HTML-ish alphabet as the rewriter's properties

from reqio_middleware import rewriter

if os.environ.get("CI") == "true":  # CI builds the extension: its absence is a failure there
    from reqio_middleware import _speedups as speedups
else:
    speedups = pytest.importorskip("reqio_middleware._speedups", reason="C extension not built")

EDGES = [
    b"<",
    b"</",
    b"<!",
    b"<!-",
    b"<?",
    b"<a",
    b"<a b",
    b'<a b="',
    b"<a b=",
    b"<a =",
    b"<s",
    b"<scrip",
    b"<script",
    b"<STYLE ",
    b"</x y='>'",
    b"<a/",
    b"\x00",
    b"\xff",
    b"=",
    b"'",
]


@settings(max_examples=3000)
@given(
    st.lists(st.sampled_from(PIECES + EDGES) | st.binary(max_size=6), max_size=30),
    st.integers(min_value=0, max_value=400),
)
def test_c_scanner_equals_the_pattern(pieces: list[bytes], at: int) -> None:
    doc = b"".join(pieces)
    pos = min(at, len(doc))
    assert speedups.scan_data(doc, pos) == rewriter._scan_data_pattern(doc, pos)


def test_the_rewriter_uses_the_c_scanner() -> None:
    assert rewriter._scan_data is speedups.scan_data


def test_bad_arguments_raise_instead_of_reading_out_of_bounds() -> None:
    with pytest.raises(ValueError):
        speedups.scan_data(b"abc", 4)
    with pytest.raises(ValueError):
        speedups.scan_data(b"abc", -1)
    with pytest.raises(TypeError):
        speedups.scan_data("abc", 0)  # type: ignore[arg-type]
