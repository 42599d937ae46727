"""Explaining decisions (for ``reqio-middleware check``): every widget-like tag, and why."""

from __future__ import annotations

from .matcher import TagReport
from .scanner import HTMLRewriter
from .tokenizer import _SCRIPT_CANDIDATE, _tag_end_pattern
from .urlmatch import DEFAULT_WIDGET_SRC, WidgetSource

__all__ = ["explain"]


def explain(
    html: bytes, *, widget_src: str = DEFAULT_WIDGET_SRC, project_id: str | None = None
) -> list[TagReport]:
    """Every ``<script`` start tag in ``html`` that looks like the widget, with the decision.

    Answers the support question "why is there no token?": a tag inside a comment, inside
    the text of a ``textarea`` or another raw-text element, inside SVG/MathML, for another
    project, on a look-alike host or over ``http:`` is listed with the reason it is skipped.
    One pass of the tokenizer: the page is fed in pieces cut at each widget-like ``<script``,
    and :attr:`HTMLRewriter.context` says where each one falls.
    """
    doc = bytes(html)
    widget = WidgetSource(widget_src)
    seen: dict[int, TagReport] = {}

    def trace(report: TagReport) -> None:
        seen.setdefault(report.offset, report)

    rewriter = HTMLRewriter("x", widget_src=widget_src, project_id=project_id, trace=trace)
    found = _widget_like(doc, widget)
    contexts: dict[int, str | None] = {}
    fed = 0
    for start, _tag in found:
        rewriter.feed(doc[fed:start])
        contexts[start], fed = rewriter.context, start
    rewriter.feed(doc[fed:])
    rewriter.close()
    reports: list[TagReport] = []
    line, line_start, counted = 1, 0, 0
    for start, tag in found:
        line += doc.count(b"\n", counted, start)
        line_start, counted = doc.rfind(b"\n", 0, start) + 1, start
        report = seen.get(start)
        if report is not None:
            rewritten, reason = report.rewritten, report.reason
        else:
            rewritten, reason = False, contexts[start] or "not a tag"
        reports.append(TagReport(start, line, start - line_start + 1, tag, rewritten, reason))
    return reports


def _widget_like(doc: bytes, widget: WidgetSource) -> list[tuple[int, bytes]]:
    """(offset, tag) of each ``<script`` whose tag mentions the widget or a project id. Each
    tag is read at most up to the next ``<script``, so that this is linear too."""
    starts = [m.start() for m in _SCRIPT_CANDIDATE.finditer(doc)]
    hints = (widget.path.lower().encode(), widget.authority.encode(), b"data-project-id")
    found = []
    for i, start in enumerate(starts):
        limit = starts[i + 1] if i + 1 < len(starts) else len(doc)
        end = _tag_end_pattern(doc, start + 7, limit)
        tag = doc[start : end if end != -1 else min(limit, start + 200)]
        lowered = tag.lower()
        if any(hint in lowered for hint in hints):
            found.append((start, tag))
    return found
