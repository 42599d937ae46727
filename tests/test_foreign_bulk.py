"""The runs over foreign content and <select> content: C and pattern agree, and the rewriter
with them reads every document as the tree model does tag by tag."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest
from conftest import ROOT_DIR
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_speedups import portable  # noqa: F401 - the fixture: the REQIO_PORTABLE build

from reqio_middleware import HTMLRewriter, foreign, scanner, tokenizer

if os.environ.get("CI") == "true":  # CI builds the extension: its absence is a failure there
    from reqio_middleware import _speedups as speedups
else:
    speedups = pytest.importorskip("reqio_middleware._speedups", reason="C extension not built")

WIDGET = b'<script src="https://reqio.app/widget.js"></script>'
#: SVG, MathML and select markup, and what breaks out of it or makes the tree model unsure.
PIECES = [
    WIDGET,
    b"<svg>",
    b'<svg viewBox="0 0 1 1">',
    b"<svg/>",
    b"</svg>",
    b"<SVG>",
    b"<math>",
    b"</math>",
    b"<math/>",
    b"<g>",
    b"</g>",
    b"<G fill='x'>",
    b"</G >",
    b"<g/>",
    b'<path d="M0 0"/>',
    b"<path d=x/>",
    b"<use href='#a' />",
    b"<circle/ >",
    b"<title>",
    b"</title>",
    b"<desc>",
    b"</desc>",
    b"<foreignObject>",
    b"</foreignObject>",
    b"<mi>",
    b"</mi>",
    b"<mo>",
    b"</mo>",
    b"<mrow>",
    b"</mrow>",
    b"<mglyph/>",
    b'<annotation-xml encoding="text/html">',
    b"</annotation-xml>",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"-->",
    b"<!-->",
    b"<!x>",
    b"<?x>",
    b"</>",
    b"</ x>",
    b"<b>",
    b"</b>",
    b"<p>",
    b"</p>",
    b"<br>",
    b"<font color=red>",
    b"<font>",
    b"<style>",
    b"</style>",
    b"<script>",
    b"</script>",
    b"<select>",
    b"</select>",
    b"<option>",
    b"</option>",
    b"<base href=x>",
    b"<table>",
    b"<div>",
    b"<" + b"n" * 70 + b">",
    b"</" + b"n" * 70 + b">",
    b"x",
    b" ",
    b"\n",
    b"<",
    b"< a",
    b"</",
    b"<!",
    b"/",
    b">",
    b'"',
    b"'",
    b"=",
    # sequences the tree model acts on, more often than chance would put them together
    b"<math><mi>x</mi>",
    b"<svg><title>t</title>",
    b"<mrow><mo>=</mo></mrow>",
    b"<math><mrow><mi>",
    b"x</mi></mrow>",
    b"<svg><g><g><desc></desc>",
    b"</g></g></svg>",
    b"<svg><![CDATA[x]]></svg>",
    # HTML inside integration points
    b"<span class=a>",
    b"</span>",
    b"</SPAN >",
    b"</div>",
    b"<div/>",
    b"<img src=x>",
    b"<image>",
    b"</br>",
    b"<input/>",
    b"<a href=/x>",
    b"</a>",
    b"<mglyph>",
    b"<template>",
    b"<svg><foreignObject><div>",
    b"</div></foreignObject></svg>",
    b"<svg><desc><p>x</p>",
    b"<math><mtext><b>x</b>",
    b"<div>x</div>",
    b"<i><b>x</b></i>",
    b"<div><!-- c --></div>",
    b"<xmp>a<b></xmp>",
    b"<textarea>",
    b"</textarea>",
    b"</STYLE x='>'>",
    b"<noscript>",
]
NAMES = [b"svg", b"math", b"g", b"mrow", b"title", b"mi", b"path", b"x" * 70]
HTML_NAMES = [b"div", b"span", b"p", b"b", b"i", b"a", b"x" * 70]

documents = st.lists(st.sampled_from(PIECES) | st.binary(max_size=4), max_size=40).map(b"".join)


@st.composite
def run_args(
    draw: st.DrawFn,
) -> tuple[bytes, int, int, tuple[bytes, ...], int, int, tuple[bytes, ...], int]:
    doc = draw(documents)
    pos = draw(st.integers(min_value=0, max_value=len(doc)))
    end = draw(st.integers(min_value=pos, max_value=len(doc)))
    opened = tuple(draw(st.lists(st.sampled_from(NAMES[:-1]), max_size=5)))
    flags = draw(st.integers(min_value=0, max_value=7))
    room = draw(st.integers(min_value=0, max_value=6))
    closed = tuple(draw(st.sets(st.sampled_from(NAMES), max_size=4)))
    closed_room = draw(st.integers(min_value=0, max_value=4))
    return doc, pos, end, opened, flags, room, closed, closed_room


@settings(max_examples=3000)
@given(run_args())
def test_c_foreign_run_equals_the_pattern(args: tuple) -> None:  # type: ignore[type-arg]
    assert speedups.scan_foreign(*args) == tokenizer._scan_foreign_pattern(*args)


@st.composite
def repeated_args(
    draw: st.DrawFn,
) -> tuple[bytes, int, int, tuple[bytes, ...], int, int, tuple[bytes, ...], int]:
    """Documents where one <svg>/<math> element comes again and again (icons, labels), which
    the pattern twin passes over as a copy once the first has left the model as it was."""
    root = draw(st.sampled_from([b"<svg>", b"<math>", b"<svg viewBox='0 0 1 1'>"]))
    inner = b"".join(draw(st.lists(st.sampled_from(PIECES), max_size=8)))
    unit = root + inner + (b"</math>" if root == b"<math>" else b"</svg>")
    between = draw(st.sampled_from([b"", b"\n", b"<p>x</p>", b"<!-- c -->", b"<script>"]))
    doc = draw(documents) + (unit + between) * draw(st.integers(1, 5)) + draw(documents)
    end = draw(st.integers(min_value=0, max_value=len(doc)))
    flags = draw(st.integers(min_value=0, max_value=7))
    closed = tuple(draw(st.sets(st.sampled_from(NAMES), max_size=4)))
    room, closed_room = draw(st.integers(0, 70)), draw(st.integers(0, 70))
    return doc, 0, end, (), flags, room, closed, closed_room


@settings(max_examples=2000)
@given(repeated_args())
# the first copy read while the model is ambiguous: it remembers nothing, the next one does
@example((b"<svg><svg><title>t</title></svg></svg>" * 2, 0, 76, (), 7, 66, (b"svg",), 17))
def test_c_foreign_run_equals_the_pattern_on_repeated_elements(args: tuple) -> None:  # type: ignore[type-arg]
    assert speedups.scan_foreign(*args) == tokenizer._scan_foreign_pattern(*args)


@st.composite
def point_args(draw: st.DrawFn) -> tuple[bytes, int, int, int, int, tuple[bytes, ...]]:
    doc = draw(documents)
    pos = draw(st.integers(min_value=0, max_value=len(doc)))
    end = draw(st.integers(min_value=pos, max_value=len(doc)))
    room = draw(st.integers(min_value=0, max_value=6))
    flags = draw(st.integers(min_value=0, max_value=3))
    closed = tuple(draw(st.sets(st.sampled_from(HTML_NAMES), max_size=4)))
    return doc, pos, end, room, flags, closed


@settings(max_examples=3000)
@given(point_args())
def test_c_point_run_equals_the_pattern(args: tuple) -> None:  # type: ignore[type-arg]
    assert speedups.scan_point(*args) == tokenizer._scan_point_pattern(*args)


@settings(max_examples=2000)
@given(documents, st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=400))
def test_c_select_run_equals_the_pattern(doc: bytes, at: int, to: int) -> None:
    pos = min(at, len(doc))
    end = min(len(doc), max(pos, to))
    assert speedups.scan_select(doc, pos, end) == tokenizer._scan_select_pattern(doc, pos, end)


@settings(max_examples=500)
@given(run_args())
def test_portable_build_runs_equal_the_patterns(
    portable: ModuleType,  # noqa: F811
    args: tuple,  # type: ignore[type-arg]
) -> None:
    assert portable.scan_foreign(*args) == tokenizer._scan_foreign_pattern(*args)
    doc, pos, end = args[:3]
    point = (doc, pos, end, args[5], args[4] & 3, tuple(n for n in args[6] if n in HTML_NAMES))
    assert portable.scan_point(*point) == tokenizer._scan_point_pattern(*point)
    assert portable.scan_select(doc, pos, end) == tokenizer._scan_select_pattern(doc, pos, end)


def test_a_run_passes_whole_icons_and_reports_what_stays_open() -> None:
    icon = b'<svg viewBox="0 0 2 2"><g><path d="M0 0"/></g></svg>'
    for scan in (speedups.scan_foreign, tokenizer._scan_foreign_pattern):
        # (and on over HTML content, up to a stop of the data state's run: here a script)
        doc = icon + b"<p>" + icon + b"</p>" + WIDGET
        assert scan(doc, 0, len(doc), (), 0, 64, (), 64)[0] == len(icon)  # not the whole stack
        assert scan(doc, 0, len(doc), (), tokenizer.RUN_WHOLE, 64, (), 64) == (
            len(doc) - len(WIDGET),
            0,
            (),
            0,
            False,
            (),
            (),
            0,
        )
        doc = b"<math><mrow><mi>x</mi><mo>"
        assert scan(doc, 0, len(doc), (), 0, 64, (), 64) == (
            len(doc),
            0,
            (b"math", b"mrow", b"mo"),
            tokenizer.RUN_POINT,
            True,
            (b"mi",),
            (),
            0,
        )
        # HTML at an integration point: the run goes through it, and ends where HTML
        # elements are left open there
        doc = b"<svg><foreignObject><p>x</p></foreignObject><g><desc><b>y<i>"
        assert scan(doc, 0, len(doc), (), 0, 64, (), 64) == (
            len(doc),
            0,
            (b"svg", b"g", b"desc"),
            tokenizer.RUN_TOUCHED,
            True,
            (b"foreignobject",),
            (b"b", b"i"),
            1,
        )
        # a breakout ends foreign content: the tree model must see it
        doc = b"<g></g><b>"
        assert scan(doc, 0, len(doc), (b"svg",), 0, 63, (), 64)[:3] == (7, 1, ())


def test_a_point_run_passes_html_and_reports_what_stays_open() -> None:
    for scan in (speedups.scan_point, tokenizer._scan_point_pattern):
        doc = b"<div>x</div><p><br><b>y</b>"
        # the div and p open and close under the point, which text touches; p stays open
        # and saw start tags (br, b)
        assert scan(doc, 0, len(doc), 64, tokenizer.POINT_TEXT, ()) == (len(doc), (b"p",), 1, True)
        # an HTML element as the current node: text does not touch it; its end tag is the
        # tree model's
        assert scan(b"x</div>", 0, 7, 64, 0, ()) == (1, (), 0, False)
        # stops: tokenizer switches, foreign content, a mismatched end tag, CDATA, no room
        for stop in (b"<style>", b"<svg>", b"<i></b>", b"<![CDATA[x]]>", b"<table>"):
            assert scan(b"<b></b>" + stop, 0, 7 + len(stop), 64, 0, ())[0] == 7 + (
                3 if stop == b"<i></b>" else 0
            )
        assert scan(b"<b><i>", 0, 6, 1, 0, ()) == (3, (b"b",), 0, True)
        # while the model is ambiguous only remembered names close
        assert scan(b"<b></b><i></i>", 0, 14, 64, tokenizer.RUN_AMBIGUOUS, (b"b",))[:2] == (
            10,
            (b"i",),
        )


def test_runs_hold_at_most_64_html_elements_whatever_room_they_are_given() -> None:
    opened = tuple(b"g%d" % i for i in range(64))
    closing = b"".join(b"</g%d>" % i for i in reversed(range(64)))
    doc = closing + b"<svg><foreignObject>" + b"<div>" * 70
    whole = tokenizer.RUN_WHOLE
    for scan in (speedups.scan_foreign, tokenizer._scan_foreign_pattern):
        stop, kept, pushed, _, _, _, html, _ = scan(doc, 0, len(doc), opened, whole, 64, (), 64)
        assert (kept, pushed, html) == (0, (b"svg", b"foreignobject"), (b"div",) * 64)
        assert stop == len(doc) - 6 * len(b"<div>")
    for scan_point in (speedups.scan_point, tokenizer._scan_point_pattern):
        assert scan_point(b"<b>" * 70, 0, 210, 1000, 0, ())[:2] == (192, (b"b",) * 64)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        speedups.scan_point(b"<b>", 0, 9, 64, 0, ())
    with pytest.raises(ValueError):
        speedups.scan_point(b"<b>", 0, 3, 64, 4, ())
    with pytest.raises(TypeError):
        speedups.scan_point(b"<b>", 0, 3, 64, 0, ("b",))
    with pytest.raises(ValueError):
        speedups.scan_foreign(b"<svg>", 0, 9, (), 0, 64, (), 64)
    with pytest.raises(ValueError):
        speedups.scan_foreign(b"<svg>", 0, 5, (b"g",) * 65, 0, 0, (), 64)
    with pytest.raises(TypeError):
        speedups.scan_foreign(b"<svg>", 0, 5, ("g",), 0, 0, (), 64)
    with pytest.raises(TypeError):
        speedups.scan_foreign(b"<svg>", 0, 5, (), 0, 0, ())
    with pytest.raises(ValueError):
        speedups.scan_select(b"<x>", 2, 1)


# --- the rewriter with the runs reads documents as the tree model does tag by tag ------------


def _no_foreign_run(
    buf: bytes, pos: int, end: int, opened: tuple[bytes, ...], flags: int, *rest: object
) -> tokenizer.ForeignRun:
    ambiguous = bool(flags & tokenizer.RUN_AMBIGUOUS)
    return pos, len(opened), (), tokenizer.RUN_PLAIN, ambiguous, (), (), 0


def _no_point_run(buf: bytes, pos: int, *rest: object) -> tokenizer.PointRun:
    return pos, (), 0, False


def _tree(tree: foreign.Tree) -> object:
    nodes = [(n.ns, n.name, n.kind, n.touched) for n in tree._stack]
    return nodes, tree._ambiguous, sorted(tree._closed_names), tree.in_select, tree.unsure


def _read(doc: bytes, sizes: list[int]) -> Iterator[object]:
    """What the rewriter makes of ``doc`` fed in pieces: each output and the tree's state."""
    rw = HTMLRewriter("tok")
    at = 0
    for size in [*sizes, len(doc)]:
        piece, at = doc[at : at + size], at + size
        yield rw.feed(piece), rw.context, _tree(rw._tree)
    yield rw.close(), rw.found, rw.missed, _tree(rw._tree)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.lists(st.integers(min_value=1, max_value=60), max_size=6))
# a run that closes the foreign elements at the top of the stack is not in HTML content
@example(b"<svg><foreignObject><math></math><v>", [])
# one that closes the whole stack and opens MathML after SVG
@example(b"<svg><g></g></svg><math><mi>", [8])
def test_runs_change_nothing_the_tree_model_decides(doc: bytes, sizes: list[int]) -> None:
    with_c = list(_read(doc, sizes))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tokenizer, "_scan_foreign", tokenizer._scan_foreign_pattern)
        patch.setattr(tokenizer, "_scan_select", tokenizer._scan_select_pattern)
        patch.setattr(tokenizer, "_scan_point", tokenizer._scan_point_pattern)
        assert list(_read(doc, sizes)) == with_c
    # (a select's run is not compared so: it passes over end tags of any length, which
    # the model gives up on tag by tag, as it always did)
    for off in (["_scan_foreign"], ["_scan_point"], ["_scan_foreign", "_scan_point"]):
        with pytest.MonkeyPatch.context() as patch:
            for name in off:
                patch.setattr(
                    tokenizer, name, {"_scan_foreign": _no_foreign_run}.get(name, _no_point_run)
                )
            assert list(_read(doc, sizes)) == with_c, off


def test_the_scanner_uses_the_runs() -> None:
    # A page of icons: a run takes each whole, so the tree's stack is empty after each.
    seen: list[int] = []
    real = tokenizer._scan_foreign

    def counting(*args: object) -> tokenizer.ForeignRun:
        result = real(*args)  # type: ignore[arg-type]
        seen.append(result[0])
        return result

    icon = b'<svg viewBox="0 0 2 2"><path d="M0 0"/></svg>'
    page = (icon + b"<p>x</p><!-- c -->") * 3 + b"<script>s</script>" + icon
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tokenizer, "_scan_foreign", counting)
        rw = HTMLRewriter("tok")
        out = rw.feed(page + WIDGET) + rw.close()
    # one run up to the script (where the data state's run stops without a widget path), one
    # from the icon after it
    assert seen == [page.index(b"<script>"), len(page)]
    assert rw.found == 1 and out.count(b"data-identity-token") == 1
    assert scanner._BULK_WINDOW <= scanner.MAX_TAG_BYTES


@pytest.mark.parametrize("markup", [b"<svg></A\x80>", b"<svg><g></g\xff>", b"<math><mi>x</mi\x80>"])
def test_a_non_ascii_tag_name_the_model_gives_up_on_is_reported_not_raised(markup: bytes) -> None:
    rw = HTMLRewriter("tok")
    out = rw.feed(markup + WIDGET) + rw.close()
    assert out == markup + WIDGET  # given up on: nothing after it is stamped
    assert rw.missed is not None and "\\x" in rw.missed
    assert rw.missed.isascii()


# --- no exponential backtracking in the pattern twins -----------------------------------------

#: What the runs' patterns pass over whole, each repeated inside elements that never close, so
#: that every match around them fails: a pattern that can read one of them in two ways tries
#: 2**n ways there (see test_fuzz_finds.py for the page that showed it).
REPEATED = [
    b"<xmp>a<b></xmp>",
    b"<style>p{}</STYLE >",
    b"<title>t</title>",
    b"<textarea>t</textarea x=1>",
    b"<br>",
    b"<img src=x alt='y'>",
    b"<b>x</b>",
    b"<i></i >",
    b"<!-- c -->",
    b"<!x>",
    b"<?x>",
    b"</ x>",
    b"<<",
    b"x",
    b"<path/>",
    b"<g></g>",
    b"<![CDATA[x]]>",
]
OPENERS = [b"<svg><foreignObject>", b"<svg>", b"<math><mtext>", b"<svg><title>t</title><g>"]

_TWINS_ON_ALL = """
import sys
from reqio_middleware import rewrite_html, tokenizer
for name in tokenizer._ACCELERATED:
    setattr(tokenizer, name, getattr(tokenizer, name + "_pattern"))
for line in sys.stdin.buffer.read().split(b"\\n"):
    rewrite_html(bytes.fromhex(line.decode()), "t")
print("ok")
"""


def test_the_pattern_twins_take_no_exponential_time() -> None:
    pages = [
        opener + b"<font>" * depth + unit * 30 + WIDGET  # tokenized up to the widget tag
        for opener in OPENERS
        for depth in range(1, 5)
        for unit in REPEATED
    ]
    proc = subprocess.run(
        [sys.executable, "-c", _TWINS_ON_ALL],
        input=b"\n".join(page.hex().encode() for page in pages),
        capture_output=True,
        timeout=120,  # a bound on a hang, not a speed check: 272 pages of about 1 KB
        cwd=ROOT_DIR,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == b"ok", proc.stderr[-2000:]
