"""The WHATWG parser's own corpus (html5lib-tests tree construction) with widget tags in it.

Every ``#data`` document of every vendored ``.dat`` file gets widget tags (several spellings,
and look-alikes that are never the widget) inserted at sampled points: both ends, tag
boundaries, inside tags and attribute values, inside text. Each resulting document is
rewritten and handed to html5lib (scripting on), the oracle of ``field.oracle``:

- the token is only ever the ``data-identity-token`` of an HTML ``script`` element loaded from
  the widget; anywhere else is a leak, and fails;
- a widget script element without the token is a miss, allowed only with a reason (from
  ``explain`` or the rewriter's record of what it was unsure about);
- any split of the bytes, down to one byte at a time, gives what ``rewrite_html`` gives.

A document is used only where html5lib builds what the corpus expects for it
(``corpus.html5lib_agrees``). Run ``python tests/field/report.py`` for the counts.
"""

from __future__ import annotations

import random
from functools import cache
from pathlib import Path

import pytest
from field import corpus
from field.checks import Outcome, chunking_mismatch, describe, outcome
from field.oracle import TOKEN, judge
from field.urls import loads_widget

#: sampled insertion points per document (both ends are always added)
PER_DOC = 8
#: random splits per document; every BYTEWISE_EVERY-th document is also fed byte by byte
SPLITS = 3
BYTEWISE_EVERY = 5
SHOWN = 8

FILES = corpus.dat_files()


@cache
def documents(path: Path) -> tuple[str, ...]:
    cases = [case for case in corpus.load(path) if corpus.html5lib_agrees(case)]
    return tuple(doc for case in cases for doc in corpus.variants(case, PER_DOC))


@cache
def judged(doc: str) -> Outcome:
    """One rewrite and one oracle run per document, shared by the tests below."""
    return outcome(doc)


def _ids(path: Path) -> str:
    return path.relative_to(corpus.DATA_DIR).as_posix()


def _fail(kind: str, failures: list[str], total: int) -> None:
    __tracebackhide__ = True
    if failures:
        head = "\n".join(failures[:SHOWN])
        pytest.fail(f"{len(failures)} of {total} documents {kind}:\n{head}")


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_token_only_on_widget_script_elements(path: Path) -> None:
    docs = documents(path)
    failures = []
    for doc in docs:
        verdict = judged(doc).verdict
        if verdict.leaks:
            failures.append(describe(doc, verdict.leaks))
    _fail("put the token where no widget script element is", failures, len(docs))


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_every_missed_widget_tag_has_a_reason(path: Path) -> None:
    docs = documents(path)
    failures = []
    for doc in docs:
        result = judged(doc)
        if result.unexplained:
            failures.append(
                describe(doc, [f"probe {p} missed without a reason" for p in result.unexplained])
            )
    _fail("missed a widget tag silently", failures, len(docs))


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_any_chunking_gives_the_same_bytes(path: Path) -> None:
    docs = documents(path)
    rng = random.Random(_ids(path))
    failures = []
    for k, doc in enumerate(docs):
        problem = chunking_mismatch(doc, rng, splits=SPLITS, bytewise=k % BYTEWISE_EVERY == 0)
        if problem:
            failures.append(describe(doc, [problem]))
    _fail("changed with the chunking", failures, len(docs))


def test_most_widget_tags_the_parser_sees_get_their_token() -> None:
    # Misses are allowed one by one, but a rewriter that gave up on every page with markup
    # it did not know would pass the tests above: most widget elements must be stamped.
    stamped = missed = 0
    for path in FILES:
        for doc in documents(path):
            verdict = judged(doc).verdict
            stamped += len(verdict.stamped)
            missed += len(verdict.missed)
    assert stamped > 5000
    assert stamped / (stamped + missed) > 0.9


# --- the corpus and the oracle themselves ---------------------------------------------------------


def test_the_corpus_is_vendored_whole() -> None:
    names = {_ids(p) for p in FILES}
    assert len(names) >= 60
    assert {"tests1.dat", "svg.dat", "math.dat", "template.dat", "tests21.dat"} <= names
    cases = [case for path in FILES for case in corpus.load(path)]
    assert len(cases) > 1500


def test_html5lib_agrees_with_nearly_all_of_the_corpus() -> None:
    # If the oracle disagreed with the corpus on many documents, the tests above would be
    # judging little: keep the share that is checked high.
    cases = [case for path in FILES for case in corpus.load(path)]
    agreeing = sum(corpus.html5lib_agrees(case) for case in cases)
    assert agreeing / len(cases) > 0.9


def test_html5lib_disagreement_is_detected() -> None:
    case = corpus.Case(
        "x", 0, "<p>a<b>c", True, '| <html>\n|   <head>\n|   <body>\n|     <p>\n|       "a"'
    )
    assert not corpus.html5lib_agrees(case)


_STAMPED = f'<script src="https://reqio.app/widget.js" data-probe=1 data-identity-token="{TOKEN}">'


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        (f"<p title='{TOKEN}'>", "attribute 'title' of <p>"),
        (f"<svg>{_STAMPED}</script></svg>", "attribute 'data-identity-token' of <svg:script>"),
        (f"<math>{_STAMPED}</script></math>", "attribute 'data-identity-token' of <math:script>"),
        (f"<textarea>{_STAMPED}</textarea>", "the text of <textarea>"),
        (f"<!--{_STAMPED}-->", "a comment"),
        (
            f"<p></p data-identity-token={TOKEN}>",
            "1 token(s) the parser dropped (on no element it created)",
        ),
        (f'<script src="https://evil.example/x.js" data-identity-token="{TOKEN}">', "attribute"),
        (f"<!DOCTYPE html PUBLIC '{TOKEN}'>", "the doctype"),
    ],
)
def test_the_oracle_sees_a_misplaced_token(doc: str, where: str) -> None:
    leaks = judge(doc).leaks
    assert leaks
    assert where in leaks[0]


def test_the_oracle_accepts_a_stamped_widget_and_counts_a_miss() -> None:
    verdict = judge(
        f'{_STAMPED}</script><script src="//reqio.app/widget.js" data-probe=2></script>'
    )
    assert verdict.leaks == []
    assert verdict.stamped == {"1"}
    assert verdict.missed == {"2"}


@pytest.mark.parametrize(
    "src",
    [
        "https://reqio.app/widget.js",
        "//REQIO.app/widget.js?v=1#x",
        " \x01https://reqio.app/widget.js\n",
        "ht\ttps://reqio.app/wid\nget.js",
        "https:\\\\reqio.app\\widget.js",
        "https:///reqio.app/widget.js",
        "https://reqio%2eapp/widget.js",
        "https://reqio.app:0443/widget.js",
        "https://reqio.app:/widget.js",
        "https://reqio.app/x/../widget.js",
        "https://reqio.app/./widget.js",
    ],
)
def test_widget_urls(src: str) -> None:
    assert loads_widget(src)


@pytest.mark.parametrize(
    "src",
    [
        "http://reqio.app/widget.js",
        "https\x01://reqio.app/widget.js",
        "https:/reqio.app/widget.js",
        "https:reqio.app/widget.js",
        "/reqio.app/widget.js",
        "widget.js",
        "https://reqio.app.evil.example/widget.js",
        "https://reqio.app@evil.example/widget.js",
        "https://evil.example/reqio.app/widget.js",
        "https://reqio.app:444/widget.js",
        "https://reqio.app/widget.jsx",
        "https://reqio.app/widget%2ejs",
        "https://reqio.app/a/widget.js",
        "javascript://reqio.app/widget.js",
    ],
)
def test_not_widget_urls(src: str) -> None:
    assert not loads_widget(src)
