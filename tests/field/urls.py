"""Where a browser fetches a ``<script src>`` from, for the one question the oracle asks.

Independent of the rewriter's own URL rule on purpose: this follows the WHATWG URL parser's
steps for an ``https`` (special) URL far enough to name the origin and the path, for a page
whose base URL is ``https://site.example/dir/page.html`` (so a relative URL never reaches the
widget's host). The value given is the attribute value *after* the HTML parser has decoded
character references, as the DOM holds it.
"""

from __future__ import annotations

import re
import unicodedata
import urllib.parse

WIDGET_HOST = "reqio.app"
WIDGET_PATH = "/widget.js"

_C0_OR_SPACE = "".join(chr(c) for c in range(0x21))
_TAB_OR_NEWLINE = re.compile("[\t\n\r]")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_DOT = {".", "%2e"}
_DOTDOT = {"..", ".%2e", "%2e.", "%2e%2e"}


def _authority_and_rest(value: str) -> tuple[str, str] | None:
    """Split an absolute or scheme-relative https URL; None when it is relative to the page."""
    scheme = _SCHEME.match(value)
    if scheme is not None:
        if scheme.group(1).lower() != "https":
            return None  # another scheme: never the widget's https origin
        rest = value[scheme.end() :]
        # Same special scheme as the base: one slash or none is a path relative to the page.
        if len(rest) < 2 or rest[0] not in "/\\" or rest[1] not in "/\\":
            return None
    else:
        rest = value
        if len(rest) < 2 or rest[0] not in "/\\" or rest[1] not in "/\\":
            return None
    rest = rest.lstrip("/\\")  # special authority ignore slashes state
    end = len(rest)
    for stop in "/\\?#":
        found = rest.find(stop)
        if found != -1:
            end = min(end, found)
    return rest[:end], rest[end:]


def _host(authority: str) -> str | None:
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):
        return None  # an IPv6 literal is never the widget's host
    host, colon, port = hostport.partition(":")
    if colon and port and not (port.isdigit() and port.isascii() and int(port) == 443):
        return None
    decoded = urllib.parse.unquote(host, errors="strict")
    # UTS 46 maps full-width and other compatibility forms; NFKC + lower-case is that mapping
    # for every spelling of an ASCII host name.
    return unicodedata.normalize("NFKC", decoded).lower()


def _path(rest: str) -> str:
    path = rest
    for stop in "?#":
        path = path.partition(stop)[0]
    segments: list[str] = []
    parts = path.replace("\\", "/").split("/")[1:] if path else [""]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part.lower() in _DOTDOT:
            if segments:
                segments.pop()
            if last:
                segments.append("")
        elif part.lower() in _DOT:
            if last:
                segments.append("")
        else:
            segments.append(part)
    return "/" + "/".join(segments)


def loads_widget(src: str) -> bool:
    """Whether a browser fetches ``src`` from ``https://reqio.app/widget.js`` (any query)."""
    value = _TAB_OR_NEWLINE.sub("", src.strip(_C0_OR_SPACE))
    split = _authority_and_rest(value)
    if split is None:
        return False
    authority, rest = split
    try:
        host = _host(authority)
    except UnicodeDecodeError:
        return False
    return host == WIDGET_HOST and _path(rest) == WIDGET_PATH
