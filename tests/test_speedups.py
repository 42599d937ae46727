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


documents = st.lists(st.sampled_from(PIECES + EDGES) | st.binary(max_size=6), max_size=30)


@settings(max_examples=3000)
@given(documents, st.integers(min_value=0, max_value=400))
def test_c_scanner_stops_where_the_pattern_does_or_past_a_whole_comment_or_raw_text(
    pieces: list[bytes], at: int
) -> None:
    doc = b"".join(pieces)
    pos = min(at, len(doc))
    c, pattern = speedups.scan_data(doc, pos), rewriter._scan_data_pattern(doc, pos)
    if c != pattern:
        # The C scanner also passes over complete comments and raw-text elements, which the
        # pattern leaves to the rewriter's own states; it resumes in the data state after them.
        assert c > pattern
        name = rewriter._SPECIAL_OPEN.match(doc, pattern)
        assert doc.startswith(b"<!--", pattern) or (
            name is not None and name.group(1).lower() not in (b"script", b"plaintext")
        )


@settings(max_examples=3000)
@given(documents, st.integers(min_value=0, max_value=400))
def test_c_tag_end_equals_the_pattern(pieces: list[bytes], at: int) -> None:
    doc = b"".join(pieces)
    pos = min(at, len(doc))
    assert speedups.tag_end(doc, pos) == rewriter._tag_end_pattern(doc, pos)


@settings(max_examples=1000)
@given(documents, st.lists(st.integers(min_value=1, max_value=64), max_size=8))
def test_both_scanners_rewrite_alike(pieces: list[bytes], sizes: list[int]) -> None:
    doc = b"".join(pieces) + b'<script src="https://reqio.app/widget.js"></script>'
    with_c = rewriter.rewrite_html(doc, "TOKEN")
    streamed_c = _streamed(doc, sizes)
    rewriter._scan_data = rewriter._scan_data_pattern
    rewriter._tag_end = rewriter._tag_end_pattern
    try:
        assert rewriter.rewrite_html(doc, "TOKEN") == with_c
        assert _streamed(doc, sizes) == streamed_c == with_c
    finally:
        rewriter._scan_data = speedups.scan_data
        rewriter._tag_end = speedups.tag_end


def _streamed(doc: bytes, sizes: list[int]) -> bytes:
    r = rewriter.HTMLRewriter("TOKEN")
    out, at = [], 0
    for size in sizes:
        out.append(r.feed(doc[at : at + size]))
        at += size
    out.append(r.feed(doc[at:]))
    return b"".join(out) + r.close()


def test_the_rewriter_uses_the_c_scanner() -> None:
    assert rewriter._scan_data is speedups.scan_data


def test_bad_arguments_raise_instead_of_reading_out_of_bounds() -> None:
    with pytest.raises(ValueError):
        speedups.scan_data(b"abc", 4)
    with pytest.raises(ValueError):
        speedups.scan_data(b"abc", -1)
    with pytest.raises(TypeError):
        speedups.scan_data("abc", 0)  # type: ignore[arg-type]
