"""Copies of a stamped widget tag are stamped in bulk (``_scan_known``), with the same bytes.

Once a tag has been stamped, a start tag with the same bytes has the same verdict, so the data
state run passes over it and says where it is. That holds only while nothing but the bytes can
change a verdict: no trace hook (``explain`` sees every tag), no ESC byte, no ``<base>`` since
the tag was stamped, and the encoding gate still counts each stamp. The reference for every
test here is the same rewriter with a trace hook, which never takes the shortcut.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
from conftest import feed_in_pieces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reqio_middleware import HTMLRewriter, rewrite_html, tokenizer
from reqio_middleware.matcher import TagReport
from reqio_middleware.rewriter import explain

_C = tokenizer._scan_known is not tokenizer._scan_known_pattern
if _C:  # the -DREQIO_PORTABLE build of the extension, a fixture of test_speedups
    from test_speedups import portable  # noqa: F401

TOKEN = "eyJ0eXAi.TOKEN-x_9.sig"
STAMP = f'data-identity-token="{TOKEN}"'.encode()
TAG = b'<script src="https://reqio.app/widget.js" data-project-id="p1" async>'
WIDGET = TAG + b"</script>"
PATH = b"/widget.js"


@pytest.fixture(autouse=True, params=["c", "pattern"] if _C else ["pattern"])
def scanner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with the C scanner and with the pure-Python patterns."""
    if request.param == "pattern":
        for name in tokenizer._ACCELERATED:
            monkeypatch.setattr(tokenizer, name, getattr(tokenizer, name + "_pattern"))
    return str(request.param)


def _ignore(report: TagReport) -> None:
    pass


def streamed(doc: bytes, sizes: list[int], *, traced: bool = False) -> tuple[bytes, int]:
    """The rewritten bytes of ``doc`` fed in pieces of ``sizes`` (then the rest), and how
    many tags the rewriter says it stamped."""
    r = HTMLRewriter(TOKEN, project_id="p1", trace=_ignore if traced else None)
    return feed_in_pieces(r, doc, sizes), r.found


def reference(doc: bytes) -> bytes:
    """The rewriter that never takes the shortcut (a trace hook turns it off)."""
    return streamed(doc, [], traced=True)[0]


def rewrite(doc: bytes) -> bytes:
    out = rewrite_html(doc, TOKEN, project_id="p1")
    assert isinstance(out, bytes)
    return out


def test_every_copy_is_stamped_once() -> None:
    doc = b"<p>a</p>" + (WIDGET + b"\n") * 500
    whole = rewrite(doc)
    assert whole.count(STAMP) == 500
    assert whole == reference(doc)
    assert whole.replace(b" " + STAMP, b"") == doc
    assert streamed(doc, []) == (whole, 500)
    assert streamed(doc, [4096] * 8) == (whole, 500)


def test_back_to_back_copies_in_any_chunk_size() -> None:
    doc = WIDGET * 200
    whole = rewrite(doc)
    assert whole.count(STAMP) == 200
    for size in (1, 7, 64, 81, 1000):
        out, found = streamed(doc, [size] * (len(doc) // size))
        assert (out, found) == (whole, 200), size


NEAR = [
    b'<script src="http://reqio.app/widget.js" data-project-id="p1" async>',  # http: never
    b'<script src="https://reqio.app/widget.js" data-project-id="p2" async>',  # other project
    b'<script src="https://reqio.app/other.js" data-project-id="p1" async>',  # other path
    b'<script src="https://reqio.app/widget.js" data-project-id="p1" async >',  # a widget too
    b'<SCRIPT src="https://reqio.app/widget.js" data-project-id="p1" async>',  # a widget too
    b'<script src="https://reqio.app/widget.js" data-project-id="p1" async data-x>',
    b'<script src="https://reqio.app/widget.js" data-project-id="p1">',
    b'<script data-identity-token="old" src="https://reqio.app/widget.js" data-project-id="p1">',
    b'<script src="https://reqio.app/widget.js" data-project-id="p1" async/>',
]


def test_near_copies_are_judged_on_their_own() -> None:
    tags = [TAG, TAG, *NEAR, TAG, *reversed(NEAR), TAG]
    doc = b"".join(t + b"x</script>\n" for t in tags)
    whole = rewrite(doc)
    assert whole == reference(doc)
    # the first three near ones are not widgets, the other six are, each stamped once
    expected = 4 + 2 * 6
    assert whole.count(STAMP) == expected
    assert b'data-identity-token="old"' not in whole
    for size in (13, 100, 333):
        assert streamed(doc, [size] * (len(doc) // size)) == (whole, expected)


def test_a_near_copy_that_is_not_a_widget_is_reported_missed() -> None:
    doc = WIDGET + NEAR[1] + b"</script>" + WIDGET
    r = HTMLRewriter(TOKEN, project_id="p1")
    out = r.feed(doc) + r.close()
    assert out.count(STAMP) == 2
    assert r.missed == "other project"


SCHEME_RELATIVE = b'<script src="//reqio.app/widget.js" data-project-id="p1">'


@pytest.mark.parametrize("sizes", [[], [1] * 400, [50, 50, 50]])
def test_a_base_between_two_copies_of_a_scheme_relative_tag(sizes: list[int]) -> None:
    copy = SCHEME_RELATIVE + b"</script>"
    doc = copy + copy + b'<base href="http://example.com/">' + copy + copy
    out, found = streamed(doc, sizes)
    assert (out, found) == (reference(doc), 2)
    before, after = out.split(b"<base", 1)
    assert before.count(STAMP) == 2 and STAMP not in after
    assert rewrite(doc) == out


def test_a_base_does_not_stop_copies_of_an_absolute_tag_being_stamped() -> None:
    doc = WIDGET * 3 + b'<base href="http://example.com/">' + WIDGET * 3
    assert streamed(doc, [40] * 20) == (reference(doc), 6)
    assert rewrite(doc).count(STAMP) == 6


@pytest.mark.parametrize("sizes", [[], [1] * 300, [len(WIDGET) * 2 + 3]])
def test_an_esc_byte_between_two_copies_stops_the_stamping(sizes: list[int]) -> None:
    doc = WIDGET * 2 + b"<p>\x1b$B</p>" + WIDGET * 2
    out, found = streamed(doc, sizes)
    assert (out, found) == (reference(doc), 2)
    assert out.split(b"\x1b", 1)[1] == doc.split(b"\x1b", 1)[1]
    assert rewrite(doc) == out


@pytest.mark.parametrize("sizes", [[], [1] * 300, [100] * 5])
def test_copies_wait_for_the_encoding_guard(sizes: list[int]) -> None:
    """Stamps before an ISO-2022-JP label inside the prescan are all taken back."""
    doc = WIDGET * 6 + b'<meta charset="iso-2022-jp">' + WIDGET * 2
    assert len(doc) < 1024
    r = HTMLRewriter(TOKEN, project_id="p1")
    out, at = [], 0
    for size in sizes:
        out.append(r.feed(doc[at : at + size]))
        at += size
    out.append(r.feed(doc[at:]) + r.close())
    assert b"".join(out) == doc
    assert r.found == 0
    assert r.missed is not None and "ISO-2022-JP" in r.missed


def test_copies_are_counted_when_the_encoding_guard_passes() -> None:
    doc = WIDGET * 6 + b"<p>" + b"x" * 2000 + b"</p>" + WIDGET
    out, found = streamed(doc, [10] * 120)
    assert found == 7 and out.count(STAMP) == 7


def test_explain_sees_every_copy() -> None:
    doc = (WIDGET + b"\n") * 20
    reports = explain(doc, project_id="p1")
    assert len(reports) == 20
    assert all(report.rewritten for report in reports)


def test_a_copy_inside_a_comment_or_raw_text_is_no_tag() -> None:
    doc = WIDGET + b"<!--" + WIDGET + b"-->" + b"<textarea>" + WIDGET + b"</textarea>" + WIDGET
    whole = rewrite(doc)
    assert whole.count(STAMP) == 2
    assert whole == reference(doc)
    assert streamed(doc, [30] * 10) == (whole, 2)


def test_a_copy_in_script_text_is_no_tag() -> None:
    # Inside a copy's own text, double-escaped: '</script>' there ends nothing.
    doc = WIDGET + TAG + b"<!--<script>" + WIDGET + b"</script>-->" + b"</script>" + WIDGET
    whole = rewrite(doc)
    assert whole == reference(doc)
    assert whole.count(STAMP) == 3
    assert streamed(doc, [17] * 20) == (whole, 3)


PIECES = [
    WIDGET,
    WIDGET,
    TAG,
    SCHEME_RELATIVE,
    *NEAR,
    b"</script>",
    b"<!--",
    b"-->",
    b"<script>",
    b"<base href=http://a/>",
    b"<textarea>",
    b"</textarea>",
    b"<svg>",
    b"</svg>",
    b"<p title='",
    b"'",
    b"<",
    b" x ",
    b"\x1b",
]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(PIECES), max_size=30),
    st.lists(st.integers(min_value=1, max_value=120), max_size=10),
)
def test_same_bytes_as_without_the_shortcut_for_any_chunking(
    pieces: list[bytes], sizes: list[int]
) -> None:
    doc = b"".join(pieces)
    expected = reference(doc)
    out, found = streamed(doc, sizes)
    assert out == expected
    assert rewrite(doc) == expected
    assert found == expected.count(STAMP)


# --- the twins themselves ---------------------------------------------------------------------

KNOWN = [TAG, SCHEME_RELATIVE, b"<script src=/widget.js>", b"<script src='&#47;widget.js'>"]
TWIN_PIECES = [*KNOWN, *NEAR, *PIECES[7:], b"<script src=/widget.js></script>", b"<p>", b"\x00"]


MARK = b"<STAMPED>"  # stands for the stamped tag: bytes no document here holds
Result = tuple[int, int, bytes]


def _check_twins(doc: bytes, pos: int, known: bytes, c: Result, pattern: Result) -> None:
    """The C run stops where the pattern does or further (it passes over comments and raw
    text too), and each gives back the bytes it passed over with its copies stamped."""
    (c_stop, c_count, c_text), (p_stop, p_count, p_text) = c, pattern
    assert c_stop >= p_stop and c_count >= p_count
    for stop, count, text in (c, pattern):
        if count:
            assert text.count(MARK) == count
            assert text.replace(MARK, known) == doc[pos:stop]
        else:
            assert text == b""
    assert c_text.startswith(p_text)


@pytest.mark.skipif(not _C, reason="C extension not built")
@settings(max_examples=2000)
@given(
    st.lists(st.sampled_from(TWIN_PIECES) | st.binary(max_size=4), max_size=30),
    st.integers(min_value=0, max_value=300),
    st.sampled_from([*KNOWN, b""]),
    st.sampled_from([PATH, b""]),
)
def test_c_scan_known_agrees_with_the_pattern(
    pieces: list[bytes], at: int, known: bytes, path: bytes
) -> None:
    from reqio_middleware import _speedups

    doc = b"".join(pieces)
    pos = min(at, len(doc))
    c = _speedups.scan_known(doc, pos, path, known, MARK)
    _check_twins(doc, pos, known, c, tokenizer._scan_known_pattern(doc, pos, path, known, MARK))
    if not known:  # no known tag: the plain data-state run
        assert c == (_speedups.scan_data(doc, pos, path), 0, b"")


@pytest.mark.parametrize("twin", ["pattern", "c"] if _C else ["pattern"])
def test_scan_known_stamps_the_copies(twin: str) -> None:
    scan: Callable[[bytes, int, bytes, bytes, bytes], Result]
    scan = tokenizer._scan_known_pattern
    if twin == "c":
        from reqio_middleware import _speedups

        scan = _speedups.scan_known
    doc = b"<p>" + WIDGET + b"<b>x</b>" + WIDGET + NEAR[0] + b"</script>" + WIDGET
    stop = doc.index(NEAR[0])
    text = b"<p>" + MARK + b"x</script><b>x</b>" + MARK + b"x</script>"
    assert scan(doc, 0, PATH, TAG, b"<STAMPED>x") == (stop, 2, text)
    assert scan(doc, 3, PATH, TAG, MARK) == (stop, 2, doc[3:stop].replace(TAG, MARK))
    # a copy whose element the buffer cuts short is left to the rewriter
    assert scan(WIDGET + TAG + b"abc</scr", 0, PATH, TAG, MARK) == (
        len(WIDGET),
        1,
        MARK + b"</script>",
    )
    assert scan(WIDGET, 0, PATH, b"", MARK) == (0, 0, b"")
    assert scan(b"<p>" + WIDGET, 0, PATH, NEAR[0], MARK) == (3, 0, b"")


@pytest.mark.skipif(not _C, reason="C extension not built")
def test_scan_known_bad_arguments_raise() -> None:
    from reqio_middleware import _speedups

    with pytest.raises(ValueError):
        _speedups.scan_known(b"abc", 4, PATH, TAG, MARK)
    with pytest.raises(TypeError):
        _speedups.scan_known(b"abc", 0, PATH, TAG)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _speedups.scan_known(b"abc", 0, PATH, "tag", MARK)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _speedups.scan_known(b"abc", 0, PATH, TAG, "stamp")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _speedups.scan_known(b"abc", 0, "path", TAG, MARK)  # type: ignore[arg-type]


@pytest.mark.skipif(not _C, reason="C extension not built")
def test_portable_build_stamps_the_same_copies(portable: ModuleType) -> None:
    from reqio_middleware import _speedups

    doc = (b"<p>" + WIDGET + b"<!--x-->" + NEAR[3] + b"</script>" + WIDGET) * 50
    for known in (TAG, NEAR[3], b""):
        expected = _speedups.scan_known(doc, 0, PATH, known, MARK)
        assert portable.scan_known(doc, 0, PATH, known, MARK) == expected
