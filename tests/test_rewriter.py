"""The rewriter finds the widget tag as a browser's tokenizer does, and touches nothing else."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import html5lib
import pytest
from conftest import IN_CI, ROOT_DIR, feed_in_pieces
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from reqio_middleware import HTMLRewriter, rewrite_html, rewriter, tags, tokenizer
from reqio_middleware.rewriter import MAX_TAG_BYTES, WidgetSource, explain, find_widget

_C_SCAN_DATA = tokenizer._scan_data  # before any test swaps in the pattern
_SCANNERS = (
    ["c", "pattern"] if tokenizer._scan_data is not tokenizer._scan_data_pattern else ["pattern"]
)


@pytest.fixture(autouse=True, params=_SCANNERS)
def scanner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with the C data-state scanner and with the pure-Python pattern."""
    if request.param == "pattern":
        for name in tokenizer._ACCELERATED:
            monkeypatch.setattr(tokenizer, name, getattr(tokenizer, name + "_pattern"))
    return str(request.param)


TOKEN = "eyJ0eXAi.TOKEN-x_9.sig"
STAMP = f'data-identity-token="{TOKEN}"'.encode()
W = b'<script src="https://reqio.app/widget.js" data-project-id="proj_abc123" async></script>'


def rewrite(doc: bytes, **kw: str) -> bytes:
    out = rewrite_html(doc, TOKEN, **kw)
    assert isinstance(out, bytes)
    return out


def streamed(doc: bytes, sizes: list[int], **kw: str) -> bytes:
    return feed_in_pieces(HTMLRewriter(TOKEN, **kw), doc, sizes)


def unstamped(doc: bytes) -> bytes:
    return doc.replace(b" " + STAMP, b"")


_ANY_TOKEN_ATTR = re.compile(
    rb"[\t\n\f\r ]*data-identity-token"
    rb"(?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:\"[^\"]*\"|'[^']*'|[^\t\n\f\r >]*))?",
    re.I,
)


def without_token_attrs(doc: bytes) -> bytes:
    """The page with every data-identity-token attribute (any form) and its spacing removed."""
    return _ANY_TOKEN_ATTR.sub(b"", doc)


def only_token_attrs_differ(doc: bytes, out: bytes) -> bool:
    """Whether ``out``, less the stamps, is ``doc`` with some token attributes deleted.

    Removing every token-attribute-shaped span from both sides is not enough: such a span in
    text (``data-identity-token=x<script ...``) is greedy, and a stamp the rewriter inserts
    inside it ends it sooner in the output than in the input. So this aligns the two, trying at
    each byte of ``doc`` either to keep it or to delete one whole attribute-shaped span there,
    and at each byte of the output to skip a stamp with no space before it (one that replaced
    an attribute right after a ``/`` or a quoted value).
    """
    want = unstamped(out)
    seen: set[tuple[int, int]] = set()
    todo = [(0, 0)]
    while todo:
        i, j = todo.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(doc):
            if j == len(want):
                return True
            continue
        if j < len(want) and doc[i] == want[j]:
            todo.append((i + 1, j + 1))
        if want.startswith(STAMP, j):  # a stamp in place of an attribute not after a space
            todo.append((i, j + len(STAMP)))
        cut = _ANY_TOKEN_ATTR.match(doc, i)
        if cut is not None and cut.end() > i:
            todo.append((cut.end(), j))
    return False


# --- what gets stamped ----------------------------------------------------------------------


def test_widget_tag_gets_the_token_and_nothing_else_changes() -> None:
    doc = b"<!doctype html><html><head>" + W + b"</head><body>hi</body></html>"
    out = rewrite(doc)
    assert out.count(STAMP) == 1
    assert unstamped(out) == doc
    assert out.index(STAMP) < out.index(b"</script>")


@pytest.mark.parametrize(
    "tag",
    [
        b"<SCRIPT SRC=https://reqio.app/widget.js></SCRIPT>",
        b"<script\nasync\tsrc='https://reqio.app/widget.js'\f></script>",
        b"<script/src=//reqio.app/widget.js></script>",
        b'<script src = "https://REQIO.APP/widget.js?v=3#x"></script>',
        b'<script src="HTTPS://reqio.app:443/widget.js"></script>',
        b'<script src="  https://reqio.app/widget.js\n"></script>',
        b'<script src="https://reqio.app/wid\nget.js"></script>',
        b'<script src="https&#58;//reqio.app/widget&#x2e;js"></script>',
        b'<script src="https://reqio.app/widget.js" src="https://evil.example/x.js"></script>',
        b'<script defer src="https://reqio.app/widget.js"/>',
        # what a browser's URL parser also reads as the widget's URL
        b'<script src="https:\\\\reqio.app\\widget.js"></script>',
        b'<script src="https://reqio.app:0443/./x/../widget.js"></script>',
    ],
)
def test_any_case_order_quoting_and_whitespace(tag: bytes) -> None:
    out = rewrite(b"<p>" + tag + b"</p>")
    assert out.count(STAMP) == 1, out


@pytest.mark.parametrize(
    "tag",
    [
        b'<script src="http://reqio.app/widget.js"></script>',
        b'<script src="https://reqio.app.evil.example/widget.js"></script>',
        b'<script src="https://evilreqio.app/widget.js"></script>',
        b'<script src="https://reqio.app@evil.example/widget.js"></script>',
        b'<script src="https://evil.example/reqio.app/widget.js"></script>',
        b'<script src="https://reqio.app/widget.js.evil.js"></script>',
        b'<script src="https://reqio.app/x/widget.js"></script>',
        b'<script src="https://reqio.app/widget.jsx"></script>',
        b'<script src="https://reqio.app:8443/widget.js"></script>',
        b'<script src="/widget.js"></script>',
        b'<script src="widget.js"></script>',
        b'<script data-src="https://reqio.app/widget.js"></script>',
        b'<script src="https://evil.example/x.js" src="https://reqio.app/widget.js"></script>',
        b"<script src></script>",
        b'<scriptx src="https://reqio.app/widget.js"></scriptx>',
        b'<img src="https://reqio.app/widget.js">',
    ],
)
def test_look_alikes_never_match(tag: bytes) -> None:
    doc = b"<p>" + tag + b"</p>"
    assert rewrite(doc) == doc
    assert not find_widget(doc)


@pytest.mark.parametrize(
    "context",
    [
        b"<!-- %s -->",
        b"<!--%s--!>",
        b"<!-- a -- b %s -->",
        b"<textarea>%s</textarea>",
        b"<title>%s</title>",
        b"<style>%s</style>",
        b"<xmp>%s</xmp>",
        b"<iframe>%s</iframe>",
        b"<noembed>%s</noembed>",
        b"<noframes>%s</noframes>",
        b"<noscript>%s</noscript>",
        b"<script>var x = '%s';</script>",
        b"<script><!-- <script> %s </script> --></script>",
        b"<plaintext>%s",
        b'<div title="%s"></div>',
        b"<div title='%s'></div>",
        b"<? %s",
        b"<!DOCTYPE html %s",
        b"</div %s>",
        b"<TEXTAREA>%s</TEXTAREA >",
    ],
)
def test_never_inside_comments_raw_text_or_attributes(context: bytes) -> None:
    doc = context % W
    assert rewrite(doc) == doc
    assert streamed(doc, [1] * len(doc)) == doc


@pytest.mark.parametrize(
    "before",
    [
        b"<!---->",
        b"<!-->",
        b"<!--->",
        b"<!-- x --!>",
        b"<textarea></textarea>",
        b"<textarea>a</textarea\n>",
        b"<title>t</title/>",
        b"<style>p{}</style>",
        b"<script>x</script>",
        b"<script><!-- a --></script>",
        b"<script><!--<script></script>--></script>",
        b"<script><!--></script>",
        b'<div title="a>b">c</div>',
        b"</p foo='>'>",
        b"<!doctype html>",
        b"<?xml version='1.0'?>",
        b"</ >",
        b'<a b=c"d>',
        b"< script>",
        b"<3",
        b'<p ="x>">',
    ],
)
@pytest.mark.parametrize(
    "after",
    [b"", b"<!-- later --></style></textarea></title></xmp>--></script>"],
    ids=["at-end", "terminators-after"],
)
def test_found_after_every_construct_that_ends(before: bytes, after: bytes) -> None:
    # With terminators after the widget, a scanner that missed where `before` ends would
    # run on to them and skip the widget tag.
    doc = before + W + after
    assert rewrite(doc).count(STAMP) == 1, rewrite(doc)
    assert streamed(doc, [1] * len(doc)).count(STAMP) == 1


def test_escaped_script_data_hides_an_unclosed_double_escape() -> None:
    # '<script>' inside '<!--' in script data: '</script>' returns to the escaped state, and
    # the next '<script ' starts double-escaping again, so the widget tag is script text.
    doc = b'<script>a="<!--<script>";</script>' + W
    assert rewrite(doc) == doc


def test_existing_token_replaced_in_place_never_duplicated() -> None:
    doc = (
        b'<script data-identity-token="planted" SRC="https://reqio.app/widget.js" '
        b"DATA-IDENTITY-TOKEN=again data-identity-token></script>"
    )
    out = rewrite(doc)
    assert out.lower().count(b"data-identity-token") == 1
    assert out.startswith(b"<script " + STAMP + b' SRC="https://reqio.app/widget.js"')
    assert b"planted" not in out and b"again" not in out


def test_every_widget_tag_is_stamped() -> None:
    doc = W + b"<p>x</p>" + W
    out = rewrite(doc)
    assert out.count(STAMP) == 2
    r = HTMLRewriter(TOKEN)
    r.feed(doc)
    r.close()
    assert r.found == 2


def test_project_id_must_equal() -> None:
    other = W.replace(b"proj_abc123", b"proj_other")
    missing = b'<script src="https://reqio.app/widget.js"></script>'
    doc = other + missing + W
    out = rewrite(doc, project_id="proj_abc123")
    assert out.count(STAMP) == 1
    assert unstamped(out) == doc
    assert rewrite(doc).count(STAMP) == 3


def test_custom_widget_src_with_port() -> None:
    doc = b'<script src="//127.0.0.1:8000/w/widget.js"></script>'
    assert rewrite(doc, widget_src="//127.0.0.1:8000/w/widget.js").count(STAMP) == 1
    assert rewrite(doc) == doc


def test_str_in_str_out() -> None:
    doc = "<p>caf\u00e9</p>" + W.decode()
    out = rewrite_html(doc, TOKEN)
    assert isinstance(out, str) and out.count(STAMP.decode()) == 1


def test_token_is_escaped_for_the_attribute() -> None:
    out = rewrite_html(W, 'a"b<c\u00e9')
    assert b'data-identity-token="a&quot;b&lt;c&#233;"' in out


def test_lazy_token_is_called_once_and_only_when_found() -> None:
    calls: list[int] = []

    def token() -> str:
        calls.append(1)
        return TOKEN

    assert rewrite_html(b"<p>no widget</p><!-- " + W + b" -->", token)
    assert calls == []
    assert rewrite_html(W + W, token).count(STAMP) == 2
    assert calls == [1]


def test_lazy_token_none_leaves_the_page_alone() -> None:
    assert rewrite_html(W, lambda: None) == W


def test_invalid_utf8_and_binary_pass_through() -> None:
    doc = b"\xfe\x80<p>\x80\x00</p>" + W + b"\xc3("
    out = rewrite(doc)
    assert unstamped(out) == doc and out.count(STAMP) == 1


def test_unterminated_tag_at_end_is_not_a_tag() -> None:
    doc = b'<p>x</p><script src="https://reqio.app/widget.js"'
    assert rewrite(doc) == doc
    assert streamed(doc, [3] * 20) == doc


def test_pathological_tag_is_given_up_with_bounded_memory() -> None:
    # A quote that never closes: the stream must not hold it all back.
    huge = b'<script src="https://reqio.app/widget.js" x="' + b"a" * (3 * MAX_TAG_BYTES)
    r = HTMLRewriter(TOKEN)
    out = []
    for i in range(0, len(huge), 4096):
        out.append(r.feed(huge[i : i + 4096]))
        assert len(r._held) <= MAX_TAG_BYTES + 4096
    rest = b'"></script>' + W
    out.append(r.feed(rest))
    out.append(r.close())
    result = b"".join(out)
    assert result.count(STAMP) == 1  # the huge one is skipped, the next one is found
    assert unstamped(result) == huge + rest
    assert rewrite(huge + rest) == result


def test_feed_after_close_raises_and_close_is_idempotent() -> None:
    r = HTMLRewriter(TOKEN)
    r.feed(W)
    r.close()
    assert r.close() == b""
    with pytest.raises(ValueError):
        r.feed(b"x")


def test_widget_src_is_validated() -> None:
    for bad in ["http://reqio.app/widget.js", "reqio.app/widget.js", "https://", "https://x.y/"]:
        with pytest.raises(ValueError, match="widget_src"):
            WidgetSource(bad)


def test_explain_says_why() -> None:
    doc = (
        b"<!-- " + W + b" -->\n<textarea>" + W + b"</textarea>\n"
        b'<script src="http://reqio.app/widget.js"></script>\n'
        + W.replace(b"proj_abc123", b"proj_x")
        + b"\n"
        + W
    )
    reports = explain(doc, project_id="proj_abc123")
    reasons = [(r.line, r.rewritten, r.reason) for r in reports]
    assert reasons == [
        (1, False, "inside a comment"),
        (2, False, "inside <textarea> text"),
        (3, False, "http: source (only https or scheme-relative gets a token)"),
        (4, False, "other project"),
        (5, True, ""),
    ]


# --- properties -----------------------------------------------------------------------------

WIDGETS = [
    W,
    b"<SCRIPT src=//reqio.app/widget.js?v=2 >",
    b"<script async src='https://Reqio.App/widget.js' data-identity-token=old>",
    b'<script src="https://reqio.app/widget.js" data-project-id="other">',
    b'<script src="http://reqio.app/widget.js">',
    b'<script src="https://reqio.app.evil/widget.js">',
    b"<script/src=https://reqio.app/widget.js/>",
]
PIECES = [
    *WIDGETS,
    b"</script>",
    b"</SCRIPT >",
    b"<script>",
    b"<!--",
    b"-->",
    b"--!>",
    b"<!-->",
    b"-",
    b"<style>",
    b"</style>",
    b"<textarea>",
    b"</textarea>",
    b"<title>",
    b"</title>",
    b"<xmp>",
    b"</xmp>",
    b"<iframe>",
    b"</iframe>",
    b'<div title="',
    b"<p class='",
    b'"',
    b"'",
    b">",
    b"<",
    b"</",
    b"=",
    b" ",
    b"\n",
    b"/",
    b"<!doctype html>",
    b"<?x ",
    b"</div a='>'>",
    b"<a href=x>",
    b"text ",
    b"&amp;",
    b"<!",
    b"<br/>",
]


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    return b"".join(draw(st.lists(st.sampled_from(PIECES), max_size=40)))


@st.composite
def splits(draw: st.DrawFn, doc: bytes) -> list[int]:
    return draw(st.lists(st.integers(min_value=0, max_value=max(1, len(doc))), max_size=12))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_chunking_gives_the_bytes_of_the_whole(data: st.DataObject) -> None:
    doc = data.draw(documents())
    sizes = data.draw(splits(doc))
    whole = rewrite(doc)
    assert streamed(doc, sizes) == whole
    assert only_token_attrs_differ(doc, whole)


def _scanner_says(doc: bytes) -> bytes:
    """What the streaming scanner gives for the whole document in one piece."""
    r = HTMLRewriter(TOKEN)
    return r.feed(doc) + r.close()


_LONE_PAGE = b"<!doctype html><title>a</title><style>p{}</style><script>x<y</script><!-- c -->"


@pytest.mark.parametrize(
    ("doc", "taken"),  # taken: with C, with the pattern twin (which stops at more)
    [
        (_LONE_PAGE + W + b"<p>after</p>", (True, False)),
        (b"<p>x</p>" + W, (True, True)),
        (W, (True, True)),
        (b'<script src="/app.js"></script><div title="a>b">' + W, (True, False)),
        (b"<!-- " + W + b" -->" + W, (True, False)),  # a tag in a comment is no tag
        (_LONE_PAGE + W + W, (False, False)),  # two widget tags: the scanner stamps both
        (b"<svg><path/></svg>" + W, (False, False)),  # the tree model decides after <svg>
        (b'<base href="https://x.example/">' + W, (False, False)),
        (b"<p>\x1b$B</p>" + W, (False, False)),  # an ESC byte before the tag
        (b"\xff\xfe" + W, (False, False)),  # UTF-16 byte order mark
        (b"<!-- " + W, (False, False)),  # the only candidate is inside a comment
    ],
)
def test_the_lone_widget_shortcut_agrees_with_the_scanner(
    doc: bytes, taken: tuple[bool, bool], scanner: str
) -> None:
    matcher = rewriter._matcher_for(rewriter.DEFAULT_WIDGET_SRC, None)
    span = rewriter._lone_widget(doc, matcher)
    expect = taken[scanner == "pattern"]
    assert (span is not None and span != rewriter._NO_CANDIDATE) == expect
    assert rewrite(doc) == _scanner_says(doc)
    assert rewrite(doc).count(STAMP) == _scanner_says(doc).count(STAMP)


@settings(max_examples=300)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=300), max_size=8))
def test_never_raises_on_arbitrary_bytes(doc: bytes, sizes: list[int]) -> None:
    assert streamed(doc, sizes) == rewrite(doc)


@settings(max_examples=300)
@given(st.lists(st.sampled_from([p for p in PIECES if b"reqio.app" not in p.lower()]), max_size=40))
def test_documents_without_the_widget_come_back_unchanged(pieces: list[bytes]) -> None:
    doc = b"".join(pieces)
    assert rewrite(doc) == doc
    assert streamed(doc, [7] * (len(doc) // 7 + 1)) == doc


def _widget_scripts_per_html5lib(doc: bytes) -> tuple[int, int]:
    """(script elements html5lib sees with a widget src, how many of them carry the token).

    html5lib 1.1 fails an internal assertion on some documents (``<math><select><mi><select>
    <select>``: resetting the insertion mode, it takes the MathML ``select`` for an HTML one).
    It cannot judge those, so a generated one is rejected rather than failed.
    """
    widget = WidgetSource()
    try:
        tree = html5lib.parse(doc.decode("latin-1"), namespaceHTMLElements=False)
    except AssertionError:
        reject()
    seen = stamped = 0
    for el in tree.iter("script"):
        src = el.attrib.get("src")
        # html5lib gives the decoded value; the matcher reads raw attribute bytes
        if src is not None and widget.matches(src.replace("&", "&amp;").encode("utf-8")):
            seen += 1
            stamped += el.attrib.get("data-identity-token") == TOKEN
    return seen, stamped


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_stamped_tags_are_exactly_the_script_tags_html5lib_sees(doc: bytes) -> None:
    out = rewrite(doc)
    seen, stamped = _widget_scripts_per_html5lib(out)
    assert seen == stamped, out
    # and the token is nowhere else: not in text, comments or other attributes
    assert out.count(TOKEN.encode()) == stamped, out


def test_differential_catches_a_wrong_rewrite() -> None:
    # The oracle must be able to fail: stamping a tag inside a comment is seen as wrong.
    doc = b"<!-- <script " + STAMP + b' src="https://reqio.app/widget.js"> -->'
    seen, stamped = _widget_scripts_per_html5lib(doc)
    assert (seen, stamped) == (0, 0)
    assert doc.count(TOKEN.encode()) != stamped
    assert re.search(rb"<!--.*" + re.escape(STAMP), doc)


@pytest.mark.parametrize("hidden_after", [False, True])
@pytest.mark.parametrize("shift", [-9, -8, -7, -3, -1, 0, 1, 5])
def test_last_candidate_search_across_window_boundaries(shift: int, hidden_after: bool) -> None:
    # The whole-page path looks for the last candidate in windows growing from the end
    # (16 KiB, then 32 KiB...). A widget tag straddling a window edge must still count, and a
    # hidden one after it must not stop the real one before it from being stamped.
    def text(n: int) -> bytes:
        return (b"lorem ipsum dolor sit amet\n" * (n // 27 + 1))[:n]

    prefix = b"<!doctype html>" + text(40_000)
    suffix = b"</body>"
    if hidden_after:
        suffix = b"<!-- " + W + b" --><textarea>" + W + b"</textarea>" + suffix
    # Put W's '<' exactly `shift` bytes from where the first window starts.
    after = 16 * 1024 - shift - len(W) - len(suffix)
    doc = prefix + W + text(after) + suffix
    assert doc.index(W) == len(doc) - 16 * 1024 + shift
    whole = rewrite(doc)
    assert whole == streamed(doc, [4096] * (len(doc) // 4096))
    assert whole.count(STAMP) == 1
    assert only_token_attrs_differ(doc, whole)


# --- foreign content (SVG / MathML) and what the tree builder decides -------------------------

WIDGET = b"<script src=https://reqio.app/widget.js></script>"
EVIL = b"<img src='https://evil.example/i.gif?"


def _oracle_allows(out: bytes) -> None:
    """Every token is on a script element html5lib sees (never in text or another attribute)."""
    seen, stamped = _widget_scripts_per_html5lib(out)
    assert stamped <= seen, out
    assert out.count(TOKEN.encode()) == stamped, out


@pytest.mark.parametrize(
    "shape",
    [
        b"<svg><style>%s</style>%s'></svg>",
        b"<math><style>%s</style>%s'></math>",
        b"<svg><title>x</title><style>%s</style>%s'></svg>",
        b"<svg><script>%s</script>%s'></svg>",
        b"<svg><noscript>%s</noscript>%s'></svg>",
        b"<svg><xmp>%s</xmp>%s'></svg>",
        b"<svg><iframe>%s</iframe>%s'></svg>",
        b"<svg><textarea>%s</textarea>%s'></svg>",
        b"<svg><noembed>%s</noembed>%s'></svg>",
        b"<svg><noframes>%s</noframes>%s'></svg>",
        b"<svg><plaintext>%s</plaintext>%s'></svg>",
        b"<svg><image href='https://evil.example/i.gif?</style>%s%s'/></svg>",
        b"<svg><g><style>%s</style>%s'></g></svg>",
        b"<math><mrow><textarea>%s</textarea>%s'></mrow></math>",
    ],
)
def test_raw_text_tags_in_foreign_content_do_not_hide_an_attribute_value(shape: bytes) -> None:
    # The leak: a browser sees one <img> whose src holds the "widget tag".
    doc = shape % (EVIL, WIDGET) if shape.count(b"%s") == 2 else shape % EVIL
    for out in (rewrite(doc), streamed(doc, [1] * len(doc)), streamed(doc, [7] * len(doc))):
        assert TOKEN.encode() not in out
        assert out == doc


ICONS = [
    b'<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M0 0h24v24H0z"/></svg>',
    b"<svg><title>Close</title><path d='M1 1'></path></svg>",
    b"<svg><defs><style>.a{fill:red}</style></defs><use href='#i'/></svg>",
    b'<SVG><G><Circle r="2"/><desc>A dot</desc></G></SVG>',
    b"<svg/>",
    b"<svg><a href='#'><text>hi</text></a></svg>",
    b"<svg><foreignObject><div>html <b>here</b></div></foreignObject></svg>",
    b"<math><mi>x</mi><mo>=</mo><mn>2</mn></math>",
    b"<svg><![CDATA[ a < b > c ]]></svg>",
    b"<svg><path/><p>breaks out</p>",
    b"<select><option>a</option><option selected>b</select>",
]


@pytest.mark.parametrize("icons", [ICONS[i : i + 1] for i in range(len(ICONS))] + [ICONS])
def test_widget_after_ordinary_inline_svg_gets_its_token(icons: list[bytes]) -> None:
    doc = b"<body><p>" + b"".join(icons) + b"</p>" + W + b"</body>"
    out = rewrite(doc)
    assert out.count(STAMP) == 1, out
    assert unstamped(out) == doc
    assert streamed(doc, [1] * len(doc)) == out
    _oracle_allows(out)
    r = HTMLRewriter(TOKEN)
    r.feed(doc)
    r.close()
    assert r.missed is None


@pytest.mark.parametrize(
    "doc",
    [
        b"<svg>" + W + b"</svg>",
        b"<math>" + W + b"</math>",
        b"<svg><foreignObject>" + W + b"</foreignObject></svg>",
        b"<math><mi>" + W + b"</mi></math>",
        b"<svg><script href='https://evil.example/x.js' src='https://reqio.app/widget.js'>"
        b"</script></svg>",
    ],
)
def test_script_in_foreign_content_is_never_stamped(doc: bytes) -> None:
    assert rewrite(doc) == doc
    r = HTMLRewriter(TOKEN)
    assert r.feed(doc) + r.close() == doc
    assert r.missed == "inside SVG/MathML foreign content"


@pytest.mark.parametrize("attr", [b"href", b"xlink:href", b"XLINK:HREF"])
def test_script_with_href_is_never_stamped(attr: bytes) -> None:
    doc = b"<script " + attr + b'="https://evil.example/x.js" src="https://reqio.app/widget.js">'
    assert rewrite(doc) == doc
    [report] = explain(doc)
    assert report.reason.startswith("script with href")


@pytest.mark.parametrize(
    ("doc", "stamps"),
    [
        # integration points: HTML rules, so these <style> are raw text and hide the widget
        (b"<svg><foreignObject><style>" + W + b"</style></foreignObject></svg>" + W, 1),
        (b"<svg><title><style>" + W + b"</style></title></svg>" + W, 1),
        (b"<svg><desc><style>" + W + b"</style></desc></svg>" + W, 1),
        (b"<math><mi><style>" + W + b"</style></mi></math>" + W, 1),
        (b"<math><annotation-xml encoding='Text/HTML'><style>" + W + b"</style>", 0),
        # not an integration point: the <style> is an element, the img's value holds the tag
        (b"<math><annotation-xml><style>" + EVIL + WIDGET + b"'></math>", 0),
        (b"<math><annotation-xml><svg><style>" + EVIL + WIDGET + b"'></math>", 0),
        (b"<math><mi><mglyph><style>" + EVIL + WIDGET + b"'></math>", 0),
        # breakouts end foreign content; font only with color/face/size
        (b"<svg><p><style>" + W + b"</style>" + W, 1),
        (b"<svg><font color=red><style>" + W + b"</style>" + W, 1),
        (b"<svg><font><style>" + EVIL + WIDGET + b"'></svg>", 0),
        (b"<svg><path><div>" + W, 1),
        # CDATA in foreign content, a bogus comment in HTML
        (b"<svg><![CDATA[</svg>" + W + b"]]></svg>" + W, 1),
        (b"<svg><foreignObject><![CDATA[</svg>" + W + b"]]></foreignObject></svg>" + W, 1),
        (b"<![CDATA[" + W + b"]]>" + W, 1),
        # self-closing svg opens nothing; nested foreign elements close to their own name
        (b"<svg/><style>" + W + b"</style>" + W, 1),
        (b"<svg><g><g></g></g><style>" + EVIL + WIDGET + b"'></svg>", 0),
        (b"<svg><g></svg><style>" + W + b"</style>" + W, 1),
    ],
)
def test_tree_builder_states(doc: bytes, stamps: int) -> None:
    out = rewrite(doc)
    assert out.count(STAMP) == stamps, out
    assert without_token_attrs(out) == doc
    assert streamed(doc, [1] * len(doc)) == out
    _oracle_allows(out)


@pytest.mark.parametrize(
    ("before", "why"),
    [
        (b"<frameset>", "<frameset>"),
        (b"<svg></p>", "</p> in SVG/MathML"),
        (b"<svg></br>", "</br> in SVG/MathML"),
        (b"<svg></div>", "</div> that closes no open SVG/MathML element"),
        (b"<svg><foreignObject><div></span>", "</span> inside an SVG/MathML integration point"),
        (b"<select><style>", "<style> inside <select>"),
        (b"<select><svg>", "<svg> inside <select>"),
        (b"<select><script>", "<script> inside <select>"),
        (b"<svg><foreignObject><select>", "<select> inside SVG/MathML"),
        (b"<svg><foreignObject><td>", "<td> inside SVG/MathML"),
        (b"<svg>" + b"<g>" * 70, "SVG/MathML nested deeper than 64"),
        (b"<svg><title>x</title><![CDATA[", "<![CDATA[ after an SVG/MathML text element"),
    ],
)
def test_what_the_model_cannot_follow_is_a_logged_miss(before: bytes, why: str) -> None:
    doc = before + b"</svg></select>" + W + b"<p>rest</p>"
    assert rewrite(doc) == doc
    for sizes in ([len(doc)], [1] * len(doc)):
        r = HTMLRewriter(TOKEN)
        out = b"".join(r.feed(doc[i : i + sizes[0]]) for i in range(0, len(doc), sizes[0]))
        assert out + r.close() == doc
        assert r.missed == f"after markup the rewriter cannot follow with certainty ({why})"


def test_no_miss_is_reported_without_a_widget_like_tag() -> None:
    r = HTMLRewriter(TOKEN)
    doc = b"<frameset><frame src=a.html></frameset>" + b"x" * 5000
    assert r.feed(doc) + r.close() == doc
    assert r.missed is None


@pytest.mark.parametrize(
    ("head", "why"),
    [
        (b"\xff\xfe", "UTF-16 byte order mark"),
        (b"\xfe\xff", "UTF-16 byte order mark"),
        (b'<meta charset="ISO-2022-JP">', "ISO-2022-JP label in the first 1024 bytes"),
        (b"<meta http-equiv=content-type content='text/html; charset=csISO2022JP'>", None),
    ],
)
def test_encodings_that_reuse_ascii_bytes_are_never_stamped(head: bytes, why: str | None) -> None:
    doc = head + b"<p>" + W
    assert rewrite(doc) == doc
    for size in (1, 5, 1000, len(doc)):
        r = HTMLRewriter(TOKEN)
        out = b"".join(r.feed(doc[i : i + size]) for i in range(0, len(doc), size)) + r.close()
        assert out == doc
        assert r.missed == (why or "ISO-2022-JP label in the first 1024 bytes")


def test_an_encoding_label_past_the_prescan_does_not_count() -> None:
    doc = b"<p>" + b"x" * 1100 + b"<!-- iso-2022-jp -->" + W
    assert rewrite(doc).count(STAMP) == 1
    assert streamed(doc, [1] * len(doc)).count(STAMP) == 1


FOREIGN_PIECES = [
    *PIECES,
    W,
    WIDGET,
    EVIL,
    b"<svg>",
    b"</svg>",
    b"<svg/>",
    b"<math>",
    b"</math>",
    b"<foreignObject>",
    b"</foreignObject>",
    b"<title>",
    b"<desc>",
    b"</desc>",
    b"<mi>",
    b"</mi>",
    b"<mglyph>",
    b"<annotation-xml encoding=text/html>",
    b"<annotation-xml>",
    b"</annotation-xml>",
    b"<![CDATA[",
    b"]]>",
    b"<p>",
    b"</p>",
    b"<font color=red>",
    b"<font>",
    b"<div>",
    b"</div>",
    b"<g>",
    b"</g>",
    b"<path/>",
    b"<select>",
    b"</select>",
    b"<option>",
    b"<table>",
    b"<td>",
    b"<template>",
    b"</template>",
    b"<noscript>",
    b"</noscript>",
    b"<b>",
    b"</b>",
    b"'>",
]


@st.composite
def foreign_documents(draw: st.DrawFn) -> bytes:
    return b"".join(draw(st.lists(st.sampled_from(FOREIGN_PIECES), max_size=40)))


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_foreign_documents_any_chunking_and_no_token_outside_a_script(
    data: st.DataObject,
) -> None:
    doc = data.draw(foreign_documents())
    sizes = data.draw(splits(doc))
    whole = rewrite(doc)
    assert streamed(doc, sizes) == whole
    assert only_token_attrs_differ(doc, whole)
    _oracle_allows(whole)


# --- linear time: the bytes the tag scans read, counted -------------------------------------

ADVERSARIAL = {
    "script-no-gt": b"<script " * 4096,
    "script-then-gt": b"<script " * 4096 + b">",
    "quoted-scripts": b'<script a="<script ">' * 1500 + b">",
    "widget-path-no-gt": b"<script src=/widget.js " * 1500,
    "escaped-nesting": b"<script><!--<script>" * 1600,
    "unclosed-quote": b'<div title="' + b"<script src=https://reqio.app/widget.js> " * 800,
    "unclosed-comment": b"<!--" + b"<script src=https://reqio.app/widget.js> " * 800,
    "svg-script-no-gt": b"<svg>" + b"<script " * 4096,
    "widgets": W * 400,
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
@pytest.mark.parametrize("chunk", [0, 4096, 97])
def test_tag_scans_read_each_byte_a_bounded_number_of_times(
    name: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quadratic shapes (a tag end searched again from every '<script', a held tag read again
    per chunk) show as a count of bytes read that grows with the square of the input."""
    doc = ADVERSARIAL[name]
    read = [0]

    def counted(function: Callable[..., int], limit_arg: int | None) -> Callable[..., int]:
        def wrapper(buf: bytes, pos: int, *args: int) -> int:
            result = function(buf, pos, *args)
            limit = args[0] if limit_arg is not None and args and args[0] != -1 else len(buf)
            read[0] += (result if result >= 0 else limit) - pos
            return result

        return wrapper

    for attr in ("_tag_end", "_tag_end_pattern"):
        monkeypatch.setattr(tokenizer, attr, counted(getattr(tokenizer, attr), 0))
    monkeypatch.setattr(tokenizer, "_tag_states", counted(tokenizer._tag_states, None))
    out = rewrite(doc) if chunk == 0 else streamed(doc, [chunk] * (len(doc) // chunk + 1))
    assert without_token_attrs(out) == doc
    assert read[0] <= 4 * len(doc) + 4 * MAX_TAG_BYTES, read[0]


# --- portability ------------------------------------------------------------------------------

PY310 = Path("/root/.pyenv/versions/3.10.13/bin/python")


def test_the_pure_python_scanner_imports_and_rewrites_on_python_3_10(scanner: str) -> None:
    """3.10's ``re`` has no possessive quantifiers or atomic groups: the patterns must not
    use them. The C extension is kept out (one built for 3.10 may sit in the tree)."""
    if scanner != "pattern":
        pytest.skip("one run is enough: it checks the patterns, in a 3.10 subprocess")
    python = str(PY310) if PY310.exists() else shutil.which("python3.10")
    if python is None:
        if IN_CI:
            pytest.fail("CI=true: Python 3.10 must be installed")
        pytest.skip("Python 3.10 not installed")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "sys.modules['reqio_middleware._speedups'] = None;"
        "from reqio_middleware import rewriter as r;"
        "assert r.SCANNER == 'Python', r.SCANNER;"
        "doc = b'<svg><style></style></svg><a title=\"<script\">' + sys.argv[2].encode();"
        "out = r.rewrite_html(doc + b'<script ' * 5000, 'T');"
        "print(out.count(b'data-identity-token=\"T\"'))"
    )
    run = subprocess.run(
        [python, "-I", "-c", code, str(ROOT_DIR), W.decode()],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tempfile.gettempdir(),
        env={"PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "1"


def test_missing_c_scanner_warns_once_naming_the_reason(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tokenizer, "_MISSING_C", ImportError("no module named _speedups"))
    monkeypatch.setattr(tokenizer, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="reqio_middleware"):
        rewrite_html(W, TOKEN)
        HTMLRewriter(TOKEN)
    [record] = [r for r in caplog.records if r.name == "reqio_middleware"]
    assert record.levelno == logging.WARNING
    assert "no module named _speedups" in record.getMessage()
    assert "pip install --no-binary reqio-middleware" in record.getMessage()


def test_scanner_names_the_one_in_use() -> None:
    expected = "Python" if tokenizer._MISSING_C is not None else "C"
    assert expected == rewriter.SCANNER
    assert (rewriter.SCANNER == "C") == (tokenizer._scan_data_pattern is not _C_SCAN_DATA)


def test_the_c_header_is_generated_from_the_tag_table() -> None:
    """``_tags.h`` is the C scanner's copy of ``tags.py``: regenerate it when the table changes
    (``python -m reqio_middleware.tags > reqio_middleware/_tags.h``)."""
    places = [Path(tags.__file__).with_name("_tags.h"), ROOT_DIR / "reqio_middleware" / "_tags.h"]
    header = next((place for place in places if place.is_file()), None)
    if header is None:
        pytest.skip("no C sources beside this install (a wheel carries none)")
    assert header.read_text() == tags.c_header()
    for name in tags.HTML_STOPS:
        assert f'NAME("{name.decode()}")' in header.read_text()


def test_the_python_scanner_stops_at_every_name_of_the_table() -> None:
    for name in tags.HTML_STOPS:
        doc = b"<p>a</p><" + name.upper() + b" x=1>"
        assert tokenizer._scan_data_pattern(doc, 0) == len(b"<p>a</p>"), name


def test_token_shaped_text_next_to_a_stamped_tag_is_not_a_change() -> None:
    # Found by the fuzzer: the text's unquoted "value" runs into the tag that gets the stamp.
    doc = b"re data-identity-token=qio.app<SCRIPT/wi" + W + b".fs"
    out = rewrite(doc)
    assert out.count(STAMP) == 1
    assert only_token_attrs_differ(doc, out)
    assert not only_token_attrs_differ(doc, out.replace(b"qio.app", b"qio.ap"))
    assert not only_token_attrs_differ(doc, out + b"x")
    assert only_token_attrs_differ(doc + b'<p data-identity-token="old">', out + b"<p>")
