"""Which ``src`` values are the widget's: the one rule for where a token may go."""

from __future__ import annotations

import html

__all__ = ["DEFAULT_WIDGET_SRC", "WidgetSource"]

DEFAULT_WIDGET_SRC = "https://reqio.app/widget.js"

_URL_TRIM = "".join(map(chr, range(0x21)))


class WidgetSource:
    """The widget's URL, and the one rule for whether a ``src`` value points at it.

    The rule is deliberately narrower than a browser's URL parser: ``https:`` or
    scheme-relative, the same host (any case, ``:443`` allowed) and exactly the same path;
    a query or fragment may follow. Userinfo (``https://reqio.app@evil.example/``), other
    schemes, other ports and anything we cannot read with certainty do not match, because a
    token must only ever go to the real widget's origin: a miss costs a page without a token,
    a false match would hand a signed identity to someone else.
    """

    __slots__ = ("authority", "path", "src")

    def __init__(self, src: str = DEFAULT_WIDGET_SRC) -> None:
        parsed = self._split(src.strip())
        if parsed is None or not parsed[0] or not parsed[1].startswith("/") or parsed[1] == "/":
            raise ValueError(
                f"widget_src must be an https:// or scheme-relative (//host/path) URL with a "
                f"host and a path, like {DEFAULT_WIDGET_SRC!r}; got {src!r}"
            )
        self.src = src
        self.authority, self.path = parsed

    def __repr__(self) -> str:
        return f"WidgetSource({self.src!r})"

    @staticmethod
    def _split(url: str) -> tuple[str, str] | None:
        """(authority, path) of an https or scheme-relative URL, or None."""
        if url[:6].lower() == "https:":
            url = url[6:]
        if not url.startswith("//"):
            return None
        rest = url[2:]
        cut = len(rest)
        for stop in "/?#":
            at = rest.find(stop)
            if at != -1:
                cut = min(cut, at)
        authority = rest[:cut].lower()
        if not authority or "@" in authority or any(c in authority for c in "%\\ "):
            return None
        if authority.endswith(":443"):
            authority = authority[:-4]
        path = rest[cut:]
        for stop in "?#":
            path = path.partition(stop)[0]
        return authority, path

    def matches(self, raw_value: bytes) -> bool:
        """Whether an attribute value (raw bytes as in the page) points at the widget."""
        try:
            text = raw_value.decode("ascii")
        except UnicodeDecodeError:
            return False
        if "&" in text:
            text = html.unescape(text)
        # What the URL parser does before anything else: trim C0 controls and spaces at both
        # ends, drop tabs and newlines anywhere. Backslashes are refused, not normalised.
        text = text.strip(_URL_TRIM).replace("\t", "")
        text = text.replace("\n", "").replace("\r", "")
        if "\\" in text:
            return False
        parsed = self._split(text)
        return parsed is not None and parsed == (self.authority, self.path)

    def why_not(self, raw_value: bytes) -> str | None:
        """None when ``raw_value`` points at the widget; otherwise why not, for logs."""
        return None if self.matches(raw_value) else _src_reason(raw_value, self)


def _src_reason(value: bytes, widget: WidgetSource) -> str:
    text = html.unescape(value.decode("utf-8", "replace")).strip().lower()
    if text.startswith("http:"):
        return "http: source (only https or scheme-relative gets a token)"
    if "@" in text.partition("?")[0]:
        return "userinfo in the URL (look-alike)"
    if widget.authority in text or widget.path.lower() in text:
        return "look-alike host or path"
    return "other source"
