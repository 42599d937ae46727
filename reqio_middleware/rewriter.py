"""Find the widget's ``<script>`` tag as a browser's tokenizer does, and stamp a token on it.

Pure bytes in, bytes out: nothing here knows about HTTP. This is the public home of the
rewriter; the work is done by modules, one idea each:

* :mod:`.tags`: the one table of tag names the tokenizer and the tree model act on (it also
  generates the C scanner's ``_tags.h``);
* :mod:`.tokenizer`: the tokenizer's states, as patterns and in C (``_speedups.c``);
* :mod:`.foreign`: the tree builder's rules that decide the tokenizer's state (SVG/MathML,
  integration points, ``select``...), and where it cannot be sure;
* :mod:`.urlmatch` and :mod:`.matcher`: which ``src`` and which tag are the widget's;
* :mod:`.stamp`: the stamped tag; :mod:`.scanner`: :class:`HTMLRewriter`, the streaming
  scanner; :mod:`.explain`: why each widget-like tag is or is not stamped.

:func:`rewrite_html` handles a whole document. It first looks for *candidates* (a
``<script`` that may be the widget's) from the end of the page backwards; a page without one
is returned as is, so most pages cost one pass of a search that runs faster than
``bytes.find``. Only when a candidate exists does the tokenizer run, and only up to the last
one: past it nothing can change.
"""

from __future__ import annotations

from typing import overload

from . import tokenizer
from .explain import explain
from .matcher import MAX_TAG_BYTES, TagReport, _Matcher, _matcher_for
from .scanner import PRESCAN_BYTES, HTMLRewriter, TokenSource, encoding_unsure, token_bytes
from .stamp import _stamp
from .tokenizer import SCANNER
from .urlmatch import DEFAULT_WIDGET_SRC, WidgetSource

__all__ = [
    "DEFAULT_WIDGET_SRC",
    "MAX_TAG_BYTES",
    "SCANNER",
    "HTMLRewriter",
    "TagReport",
    "WidgetSource",
    "explain",
    "find_widget",
    "rewrite_html",
]


def _last_candidate_end(doc: bytes, matcher: _Matcher) -> int:
    """Where tokenizing may stop: every widget tag starts before it. -1 when there is none.

    A candidate is only a candidate: it may sit in a comment or raw text. But the converse
    holds, and that is what makes the fast path sound: every real widget tag is a candidate,
    so past the last one the page needs no tokenizing at all. The widget usually sits near
    ``</body>``, so the search runs from the end of the page; a page without the widget costs
    one pass. Each tag is read at most up to the previous candidate, so the search is linear;
    a tag that runs on past it is left to the tokenizer, which reads it once.
    """
    hi = len(doc)
    while (begin := tokenizer._last_candidate(doc, hi, matcher.path)) != -1:
        end = tokenizer._tag_end(doc, begin + 7, hi)
        if end == -1:
            return begin + 1
        if matcher.is_widget(doc, begin, end):
            return end
        hi = begin
    return -1


_NO_CANDIDATE = (-1, -1)


def _lone_widget(doc: bytes, matcher: _Matcher) -> tuple[int, int] | None:
    """The span of the page's one widget tag when stamping it is provably all the scanner
    would do; ``_NO_CANDIDATE`` for a page without any candidate; None when the scanner
    must decide.

    The proof: the last candidate is a widget tag, and the tokenizer's bulk run from the
    start of the page (which passes over text, ordinary tags, comments, raw text and the
    ``<script>`` elements that cannot be the widget, and stops at every tag that the tree
    model must see) ends exactly there. So the tokenizer reaches it in the data state of HTML
    content, no earlier widget tag exists, and nothing on the way was left to the scanner's
    Python steps. The encoding guards and the ESC-byte rule are the scanner's own.
    """
    begin = tokenizer._last_candidate(doc, len(doc), matcher.path)
    if begin == -1:
        return _NO_CANDIDATE
    end = tokenizer._tag_end(doc, begin + 7)
    if (
        end == -1
        or not matcher.maybe(doc, begin, end)
        or not matcher.is_widget(doc, begin, end)
        or encoding_unsure(doc[:PRESCAN_BYTES]) is not None
        or doc.find(b"\x1b", 0, begin) != -1
        or tokenizer._scan_data(doc, 0, matcher.path) != begin
    ):
        return None
    return begin, end


@overload
def rewrite_html(
    html: bytes, token: TokenSource, *, widget_src: str = ..., project_id: str | None = ...
) -> bytes: ...
@overload
def rewrite_html(
    html: str, token: TokenSource, *, widget_src: str = ..., project_id: str | None = ...
) -> str: ...
def rewrite_html(
    html: bytes | str,
    token: TokenSource,
    *,
    widget_src: str = DEFAULT_WIDGET_SRC,
    project_id: str | None = None,
) -> bytes | str:
    """Return ``html`` with every widget ``<script>`` tag carrying ``data-identity-token``.

    The same bytes :class:`HTMLRewriter` gives for any split of ``html``. A ``str`` is
    rewritten as UTF-8 and returned as ``str``.
    """
    if isinstance(html, str):
        return rewrite_html(
            html.encode("utf-8", "surrogatepass"),
            token,
            widget_src=widget_src,
            project_id=project_id,
        ).decode("utf-8", "surrogatepass")
    doc = bytes(html)
    matcher = _matcher_for(widget_src, project_id)
    span = _lone_widget(doc, matcher)
    if span == _NO_CANDIDATE:
        return doc
    if span is not None:
        begin, end = span
        stamp = token_bytes(token)
        if stamp is None:
            return doc
        view = memoryview(doc)  # joined from views: the page is copied once, not three times
        return b"".join((view[:begin], _stamp(doc, begin, end, stamp), view[end:]))
    rewriter = HTMLRewriter(token, widget_src=widget_src, project_id=project_id)
    last = _last_candidate_end(doc, matcher)
    if last == -1:
        return doc
    rewriter._check_encoding(doc[:PRESCAN_BYTES])
    pieces, hold = rewriter._scan(doc, final=False, stop=last)
    if not rewriter.found:
        return doc
    pieces.append(memoryview(doc)[hold:])
    return b"".join(pieces)


def find_widget(
    html: bytes, *, widget_src: str = DEFAULT_WIDGET_SRC, project_id: str | None = None
) -> bool:
    """Whether ``html`` holds a widget tag that :func:`rewrite_html` would stamp."""
    doc = bytes(html)
    span = _lone_widget(doc, _matcher_for(widget_src, project_id))
    if span is not None:
        return span != _NO_CANDIDATE
    rewriter = HTMLRewriter("", widget_src=widget_src, project_id=project_id)
    last = _last_candidate_end(doc, rewriter._matcher)
    if last != -1:
        rewriter._check_encoding(doc[:PRESCAN_BYTES])
        rewriter._scan(doc, final=False, stop=last)
    return rewriter.found > 0
