"""The runs over content where the tree builder, not the tokenizer alone, decides what the
bytes are: ``<select>`` content, SVG/MathML foreign content and the HTML inside its
integration points. These are the pure-Python twins of ``scan_select``, ``scan_foreign`` and
``scan_point`` in ``_speedups.c``; :mod:`.tokenizer` registers whichever the install has, and
the scanner applies what a run reports to its tree model (:mod:`.foreign`).
"""

from __future__ import annotations

import functools
import re

from . import tags
from .patterns import (
    _BULK,
    _RAW_END,
    _RUN_TAG_NAME,
    _TAG_END,
    _TAG_NAME,
    _TAG_REST,
    _TAG_REST_COMMON,
    _after_gt,
    _comment_after,
    _compile,
    _is_alpha,
    _pattern,
)


def _names(names: frozenset[bytes]) -> bytes:
    return b"(?i:" + b"|".join(sorted(names)) + _pattern(rb")(?=[WS/>])")


# The same for the data state inside a <select> (HTML content): every tag passes, and whole
# comments, but the start tags whose handling differs between select parsings, <select>
# itself, <base> (which the scanner notes) and </select>.
_BULK_SELECT = _compile(
    _pattern(
        rb"(?:[^<]+"
        rb"|<+(?=[^a-zA-Z!/?])"
        rb"|<(?!{STOPS})[a-zA-Z]{TAG_NAME}{REST}"
        rb"|</(?!{SELECT})[a-zA-Z]{TAG_NAME}{REST}"
        rb"|</>"
        rb"|</(?=[^a-zA-Z>])[^>]*>"
        rb"|<!--(?=[\s\S]{2})(?:>|->|[\s\S]*?--!?>)"
        rb"|<!(?!--)[^>]*>"
        rb"|<\?[^>]*>"
        rb")*",
        TAG_NAME=_TAG_NAME,
        REST=_TAG_REST,
        STOPS=_names(tags.SELECT_RUN_STOPS),
        SELECT=_names(frozenset({tags.SELECT})),
    )
)
# Inside an ordinary SVG/MathML element: text, '<' that starts nothing, comments, bogus
# comments, CDATA sections (unless the tree model is ambiguous, when SWITCHING names stop it
# too) and self-closing start tags in the common attribute form, which the tree pops at once,
# unless their name stops the run (see _scan_foreign_pattern).
_RUN_ATTRS = _pattern(
    rb"""(?:[WS]+(?![WS])[^WS/>="'<`]+(?![^WS/>="'<`])(?:="[^"]*"|='[^']*')?)*[WS]*"""
)
_RUN_NAME_MAX = 64


_RUN_ELEMENT_NAME = _pattern(
    rb"[a-zA-Z][^WS/>]{0,{MAX}}(?![^WS/>])", MAX=b"%d" % (_RUN_NAME_MAX - 1)
)


_STOPS_AMBIGUOUS = tags.FOREIGN_RUN_STOPS | tags.SWITCHING


def _trie(names: frozenset[bytes]) -> bytes:
    """An alternation of ``names`` (lowercase) grouped by their first letters, which the re
    module tells apart at once: checking a tag name against ~60 names costs a few steps, not
    ~60 (a regular alternation tries each in turn)."""
    firsts = sorted({name[:1] for name in names})
    branches = []
    for first in firsts:
        rests = frozenset(name[1:] for name in names if name[:1] == first)
        tail = _trie(rests - {b""}) if rests - {b""} else b""
        optional = b"?" if b"" in rests and tail else b""
        branches.append(re.escape(first) + (b"(?:" + tail + b")" + optional if tail else b""))
    return b"|".join(branches)


def _names_fast(names: frozenset[bytes]) -> bytes:
    return b"(?i:" + _trie(names) + _pattern(rb")(?=[WS/>])")


def _run_stops(ambiguous: bool) -> frozenset[bytes]:
    return _STOPS_AMBIGUOUS if ambiguous else tags.FOREIGN_RUN_STOPS


def _inert_atoms(ambiguous: bool, unique: bool = False) -> bytes:
    """What leaves the tree model as it is in an ordinary element, as alternatives. With
    ``unique``, a string splits into them in one way only, so that an element that fails to
    close cannot make the match try others (which would take a comment or CDATA section past
    its end) or take exponential time; and tag names are not checked against the stops (the
    caller checks them afterwards, which is cheaper than at every tag)."""
    if unique:
        text = rb"[^<]+(?![^<])|<+(?=[^a-zA-Z!/?<])|<+(?=<(?:[a-zA-Z!/?]|(?![\s\S])))"
        comment = rb"(?![>]|->)(?:(?!--!?>)[\s\S])*--!?>"
        cdata = rb"(?:(?!\]\]>)[\s\S])*\]\]>"
    else:  # the first end found is the only one: nothing after it in the match can fail
        text = rb"[^<]+|<+(?=[^a-zA-Z!/?])"
        comment = rb"[\s\S]*?--!?>"
        cdata = rb"[\s\S]*?\]\]>"
    return _pattern(  # text, then self-closing tags: the most common atoms
        text + rb"|<{STOPS}{NAME}{ATTRS}/>"
        rb"|</>"
        rb"|</(?=[^a-zA-Z>])[^>]*>"
        rb"|<\?[^>]*>"
        rb"|<!(?=[\s\S]{7})(?:--(?:>|->|{COMMENT})|(?!--|\[CDATA\[)[^>]*>)"
        + (b"" if ambiguous else rb"|<!\[CDATA\[{CDATA}"),
        COMMENT=comment,
        CDATA=cdata,
        STOPS=b"" if unique else b"(?!" + _names_fast(_run_stops(ambiguous)) + b")",
        NAME=_RUN_ELEMENT_NAME,
        ATTRS=_RUN_ATTRS,
    )


# Once the model is ambiguous, a tokenizer-switching start tag (foreign.STRICT) opens raw
# text that must hold no '<' before its end tag: such an element leaves the model as it is.
_STRICT_ELEMENTS = b"".join(
    _pattern(
        rb"|<(?i:{NAME})(?![^WS/>]){ATTRS}/?>[^<]*</(?i:{NAME})(?=[WS/>]){REST}",
        NAME=name,
        ATTRS=_RUN_ATTRS,
        REST=_TAG_REST,
    )
    for name in sorted(tags.SWITCHING - {tags.SCRIPT, tags.PLAINTEXT})
)
_RUN_INERT = _compile(b"(?:" + _inert_atoms(False) + b")*")
_RUN_INERT_AMBIGUOUS = _compile(b"(?:" + _inert_atoms(True) + _STRICT_ELEMENTS + b")*")
#: How deep the whole elements the pattern twin passes over at once may nest.
_NEST = 4


@functools.cache
def _run_nested(ambiguous: bool, math: bool) -> re.Pattern[bytes]:
    """The inert atoms, and whole elements up to _NEST deep made of them, which push and pop
    one another. Once the model is ambiguous, integration points holding text may be among
    them. The caller checks the names used: no stop among them and, once the model is
    ambiguous, every element's remembered already."""
    points = tags.MATHML_TEXT_POINTS if math else tags.SVG_HTML_POINTS
    atoms = _inert_atoms(ambiguous, unique=True)
    atom = atoms
    for level in range(1, _NEST + 1):
        element = _pattern(
            rb"<(?P<e{L}>(?!{POINTS}){NAME}){ATTRS}>(?:{ATOM})*</(?i:(?P=e{L}))[WS]*>",
            L=b"%d" % level,
            POINTS=_names(points),
            NAME=_RUN_ELEMENT_NAME,
            ATTRS=_RUN_ATTRS,
            ATOM=atom,
        )
        leaf = _pattern(
            rb"|<(?P<p{L}>{POINTS}){ATTRS}>[^<]*</(?i:(?P=p{L}))[WS]*>",
            L=b"%d" % level,
            POINTS=_names(points - _run_stops(ambiguous)),
            ATTRS=_RUN_ATTRS,
        )
        atom = element + (leaf if ambiguous else b"") + b"|" + atoms  # tags first: the most common
    # Not made possessive: the re module of 3.11 mis-tracks groups in possessive repeats.
    return re.compile(b"(?:" + atom + b")*")


_RUN_START_NAMES = re.compile(_pattern(rb"<([a-zA-Z][^WS/>]*)"))
_RUN_END_NAMES = re.compile(_pattern(rb"</([a-zA-Z][^WS/>]*)"))
_RUN_START = _compile(_pattern(rb"<([a-zA-Z][^WS/>]*)(?![^WS/>]){ATTRS}(/?)>", ATTRS=_RUN_ATTRS))
_RUN_END = _compile(_pattern(rb"</([a-zA-Z][^WS/>]*)(?![^WS/>]){REST}", REST=_TAG_REST))
#: The flags of _scan_foreign: the open elements are MathML (else SVG); the tree model is
#: ambiguous (see foreign.py); they are the model's whole stack (so that, once the run has
#: closed them, it is in HTML content).
RUN_MATH, RUN_AMBIGUOUS, RUN_WHOLE = 1, 2, 4
#: What the top pushed element is: ordinary, an integration point, one that holds text.
RUN_PLAIN, RUN_POINT, RUN_TOUCHED = range(3)
#: The C version holds at most this many open elements and closed names from the caller.
_RUN_HALF_CAP = 64

#: _scan_foreign's result: (pos, kept, pushed, top, ambiguous, added, html, html_touched),
#: see below.
ForeignRun = tuple[
    int, int, tuple[bytes, ...], int, bool, tuple[bytes, ...], tuple[bytes, ...], int
]


_RAW_OPEN = re.compile(
    b"<("
    + b"|".join(sorted((tags.RAWTEXT | tags.RCDATA) - tags.NOTED))
    + _pattern(rb")(?=[WS/>])"),
    re.IGNORECASE,
)


# --- foreign content and <select> content --------------------------------------------------


def _scan_select_pattern(buf: bytes, pos: int, end: int) -> int:
    """Where the run over ``<select>`` content from ``pos`` ends, in ``buf[:end]`` (see
    ``_BULK_SELECT``)."""
    return _BULK_SELECT.match(buf, pos, end).end()  # type: ignore[union-attr]


class _Run:
    """The tree model's part a foreign-content run carries (see _scan_foreign_pattern)."""

    __slots__ = (
        "added",
        "ambiguous",
        "closed",
        "html",
        "html_touched",
        "kept",
        "math",
        "max_closed",
        "max_depth",
        "nested_from",
        "stack",
        "top",
        "unit",
        "unit_closed",
        "unit_from",
        "whole",
    )

    def __init__(
        self, opened: tuple[bytes, ...], flags: int, room: int, closed: tuple[bytes, ...], left: int
    ) -> None:
        if len(opened) > _RUN_HALF_CAP or len(closed) > _RUN_HALF_CAP:
            raise ValueError("open, closed: tuples of at most 64 names")
        self.stack = list(opened)
        self.kept = len(opened)
        self.max_depth = len(opened) + min(room, _RUN_HALF_CAP)
        self.top = RUN_PLAIN
        self.ambiguous = bool(flags & RUN_AMBIGUOUS)
        self.math = bool(flags & RUN_MATH)
        self.whole = bool(flags & RUN_WHOLE)
        self.closed = set(closed)
        self.max_closed = len(closed) + min(left, _RUN_HALF_CAP)
        self.added: list[bytes] = []
        self.nested_from = 0  # whole elements are not tried before this (see inert)
        #: HTML elements left open at the integration point on top (the run ends then), and
        #: which of them saw a start tag (see _scan_point_pattern).
        self.html: tuple[bytes, ...] = ()
        self.html_touched = 0
        #: The <svg>/<math> element being read from HTML content (where it began, the names
        #: remembered then), and the last one read that left the model as it found it.
        self.unit_from, self.unit_closed, self.unit = -1, 0, b""

    def inert(self, buf: bytes, pos: int, end: int) -> int:
        """After what, from ``pos``, leaves the model as it is (the top is ordinary): atoms
        (text, self-closing tags...) and, where a start tag stops them, whole elements."""
        flat = _RUN_INERT_AMBIGUOUS if self.ambiguous else _RUN_INERT
        while True:
            pos = flat.match(buf, pos, end).end()  # type: ignore[union-attr]
            if self.max_depth - len(self.stack) <= _NEST or pos < self.nested_from:
                return pos
            if pos + 1 >= end or not _is_alpha(buf[pos + 1]):
                return pos
            nested = _run_nested(self.ambiguous, self.math).match(buf, pos, end).end()  # type: ignore[union-attr]
            if nested == pos:
                return pos
            if not self._names_allowed(buf, pos, nested):
                self.nested_from = nested  # so that no byte is read by two failed tries
                return pos
            pos = nested

    def _names_allowed(self, buf: bytes, pos: int, end: int) -> bool:
        """Whether the tag names in ``buf[pos:end]`` (and any text that looks like one: a miss
        only costs the fast path) include no stop, and once the model is ambiguous, whether
        the names closed there are remembered already."""
        names = {n.lower() for n in set(_RUN_START_NAMES.findall(buf, pos, end))}
        if not names.isdisjoint(_run_stops(self.ambiguous)):
            return False
        closed = _RUN_END_NAMES.findall(buf, pos, end)
        return not self.ambiguous or self.closed.issuperset(n.lower() for n in set(closed))

    def start(self, name: bytes, closing: bool) -> bool:
        """A start tag (lowercase name, already checked against the stops); False to stop."""
        if closing:
            return True
        if len(self.stack) >= self.max_depth:
            return False
        root = not self.stack
        if root:
            self.math = name == tags.MATH
        points = tags.MATHML_TEXT_POINTS if self.math else tags.SVG_HTML_POINTS
        self.stack.append(name)
        self.top = RUN_POINT if not root and name in points else RUN_PLAIN
        return True

    def end(self, name: bytes) -> bool:
        """An end tag (lowercase name): pop to the element it closes; False to stop."""
        stack = self.stack
        if self.top == RUN_TOUCHED:  # text was read under HTML rules: it must close itself
            if stack[-1] != name:
                return False
            at = len(stack) - 1
        elif name in stack:
            at = len(stack) - 1 - stack[::-1].index(name)
        else:
            return False
        ambiguous = self.ambiguous or self.top == RUN_TOUCHED
        if ambiguous and not self.closed.issuperset(stack[at:]):  # most are remembered
            new = [n for n in reversed(stack[at:]) if n not in self.closed]
            new = list(dict.fromkeys(new))
            if len(self.closed) + len(new) > self.max_closed:
                return False
            self.closed.update(new)
            self.added += new
        self.ambiguous = ambiguous
        del stack[at:]
        self.kept = min(self.kept, at)
        self.top = RUN_PLAIN
        return True

    def point(self, buf: bytes, pos: int, end: int) -> int:
        """HTML content at the integration point on top: the point run from ``pos``, with the
        model's room and remembered names; where it stopped, or -1 at once."""
        flags = POINT_TEXT | (RUN_AMBIGUOUS if self.ambiguous else 0)
        room = self.max_depth - len(self.stack)
        stop, self.html, self.html_touched, base = _scan_point_pattern(
            buf, pos, end, room, flags, tuple(self.closed)
        )
        if base:
            self.top = RUN_TOUCHED
        return -1 if stop == pos else stop

    def note_root(self, pos: int) -> None:
        """After a token at ``pos``: where an ``<svg>``/``<math>`` opened from HTML content,
        the model as it always is there (not ambiguous), begins."""
        if self.stack and self.unit_from == -1 and not self.kept and not self.ambiguous:
            self.unit_from, self.unit_closed = pos, len(self.closed)

    def html_content(self, buf: bytes, pos: int, end: int) -> int:
        """The stack empty again at ``pos``: HTML content, as far as the data state runs, and
        any copies of the element just closed if it left the model as it found it (no name
        remembered since): a copy does the same. Icons and labels repeat on a page."""
        self.ambiguous = False
        if self.unit_from != -1 and len(self.closed) == self.unit_closed:
            self.unit = buf[self.unit_from : pos]
        self.unit_from = -1
        pos = _html_run(buf, pos, end)
        unit = self.unit
        while unit and pos + len(unit) <= end and buf.startswith(unit, pos):
            pos = _html_run(buf, pos + len(unit), end)
        return pos

    def result(self, pos: int) -> ForeignRun:
        pushed = tuple(self.stack[self.kept :])
        top = self.top if pushed else RUN_PLAIN
        added = tuple(self.added)
        return pos, self.kept, pushed, top, self.ambiguous, added, self.html, self.html_touched


def _scan_foreign_pattern(
    buf: bytes,
    pos: int,
    end: int,
    opened: tuple[bytes, ...],
    flags: int,
    room: int,
    closed: tuple[bytes, ...],
    closed_room: int,
) -> ForeignRun:
    """The run over foreign content from ``pos`` in ``buf[:end]``, and what it did to the tree
    model: ``(pos, kept, pushed, top, ambiguous, added, html, html_touched)``.

    ``opened`` are the open ordinary SVG/MathML elements at the top of the model's stack (none:
    ``pos`` is at the ``<svg``/``<math`` that opens foreign content in HTML content); ``room``
    how many more the stack may hold; ``closed`` the names the model remembers, and how many
    more it may (``closed_room``). The run takes ordinary elements (pushed and popped), SVG
    HTML integration points and MathML text integration points (``top`` says whether one is
    open and holds text or markup; closing one that does makes the model ambiguous), the HTML
    content at such a point as _scan_point_pattern reads it, and whatever leaves the model as
    it is. It stops once ``opened`` and all it pushed are closed, or (``flags`` has RUN_WHOLE:
    they were the model's whole stack) goes on over HTML content as far as the data state's
    run (_scan_data_pattern) does, and into the next ``<svg>`` or ``<math>``. It stops at
    anything else, at a start tag not in the common attribute form, at a name longer than 64
    bytes, and where HTML elements are left open at a point (``html``, with ``html_touched``
    as _scan_point_pattern's ``touched``).
    ``kept`` of ``opened`` are still open, with ``pushed`` above them; ``added`` are the newly
    remembered names. A tag is taken only if it ends before ``end``: callers keep ``end - pos``
    within the longest tag the scanner holds.
    """
    run = _Run(opened, flags, room, closed, closed_room)
    stack = run.stack
    while pos < end:
        if stack and run.top == RUN_PLAIN:
            pos = run.inert(buf, pos, end)
            if pos >= end:
                break
        at = _run_token(run, buf, pos, end)
        if at < 0:
            break
        run.note_root(pos)
        pos = at
        if run.html or (not stack and not run.whole):
            break
        if not stack:
            pos = run.html_content(buf, pos, end)
    return run.result(pos)


def _html_run(buf: bytes, pos: int, end: int) -> int:
    """The data state's run from ``pos`` in ``buf[:end]`` as the C version runs it with no
    widget path: _scan_data_pattern's, and comments and raw text elements whole."""
    while True:
        pos = _BULK.match(buf, pos, end).end()  # type: ignore[union-attr]
        if buf.startswith(b"<!--", pos, end):
            after = -1 if end - pos < 6 else _comment_after(buf, pos, end)
        elif (raw := _RAW_OPEN.match(buf, pos, end)) is not None:
            tag = _TAG_END.match(buf, raw.end(), end)
            close = None if tag is None else _RAW_END[raw[1].lower()].search(buf, tag.end(), end)
            after = -1 if close is None else close.start()  # its end tag is read next
        else:
            return pos
        if after == -1:
            return pos
        pos = after


def _run_token(run: _Run, buf: bytes, pos: int, end: int) -> int:
    """One token of the run at ``pos``: the position after it, or -1 to stop."""
    if buf[pos] != 0x3C:  # text
        if not run.stack:
            return -1
        lt = buf.find(b"<", pos, end)
        if run.top == RUN_POINT:
            run.top = RUN_TOUCHED
        return end if lt == -1 else lt
    if pos + 1 >= end:
        return -1
    c = buf[pos + 1]
    if _is_alpha(c):
        return _run_start(run, buf, pos, end)
    if not run.stack:
        return -1
    if c == 0x2F:  # '/'
        if pos + 2 >= end:
            return -1
        if buf[pos + 2] == 0x3E:
            return pos + 3
        if _is_alpha(buf[pos + 2]):
            return _run_end(run, buf, pos, end)
        return _after_gt(buf, pos + 2, end)
    if c == 0x21:  # '!'
        return _run_bang(run, buf, pos, end)
    if c == 0x3F:  # '?'
        return _after_gt(buf, pos + 2, end)
    if run.top == RUN_POINT:  # a '<' that starts nothing is text
        run.top = RUN_TOUCHED
    return pos + 1


def _run_start(run: _Run, buf: bytes, pos: int, end: int) -> int:
    if run.top != RUN_PLAIN:
        return run.point(buf, pos, end)
    m = _RUN_START.match(buf, pos, end)
    if m is None:
        return -1
    name = m.group(1).lower()
    if len(name) > _RUN_NAME_MAX:
        return -1
    root = not run.stack
    stop = name not in tags.FOREIGN_OPENERS if root else name in tags.FOREIGN_RUN_STOPS
    if not stop and not root and run.ambiguous and name in tags.SWITCHING:
        return _strict_text_end(buf, m.end(), end, name)
    if stop or not run.start(name, bool(m.group(2))):
        return -1
    return m.end()


def _strict_text_end(buf: bytes, pos: int, end: int, name: bytes) -> int:
    """Raw text after a tokenizer-switching start tag where the model is ambiguous
    (foreign.STRICT): after its end tag if no '<' comes before it, else -1."""
    if name == tags.PLAINTEXT:
        return -1
    lt = buf.find(b"<", pos, end)
    if lt == -1 or _RAW_END[name].match(buf, lt, end) is None:
        return -1
    m = _TAG_END.match(buf, lt + 2 + len(name), end)
    return -1 if m is None else m.end()


def _run_end(run: _Run, buf: bytes, pos: int, end: int) -> int:
    m = _RUN_END.match(buf, pos, end)
    if m is None:
        return -1
    name = m.group(1).lower()
    if len(name) > _RUN_NAME_MAX or name in tags.UNSURE_FOREIGN_END or not run.end(name):
        return -1
    return m.end()


def _run_bang(run: _Run, buf: bytes, pos: int, end: int) -> int:
    """'<!': a comment, a CDATA section (in an ordinary element only) or a bogus comment."""
    if end - pos < 9 or not buf.startswith(b"[CDATA[", pos + 2):
        return _bang(buf, pos, end)
    if run.top != RUN_PLAIN or run.ambiguous:
        return -1
    close = buf.find(b"]]>", pos + 9, end)
    return -1 if close == -1 else close + 3


#: The flags of _scan_point: text touches the element the run starts in (an integration
#: point, not an HTML element); the tree model is ambiguous (RUN_AMBIGUOUS, as above).
POINT_TEXT = 1
#: _scan_point's result: (pos, pushed, touched, base), see below.
PointRun = tuple[int, tuple[bytes, ...], int, bool]


# What may follow '<' inside an integration point and leave the model as it is: '/>' or what
# makes '</' a bogus comment, '?' or '!' starting a bogus comment, '!--' starting a comment...
_LT_QUIET = _pattern(
    rb"/(?:>|(?=[^a-zA-Z>])[^>]*>)|\?[^>]*>"
    rb"|!(?=[\s\S]{7})(?:--(?:>|->|(?![>]|->)(?:(?!--!?>)[\s\S])*--!?>)|(?!--|\[CDATA\[)[^>]*>)"
)
# ... or nothing: the '<' (and the ones after it) is text.
_LT_TEXT = rb"<*(?=[^a-zA-Z!/?<])|<*(?=<(?:[a-zA-Z!/?]|(?![\s\S])))"


def _point_atoms(quiet: bool, starts: bytes = b"") -> bytes:
    """What leaves the model as it is inside an integration point, as alternatives that split a
    string one way only (see _inert_atoms): comments and bogus comments, unless ``quiet`` text
    too (which may touch the current node), and ``starts``, what may follow a '<' that a
    letter follows. The alternatives after '<' are grouped, so that each is tried only there."""
    after = (b"(?=[a-zA-Z])(?:" + starts + b")|" if starts else b"") + _LT_QUIET
    if quiet:
        return b"<(?:" + after + b")"
    return rb"[^<]+(?![^<])|<(?:" + after + b"|" + _LT_TEXT + b")"


_POINT_OPENS = tags.HTML_VOID | tags.POINT_RUN_STOPS | tags.POINT_RAW
#: After '<': a void element, or a raw text or RCDATA element, whole (its start tag, text with
#: no end tag of its name, and that end tag). Only the common tag form is taken, as it splits
#: a string one way only (an end tag in the exact form too would let a failing match try both
#: on each element, exponentially); the tag-by-tag steps take the rest.
_POINT_LEAVES = b"|".join(
    [
        _pattern(
            b"{VOID}{REST}",
            VOID=_names_fast(tags.HTML_VOID - tags.POINT_RUN_STOPS),
            REST=_TAG_REST_COMMON,
        ),
        *(
            _pattern(
                rb"(?i:{NAME})(?=[WS/>]){REST}[^<]*(?:<(?!/(?i:{NAME})[WS/>])[^<]*)*"
                rb"</(?i:{NAME})(?=[WS/>]){REST}",
                NAME=name,
                REST=_TAG_REST_COMMON,
            )
            for name in sorted(tags.POINT_RAW)
        ),
    ]
)


def _point_elements() -> bytes:
    """The atoms, leaves, and whole elements up to _NEST deep made of them: what the pattern
    twin passes over at once. Their names are neither stops nor (for whole ones) void or raw
    text: those the tag-by-tag steps take."""
    atom = _point_atoms(False, _POINT_LEAVES)
    for level in range(1, _NEST + 1):
        element = _pattern(
            rb"(?P<e{L}>(?!{OPENS}){NAME}){REST}(?:{ATOM})*</(?i:(?P=e{L}))[WS]*>",
            L=b"%d" % level,
            OPENS=_names_fast(_POINT_OPENS),
            NAME=_RUN_ELEMENT_NAME,
            REST=_TAG_REST_COMMON,
            ATOM=atom,
        )
        atom = _point_atoms(False, element + b"|" + _POINT_LEAVES)
    return atom


_POINT_QUIET = re.compile(b"(?:" + _point_atoms(True) + b")*")
_POINT_TEXT = re.compile(b"(?:" + _point_atoms(False) + b")*")
_POINT_FLAT = re.compile(b"(?:" + _point_atoms(False, _POINT_LEAVES) + b")*")
_POINT_BULK = re.compile(b"(?:" + _point_elements() + b")*")


def _scan_point_pattern(
    buf: bytes, pos: int, end: int, room: int, flags: int, closed: tuple[bytes, ...]
) -> PointRun:
    """The run over HTML content from ``pos`` in ``buf[:end]`` where the current node is an
    HTML integration point, a MathML text integration point or an HTML element opened inside
    one, and what it did to the tree model: ``(pos, pushed, touched, base)``.

    HTML rules apply there: a start tag opens an HTML element (an HTML_VOID one opens none)
    and touches the current node, as text does an integration point (``flags`` has
    POINT_TEXT); an end tag closes the current element. The run stops at start tags in
    tags.POINT_RUN_STOPS, at an end tag that names another element or the node the run
    started in, or (the model being ambiguous, RUN_AMBIGUOUS) a name not in ``closed``, at
    CDATA, and where ``buf[:end]`` cuts a token short. ``pushed`` are the elements it left
    open, at most ``room``; bit i of ``touched`` says ``pushed[i]`` saw a start tag, and
    ``base`` that the node it started in was touched.
    """
    room = min(room, _RUN_HALF_CAP)  # as many as the C version holds (the model: fewer)
    run = _Point(
        room, bool(flags & POINT_TEXT), frozenset(closed) if flags & RUN_AMBIGUOUS else None
    )
    bulk_from = pos
    while pos < end:
        # Whole elements must fit on the stack and, while the model is ambiguous, close only
        # names it remembers; where they do not, no byte is tried twice (bulk_from).
        stop = -1
        if room - len(run.stack) >= _NEST and pos >= bulk_from:
            stop = _POINT_BULK.match(buf, pos, end).end()  # type: ignore[union-attr]
            if run.closed is not None and not _ends_known(buf, pos, stop, run.closed):
                stop, bulk_from = -1, stop
        if stop == -1:
            stop = _POINT_FLAT.match(buf, pos, end).end()  # type: ignore[union-attr]
        if stop > pos and not run.touched_now():
            if _POINT_TEXT.match(buf, pos, end).end() < stop:  # type: ignore[union-attr]
                run.touch()  # a start tag at the current node: the first thing not text
            elif _POINT_QUIET.match(buf, pos, end).end() < stop:  # type: ignore[union-attr]
                run.text()
        pos = stop
        if pos >= end:
            break
        at = _point_token(run, buf, pos, end)
        if at < 0:
            break
        pos = at
    bits = sum(1 << i for i, t in enumerate(run.touched) if t)
    return pos, tuple(run.stack), bits, run.base


def _ends_known(buf: bytes, pos: int, end: int, known: frozenset[bytes]) -> bool:
    """Whether every end tag name (and text like one) in ``buf[pos:end]`` is ``known``."""
    names = set(_RUN_END_NAMES.findall(buf, pos, end))  # few distinct ones, many times each
    return known.issuperset(name.lower() for name in names)


class _Point:
    """The elements a run over HTML inside an integration point opened (see _scan_point)."""

    __slots__ = ("base", "closed", "room", "stack", "text_touches", "touched")

    def __init__(self, room: int, text_touches: bool, closed: frozenset[bytes] | None):
        self.stack: list[bytes] = []
        self.touched: list[bool] = []
        self.base = False
        self.room = room
        self.text_touches = text_touches
        self.closed = closed

    def touched_now(self) -> bool:
        """Whether the current node is touched already (so that nothing more can touch it)."""
        return self.touched[-1] if self.stack else self.base

    def touch(self) -> None:
        if self.stack:
            self.touched[-1] = True
        else:
            self.base = True

    def text(self) -> None:
        if not self.stack and self.text_touches:
            self.base = True


def _point_token(run: _Point, buf: bytes, pos: int, end: int) -> int:
    """One token at ``buf[pos]`` (a '<'): the position after it, or -1 to stop."""
    if pos + 1 >= end:
        return -1
    c = buf[pos + 1]
    if _is_alpha(c):
        return _point_start(run, buf, pos, end)
    if c == 0x2F:  # '/'
        if pos + 2 >= end:
            return -1
        if buf[pos + 2] == 0x3E:
            return pos + 3
        if _is_alpha(buf[pos + 2]):
            return _point_end(run, buf, pos, end)
        return _after_gt(buf, pos + 2, end)
    if c == 0x21:  # '!'
        return _bang(buf, pos, end)
    if c == 0x3F:  # '?'
        return _after_gt(buf, pos + 2, end)
    run.text()  # a '<' that starts nothing is text
    return pos + 1


def _bang(buf: bytes, pos: int, end: int) -> int:
    """'<!' at ``pos``: after the comment or bogus comment it opens, or -1 (for CDATA, which
    is the caller's, or where ``buf[:end]`` is too short to tell)."""
    if end - pos < 9 or buf.startswith(b"[CDATA[", pos + 2):
        return -1  # '<!--' or '<![CDATA[' cannot be told yet
    if buf.startswith(b"--", pos + 2):
        return _comment_after(buf, pos, end)
    return _after_gt(buf, pos + 2, end)


def _point_start(run: _Point, buf: bytes, pos: int, end: int) -> int:
    name_end = _RUN_TAG_NAME.match(buf, pos + 1, end).end()  # type: ignore[union-attr]
    name = buf[pos + 1 : name_end].lower()
    if name_end >= end or len(name) > _RUN_NAME_MAX or name in tags.POINT_RUN_STOPS:
        return -1
    m = _TAG_END.match(buf, name_end, end)
    if m is not None and name in tags.POINT_RAW:
        after = _raw_text_after(buf, m.end(), end, name)
        if after != -1:
            run.touch()
        return after
    opens = name not in tags.HTML_VOID
    if m is None or (opens and len(run.stack) >= run.room):
        return -1
    run.touch()
    if opens:
        run.stack.append(name)
        run.touched.append(False)
    return m.end()


def _raw_text_after(buf: bytes, pos: int, end: int, name: bytes) -> int:
    """After the end tag of the raw text or RCDATA from ``pos``, or -1 if ``buf[:end]`` ends
    first."""
    m = _RAW_END[name].search(buf, pos, end)
    if m is None:
        return -1
    after = _TAG_END.match(buf, m.start() + 2 + len(name), end)
    return -1 if after is None else after.end()


def _point_end(run: _Point, buf: bytes, pos: int, end: int) -> int:
    name_end = _RUN_TAG_NAME.match(buf, pos + 2, end).end()  # type: ignore[union-attr]
    name = buf[pos + 2 : name_end].lower()
    if name_end >= end or len(name) > _RUN_NAME_MAX or run.stack[-1:] != [name]:
        return -1
    if run.closed is not None and name not in run.closed:
        return -1  # the model remembers every name it pops while ambiguous
    m = _TAG_END.match(buf, name_end, end)
    if m is None:
        return -1
    run.stack.pop()
    run.touched.pop()
    return m.end()
