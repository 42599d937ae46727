"""SVG, MathML, integration points, breakouts, CDATA and the attribute-spanning shape.

In foreign content a ``<style>``, ``<title>``, ``<script>``, ``<textarea>``... start tag does
not switch a browser's tokenizer to raw text, so a "widget tag" after it may be inside an
attribute value; a ``<script>`` there is an SVG or MathML element that never loads ``src``.
html5lib (``field.oracle``) says what a browser builds: the token may only be the
``data-identity-token`` of an HTML ``script`` element loaded from the widget. A miss is never
a failure here, except for the ordinary pages of ``shapes.STAMPED``, whose widget must get
its token.
"""

from __future__ import annotations

import random

import pytest
from field import generators, shapes
from field.checks import chunking_mismatch, describe, feed, outcome, rewrite
from field.oracle import judge, parses
from hypothesis import assume, find, given, settings
from hypothesis import strategies as st


@pytest.mark.parametrize("doc", list(shapes.LEAKS.values()), ids=list(shapes.LEAKS))
def test_leak_shapes_give_no_token_off_the_widget(doc: str) -> None:
    result = outcome(doc)
    assert result.verdict.leaks == [], describe(doc, result.verdict.leaks)


@pytest.mark.parametrize("doc", list(shapes.LEAKS.values()), ids=list(shapes.LEAKS))
def test_leak_shapes_stream_like_the_whole(doc: str) -> None:
    assert chunking_mismatch(doc, random.Random(doc), splits=4, bytewise=True) == ""


@pytest.mark.parametrize("doc", list(shapes.BREAKOUTS.values()), ids=list(shapes.BREAKOUTS))
def test_after_a_breakout_the_widget_is_stamped_or_missed_with_a_reason(doc: str) -> None:
    result = outcome(doc)
    assert result.verdict.leaks == [], describe(doc, result.verdict.leaks)
    assert result.unexplained == [], describe(doc, ["missed without a reason"])
    assert result.verdict.stamped | result.verdict.missed == {"w"}


@pytest.mark.parametrize("doc", list(shapes.STAMPED.values()), ids=list(shapes.STAMPED))
def test_ordinary_pages_with_svg_or_math_get_their_token(doc: str) -> None:
    verdict = judge(rewrite(doc))
    assert verdict.leaks == []
    assert verdict.stamped == {"w"}, describe(doc, ["the widget did not get its token"])


@settings(max_examples=400)
@given(generators.documents())
def test_generated_documents_give_no_token_off_the_widget(doc: str) -> None:
    assume(parses(doc))
    verdict = judge(rewrite(doc))
    assert verdict.leaks == [], describe(doc, verdict.leaks)


@settings(max_examples=400)
@given(generators.documents(generators.PLAIN_SPELLINGS))
def test_generated_documents_with_plain_widget_urls_give_no_token_off_the_widget(doc: str) -> None:
    # The tokenizer's share of the property above: every src here is plainly the widget's.
    assume(parses(doc))
    verdict = judge(rewrite(doc))
    assert verdict.leaks == [], describe(doc, verdict.leaks)


@settings(max_examples=200)
@given(generators.documents(), st.data())
def test_generated_documents_stream_like_the_whole(doc: str, data: st.DataObject) -> None:
    raw = doc.encode("utf-8")
    cuts = data.draw(st.lists(st.integers(1, max(1, len(raw) - 1)), max_size=8).map(sorted))
    fed, _ = feed(raw, [c for c in cuts if 0 < c < len(raw)])
    assert fed.decode("utf-8") == rewrite(doc)


@settings(max_examples=60)
@given(generators.documents())
def test_generated_documents_fed_byte_by_byte_stream_like_the_whole(doc: str) -> None:
    raw = doc.encode("utf-8")
    fed, _ = feed(raw, list(range(1, len(raw))))
    assert fed.decode("utf-8") == rewrite(doc)


_KINDS = {
    "foreign": ("<svg", "<math"),
    "integration point": ("<foreignObject>", "<annotation-xml", "<mtext>", "<desc>"),
    "breakout": ("<font color", "<p>", "<table>"),
    "cdata": ("<![CDATA[",),
    "spanning": ("<img src='https://evil.example/i.gif?",),
    "select": ("<select>",),
    "template": ("<template>",),
}


@pytest.mark.parametrize("marks", list(_KINDS.values()), ids=list(_KINDS))
def test_the_generator_reaches_every_kind_of_input(marks: tuple[str, ...]) -> None:
    # A strategy that never produced one of these would leave the properties above vacuous
    # for it: ``find`` raises when no example within its budget has it.
    doc = find(
        generators.documents(),
        lambda d: any(m in d for m in marks) and "reqio.app/widget.js" in d,
        settings=settings(max_examples=2000, database=None),
    )
    assert any(m in doc for m in marks)
