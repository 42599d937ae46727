"""The streaming scanner: the tokenizer's states carried from chunk to chunk.

The tokenizer state (data, comment, raw text, script data and its escaped states, CDATA, a
tag cut in two by a chunk boundary) and the tree builder's part that decides it
(:mod:`.foreign`) are carried from one chunk to the next. The only bytes ever held back are
a start tag that is still incomplete (at most :data:`MAX_TAG_BYTES`) or a handful of bytes
that could begin a terminator, so any split of a document gives the bytes of the whole.

The hot loop (text, ordinary tags, comments, raw text, whole ``<script>`` elements that
cannot be the widget, and the foreign and select content whose effect on the tree model is
simple) runs in :mod:`.tokenizer`'s C or pattern functions; Python only sees the widget's own
tag, the foreign content the tree model must walk tag by tag, and whatever a chunk boundary
cuts.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import foreign, tags, tokenizer
from .charrefs import decode_attribute
from .matcher import MAX_TAG_BYTES, TagReport, _attributes, _first, _lookup, _matcher_for
from .patterns import _COMMENT_END, _RAW_END, _RUN_TAG_NAME, _STOP_NAMES, _is_alpha
from .stamp import _encode_token, _stamp
from .tokenizer import _SPECIAL_OPEN, SCRIPT_END, SCRIPT_NORMAL, _TagDrain
from .urlmatch import DEFAULT_WIDGET_SRC, resolve

__all__ = ["HTMLRewriter", "TokenSource", "encoding_unsure", "token_bytes"]

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
_HELD_SCRIPT, _HELD_TREE = range(2)
#: A tag cut by a chunk boundary this close to the end is held and read again whole (in the
#: bulk run) with the next chunk; a longer one is drained by the resumable tag states.
_HELD_CUT = 256
_TREE_OR_BASE = tags.TREE_STOPS | {tags.BASE}
_OPENERS = tags.FOREIGN_OPENERS
#: Foreign and select content is run over in windows of this size (one very long pattern
#: match is slower than a few); a tag a run takes is within one, so never longer than the
#: scanner holds.
_BULK_WINDOW = MAX_TAG_BYTES
#: An end tag in foreign content or a select whose name runs on longer than this (with its
#: '</') is given up on: the name is held until it ends, and no element name is that long.
_MAX_END_NAME = 66  # a held <script> in HTML content, a tag the tree sees
_CDATA_OPEN = b"<![CDATA["
#: How much of a body the encoding guards look at (a browser's meta prescan).
PRESCAN_BYTES = 1024
_ISO_2022_JP = re.compile(rb"(?i)iso-2022-jp|csiso2022jp")
_UTF16 = "UTF-16 byte order mark"
_ISO2022JP = f"ISO-2022-JP label in the first {PRESCAN_BYTES} bytes"
_ENCODING_REASONS = (_UTF16, _ISO2022JP)


TokenSource = str | Callable[[], str | None]
#: Output pieces, joined once: parts of the input as views, so the page is copied only then.
Pieces = list[bytes | memoryview]


class HTMLRewriter:
    """Streaming rewriter: ``feed`` chunks, then ``close``; the output is the rewritten page.

    ``token`` may be a string or a callable returning one (or None for "no token after
    all"). A callable is called at most once, when the first widget tag is found, so a
    page without the widget never pays for minting.

    Memory is bounded whatever the input: only an incomplete ``<script`` start tag (up to
    :data:`MAX_TAG_BYTES`) or a few bytes that may begin a terminator are ever held back.
    """

    __slots__ = (
        "_base_seen",
        "_drain",
        "_esc_at",
        "_gate",
        "_held",
        "_held_kind",
        "_held_scanned",
        "_known",
        "_known_stamp",
        "_lookback",
        "_matcher",
        "_missed",
        "_noscript",
        "_offset",
        "_own_end",
        "_path",
        "_pending",
        "_prefix",
        "_raw_end",
        "_script",
        "_state",
        "_strict",
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
        tokenizer._warn_if_slow()
        self._matcher = _matcher_for(widget_src, project_id)
        self._token_source: TokenSource | None = token
        self._token: bytes | None = None
        self._state = _DATA
        self._script = SCRIPT_NORMAL
        self._raw_end: re.Pattern[bytes] | None = None
        self._drain: _TagDrain | None = None
        self._held = b""
        self._trace = trace
        # The C scanner passes over scripts that cannot be the widget; a trace sees them all.
        self._path = self._matcher.path if trace is None else b""
        self._tree = foreign.Tree()
        self._missed: str | None = None
        self._prefix = b""  # the first PRESCAN_BYTES, until the encoding guards are decided
        self._gate = True  # not decided yet: output with a stamp in it waits in _pending
        self._pending: tuple[bytes, bytes, int] | None = None  # (input, output, stamps)
        self._lookback = b""
        self._offset = 0  # where buf[0] of the current scan is in the whole stream
        self._own_end = False  # the next end tag ends raw text entered inside foreign content
        self._esc_at = -1  # where the first ESC byte is in the stream
        self._base_seen = False  # a <base> start tag was seen
        #: The last tag stamped and its stamped bytes: a start tag with the same bytes has the
        #: same verdict while no <base>, ESC byte or trace can change it (_stamp_known).
        self._known: bytes | None = None
        self._known_stamp = b""
        #: In a <noscript>: its text read as markup (as with scripting off), which must end
        #: in the data state where the raw text ends.
        self._noscript: HTMLRewriter | None = None
        self._strict = False  # the raw text now read must hold no markup (foreign.STRICT)
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
        if self._state == _DATA and self._known is None and self._plain_stream():
            return self._feed_plain(buf)
        return self._run(buf, final=False)

    def _plain_stream(self) -> bool:
        """HTML content with nothing waiting on the encoding guards or a stamp's release."""
        return not self._gate and self._pending is None and self._tree.html_content

    def _feed_plain(self, buf: bytes) -> bytes:
        """Most chunks of a page: the bulk run reads them to their end, and they go out as
        they came, without the steps of the scanner. Otherwise the steps go on from where
        the bulk run stopped."""
        pos = tokenizer._scan_data(buf, 0, self._path)
        n = len(buf)
        if pos < n and not (n - pos <= _HELD_CUT and self._cut_short(buf, pos)):
            return self._run(buf, final=False, start=pos)
        if self._esc_at == -1 and (esc := buf.find(b"\x1b")) != -1:
            self._esc_at = self._offset + esc
        self._held = buf[pos:]
        self._offset += pos
        return buf if pos == n else buf[:pos]

    @staticmethod
    def _cut_short(buf: bytes, pos: int) -> bool:
        """Whether the bulk run stopped at an ordinary tag, an end tag or a '<' that the end
        of ``buf`` cuts short, which the steps would keep for the next chunk as it is
        (_lt_at_stop): no comment, bogus comment or special tag."""
        following = buf[pos + 1 : pos + 3]
        if following[:1] == b"/":
            return len(following) == 1 or _is_alpha(following[1])
        if not following:
            return True
        return _is_alpha(following[0]) and _SPECIAL_OPEN.match(buf, pos) is None

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
        self._tree.unsure = encoding_unsure(head)
        if self._tree.unsure is not None:
            self._state = _UNSURE

    # The scanner proper. ``emit`` is where unwritten output begins; ``hold`` where the
    # bytes kept for the next chunk begin.
    def _run(self, buf: bytes, final: bool, start: int = 0) -> bytes:
        found = self.found
        out, hold = self._scan(buf, final, start=start)
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

    def _scan(self, buf: bytes, final: bool, stop: int = -1, start: int = 0) -> tuple[Pieces, int]:
        """Tokenize ``buf``; the output pieces, and where the bytes to keep begin.

        Each state's step reads from ``pos`` and returns (pos, emit, hold): ``emit`` is where
        unwritten output begins, ``hold`` where the bytes kept for the next chunk begin (the
        end of ``buf`` while the step could go on). With ``stop``, tokenizing ends at the first
        point at or past it (whole-document use: nothing beyond the last candidate matters).
        With ``start``, the data state's bulk run has read ``buf[:start]`` already.
        """
        out: Pieces = []
        n = len(buf)
        if self._esc_at == -1 and (esc := buf.find(b"\x1b")) != -1:
            self._esc_at = self._offset + esc
        pos, emit = start, 0
        hold = n
        while pos < n and (stop == -1 or pos < stop):
            pos, emit, hold = _STEPS[self._state](self, buf, pos, final, out, emit)
            if hold != n:
                break
        if final:
            hold = n
        elif stop != -1:
            hold = min(hold, max(pos, emit))
        out.append(memoryview(buf)[emit:hold] if out else buf[emit:hold])
        return out, hold

    # --- one step per state: (buf, pos, final, out, emit) -> (pos, emit, hold) ---------------

    def _step_data(
        self, buf: bytes, pos: int, final: bool, out: Pieces, emit: int
    ) -> tuple[int, int, int]:
        """The data state: in bulk (C or pattern) in HTML content, tag by tag elsewhere."""
        n = len(buf)
        if not self._tree.html_content:
            if self._tree.unsure is not None:
                self._state = _UNSURE
                return pos, emit, n
            return self._tree_data(buf, pos, final, out, emit)
        if self._known is not None and self._esc_at == -1:
            pos, emit = self._stamp_known(buf, pos, out, emit)
        else:
            pos = tokenizer._scan_data(buf, pos, self._path)
        if pos >= n:
            return n, emit, n
        # buf[pos] == '<' and what follows is a comment, a tokenizer-switching or tree-stop
        # start tag, or something the buffer cuts short.
        if buf.startswith(b"<!--", pos):
            return self._open_comment(buf, pos, final, emit)
        special = _SPECIAL_OPEN.match(buf, pos)
        if special is not None and special.group(1).lower() in _TREE_OR_BASE:
            pos, hold = self._tree_start(buf, pos, special.end(), final)
            return pos, emit, hold
        if special is not None:
            return self._start_tag(buf, pos, special.group(1), final, out, emit)
        return self._lt_at_stop(buf, pos, final, emit)

    def _stamp_known(self, buf: bytes, pos: int, out: Pieces, emit: int) -> tuple[int, int]:
        """The data-state run from ``pos`` with the copies of the known tag in it stamped:
        (where the run stops, where unwritten output begins).

        Their verdict is the known tag's. Besides the tag's bytes, a verdict depends only on
        a trace hook, an ESC byte and a ``<base>`` before the tag; ``_known`` is only set
        without a trace, forgotten at a ``<base>``, and not used once an ESC byte is seen."""
        assert self._known is not None
        stop, count, text = tokenizer._scan_known(
            buf, pos, self._path, self._known, self._known_stamp
        )
        if not count:
            return stop, emit
        out.append(memoryview(buf)[emit:pos])
        out.append(text)
        self.found += count
        return stop, stop

    def _open_comment(self, buf: bytes, pos: int, final: bool, emit: int) -> tuple[int, int, int]:
        n = len(buf)
        if not final and buf[pos + 4 : pos + 6] in (b"", b"-"):  # '<!--' cut short: wait
            return pos, emit, pos
        return self._comment_open(buf, pos, final), emit, n

    def _lt_at_stop(self, buf: bytes, pos: int, final: bool, emit: int) -> tuple[int, int, int]:
        """A '<' where the bulk run stopped that is no comment or special tag: something
        the end of the buffer cuts short (bogus comment, end tag, a tag name that may still
        become a special one), or an ordinary tag cut by it, which is drained."""
        n = len(buf)
        following = buf[pos + 1 : pos + 2]
        if not final and n - pos < 4 and b"<!--".startswith(buf[pos:]):
            return pos, emit, pos  # '<!' or '<!-' at the very end: a comment or not?
        if following in (b"!", b"?") or (
            following == b"/" and pos + 2 < n and not _is_alpha(buf[pos + 2])
        ):
            self._state = _BOGUS  # bogus comment or doctype: ends at the next '>'
            return pos + 2, emit, n
        if not final and n - pos <= _HELD_CUT:
            # A short tag cut by the buffer: kept, and read whole with the next chunk. Only a
            # few hundred bytes are ever read again, so this stays linear.
            return pos, emit, pos
        if following == b"/" and pos + 2 < n:  # end tag cut by the buffer
            self._drain_tag(_DATA)
            return pos + 2, emit, n
        if following and _is_alpha(following[0]):
            name_end = _RUN_TAG_NAME.match(buf, pos + 1).end()  # type: ignore[union-attr]
            could_be_special = name_end == n and any(
                raw.startswith(buf[pos + 1 : name_end].lower()) for raw in _STOP_NAMES
            )
            if not could_be_special or n - pos > MAX_TAG_BYTES:
                self._drain_tag(_DATA)
                return pos + 1, emit, n
        # '<' or '</' or a possible special tag name at the very end: wait for more
        return (n, emit, n) if final else (pos, emit, pos)

    def _drain_tag(self, after: int) -> None:
        self._drain = _TagDrain(_TagDrain.TAGNAME, after, b"")
        self._state = _DRAIN

    def _step_comment(
        self, buf: bytes, pos: int, final: bool, out: Pieces, emit: int
    ) -> tuple[int, int, int]:
        m = _COMMENT_END.search(buf, pos)
        if m is None:
            return pos, emit, max(pos, len(buf) - 3)
        self._state = _DATA
        return m.end(), emit, len(buf)

    def _step_bogus(
        self, buf: bytes, pos: int, final: bool, out: Pieces, emit: int
    ) -> tuple[int, int, int]:
        gt = buf.find(b">", pos)
        if gt == -1:
            return len(buf), emit, len(buf)
        self._state = _DATA
        return gt + 1, emit, len(buf)

    def _step_script(
        self, buf: bytes, pos: int, final: bool, out: Pieces, emit: int
    ) -> tuple[int, int, int]:
        pos, hold = self._script_data(buf, pos, len(buf))
        return pos, emit, hold

    def _step_raw(
        self, buf: bytes, pos: int, final: bool, out: Pieces, emit: int
    ) -> tuple[int, int, int]:
        assert self._raw_end is not None
        if self._strict:
            return self._strict_raw(buf, pos, final, emit)
        m = self._raw_end.search(buf, pos)
        end = m.start() if m is not None else max(pos, len(buf) - 11)
        if self._noscript is not None:
            self._noscript.feed(buf[pos:end])
            if m is not None and not self._noscript_ends_as_markup():
                return end, emit, len(buf)
        if m is None:
            return pos, emit, end
        self._state = _DATA
        return end, emit, len(buf)

    def _noscript_ends_as_markup(self) -> bool:
        """At ``</noscript>``: whether its text read as markup ends in the data state too;
        otherwise a browser without scripting may see what follows inside a tag."""
        inner, self._noscript = self._noscript, None
        assert inner is not None
        if inner.context is None and not inner._held and inner._tree.html_content:
            return True
        self._tree.give_up("a <noscript> whose text, read as markup, does not end there")
        self._state = _UNSURE
        return False

    def _strict_raw(self, buf: bytes, pos: int, final: bool, emit: int) -> tuple[int, int, int]:
        """Text that a browser may read as raw text or as foreign content: accepted only up to
        its end tag with no other '<' before it, where both readings see the same."""
        assert self._raw_end is not None
        n = len(buf)
        lt = buf.find(b"<", pos)
        if lt == -1:
            return n, emit, n
        m = self._raw_end.match(buf, lt)
        if m is not None:
            self._strict = False
            self._state = _DATA
            return lt, emit, n
        if not final and n - lt < 12:  # may be the end tag, cut short
            return lt, emit, lt
        self._tree.give_up("markup inside raw text in SVG/MathML after a text element")
        self._state = _UNSURE
        return lt, emit, n

    def _step_cdata(
        self, buf: bytes, pos: int, final: bool, out: Pieces, emit: int
    ) -> tuple[int, int, int]:
        end = buf.find(b"]]>", pos)
        if end == -1:
            return pos, emit, max(pos, len(buf) - 2)
        self._state = _DATA
        return end + 3, emit, len(buf)

    def _step_rest(
        self, buf: bytes, pos: int, final: bool, out: Pieces, emit: int
    ) -> tuple[int, int, int]:
        """Plaintext, or after a give-up: the rest of the document passes through."""
        if self._state == _UNSURE:
            self._look_for_missed(buf, pos)
        return len(buf), emit, len(buf)

    def _step_drain(
        self, buf: bytes, pos: int, final: bool, out: Pieces, emit: int
    ) -> tuple[int, int, int]:
        assert self._drain is not None
        end = self._drain.run(buf, pos)
        if end == -1:
            return len(buf), emit, len(buf)
        self._enter(self._drain.after, self._drain.after_name)
        self._drain = None
        return end, emit, len(buf)

    def _tree_data(
        self, buf: bytes, pos: int, final: bool, out: Pieces, emit: int
    ) -> tuple[int, int, int]:
        """One token of the data state where the tree builder decides (foreign content, a
        select): every tag goes through :class:`foreign.Tree`. (pos, emit, hold)."""
        n = len(buf)
        window = min(n, pos + _BULK_WINDOW)
        if self._tree.select_plain:
            pos = tokenizer._scan_select(buf, pos, window)
        elif not self._tree.in_select and not self._own_end:
            run = self._foreign_run(buf, pos, window)
            if run != pos:  # the tree may have left foreign content: the step loop decides
                return run, emit, n
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

    def _foreign_run(self, buf: bytes, pos: int, end: int) -> int:
        """Run over the foreign content from ``pos`` that the tree model needs to see only in
        summary (tokenizer ``_scan_foreign``), and apply that summary; where it stopped."""
        state = self._tree.run_state()
        if state is None:
            return self._point_run(buf, pos, end)
        opened, flags, room, closed, closed_room = state
        stop, kept, pushed, top, ambiguous, added, html, touched = tokenizer._scan_foreign(
            buf, pos, end, opened, flags, room, closed, closed_room
        )
        # Nothing changed when the run did not touch the stack (or left it empty, as it found
        # it: ambiguity ends with the element that was open), the flag or the names.
        same = ambiguous == bool(flags & tokenizer.RUN_AMBIGUOUS) or not (opened or pushed)
        if pushed or added or kept != len(opened) or not same:
            self._tree.run_result(len(opened), kept, pushed, top, ambiguous, added, html, touched)
        return stop

    def _point_run(self, buf: bytes, pos: int, end: int) -> int:
        """Run over HTML inside an integration point from ``pos`` (tokenizer ``_scan_point``),
        where the tree model is at one; apply what it did, and say where it stopped."""
        state = self._tree.point_state()
        if state is None:
            return pos
        room, flags, closed = state
        stop, pushed, touched, base = tokenizer._scan_point(buf, pos, end, room, flags, closed)
        if stop != pos:
            self._tree.point_result(pushed, touched, base)
        return stop

    def _hold_tag(self, buf: bytes, lt: int, name_end: int, kind: int) -> None:
        """Keep an incomplete start tag from ``lt`` for the next chunk. The tag states run
        over it from the next chunk on, resumable, so that each byte is read once by them
        (_step_held); a whole document, which has no next chunk, never pays for them."""
        self._drain = _TagDrain(_TagDrain.TAGNAME, _RAW if kind == _HELD_SCRIPT else _DATA, b"")
        self._held_scanned = name_end - lt
        self._held_kind = kind
        self._state = _HELD

    def _step_held(
        self, buf: bytes, pos: int, final: bool, out: Pieces, emit: int
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
        if name_end == n and not final and n - lt <= _MAX_END_NAME:
            return lt, lt  # the name goes on in the next chunk (held: a few bytes at most)
        if name_end - lt > _MAX_END_NAME:
            self._tree.give_up(f"an end tag name longer than {_MAX_END_NAME - 2} bytes")
            self._state = _UNSURE
            return lt, n
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
        if end == -1 and self._tree.html_content and buf[lt + 1 : name_end].lower() in _OPENERS:
            run = self._foreign_run(buf, lt, min(n, lt + _BULK_WINDOW))
            if run != lt:  # through the foreign content, or as far as the tree allows
                return run, n
        if end == -1:
            end = tokenizer._tag_end(buf, name_end) if name_end < n else -1
        if end == -1:
            if not final and n - lt <= MAX_TAG_BYTES:
                self._hold_tag(buf, lt, name_end, _HELD_TREE)
                return lt, lt
            if not final:
                self._tree.give_up(f"a tag longer than {MAX_TAG_BYTES} bytes")
            self._state = _UNSURE
            return n, n
        if end - lt > MAX_TAG_BYTES:  # as a stream that could not hold it would see it
            self._tree.give_up(f"a tag longer than {MAX_TAG_BYTES} bytes")
            self._state = _UNSURE
            return end, n
        name = buf[lt + 1 : name_end].lower()
        if name == tags.BASE:  # a scheme-relative src may not be the widget's from here on
            self._base_seen, self._known = True, None
        attrs = _attributes(buf, name_end, end)
        closing = buf[end - 2 : end] == b"/>" and not (
            attrs and attrs[-1].end == end - 1 and buf[end - 2] == 0x2F
        )
        action = self._tree.start_tag(name, _lookup(attrs), closing)
        if name == tags.SCRIPT:
            self._script_not_stamped(buf, lt, end)
        if action == foreign.STRICT:
            self._own_end, self._strict = True, True
            self._state, self._raw_end = _RAW, _RAW_END[name]
        elif action == foreign.SWITCH:
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
        at = tokenizer._last_candidate(window, len(window), self._matcher.path)
        if at != -1 and self._matcher.looks_like(window[at : at + 2048]):
            self._missed = self._tree.unsure
        self._lookback = window[-PRESCAN_BYTES:]

    def _enter(self, state: int, name: bytes) -> None:
        """Switch to the state a start tag named ``name`` leaves the tokenizer in."""
        if state == _RAW and name == b"script":
            self._state, self._script = _SCRIPT, SCRIPT_NORMAL
        elif state == _RAW and name == b"plaintext":
            self._state = _PLAINTEXT
        elif state == _RAW:
            self._state, self._raw_end = _RAW, _RAW_END[name]
            if name == tags.NOSCRIPT:
                self._noscript = HTMLRewriter("")
        else:
            self._state = state

    def _start_tag(
        self,
        buf: bytes,
        pos: int,
        name: bytes,
        final: bool,
        out: Pieces,
        emit: int,
        end: int = -1,
    ) -> tuple[int, int, int]:
        """A start tag that switches the tokenizer; the widget's is stamped. (pos, emit, hold).
        ``end``: where the tag ends, when a held tag's states found it already."""
        n = len(buf)
        name = name.lower()
        if end == -1:
            end = tokenizer._tag_end(buf, pos + 1 + len(name))
        if end == -1:  # incomplete: hold a <script> (it may be the widget), drain the others
            if name == b"script" and not final and n - pos <= MAX_TAG_BYTES:
                self._hold_tag(buf, pos, pos + 7, _HELD_SCRIPT)
                return pos, emit, pos
            self._drain = _TagDrain(_TagDrain.BAN, _RAW, name)
            self._state = _DRAIN
            return pos + 1 + len(name), emit, n
        if name == b"script" and (self._trace is not None or self._matcher.maybe(buf, pos, end)):
            reason = self._matcher.why_not(buf, pos, end)
            if reason is None and self._base_seen and _scheme_relative(buf, pos, end):
                reason = "scheme-relative src after <base> (it takes the base URL's scheme)"
            # ISO-2022-JP reads like ASCII until an escape sequence: after one, the widget's
            # bytes may be other characters (whatever the label says, or where).
            escaped = reason is None and -1 < self._esc_at < self._offset + pos
            if escaped:
                reason = "an ESC byte (ISO-2022-JP escape) before the tag"
            if self._trace is not None:
                tag = buf[pos:end]
                self._trace(TagReport(self._offset + pos, 0, 0, tag, reason is None, reason or ""))
            if (
                reason is not None
                and self._missed is None
                and self._matcher.looks_like(buf[pos:end])
            ):
                self._missed = reason
            if escaped:
                self._tree.give_up(str(reason))
                self._state = _UNSURE
                return pos, emit, n
            if reason is None:
                token = self._resolve_token()
                if token is not None:
                    stamped = _stamp(buf, pos, end, token)
                    out.append(memoryview(buf)[emit:pos])
                    out.append(stamped)
                    emit = end
                    self.found += 1
                    if self._trace is None:  # explain() must see every tag: no shortcut then
                        self._known, self._known_stamp = buf[pos:end], stamped
        self._enter(_RAW, name)
        return end, emit, n

    def _resolve_token(self) -> bytes | None:
        if self._token is None and self._token_source is not None:
            source, self._token_source = self._token_source, None
            self._token = token_bytes(source)
        return self._token

    def _script_data(self, buf: bytes, pos: int, n: int) -> tuple[int, int]:
        """Script data and its escaped states (WHATWG 13.2.5.4, .15-.31). (pos, hold)."""
        pos, sub = tokenizer._script_states(buf, pos, self._script)
        if sub == SCRIPT_END:  # the end tag: the data state parses it as an (end) tag
            self._state = _DATA
            return pos, n
        self._script = sub
        return pos, max(pos, n - 9)  # 9: '</script>', the longest the states look for


def encoding_unsure(head: bytes) -> str | None:
    """Why the widget's ASCII bytes may not mean what they say in a page that begins with
    ``head`` (its first :data:`PRESCAN_BYTES`): a UTF-16 byte order mark, or an ISO-2022-JP
    label where a browser's prescan would find it. None for the pages where they do."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return _UTF16
    # Both labels hold "2022": a plain search rules out most pages before the case-insensitive
    # one, which is slower than tokenizing a small page.
    if b"2022" in head[:PRESCAN_BYTES] and _ISO_2022_JP.search(head, 0, PRESCAN_BYTES):
        return _ISO2022JP
    return None


def token_bytes(source: TokenSource) -> bytes | None:
    """The token as written into the attribute (a callable source is called now)."""
    value = source() if callable(source) else source
    return None if value is None else _encode_token(value)


_Step = Callable[[HTMLRewriter, bytes, int, bool, Pieces, int], tuple[int, int, int]]
_STEPS: dict[int, _Step] = {
    _DATA: HTMLRewriter._step_data,
    _COMMENT: HTMLRewriter._step_comment,
    _BOGUS: HTMLRewriter._step_bogus,
    _RAW: HTMLRewriter._step_raw,
    _SCRIPT: HTMLRewriter._step_script,
    _PLAINTEXT: HTMLRewriter._step_rest,
    _UNSURE: HTMLRewriter._step_rest,
    _DRAIN: HTMLRewriter._step_drain,
    _CDATA: HTMLRewriter._step_cdata,
    _HELD: HTMLRewriter._step_held,
}


def _scheme_relative(buf: bytes, start: int, end: int) -> bool:
    """Whether the ``src`` of the script tag ``buf[start:end]`` is scheme-relative (``//host``),
    so that a ``<base>`` decides its scheme."""
    src = _first(_attributes(buf, start + 7, end), b"src")
    if src is None or src.value is None:
        return False
    resolved = resolve(decode_attribute(src.value.decode("latin-1")))
    return not isinstance(resolved, str) and resolved.scheme is None
