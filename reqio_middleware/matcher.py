"""Whether a complete ``<script ...>`` start tag is the widget's, and why not.

Attributes are read as the tokenizer reads them (first of duplicates wins); the URL rule is
:class:`.urlmatch.WidgetSource`'s. Decisions are cached by the tag's bytes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

from . import foreign
from .charrefs import decode_attribute
from .tokenizer import _ATTR, _may_be_widget
from .urlmatch import WidgetSource

#: A ``<script>`` start tag longer than this is given up on (passed through unchanged), so a
#: quote that never closes cannot make a stream hold the rest of the page.
MAX_TAG_BYTES = 64 * 1024


class _Attr(NamedTuple):
    name: bytes  # lowercased, as the tokenizer lowercases ASCII letters
    value: bytes | None  # raw bytes without quotes; None when valueless
    start: int  # span of the attribute in the buffer (name to end of value)
    end: int


def _attributes(buf: bytes, pos: int, end: int) -> list[_Attr]:
    """Attributes of a start tag whose name ends at ``pos`` and whose '>' is at ``end - 1``.

    The matches are back to back: within a complete tag, only the '>' stops ``_ATTR``.
    """
    attrs: list[_Attr] = []
    for m in _ATTR.finditer(buf, pos, end - 1):
        raw = m.group(2)
        if raw is not None and raw[:1] in (b'"', b"'"):
            raw = raw[1:-1]
        attrs.append(_Attr(m.group(1).lower(), raw, m.start(1), m.end()))
    return attrs


def _lookup(attrs: list[_Attr]) -> foreign.AttrLookup:
    """The tree model's view of a start tag's attributes: first value by name, as text."""

    def value(name: bytes) -> str | None:
        attr = _first(attrs, name)
        if attr is None:
            return None
        return "" if attr.value is None else attr.value.decode("latin-1")

    return value


def _first(attrs: list[_Attr], name: bytes) -> _Attr | None:
    # Browsers keep the first of duplicated attributes and drop the rest.
    for attr in attrs:
        if attr.name == name:
            return attr
    return None


class _Matcher:
    """Decides whether a complete ``<script ...>`` start tag is the widget's."""

    __slots__ = ("authority", "lower_path", "path", "project_id", "widget")

    def __init__(self, widget_src: str, project_id: str | None) -> None:
        self.widget = WidgetSource(widget_src)
        self.project_id = project_id
        #: What the cheap pre-filter looks for (``_may_be_widget``, and the C scanner): bytes
        #: every spelling of the widget's URL holds literally, unless it has a character
        #: reference, a tab or a newline (which the pre-filter lets through anyway).
        self.path: bytes = getattr(
            self.widget, "needle", self.widget.path.encode("ascii", "replace")
        )
        self.lower_path = self.widget.path.encode("ascii", "replace").lower()
        self.authority = self.widget.authority.encode("ascii", "replace")

    def why_not(self, buf: bytes, start: int, end: int) -> str | None:
        """None when the tag at ``buf[start:end]`` is the widget; otherwise the reason."""
        if end - start > _CACHED_TAG_BYTES:
            return self._why_not(buf[start:end])
        return _why_not_cached(self, buf[start:end])

    def _why_not(self, tag: bytes) -> str | None:
        if len(tag) > MAX_TAG_BYTES:
            return f"tag longer than {MAX_TAG_BYTES} bytes"
        attrs = _attributes(tag, 7, len(tag))
        src = _first(attrs, b"src")
        if src is None or src.value is None:
            return "no src"
        if _first(attrs, b"href") is not None or _first(attrs, b"xlink:href") is not None:
            return "script with href (an SVG script loads from it)"
        why = self.widget.why_not(src.value)
        if why is not None:
            return why
        if self.project_id is not None:
            pid = _first(attrs, b"data-project-id")
            if pid is None or pid.value is None:
                return "no data-project-id"
            if decode_attribute(pid.value.decode("utf-8", "replace")) != self.project_id:
                return "other project"
        return None

    def looks_like(self, tag: bytes) -> bool:
        """Whether a tag mentions the widget's host or path: worth a word when not stamped."""
        lowered = tag.lower()
        return self.authority in lowered or self.lower_path in lowered

    def is_widget(self, buf: bytes, start: int, end: int) -> bool:
        return self.why_not(buf, start, end) is None

    def maybe(self, buf: bytes, start: int, end: int) -> bool:
        return _may_be_widget(buf, start, end, self.path)


#: Decisions and stamping plans are cached by the tag's bytes (a site's widget tag is the same
#: on every page, and parsing its attributes in Python costs more than scanning a small page),
#: for tags up to this long, so the caches stay under a megabyte.
_CACHED_TAG_BYTES = 1024


@functools.lru_cache(maxsize=256)
def _why_not_cached(matcher: _Matcher, tag: bytes) -> str | None:
    return matcher._why_not(tag)


@functools.lru_cache(maxsize=32)
def _matcher_for(widget_src: str, project_id: str | None) -> _Matcher:
    """One matcher per configuration: a middleware builds a rewriter per identified response,
    and parsing ``widget_src`` again each time was most of that cost. Matchers never change."""
    return _Matcher(widget_src, project_id)


@dataclass(frozen=True)
class TagReport:
    """One widget-like ``<script`` in a page, where it is, and what the rewriter decides."""

    offset: int
    line: int
    col: int
    tag: bytes
    rewritten: bool
    reason: str  # empty when rewritten
