"""Find the widget's ``<script>`` tag as a browser's tokenizer does, and stamp a token on it.

Pure bytes in, bytes out: nothing here knows about HTTP. Two entry points share one scanner:

* :func:`rewrite_html` for a whole document. It first looks for *candidates* (a ``<script``
  whose attributes match the widget), from the end of the page backwards; a page without one
  is returned as is, so most pages cost one pass of a search that runs faster than
  ``bytes.find``. Only when a candidate exists does the exact tokenizer run, and only up to
  the end of the last candidate: past it nothing can change.
* :class:`HTMLRewriter` for a body that streams by. The tokenizer state (data, comment,
  raw text, script data and its escaped states, a tag cut in two by a chunk boundary) is
  carried from one chunk to the next, and the only bytes ever held back are a ``<script``
  start tag that is still incomplete (at most :data:`MAX_TAG_BYTES`) or a handful of bytes
  that could begin a terminator. Any split of a document gives the bytes of the whole.

The tokenizer's hot loop (text, ordinary tags, comments, raw text, and whole ``<script>``
elements that cannot be the widget) and the candidate search run in C (``_speedups.c``) when
the extension was built, and as the regular expressions below otherwise; the tests run every
case with both. Python only sees the widget's own tag and whatever a chunk boundary cuts.

Why a hand-written scanner and not ``html.parser``: ``html.parser`` is ~100x slower, is not
byte-exact, and does not follow the WHATWG tokenizer (comments ending in ``--!>``, the
escaped states of script data, attributes without quotes...). The regular expressions below
are the tokenizer's states written as patterns; each one says which state it stands for.

What the tokenizer alone cannot know: the tree builder also decides a few states (a
``<style>`` inside ``<svg>`` or ignored inside ``<select>`` is not raw text). Like every
streaming rewriter we follow HTML content rules there; the cost of the rare difference is a
page served without a token, never a token in the wrong place.
"""

from __future__ import annotations

import functools
import html
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, overload

from . import foreign, tags

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

DEFAULT_WIDGET_SRC = "https://reqio.app/widget.js"

#: A ``<script>`` start tag longer than this is given up on (passed through unchanged), so a
#: quote that never closes cannot make a stream hold the rest of the page.
MAX_TAG_BYTES = 64 * 1024

TOKEN_ATTR = b"data-identity-token"

# --- the tokenizer's states, as patterns ---------------------------------------------------

_RAW_NAMES = tuple(sorted(tags.SWITCHING))
#: The names the data-state run stops at: tokenizer switches and tree-builder stops.
_STOP_NAMES = tuple(sorted(tags.HTML_STOPS))
#: Letters no stop name starts with: tags beginning with one skip the name check.
_PLAIN_FIRST = bytes(
    c for c in range(ord("a"), ord("z") + 1) if all(name[0] != c for name in _STOP_NAMES)
)


def _pattern(template: bytes, **parts: bytes) -> bytes:
    """Fill ``{NAME}`` slots. ``WS`` is HTML whitespace: tab, LF, FF, CR, space (no VT)."""
    out = template.replace(b"WS", b"\t\n\f\r ")
    for key, value in parts.items():
        out = out.replace(b"{" + key.encode() + b"}", value)
    return out


# The patterns are written so that a string can be split into their pieces in one way only:
# every run ends with a lookahead that the next byte cannot continue it. That is what keeps
# a failing match (an incomplete tag) linear without possessive quantifiers or atomic groups,
# which Python 3.10's ``re`` does not have.
#
# Attribute value: quoted (quote states) or unquoted (which cannot start with a quote); empty
# only when '>' (or the end of the tag's span) follows, as before-attribute-value reads it.
_VALUE = _pattern(rb"""(?:"[^"]*"|'[^']*'|[^WS>"'][^WS>]*(?![^WS>])|(?![^>]))""")
# Attribute name state; a leading '=' is a (parse-error) name character, later ones end it.
_NAME = _pattern(rb"[^WS/>][^WS/>=]*(?![^WS/>=])")
# After the tag name up to and including '>': before/after attribute name, the attribute
# value states, self-closing. A name followed by '=' must have a value, so an unterminated
# quote makes the whole pattern fail, which is how "tag incomplete" shows.
_TAG_REST_EXACT = _pattern(
    rb"(?:[WS/]+(?![WS/])|{NAME}(?:[WS]*=[WS]*{VALUE}|(?![WS]*=)))*>", NAME=_NAME, VALUE=_VALUE
)
# The same states for the tags real pages are made of (name="v" name='v' name=v name),
# tried first because it is several times cheaper; any tag it does not fit goes to the
# exact form above, so both give the same end.
_TAG_REST_COMMON = _pattern(
    rb"""(?:[WS]+[^WS/>="'<`]+(?![^WS/>="'<`])"""
    rb"""(?:="[^"]*"|='[^']*'|=[^WS>"'=<`]+(?![^WS>"'=<`]))?)*[WS]*/?>"""
)
_TAG_REST = b"(?:" + _TAG_REST_COMMON + b"|" + _TAG_REST_EXACT + b")"
_TAG_NAME = _pattern(rb"[^WS/>]*(?![^WS/>])")
_SPECIAL = b"(?i:" + b"|".join(_STOP_NAMES) + _pattern(rb")(?=[WS/>])")

# Data state, consumed in bulk by one C-level match: text, end tags (which may carry
# attributes), bogus comments and doctypes, start tags of ordinary elements, a lone '<'. It
# stops at comments, at start tags that switch the tokenizer (raw text, script, plaintext)
# and at anything the end of the buffer cuts short. Start tags whose first letter cannot
# begin a raw-text name skip the (costly) name check.
_BULK = re.compile(
    _pattern(
        rb"(?:[^<]+"
        rb"|<+(?=[^a-zA-Z!/?])"
        rb"|<[{PLAIN_FIRST}]{TAG_NAME}{REST}"
        rb"|</[a-zA-Z]{TAG_NAME}{REST}"
        rb"|<(?!{SPECIAL})[a-zA-Z]{TAG_NAME}{REST}"
        rb"|<(?=[^a-zA-Z!/?])"
        rb"|</>"
        rb"|</(?=[^a-zA-Z>])[^>]*>"
        rb"|<!(?!--)[^>]*>"
        rb"|<\?[^>]*>"
        rb")*",
        TAG_NAME=_TAG_NAME,
        REST=_TAG_REST,
        SPECIAL=_SPECIAL,
        PLAIN_FIRST=_PLAIN_FIRST + _PLAIN_FIRST.upper(),
    )
)


def _scan_data_pattern(buf: bytes, pos: int, path: bytes = b"") -> int:
    """Where the data-state run from ``pos`` ends (see ``_BULK``). The C scanner also passes
    over ``<script>`` elements that cannot be the widget's (given ``path``); this leaves them
    all to the rewriter, which is slower but never wrong."""
    return _BULK.match(buf, pos).end()  # type: ignore[union-attr]


def _tag_end_pattern(buf: bytes, pos: int, limit: int = -1) -> int:
    """After the '>' that ends the tag whose name ends at ``pos``; -1 when it is incomplete
    (in ``buf[:limit]`` when a limit is given)."""
    m = _TAG_END.match(buf, pos, len(buf) if limit == -1 else limit)
    return -1 if m is None else m.end()


def _last_candidate_pattern(buf: bytes, hi: int, path: bytes) -> int:
    """Start of the last ``<script`` before ``hi`` that may be the widget's, or -1: its start
    tag ends before the next ``<script`` (or ``hi``) and ``_may_be_widget`` holds, or it does
    not end there, so that only the tokenizer can tell. Bounding each tag's scan by the next
    ``<script`` keeps the search linear. Windows are searched from ``hi`` backwards, growing:
    the widget usually sits near the end of a page."""
    stop, window, limit = hi, 16 * 1024, hi
    while stop > 0:
        start = max(0, stop - window)
        # endpos reaches past the window so that a '<script' at its very end can see the
        # delimiter its pattern looks ahead for; only matches starting inside are taken.
        found = [
            m.start()
            for m in _SCRIPT_CANDIDATE.finditer(buf, start, min(len(buf), stop + 8))
            if m.start() < stop
        ]
        for at in reversed(found):
            end = _tag_end_pattern(buf, at + 7, limit)
            if end == -1 or _may_be_widget(buf, at, end, path):
                return at
            limit = at
        stop, window = start, window * 2
    return -1


#: The functions that have a C version; each ``NAME`` has its twin ``NAME_pattern``, which
#: tests swap in to check both versions give the same bytes.
_ACCELERATED = ("_scan_data", "_tag_end", "_last_candidate", "_tag_states")

_SPECIAL_OPEN = re.compile(b"<(" + _SPECIAL + b")")
_TAG_END = re.compile(_TAG_REST)
_ATTR = re.compile(_pattern(rb"[WS/]*({NAME})(?:[WS]*=[WS]*({VALUE}))?", NAME=_NAME, VALUE=_VALUE))
_COMMENT_END = re.compile(rb"--!?>")
_SCRIPT_CANDIDATE = re.compile(_pattern(rb"<script(?=[WS/>])"), re.IGNORECASE)
_END_SCRIPT = _pattern(rb"</script[WS/>]")
_SCRIPT_DATA = re.compile(b"<!--|" + _END_SCRIPT, re.IGNORECASE)
_SCRIPT_ESCAPED = re.compile(b"-->|" + _END_SCRIPT + _pattern(rb"|<script[WS/>]"), re.IGNORECASE)
_SCRIPT_DOUBLE = re.compile(b"-->|" + _END_SCRIPT, re.IGNORECASE)
_RAW_END = {
    name: re.compile(_pattern(rb"</{NAME}[WS/>]", NAME=name), re.IGNORECASE)
    for name in sorted(tags.RAWTEXT | tags.RCDATA)
}
# Resumable pieces for a tag cut by a chunk boundary (see _TagDrain).
_RUN_NAME = re.compile(_pattern(rb"[^WS/>=]*"))
_RUN_TAG_NAME = re.compile(_TAG_NAME)
_RUN_UNQUOTED = re.compile(_pattern(rb"[^WS>]*"))
_RUN_NAMES = re.compile(rb"[^/>=]*")
_RUN_WS = re.compile(_pattern(rb"[WS]*"))
_WS_BYTES = frozenset(b"\t\n\f\r ")
_MAYBE_ENCODED = re.compile(rb"[&\t\n\r]")
_URL_TRIM = "".join(map(chr, range(0x21)))

# Tokenizer states kept between chunks.
_DATA, _COMMENT, _BOGUS, _RAW, _SCRIPT, _PLAINTEXT, _DRAIN, _CDATA, _UNSURE, _HELD = range(10)
_CONTEXTS = {
    _COMMENT: "inside a comment",
    _BOGUS: "inside a bogus comment or doctype",
    _SCRIPT: "inside the text of another <script>",
    _PLAINTEXT: "after <plaintext>",
    _DRAIN: "inside another tag (an attribute value)",
    _HELD: "inside another tag (an attribute value)",
    _CDATA: "inside a CDATA section (SVG/MathML)",
}
_HELD_SCRIPT, _HELD_TREE = range(2)  # a held <script> in HTML content, a tag the tree sees
_CDATA_OPEN = b"<![CDATA["
#: How much of a body the encoding guards look at (a browser's meta prescan).
PRESCAN_BYTES = 1024
_ISO_2022_JP = re.compile(rb"(?i)iso-2022-jp|csiso2022jp")
_UTF16 = "UTF-16 byte order mark"
_ISO2022JP = f"ISO-2022-JP label in the first {PRESCAN_BYTES} bytes"
_ENCODING_REASONS = (_UTF16, _ISO2022JP)
_SCRIPT_NORMAL, _SCRIPT_ESC, _SCRIPT_DBL = range(3)


# --- which src is the widget ---------------------------------------------------------------


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


# --- attributes of one start tag -----------------------------------------------------------


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
        self.path = self.widget.path.encode("ascii", "replace")
        self.lower_path = self.path.lower()
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
        if not self.widget.matches(src.value):
            return _src_reason(src.value, self.widget)
        if self.project_id is not None:
            pid = _first(attrs, b"data-project-id")
            if pid is None or pid.value is None:
                return "no data-project-id"
            if html.unescape(pid.value.decode("utf-8", "replace")) != self.project_id:
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


def _may_be_widget(buf: bytes, start: int, end: int, path: bytes) -> bool:
    """False when the tag ``buf[start:end]`` cannot be the widget: its ``src`` cannot name the
    widget's ``path``.

    The path is in the tag literally unless it is written with character references or split
    by tabs or newlines (which the URL parser drops), so this skips the attribute parsing for
    every other script on the page. An empty ``path`` lets every tag through.
    """
    return buf.find(path, start, end) != -1 or _MAYBE_ENCODED.search(buf, start, end) is not None


@functools.lru_cache(maxsize=32)
def _matcher_for(widget_src: str, project_id: str | None) -> _Matcher:
    """One matcher per configuration: a middleware builds a rewriter per identified response,
    and parsing ``widget_src`` again each time was most of that cost. Matchers never change."""
    return _Matcher(widget_src, project_id)


def _src_reason(value: bytes, widget: WidgetSource) -> str:
    text = html.unescape(value.decode("utf-8", "replace")).strip().lower()
    if text.startswith("http:"):
        return "http: source (only https or scheme-relative gets a token)"
    if "@" in text.partition("?")[0]:
        return "userinfo in the URL (look-alike)"
    if widget.authority in text or widget.path.lower() in text:
        return "look-alike host or path"
    return "other source"


def _stamp(buf: bytes, start: int, end: int, token: bytes) -> bytes:
    """The tag at ``buf[start:end]`` with exactly one ``data-identity-token`` carrying ``token``.

    An existing attribute (any case, quoted or not, valueless, duplicated) is replaced where
    the first one stands and the others are removed: browsers keep the first of duplicates,
    so page content must never be able to pre-seed the value the widget reads.
    """
    tag = buf[start:end]
    before, after = _stamp_plan(tag) if len(tag) <= _CACHED_TAG_BYTES else _plan(tag)
    return b"".join((before, TOKEN_ATTR, b'="', token, b'"', after))


def _plan(tag: bytes) -> tuple[bytes, bytes]:
    """What goes before and after the new attribute in a stamped ``tag``."""
    attrs = [a for a in _attributes(tag, 7, len(tag)) if a.name == TOKEN_ATTR]
    if not attrs:
        return tag[:7] + b" ", tag[7:]
    pieces = []
    at = attrs[0].end
    for attr in attrs[1:]:
        pieces.append(tag[at : attr.start])
        at = attr.end
    pieces.append(tag[at:])
    return tag[: attrs[0].start], b"".join(pieces)


_stamp_plan = functools.lru_cache(maxsize=256)(_plan)


def _encode_token(token: str) -> bytes:
    # A JWT is [A-Za-z0-9_.-]; a custom minter's token is escaped so it can never end the
    # attribute, and written as character references where not ASCII, which any
    # ASCII-compatible page encoding carries unchanged.
    return html.escape(token, quote=True).encode("ascii", "xmlcharrefreplace")


# --- a tag cut by a chunk boundary ---------------------------------------------------------


class _TagDrain:
    """The tag states (tag name to '>') run one step at a time, for a tag the buffer cuts.

    Ordinary tags are never rewritten, so instead of holding one back we remember where in
    the tag the tokenizer is and go on with the next chunk. The same machine passes through a
    ``<script`` tag that outgrew :data:`MAX_TAG_BYTES`.
    """

    __slots__ = ("after", "after_name", "state")

    # states: tag name, before attr name, attr name, after attr name, before value,
    # double/single-quoted value, unquoted value, after quoted value, self-closing
    TAGNAME, BAN, AN, AAN, BAV, DQ, SQ, UQ, AAVQ, SC = range(10)

    def __init__(self, state: int, after: int, after_name: bytes) -> None:
        self.state = state
        self.after = after  # tokenizer state once the tag ends
        self.after_name = after_name

    def run(self, buf: bytes, pos: int) -> int:
        """Advance over ``buf[pos:]``; the position just past '>' or -1 if the tag goes on."""
        result = _tag_states(buf, pos, self.state)
        if result >= 0:
            return result
        self.state = -1 - result
        return -1


def _tag_states_pattern(buf: bytes, pos: int, state: int) -> int:
    """The tag states from ``state`` at ``pos``: after '>' (>= 0), or -1 - the state to
    resume in when ``buf`` ends first (see _TagDrain)."""
    n = len(buf)
    st = state
    D = _TagDrain
    while pos < n:
        if st == D.DQ or st == D.SQ:
            close = buf.find(b'"' if st == D.DQ else b"'", pos, n)
            if close == -1:
                break
            pos, st = close + 1, D.AAVQ
            continue
        if st in (D.TAGNAME, D.AN, D.UQ):
            run = _RUN_TAG_NAME if st == D.TAGNAME else _RUN_NAME if st == D.AN else _RUN_UNQUOTED
            pos = run.match(buf, pos, n).end()  # type: ignore[union-attr]
            if pos == n:
                break
            st = D.AAN if st == D.AN else D.BAN  # the delimiter is read again below
            continue
        if st == D.BAN or st == D.AAN:
            # Names and whitespace without '=', '/' or '>' in one step: the state after them
            # is the attribute name state, or after-attribute-name once a name was read.
            end = _RUN_NAMES.match(buf, pos, n).end()  # type: ignore[union-attr]
            if end != pos:
                if buf[end - 1] not in _WS_BYTES:
                    st = D.AN
                elif st == D.AAN or _RUN_WS.match(buf, pos, end).end() != end:  # type: ignore[union-attr]
                    st = D.AAN
                pos = end
                continue
        c = buf[pos]
        if c == 0x3E:  # '>' ends the tag in every remaining state
            return pos + 1
        pos, st = _tag_step(c, pos, st)
    return -1 - st


def _tag_step(c: int, pos: int, st: int) -> tuple[int, int]:
    """One byte (not '>') in the tag states without a run: (pos, state) after it."""
    D = _TagDrain
    if st == D.BAV:
        if c in _WS_BYTES:
            return pos + 1, st
        if c in (0x22, 0x27):
            return pos + 1, D.DQ if c == 0x22 else D.SQ
        return pos, D.UQ
    if st == D.SC:
        return pos, D.BAN  # '/' not followed by '>': read again as before attribute name
    if c in _WS_BYTES:
        return pos + 1, D.BAN if st == D.AAVQ else st
    if c == 0x2F:  # '/'
        return pos + 1, D.SC
    if c == 0x3D and st in (D.AN, D.AAN):  # '='
        return pos + 1, D.BAV
    return pos + 1, D.AN  # BAN, AAN or AAVQ meeting a name character ('=' starts a name)


_MISSING_C: ImportError | None = None
try:  # the same states in C (reqio_middleware/_speedups.c), built when a compiler was there
    from ._speedups import last_candidate as _last_candidate
    from ._speedups import scan_data as _scan_data
    from ._speedups import tag_end as _tag_end
    from ._speedups import tag_states as _tag_states
except ImportError as exc:  # pragma: no cover - depends on the install
    _MISSING_C = exc
    _scan_data = _scan_data_pattern
    _tag_end = _tag_end_pattern
    _last_candidate = _last_candidate_pattern
    _tag_states = _tag_states_pattern

#: Which scanner this install runs: "C" (the extension was built) or "Python" (the same
#: states as regular expressions, several times slower); for ``reqio-middleware doctor``.
SCANNER = "Python" if _MISSING_C is not None else "C"
_logger = logging.getLogger("reqio_middleware")
_warned = False


def _warn_if_slow() -> None:
    """Say once, at first use, that the C scanner is missing, why, and how to get it."""
    global _warned
    if _MISSING_C is None or _warned:
        return
    _warned = True
    _logger.warning(
        "reqio_middleware: the C scanner is not available (%s); HTML is rewritten by the "
        "pure-Python scanner, which is several times slower. To build it, install with a C "
        "compiler present, e.g. `pip install --no-binary reqio-middleware reqio-middleware` "
        "with gcc (or MSVC) installed.",
        _MISSING_C,
    )


# --- the scanner ---------------------------------------------------------------------------

TokenSource = str | Callable[[], str | None]


class HTMLRewriter:
    """Streaming rewriter: ``feed`` chunks, then ``close``; the output is the rewritten page.

    ``token`` may be a string or a callable returning one (or None for "no token after
    all"). A callable is called at most once, when the first widget tag is found, so a
    page without the widget never pays for minting.

    Memory is bounded whatever the input: only an incomplete ``<script`` start tag (up to
    :data:`MAX_TAG_BYTES`) or a few bytes that may begin a terminator are ever held back.
    """

    __slots__ = (
        "_drain",
        "_gate",
        "_held",
        "_held_kind",
        "_held_scanned",
        "_lookback",
        "_matcher",
        "_missed",
        "_offset",
        "_own_end",
        "_pending",
        "_prefix",
        "_raw_end",
        "_script",
        "_state",
        "_token",
        "_token_source",
        "_trace",
        "_tree",
        "closed",
        "found",
    )

    def __init__(
        self,
        token: TokenSource,
        *,
        widget_src: str = DEFAULT_WIDGET_SRC,
        project_id: str | None = None,
        trace: Callable[[TagReport], None] | None = None,
    ) -> None:
        _warn_if_slow()
        self._matcher = _matcher_for(widget_src, project_id)
        self._token_source: TokenSource | None = token
        self._token: bytes | None = None
        self._state = _DATA
        self._script = _SCRIPT_NORMAL
        self._raw_end: re.Pattern[bytes] | None = None
        self._drain: _TagDrain | None = None
        self._held = b""
        self._trace = trace
        self._tree = foreign.Tree()
        self._missed: str | None = None
        self._prefix = b""  # the first PRESCAN_BYTES, until the encoding guards are decided
        self._gate = True  # not decided yet: output with a stamp in it waits in _pending
        self._pending: tuple[bytes, bytes, int] | None = None  # (input, output, stamps)
        self._lookback = b""
        self._offset = 0  # where buf[0] of the current scan is in the whole stream
        self._own_end = False  # the next end tag ends raw text entered inside foreign content
        self._held_kind = _HELD_SCRIPT  # with _HELD: which start tag is held
        self._held_scanned = 0  # with _HELD: how much of the held tag its states have read
        #: how many widget tags were given the token so far
        self.found = 0
        self.closed = False

    def __repr__(self) -> str:
        return (
            f"HTMLRewriter(widget_src={self._matcher.widget.src!r}, "
            f"project_id={self._matcher.project_id!r}, found={self.found})"
        )

    @property
    def context(self) -> str | None:
        """Where the tokenizer is after what was fed so far: None in the data state (a
        ``<`` next would start a tag), otherwise why what comes next is not a tag."""
        state = self._state
        if state == _DATA:
            return "inside a comment" if self._held.startswith(b"<!--") else None
        if state == _RAW:
            name = next((k for k, v in _RAW_END.items() if v is self._raw_end), b"raw text")
            return f"inside <{name.decode()}> text"
        if state == _UNSURE:
            return self._tree.unsure or "not a tag"
        return _CONTEXTS.get(state, "not a tag")

    @property
    def missed(self) -> str | None:
        """Why the first widget-like tag was not stamped ("inside SVG/MathML foreign content",
        "UTF-16 byte order mark", ...), or None: for logs and debug headers."""
        return self._missed

    def feed(self, chunk: bytes) -> bytes:
        """Rewrite what can be decided so far; the rest is kept for the next call."""
        if self.closed:
            raise ValueError("feed() after close()")
        if not chunk:
            return b""
        chunk = bytes(chunk)
        if self._gate:
            self._prefix += chunk[: PRESCAN_BYTES - len(self._prefix)]
            self._check_encoding(self._prefix, len(self._prefix) >= PRESCAN_BYTES)
        buf = self._held + chunk if self._held else chunk
        return self._run(buf, final=False)

    def close(self) -> bytes:
        """Everything still held back; an incomplete tag at the end is not a tag."""
        if self.closed:
            return b""
        self.closed = True
        buf, self._held = self._held, b""
        if self._gate:
            self._check_encoding(self._prefix, True)
        return self._run(buf, final=True)

    def _check_encoding(self, head: bytes, done: bool = True) -> None:
        """Encodings in which the widget's ASCII bytes do not mean what they say: a UTF-16
        byte order mark, or an ISO-2022-JP label where a browser's prescan would find it.
        ``done``: ``head`` is all of the prescan there will be; until then widget tags wait."""
        self._gate = not done
        if self._tree.unsure is not None:
            return
        if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
            self._tree.unsure = _UTF16
        elif _ISO_2022_JP.search(head, 0, PRESCAN_BYTES) is not None:
            self._tree.unsure = _ISO2022JP
        if self._tree.unsure is not None:
            self._state = _UNSURE

    # The scanner proper. ``emit`` is where unwritten output begins; ``hold`` where the
    # bytes kept for the next chunk begin.
    def _run(self, buf: bytes, final: bool) -> bytes:
        found = self.found
        out, hold = self._scan(buf, final)
        self._held = buf[hold:]
        self._offset += hold
        text = b"".join(out)
        if self._gate and (self._pending is not None or self.found > found):
            # A stamp before the encoding guards are decided: keep both versions until then.
            raw, stamped, count = self._pending or (b"", b"", 0)
            self._pending = (raw + buf[:hold], stamped + text, count + self.found - found)
            return b""
        if self._pending is not None:
            raw, stamped, count = self._pending
            self._pending = None
            if self._tree.unsure in _ENCODING_REASONS:
                self.found -= count
                self._missed = self._missed or self._tree.unsure
                return raw + text
            return stamped + text
        return text

    def _scan(self, buf: bytes, final: bool, stop: int = -1) -> tuple[list[bytes], int]:
        """Tokenize ``buf``; the output pieces, and where the bytes to keep begin.

        With ``stop``, tokenizing ends at the first point at or past it (whole-document use:
        nothing beyond the last candidate needs a tokenizer).
        """
        out: list[bytes] = []
        n = len(buf)
        pos = emit = 0
        hold = n
        # The C scanner passes over scripts that cannot be the widget; a trace sees them all.
        path = self._matcher.path if self._trace is None else b""
        while pos < n:
            if stop != -1 and pos >= stop:
                break
            st = self._state
            if st == _DATA and not self._tree.html_content:
                if self._tree.unsure is not None:
                    self._state = _UNSURE
                    continue
                pos, emit, hold = self._tree_data(buf, pos, final, out, emit)
                if hold != n:
                    break
            elif st == _DATA:
                pos = _scan_data(buf, pos, path)
                if pos >= n:
                    break
                # buf[pos] == '<' and what follows is a comment, a tokenizer-switching
                # start tag, or something the buffer cuts short.
                if buf.startswith(b"<!--", pos):
                    nxt = buf[pos + 4 : pos + 6]
                    if nxt[:1] == b">" or nxt == b"->":  # <!--> and <!---> end at once
                        pos += 5 if nxt[:1] == b">" else 6
                        continue
                    if not final and nxt in (b"", b"-"):  # '<!--' cut short: wait
                        hold = pos
                        break
                    self._state = _COMMENT
                    pos += 4
                    continue
                special = _SPECIAL_OPEN.match(buf, pos)
                if special is not None and special.group(1).lower() in tags.TREE_STOPS:
                    pos, hold = self._tree_start(buf, pos, special.end(), final)
                    if hold != n:
                        break
                    continue
                if special is not None:
                    pos, emit, hold = self._start_tag(buf, pos, special.group(1), final, out, emit)
                    if hold != n:
                        break
                    continue
                following = buf[pos + 1 : pos + 2]
                if not final and n - pos < 4 and b"<!--".startswith(buf[pos:]):
                    hold = pos  # '<!' or '<!-' at the very end: a comment or not?
                    break
                if following in (b"!", b"?") or (
                    following == b"/" and pos + 2 < n and not _is_alpha(buf[pos + 2])
                ):
                    self._state = _BOGUS  # bogus comment or doctype: ends at the next '>'
                    pos += 2
                    continue
                if following == b"/" and pos + 2 < n:  # end tag cut by the buffer
                    self._drain = _TagDrain(_TagDrain.TAGNAME, _DATA, b"")
                    self._state = _DRAIN
                    pos += 2
                    continue
                if following and _is_alpha(following[0]):
                    name_end = _RUN_TAG_NAME.match(buf, pos + 1).end()  # type: ignore[union-attr]
                    could_be_special = name_end == n and any(
                        raw.startswith(buf[pos + 1 : name_end].lower()) for raw in _STOP_NAMES
                    )
                    if not could_be_special or n - pos > MAX_TAG_BYTES:
                        self._drain = _TagDrain(_TagDrain.TAGNAME, _DATA, b"")
                        self._state = _DRAIN
                        pos += 1
                        continue
                # '<' or '</' or a possible raw-text tag name at the very end: wait for more
                if final:
                    pos = n
                else:
                    hold = pos
                break
            elif st == _COMMENT:
                m = _COMMENT_END.search(buf, pos)
                if m is None:
                    hold = max(pos, n - 3)
                    break
                pos = m.end()
                self._state = _DATA
            elif st == _BOGUS:
                gt = buf.find(b">", pos)
                if gt == -1:
                    break
                pos = gt + 1
                self._state = _DATA
            elif st == _SCRIPT:
                pos, hold = self._script_data(buf, pos, n)
                if hold != n:
                    break
            elif st == _RAW:
                assert self._raw_end is not None
                m = self._raw_end.search(buf, pos)
                if m is None:
                    hold = max(pos, n - 11)
                    break
                pos = m.start()
                self._state = _DATA
            elif st == _HELD:
                pos, emit, hold = self._resume_tag(buf, final, out, emit)
                if hold != n:
                    break
            elif st == _CDATA:
                end = buf.find(b"]]>", pos)
                if end == -1:
                    hold = max(pos, n - 2)
                    break
                pos = end + 3
                self._state = _DATA
            elif st == _UNSURE:
                self._look_for_missed(buf, pos)
                break
            elif st == _DRAIN:
                assert self._drain is not None
                end = self._drain.run(buf, pos)
                if end == -1:
                    break
                pos = end
                self._enter(self._drain.after, self._drain.after_name)
                self._drain = None
            else:  # _PLAINTEXT: the rest of the document is text
                break
        if final:
            hold = n
        elif stop != -1:
            hold = min(hold, max(pos, emit))
        out.append(buf[emit:hold])
        return out, hold

    def _tree_data(
        self, buf: bytes, pos: int, final: bool, out: list[bytes], emit: int
    ) -> tuple[int, int, int]:
        """One token of the data state where the tree builder decides (foreign content, a
        select): every tag goes through :class:`foreign.Tree`. (pos, emit, hold)."""
        n = len(buf)
        lt = buf.find(b"<", pos)
        if lt != pos:
            self._tree.text()
        if lt == -1:
            return n, emit, n
        rest = buf[lt : lt + len(_CDATA_OPEN)]
        cut = not final and len(rest) < len(_CDATA_OPEN)
        if cut and (_CDATA_OPEN.startswith(rest) or b"<!--".startswith(rest[:4])):
            return lt, emit, lt  # '<!' '<![CD' '<!-': which construct is it?
        if rest.startswith(b"<!--"):
            return self._comment_open(buf, lt, final), emit, n
        if rest == _CDATA_OPEN:
            self._state = _CDATA if self._tree.cdata() else _BOGUS
            return lt + (len(_CDATA_OPEN) if self._state == _CDATA else 2), emit, n
        following = buf[lt + 1 : lt + 3]
        if following[:1] == b"/" and len(following) == 2 and _is_alpha(following[1]):
            pos, hold = self._tree_end(buf, lt, final)
            return pos, emit, hold
        if following[:1] in (b"!", b"?", b"/") and len(following) == 2:
            if following == b"/>":
                return lt + 3, emit, n
            self._state = _BOGUS
            return lt + 2, emit, n
        if following and _is_alpha(following[0]):
            name_end = _RUN_TAG_NAME.match(buf, lt + 1).end()  # type: ignore[union-attr]
            pos, hold = self._tree_start(buf, lt, name_end, final)
            return pos, emit, hold
        if not following or (following[:1] in (b"!", b"?", b"/") and len(following) < 2):
            if final:
                return n, emit, n
            return lt, emit, lt
        self._tree.text()  # a '<' that starts nothing is text
        return lt + 1, emit, n

    def _hold_tag(self, buf: bytes, lt: int, name_end: int, kind: int) -> None:
        """Keep an incomplete start tag from ``lt`` for the next chunk. The tag states run
        over it from the next chunk on, resumable, so that each byte is read once by them
        (_resume_tag); a whole document, which has no next chunk, never pays for them."""
        self._drain = _TagDrain(_TagDrain.TAGNAME, _RAW if kind == _HELD_SCRIPT else _DATA, b"")
        self._held_scanned = name_end - lt
        self._held_kind = kind
        self._state = _HELD

    def _resume_tag(
        self, buf: bytes, final: bool, out: list[bytes], emit: int
    ) -> tuple[int, int, int]:
        """The held start tag at ``buf[0]`` with more bytes after it. (pos, emit, hold)."""
        assert self._drain is not None
        n = len(buf)
        end = self._drain.run(buf, self._held_scanned)
        if end == -1 and not final and n <= MAX_TAG_BYTES:
            self._held_scanned = n
            return 0, emit, 0
        name_end = _RUN_TAG_NAME.match(buf, 1).end()  # type: ignore[union-attr]
        self._state = _DATA
        if end == -1:  # too long, or cut by the end of the document: not the widget
            if self._held_kind == _HELD_TREE and not final:
                self._tree.give_up(f"a tag longer than {MAX_TAG_BYTES} bytes")
                self._state = _UNSURE
                return n, emit, n
            self._drain.after_name = buf[1:name_end].lower()
            self._state = _DRAIN
            return n, emit, n
        if self._held_kind == _HELD_SCRIPT:
            return self._start_tag(buf, 0, buf[1:name_end], final, out, emit, end)
        pos, hold = self._tree_start(buf, 0, name_end, final, end)
        return pos, emit, hold

    def _comment_open(self, buf: bytes, lt: int, final: bool) -> int:
        """After '<!--' at ``lt`` (with what follows it in ``buf``, or ``final``): ``<!-->``
        and ``<!--->`` end at once, anything else opens a comment."""
        nxt = buf[lt + 4 : lt + 6]
        if nxt[:1] == b">":
            return lt + 5
        if nxt == b"->":
            return lt + 6
        self._state = _COMMENT
        return lt + 4

    def _tree_end(self, buf: bytes, lt: int, final: bool) -> tuple[int, int]:
        """An end tag where the tree decides: the tree sees its name, the rest is drained.
        (pos, hold)"""
        n = len(buf)
        name_end = _RUN_TAG_NAME.match(buf, lt + 2).end()  # type: ignore[union-attr]
        if name_end == n and not final and n - lt <= MAX_TAG_BYTES:
            return lt, lt  # the name goes on in the next chunk
        if self._own_end:
            self._own_end = False
        else:
            self._tree.end_tag(buf[lt + 2 : name_end].lower())
        self._drain = _TagDrain(_TagDrain.BAN, _DATA, b"")
        self._state = _DRAIN
        return name_end, n

    def _tree_start(
        self, buf: bytes, lt: int, name_end: int, final: bool, end: int = -1
    ) -> tuple[int, int]:
        """A start tag the tree must see whole (its attributes and '/>' matter). (pos, hold).
        ``end``: where the tag ends, when a held tag's states found it already."""
        n = len(buf)
        if end == -1:
            end = _tag_end(buf, name_end) if name_end < n else -1
        if end == -1:
            if not final and n - lt <= MAX_TAG_BYTES:
                self._hold_tag(buf, lt, name_end, _HELD_TREE)
                return lt, lt
            if not final:
                self._tree.give_up(f"a tag longer than {MAX_TAG_BYTES} bytes")
            self._state = _UNSURE
            return n, n
        name = buf[lt + 1 : name_end].lower()
        attrs = _attributes(buf, name_end, end)
        closing = buf[end - 2 : end] == b"/>" and not (
            attrs and attrs[-1].end == end - 1 and buf[end - 2] == 0x2F
        )
        action = self._tree.start_tag(name, _lookup(attrs), closing)
        if name == tags.SCRIPT:
            self._script_not_stamped(buf, lt, end)
        if action == foreign.SWITCH:
            # Its end tag closes it as the text insertion mode does, not through the tree.
            self._own_end = name != tags.PLAINTEXT
            self._enter(_RAW, name)
        elif self._tree.unsure is not None:
            self._state = _UNSURE
        return end, n

    def _script_not_stamped(self, buf: bytes, lt: int, end: int) -> None:
        """A ``<script>`` tag where none is stamped (foreign content, after a give-up)."""
        tag = buf[lt:end]
        reason = self._tree.unsure or "inside SVG/MathML foreign content"
        if self._trace is not None:
            self._trace(TagReport(self._offset + lt, 0, 0, tag, False, reason))
        if self._missed is None and self._matcher.looks_like(tag):
            self._missed = reason

    def _look_for_missed(self, buf: bytes, pos: int) -> None:
        """After a give-up: note it as the reason for a miss if a widget-like tag follows."""
        if self._missed is not None:
            return
        window = self._lookback + buf[pos:]
        at = _last_candidate(window, len(window), self._matcher.path)
        if at != -1 and self._matcher.looks_like(window[at : at + 2048]):
            self._missed = self._tree.unsure
        self._lookback = window[-PRESCAN_BYTES:]

    def _enter(self, state: int, name: bytes) -> None:
        """Switch to the state a start tag named ``name`` leaves the tokenizer in."""
        if state == _RAW and name == b"script":
            self._state, self._script = _SCRIPT, _SCRIPT_NORMAL
        elif state == _RAW and name == b"plaintext":
            self._state = _PLAINTEXT
        elif state == _RAW:
            self._state, self._raw_end = _RAW, _RAW_END[name]
        else:
            self._state = state

    def _start_tag(
        self,
        buf: bytes,
        pos: int,
        name: bytes,
        final: bool,
        out: list[bytes],
        emit: int,
        end: int = -1,
    ) -> tuple[int, int, int]:
        """A start tag that switches the tokenizer; the widget's is stamped. (pos, emit, hold).
        ``end``: where the tag ends, when a held tag's states found it already."""
        n = len(buf)
        name = name.lower()
        if end == -1:
            end = _tag_end(buf, pos + 1 + len(name))
        if end == -1:  # incomplete: hold a <script> (it may be the widget), drain the others
            if name == b"script" and not final and n - pos <= MAX_TAG_BYTES:
                self._hold_tag(buf, pos, pos + 7, _HELD_SCRIPT)
                return pos, emit, pos
            self._drain = _TagDrain(_TagDrain.BAN, _RAW, name)
            self._state = _DRAIN
            return pos + 1 + len(name), emit, n
        if name == b"script" and (self._trace is not None or self._matcher.maybe(buf, pos, end)):
            reason = self._matcher.why_not(buf, pos, end)
            if self._trace is not None:
                tag = buf[pos:end]
                self._trace(TagReport(self._offset + pos, 0, 0, tag, reason is None, reason or ""))
            if (
                reason is not None
                and self._missed is None
                and self._matcher.looks_like(buf[pos:end])
            ):
                self._missed = reason
            if reason is None:
                token = self._resolve_token()
                if token is not None:
                    out.append(buf[emit:pos])
                    out.append(_stamp(buf, pos, end, token))
                    emit = end
                    self.found += 1
        self._enter(_RAW, name)
        return end, emit, n

    def _resolve_token(self) -> bytes | None:
        if self._token is None and self._token_source is not None:
            source, self._token_source = self._token_source, None
            value = source() if callable(source) else source
            self._token = None if value is None else _encode_token(value)
        return self._token

    def _script_data(self, buf: bytes, pos: int, n: int) -> tuple[int, int]:
        """Script data and its escaped states (WHATWG 13.2.5.4, .15-.31). (pos, hold)."""
        while True:
            sub = self._script
            pattern = (
                _SCRIPT_DATA
                if sub == _SCRIPT_NORMAL
                else _SCRIPT_ESCAPED
                if sub == _SCRIPT_ESC
                else _SCRIPT_DOUBLE
            )
            m = pattern.search(buf, pos)
            if m is None:
                return pos, max(pos, n - 9)
            found = m.group()
            if found == b"<!--":
                # The dashes of '<!--' already count towards '-->' (escaped dash dash).
                self._script, pos = _SCRIPT_ESC, m.start() + 2
            elif found == b"-->":
                self._script, pos = _SCRIPT_NORMAL, m.end()
            elif found[1:2] == b"/":
                if sub == _SCRIPT_DBL:
                    self._script, pos = _SCRIPT_ESC, m.end()
                else:  # the end tag: data state parses it as an (end) tag
                    self._state = _DATA
                    return m.start(), n
            else:  # '<script' + delimiter inside escaped script data
                self._script, pos = _SCRIPT_DBL, m.end()


def _is_alpha(c: int) -> bool:
    return 0x61 <= (c | 0x20) <= 0x7A


# --- whole documents -----------------------------------------------------------------------


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
    while (begin := _last_candidate(doc, hi, matcher.path)) != -1:
        end = _tag_end(doc, begin + 7, hi)
        if end == -1:
            return begin + 1
        if matcher.is_widget(doc, begin, end):
            return end
        hi = begin
    return -1


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
    rewriter = HTMLRewriter(token, widget_src=widget_src, project_id=project_id)
    last = _last_candidate_end(doc, rewriter._matcher)
    if last == -1:
        return doc
    rewriter._check_encoding(doc[:PRESCAN_BYTES])
    pieces, hold = rewriter._scan(doc, final=False, stop=last)
    if not rewriter.found:
        return doc
    pieces.append(doc[hold:])
    return b"".join(pieces)


def find_widget(
    html: bytes, *, widget_src: str = DEFAULT_WIDGET_SRC, project_id: str | None = None
) -> bool:
    """Whether ``html`` holds a widget tag that :func:`rewrite_html` would stamp."""
    doc = bytes(html)
    rewriter = HTMLRewriter("", widget_src=widget_src, project_id=project_id)
    last = _last_candidate_end(doc, rewriter._matcher)
    if last != -1:
        rewriter._check_encoding(doc[:PRESCAN_BYTES])
        rewriter._scan(doc, final=False, stop=last)
    return rewriter.found > 0


# --- explaining decisions (for ``reqio-middleware check``) ---------------------------------


@dataclass(frozen=True)
class TagReport:
    """One widget-like ``<script`` in a page, where it is, and what the rewriter decides."""

    offset: int
    line: int
    col: int
    tag: bytes
    rewritten: bool
    reason: str  # empty when rewritten


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
