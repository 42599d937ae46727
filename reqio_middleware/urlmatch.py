"""Where a ``<script src>`` points, decided as a browser's URL parser decides it.

The rule: a tag gets the widget's token only if the URL a browser fetches for it has the
widget's origin (``https``, the widget's host and port) and exactly the widget's path; any
query or fragment may follow. Scheme-relative sources (``//host/path``) are allowed and take
the page's scheme.

:func:`resolve` runs the steps of the WHATWG URL parser that decide scheme, host, port and path,
for the inputs whose result does not depend on the page's base URL. Everything else (relative
URLs, hosts it does not resolve such as internationalised names) comes back as a reason, never
as a guess: a miss costs a page without a token, a wrong match could send a signed identity to
another origin.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .charrefs import decode_attribute

__all__ = ["DEFAULT_WIDGET_SRC", "Resolved", "WidgetSource", "resolve"]

DEFAULT_WIDGET_SRC = "https://reqio.app/widget.js"

# --- reasons, for diagnostics --------------------------------------------------------------

HTTP = "http: source (only https or scheme-relative gets a token)"
OTHER_SCHEME = "other scheme (only https or scheme-relative gets a token)"
RELATIVE = "relative URL: its target depends on the page's base URL"
USERINFO = "userinfo in the URL (look-alike)"
LOOK_ALIKE = "look-alike host or path"
OTHER_PORT = "other port"
NON_ASCII_HOST = "non-ASCII host (IDNA not resolved: a miss, never a leak)"
PUNYCODE_HOST = "punycode host (IDNA not resolved: a miss, never a leak)"
IP_HOST = "IPv4 address not in dotted-decimal form (a miss, never a leak)"
NON_ASCII_BYTES = "non-ASCII bytes before the query: their meaning depends on the page's encoding"
INVALID = "not a valid URL (a browser loads nothing)"
OTHER = "other source"


class Resolved(NamedTuple):
    """The parts of a parsed URL that decide where it is fetched from."""

    #: ``"https"``, ``"http"`` or another special scheme with hosts; ``None`` for a
    #: scheme-relative URL (it takes the page's scheme).
    scheme: str | None
    host: str  # serialised: lowercase ASCII
    #: ``None`` when absent or the scheme's default; otherwise the number as written.
    port: int | None
    path: str  # serialised: dot segments resolved, percent-encoded


# --- the parser ----------------------------------------------------------------------------

_TRIM = "".join(map(chr, range(0x21)))  # C0 controls and space
_TAB_OR_NEWLINE = re.compile("[\t\n\r]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_SLASHES = re.compile(r"[/\\]*")
_AUTHORITY_END = re.compile(r"[/\\?#]")
_PATH_END = re.compile(r"[?#]")
# The forbidden domain code points: what the host parser refuses once the host is decoded.
_FORBIDDEN_DOMAIN = re.compile(r"[\x00-\x20#/:<>?@\[\\\]^|%\x7f]")
_DOTTED_DECIMAL = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}"
                             r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])")  # fmt: skip
# The path percent-encode set, ASCII part: C0 controls, space, " # < > ? ^ ` { } and DEL.
# Every non-ASCII code point is encoded too, as UTF-8. Browsers differ from the standard on a
# few of these (Chromium also encodes |, older parsers leave ^): paths with them may compare
# unequal, never equal to a path on another origin, since only the path differs.
_PATH_ENCODE = re.compile(r'[\x00-\x20"#<>?^`{}\x7f-\U0010ffff]')
_SINGLE_DOT = frozenset({".", "%2e", "%2E"})
_DOUBLE_DOT = frozenset(a + b for a in _SINGLE_DOT for b in _SINGLE_DOT)


def resolve(url: str) -> Resolved | str:
    """Scheme, host, port and path of ``url`` (character references already decoded) as the
    WHATWG URL parser gives them on any http or https base, or the reason it cannot say.

    Only a special scheme other than ``file`` followed by at least two slashes (``/`` or
    ``\\``), and scheme-relative URLs (two or more slashes, no scheme), resolve without the
    base. ``https:`` with fewer slashes is relative to an ``https`` base and absolute on any
    other, so it is refused.
    """
    url = url.strip(_TRIM)
    if "\t" in url or "\n" in url or "\r" in url:
        url = _TAB_OR_NEWLINE.sub("", url)
    scheme: str | None = None
    start = 0
    found = _SCHEME.match(url)
    if found is not None:
        scheme = found.group()[:-1].lower()
        if scheme not in _DEFAULT_PORTS:
            return OTHER_SCHEME
        start = found.end()
    slashes = _SLASHES.match(url, start)
    assert slashes is not None  # an empty run always matches
    if slashes.end() - start < 2:
        # Relative to a base of the same scheme, absolute on any other: only the scheme is sure.
        return RELATIVE if scheme in (None, "https") else _scheme_reason(scheme)
    return _authority(url, slashes.end(), scheme)


# The special schemes whose URLs have a host, with their default ports (``file`` has neither).
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}


def _authority(url: str, start: int, scheme: str | None) -> Resolved | str:
    """The rest of ``url`` from the first character after the slashes that open its
    authority."""
    end_at = _AUTHORITY_END.search(url, start)
    end = len(url) if end_at is None else end_at.start()
    authority = url[start:end]
    if "@" in authority:
        return USERINFO  # a browser blocks credentials in a script's URL, and it is a disguise
    if "[" in authority:
        return OTHER  # IPv6: never the widget's host (the widget is named by a domain or IPv4)
    host_text, colon, port_text = authority.partition(":")
    host = _host(host_text)
    if host in _HOST_REASONS:  # a reason, not a host: reasons have spaces, hosts never do
        return host
    port = _port(port_text) if colon else None
    if port == _BAD_PORT:
        return INVALID
    if scheme is not None and port == _DEFAULT_PORTS[scheme]:
        port = None
    return Resolved(scheme, host, port, _path(url, end))


def _host(text: str) -> str:
    """The serialised host for ``text`` (between the slashes and the port), or a reason."""
    if not text:
        return INVALID
    if "%" in text:
        text = _percent_decode(text)
    if not text.isascii():
        return NON_ASCII_HOST
    host = text.lower()
    if _FORBIDDEN_DOMAIN.search(host) is not None:
        return INVALID
    if _ends_in_a_number(host):
        return host if _DOTTED_DECIMAL.fullmatch(host) else IP_HOST
    if host.startswith("xn--") or ".xn--" in host:
        return PUNYCODE_HOST
    return host


def _ends_in_a_number(host: str) -> bool:
    """Whether the host parser reads ``host`` as an IPv4 address: its last label (one final
    dot aside) is decimal digits or ``0x`` and hex digits."""
    label = (host[:-1] if host.endswith(".") else host).rpartition(".")[2]
    if label.isdigit():
        return True
    return label[:2] == "0x" and all(c in _HEX for c in label[2:])


_HEX = frozenset("0123456789abcdef")


def _percent_decode(text: str) -> str:
    """``text`` with ``%XX`` decoded, read as UTF-8 (a ``%`` left alone stays, and is then
    refused as a forbidden code point)."""
    data = _PERCENT_BYTES.sub(
        lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8", "surrogatepass")
    )
    return data.decode("utf-8", "replace")


_PERCENT_BYTES = re.compile(rb"%([0-9A-Fa-f]{2})")


def _port(text: str) -> int | None:
    """The port written as ``text`` (leading zeros allowed), ``None`` when empty, or
    :data:`_BAD_PORT` when a browser refuses it."""
    if not text:
        return None
    digits = text.lstrip("0") or "0"
    if not text.isascii() or not text.isdigit() or len(digits) > 5 or int(digits) > 65535:
        return _BAD_PORT
    return int(digits)


_BAD_PORT = -1


def _path(url: str, start: int) -> str:
    """The serialised path that starts at ``url[start]`` (a slash, ``?``, ``#`` or the end)."""
    end_at = _PATH_END.search(url, start)
    raw = url[start : len(url) if end_at is None else end_at.start()]
    if _PATH_ENCODE.search(raw) is not None:
        raw = _PATH_ENCODE.sub(_encode, raw)
    segments: list[str] = []
    pieces = raw.replace("\\", "/").split("/")[1:] if raw else [""]
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        if piece in _DOUBLE_DOT:
            if segments:
                segments.pop()
            if last:
                segments.append("")
        elif piece in _SINGLE_DOT:
            if last:
                segments.append("")
        else:
            segments.append(piece)
    return "/" + "/".join(segments)


def _encode(match: re.Match[str]) -> str:
    # Lone surrogates cannot come from a page's bytes; let them through rather than raise.
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8", "surrogatepass"))


_HOST_REASONS = frozenset({INVALID, NON_ASCII_HOST, PUNYCODE_HOST, IP_HOST})


# --- the widget ----------------------------------------------------------------------------


class WidgetSource:
    """The widget's URL, and whether a ``src`` value makes a browser fetch it.

    ``src`` is an ``https://`` or scheme-relative URL with a host and a path. A value matches
    when the URL a browser resolves it to has the widget's host and port (``https``, or the
    page's scheme for a scheme-relative value) and exactly the widget's path, whatever query
    or fragment follows. Userinfo, other schemes, other ports, relative URLs and hosts that
    are not resolved here (internationalised names, IP addresses not in dotted-decimal form)
    never match.
    """

    __slots__ = ("_quick", "authority", "host", "needle", "path", "port", "src")

    def __init__(self, src: str = DEFAULT_WIDGET_SRC) -> None:
        parsed = resolve(src)
        if not isinstance(parsed, str) and parsed.scheme not in (None, "https"):
            parsed = _scheme_reason(parsed.scheme)
        if isinstance(parsed, str) or parsed.path == "/":
            why = parsed if isinstance(parsed, str) else "no path"
            raise ValueError(
                f"widget_src must be an https:// or scheme-relative (//host/path) URL with a "
                f"host and a path, like {DEFAULT_WIDGET_SRC!r}; got {src!r} ({why})"
            )
        self.src = src
        self.host = parsed.host
        #: ``None`` for https's default port.
        self.port = None if parsed.port == 443 else parsed.port
        self.authority = self.host if self.port is None else f"{self.host}:{self.port}"
        self.path = parsed.path
        #: Bytes every matching value contains literally, unless it has a character reference,
        #: a tab or a newline: the end of the path's last segment, which no spelling changes.
        self.needle = _PERCENT_ESCAPE.split(self.path.rpartition("/")[2])[-1].encode("ascii")
        self._quick = _quick_pattern(self.host, self.port, self.path)

    def __repr__(self) -> str:
        return f"WidgetSource({self.src!r})"

    def matches(self, raw_value: bytes) -> bool:
        """Whether an attribute value (raw bytes as in the page, without quotes, references
        not decoded) makes a browser fetch the widget."""
        return self.why_not(raw_value) is None

    def why_not(self, raw_value: bytes) -> str | None:
        """``None`` when ``raw_value`` is the widget, otherwise a short reason why not."""
        if self._quick is not None and self._quick.match(raw_value) is not None:
            return None
        return self._parsed_why_not(raw_value)

    def _parsed_why_not(self, raw_value: bytes) -> str | None:
        head = _QUERY_OR_FRAGMENT.split(raw_value, 1)[0]
        parsed = resolve(decode_attribute(raw_value.decode("latin-1")))
        if isinstance(parsed, str):
            return parsed
        if parsed.scheme not in (None, "https"):
            return _scheme_reason(parsed.scheme)
        if not head.isascii():
            # Bytes above 0x7F are characters only the page's encoding names (and in some
            # encodings they swallow the ASCII byte after them): decided nowhere, so a miss.
            return NON_ASCII_BYTES
        return self._compare(parsed)

    def _compare(self, parsed: Resolved) -> str | None:
        if parsed.host != self.host:
            return LOOK_ALIKE if self.host in parsed.host or self.path in parsed.path else OTHER
        if parsed.port != self.port and not (self.port is None and parsed.port == 443):
            return OTHER_PORT
        if parsed.path != self.path:
            return LOOK_ALIKE
        return None


def _scheme_reason(scheme: str | None) -> str:
    return HTTP if scheme == "http" else OTHER_SCHEME


_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_QUERY_OR_FRAGMENT = re.compile(rb"[?#]")


def _quick_pattern(host: str, port: int | None, path: str) -> re.Pattern[bytes] | None:
    """The widget's URL as most pages write it (``https://host/path`` or ``//host/path``, any
    query or fragment): a value matching it matches without the parser. ``None`` when the
    URL holds a ``&``, which a page would have to write as a reference."""
    if "&" in host + path:
        return None
    port_part = rb"(?::0*443)?" if port is None else b":0*" + str(port).encode()
    pattern = rb"(?:https:)?//" + re.escape(host.encode()) + port_part
    return re.compile(pattern + re.escape(path.encode()) + rb"(?:[?#]|\Z)")
