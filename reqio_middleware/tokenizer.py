"""The HTML tokenizer's states (WHATWG 13.2.5), as patterns and in C.

The scanner (:mod:`.scanner`) is driven by a handful of functions that each run one state, or
a run of states, over a buffer: the data state in bulk (``_scan_data``; ``_scan_known``, which
also passes over copies of a tag already stamped), the attribute states of one tag
(``_tag_end``; ``_tag_states``, resumable for a tag cut by a chunk boundary), script data and
its escaped states (``_script_states``, resumable), the whole-document candidate search
(``_last_candidate``), and the runs over foreign content, HTML inside its integration points
and ``<select>`` content that the tree model needs only in summary (``_scan_foreign``,
``_scan_point``, ``_scan_select``, written in :mod:`.treeruns`). Each has a pure-Python twin,
its ``NAME_pattern``, written as regular expressions (their building blocks are in
:mod:`.patterns`); the C versions in ``_speedups.c`` are used when the extension was built
(:data:`SCANNER`). Tests swap the twins in to check that both give the same bytes. The tag
names every state acts on come from :mod:`.tags`.

Why a hand-written tokenizer and not ``html.parser``: ``html.parser`` is ~100x slower, is not
byte-exact, and does not follow the WHATWG tokenizer (comments ending in ``--!>``, the
escaped states of script data, attributes without quotes...).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from .patterns import (
    _BULK,
    _NAME,
    _RUN_TAG_NAME,
    _SPECIAL,
    _TAG_END,
    _VALUE,
    _compile,
    _pattern,
)
from .treeruns import POINT_TEXT as POINT_TEXT
from .treeruns import RUN_AMBIGUOUS as RUN_AMBIGUOUS
from .treeruns import RUN_MATH as RUN_MATH
from .treeruns import RUN_PLAIN as RUN_PLAIN
from .treeruns import RUN_POINT as RUN_POINT
from .treeruns import RUN_TOUCHED as RUN_TOUCHED
from .treeruns import RUN_WHOLE as RUN_WHOLE
from .treeruns import ForeignRun as ForeignRun
from .treeruns import PointRun as PointRun
from .treeruns import _scan_foreign_pattern as _scan_foreign_pattern
from .treeruns import _scan_point_pattern as _scan_point_pattern
from .treeruns import _scan_select_pattern as _scan_select_pattern


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
    "_scan_select",
    "_scan_foreign",
    "_scan_point",
)

_SPECIAL_OPEN = re.compile(b"<(" + _SPECIAL + b")")
_ATTR = _compile(_pattern(rb"[WS/]*({NAME})(?:[WS]*=[WS]*({VALUE}))?", NAME=_NAME, VALUE=_VALUE))
_SCRIPT_CANDIDATE = re.compile(_pattern(rb"<script(?=[WS/>])"), re.IGNORECASE)
_END_SCRIPT = _pattern(rb"</script[WS/>]")
_SCRIPT_DATA = re.compile(b"<!--|" + _END_SCRIPT, re.IGNORECASE)
_SCRIPT_ESCAPED = re.compile(b"-->|" + _END_SCRIPT + _pattern(rb"|<script[WS/>]"), re.IGNORECASE)
_SCRIPT_DOUBLE = re.compile(b"-->|" + _END_SCRIPT, re.IGNORECASE)
#: The sub-states of script data (``_script_states``), and its answer at the end tag.
SCRIPT_NORMAL, SCRIPT_ESCAPED, SCRIPT_DOUBLE = range(3)
SCRIPT_END = -1
_SCRIPT_STATES = (_SCRIPT_DATA, _SCRIPT_ESCAPED, _SCRIPT_DOUBLE)
# Resumable pieces for a tag cut by a chunk boundary (see _TagDrain).
_RUN_NAME = re.compile(_pattern(rb"[^WS/>=]*"))
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
_scan_select: Callable[[bytes, int, int], int] = _scan_select_pattern
_scan_foreign: Callable[..., ForeignRun] = _scan_foreign_pattern
_scan_point: Callable[..., PointRun] = _scan_point_pattern
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
    _scan_select = _speedups.scan_select
    _scan_foreign = _speedups.scan_foreign
    _scan_point = _speedups.scan_point

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
