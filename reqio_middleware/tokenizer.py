"""The HTML tokenizer's states (WHATWG 13.2.5), as patterns and in C.

The scanner (:mod:`.scanner`) is driven by a handful of functions that each run one state, or
a run of states, over a buffer: the data state in bulk (``_scan_data``; ``_scan_known``, which
also passes over copies of a tag already stamped), the attribute states of one tag
(``_tag_end``; ``_tag_states``, resumable for a tag cut by a chunk boundary), script data and
its escaped states (``_script_states``, resumable), and the whole-document candidate search
(``_last_candidate``). Each has a pure-Python twin, its ``NAME_pattern``, written as regular
expressions; the C versions in ``_speedups.c`` are used when the extension was built
(:data:`SCANNER`). Tests swap the twins in to check that both give the same bytes. The tag
names every state acts on come from :mod:`.tags`.

Why a hand-written tokenizer and not ``html.parser``: ``html.parser`` is ~100x slower, is not
byte-exact, and does not follow the WHATWG tokenizer (comments ending in ``--!>``, the
escaped states of script data, attributes without quotes...).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable

from . import tags

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
def _compile(pattern: bytes) -> re.Pattern[bytes]:
    """Compile a pattern, making each quantifier after a class or group possessive where the
    ``re`` module has them (3.11+). The patterns split a string one way only, so possessive
    and plain quantifiers match the same; possessive ones skip the bookkeeping for
    backtracking, which makes long runs of the data state several times faster."""
    if sys.version_info >= (3, 11):
        pattern = _QUANTIFIER.sub(rb"\1+", pattern)
    return re.compile(pattern)


# A '*', '+' or '?' right after a class or group, not already possessive or lazy.
_QUANTIFIER = re.compile(rb"(?<=[\])])([*+?])(?![+?])")

_BULK = _compile(
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


def _names(names: frozenset[bytes]) -> bytes:
    return b"(?i:" + b"|".join(sorted(names)) + _pattern(rb")(?=[WS/>])")


# The same for the data state inside a <select> (HTML content): every tag passes but the
# start tags whose handling differs between select parsings, <select> itself and </select>.
_BULK_SELECT = _compile(
    _pattern(
        rb"(?:[^<]+"
        rb"|<+(?=[^a-zA-Z!/?])"
        rb"|<(?!{STOPS})[a-zA-Z]{TAG_NAME}{REST}"
        rb"|</(?!{SELECT})[a-zA-Z]{TAG_NAME}{REST}"
        rb"|</>"
        rb"|</(?=[^a-zA-Z>])[^>]*>"
        rb"|<!(?!--)[^>]*>"
        rb"|<\?[^>]*>"
        rb")*",
        TAG_NAME=_TAG_NAME,
        REST=_TAG_REST,
        STOPS=_names(tags.SELECT_UNSURE | {tags.SELECT}),
        SELECT=_names(frozenset({tags.SELECT})),
    )
)
# And inside an ordinary SVG/MathML element (not an integration point): text, a '<' that
# starts nothing, CDATA sections (text there), and self-closing start tags with quoted or no
# attribute values, which the tree pops at once, unless their name breaks out or may switch
# the tokenizer elsewhere.
_BULK_FOREIGN = _compile(
    _pattern(
        rb"(?:[^<]+"
        rb"|<(?=[^a-zA-Z!/?])"
        rb"|<!\[CDATA\[[^\]]*(?:\](?!\]>)[^\]]*)*\]\]>"
        rb"""|<(?!{KEEP})[a-zA-Z][^WS/>]*(?![^WS/>])"""
        rb"""(?:[WS]+[^WS/>="'<`]+(?![^WS/>="'<`])(?:="[^"]*"|='[^']*')?)*[WS]*/>"""
        rb")*",
        KEEP=_names(tags.BREAKOUTS | tags.SWITCHING | {tags.FONT}),
    )
)


def _scan_data_pattern(buf: bytes, pos: int, path: bytes = b"") -> int:
    """Where the data-state run from ``pos`` ends (see ``_BULK``). The C scanner also passes
    over ``<script>`` elements that cannot be the widget's (given ``path``); this leaves them
    all to the rewriter, which is slower but never wrong."""
    return _BULK.match(buf, pos).end()  # type: ignore[union-attr]


def _scan_known_pattern(
    buf: bytes, pos: int, path: bytes, known: bytes, stamped: bytes
) -> tuple[int, int, bytes]:
    """``_scan_data`` that also passes over the ``<script>`` elements whose start tag is
    ``known`` byte for byte (one the rewriter stamped already), when their end tag is in
    ``buf``: (where the run stops, how many such tags it passed, ``buf[pos:stop]`` with each
    of them replaced by ``stamped``, or b"" when there were none).

    The tag states read a tag left to right up to its '>', so bytes that begin with the whole
    of ``known`` (a complete start tag) hold that very tag: the same bytes, the same verdict.
    """
    start, between = pos, []
    while True:
        stop = _scan_data_pattern(buf, pos, path)
        if not known or not buf.startswith(known, stop):
            break
        end, sub = _script_states_pattern(buf, stop + len(known), SCRIPT_NORMAL)
        if sub != SCRIPT_END:
            break
        between.append(buf[start:stop])
        start, pos = stop + len(known), end
    if not between:
        return stop, 0, b""
    between.append(buf[start:stop])
    return stop, len(between) - 1, stamped.join(between)


def _script_states_pattern(buf: bytes, pos: int, sub: int) -> tuple[int, int]:
    """Script data and its escaped states (WHATWG 13.2.5.4, .15-.31) from the sub-state ``sub``
    at ``pos``: (where ``</script`` begins, :data:`SCRIPT_END`) at the end tag; otherwise
    (pos, sub) after the last change of sub-state, where reading resumes with more bytes
    (no match the end of ``buf`` cuts short begins before its last 9 bytes)."""
    patterns = _SCRIPT_STATES
    while True:
        m = patterns[sub].search(buf, pos)
        if m is None:
            return pos, sub
        found = m.group()
        if found == b"<!--":
            # The dashes of '<!--' already count towards '-->' (escaped dash dash).
            sub, pos = SCRIPT_ESCAPED, m.start() + 2
        elif found == b"-->":
            sub, pos = SCRIPT_NORMAL, m.end()
        elif found[1:2] != b"/":  # '<script' + delimiter inside escaped script data
            sub, pos = SCRIPT_DOUBLE, m.end()
        elif sub == SCRIPT_DOUBLE:
            sub, pos = SCRIPT_ESCAPED, m.end()
        else:  # the end tag: the data state parses it as an (end) tag
            return m.start(), SCRIPT_END


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
_ACCELERATED = (
    "_scan_data",
    "_scan_known",
    "_tag_end",
    "_last_candidate",
    "_tag_states",
    "_script_states",
)

_SPECIAL_OPEN = re.compile(b"<(" + _SPECIAL + b")")
_TAG_END = _compile(_TAG_REST)
_ATTR = _compile(_pattern(rb"[WS/]*({NAME})(?:[WS]*=[WS]*({VALUE}))?", NAME=_NAME, VALUE=_VALUE))
_COMMENT_END = re.compile(rb"--!?>")
_SCRIPT_CANDIDATE = re.compile(_pattern(rb"<script(?=[WS/>])"), re.IGNORECASE)
_END_SCRIPT = _pattern(rb"</script[WS/>]")
_SCRIPT_DATA = re.compile(b"<!--|" + _END_SCRIPT, re.IGNORECASE)
_SCRIPT_ESCAPED = re.compile(b"-->|" + _END_SCRIPT + _pattern(rb"|<script[WS/>]"), re.IGNORECASE)
_SCRIPT_DOUBLE = re.compile(b"-->|" + _END_SCRIPT, re.IGNORECASE)
#: The sub-states of script data (``_script_states``), and its answer at the end tag.
SCRIPT_NORMAL, SCRIPT_ESCAPED, SCRIPT_DOUBLE = range(3)
SCRIPT_END = -1
_SCRIPT_STATES = (_SCRIPT_DATA, _SCRIPT_ESCAPED, _SCRIPT_DOUBLE)
_RAW_END = {
    name: re.compile(_pattern(rb"</{NAME}[WS/>]", NAME=name), re.IGNORECASE)
    for name in sorted(tags.RAWTEXT | tags.RCDATA | {tags.SCRIPT})
}
# Resumable pieces for a tag cut by a chunk boundary (see _TagDrain).
_RUN_NAME = re.compile(_pattern(rb"[^WS/>=]*"))
_RUN_TAG_NAME = re.compile(_TAG_NAME)
_RUN_UNQUOTED = re.compile(_pattern(rb"[^WS>]*"))
_RUN_NAMES = re.compile(rb"[^/>=]*")
_RUN_WS = re.compile(_pattern(rb"[WS]*"))
_WS_BYTES = frozenset(b"\t\n\f\r ")
_MAYBE_ENCODED = re.compile(rb"[&\t\n\r]")


def _may_be_widget(buf: bytes, start: int, end: int, path: bytes) -> bool:
    """False when the tag ``buf[start:end]`` cannot be the widget: its ``src`` cannot name the
    widget's ``path``.

    The path is in the tag literally unless it is written with character references or split
    by tabs or newlines (which the URL parser drops), so this skips the attribute parsing for
    every other script on the page. An empty ``path`` lets every tag through.
    """
    return buf.find(path, start, end) != -1 or _MAYBE_ENCODED.search(buf, start, end) is not None


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


# The functions the scanner calls, through this module (so tests can swap the twins in).
_scan_data: Callable[[bytes, int, bytes], int] = _scan_data_pattern
_scan_known: Callable[[bytes, int, bytes, bytes, bytes], tuple[int, int, bytes]]
_scan_known = _scan_known_pattern
_script_states: Callable[[bytes, int, int], tuple[int, int]] = _script_states_pattern
_tag_end: Callable[..., int] = _tag_end_pattern
_last_candidate: Callable[[bytes, int, bytes], int] = _last_candidate_pattern
_tag_states: Callable[[bytes, int, int], int] = _tag_states_pattern
_MISSING_C: ImportError | None = None
try:  # the same states in C (reqio_middleware/_speedups.c), built when a compiler was there
    from . import _speedups
except ImportError as exc:  # pragma: no cover - depends on the install
    _MISSING_C = exc
else:
    _scan_data = _speedups.scan_data
    _scan_known = _speedups.scan_known
    _script_states = _speedups.script_states
    _tag_end = _speedups.tag_end
    _last_candidate = _speedups.last_candidate
    _tag_states = _speedups.tag_states

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


def _is_alpha(c: int) -> bool:
    return 0x61 <= (c | 0x20) <= 0x7A
