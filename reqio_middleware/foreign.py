"""The part of the HTML tree builder that decides the tokenizer's state.

Inside ``<svg>`` and ``<math>`` (foreign content) no start tag switches the tokenizer to raw
text or script data, and ``<![CDATA[`` opens a CDATA section; at integration points
(``foreignObject``, ``mi``...) HTML rules apply again. Which of these holds at a position
depends on the tree builder's stack of open elements, so this module keeps the part of that
stack the tokenizer depends on: the open foreign elements, and the HTML elements opened inside
integration points. It follows the HTML standard's "rules for parsing tokens in foreign
content" and the tree construction dispatcher (13.2.6).

Where the model cannot be sure how a browser's tree builder sees a position (an end tag that
closes nothing it knows of, ``<frameset>``, raw-text tags inside ``<select>``...), it gives up
for the rest of the document: :attr:`Tree.unsure` says why, and the rewriter stamps nothing
more. Giving up costs a page without a token; guessing could put a token where a browser sees
text or an attribute value.

One subtlety drives the ``touched``/``ambiguous`` bookkeeping: text or a start tag at an
integration point makes a browser re-open formatting elements (``<b>``...) left open earlier
in the page ("reconstruct the active formatting elements"). The model does not track those,
so after such an integration point is closed it cannot tell whether the browser closed it too,
and it stays strict (no CDATA, no raw-text switches in the foreign content around it, no end
tags naming the elements involved) where the two readings would differ.
"""

from __future__ import annotations

from collections.abc import Callable

from . import tags, treeruns

HTML, SVG, MATHML = range(3)
#: What a node is for the dispatcher: ordinary, an HTML integration point, a MathML text
#: integration point.
PLAIN, HTML_POINT, TEXT_POINT = range(3)

#: Deeper stacks than this are given up on, so memory stays bounded on any input; the names
#: remembered after a closed text element are bounded the same way.
MAX_DEPTH = 64

#: How a start tag leaves the tokenizer: in the data state, switched as in HTML content (raw
#: text, RCDATA, script data, plaintext), or STRICT: a browser may read it either way (see
#: the module's docstring), so its text must hold no '<' before its end tag, where both
#: readings agree; the scanner gives up otherwise.
DATA, SWITCH, STRICT = range(3)

#: Attribute lookup for the current start tag: the first value of a name (decoded), or None.
AttrLookup = Callable[[bytes], "str | None"]

_UNSURE = "after markup the rewriter cannot follow with certainty ({})"


def _show(name: bytes) -> str:
    """A tag name for a reason (logs, debug headers): any bytes, as printable ASCII."""
    return name.decode("ascii", "backslashreplace")


class _Node:
    __slots__ = ("kind", "name", "ns", "touched")

    def __init__(self, ns: int, name: bytes, kind: int) -> None:
        self.ns = ns
        self.name = name
        self.kind = kind
        self.touched = False  # text or a start tag was seen here under HTML rules


class Tree:
    """The open foreign elements (and HTML elements inside integration points)."""

    __slots__ = ("_ambiguous", "_closed_names", "_stack", "in_select", "unsure")

    def __init__(self) -> None:
        self._stack: list[_Node] = []
        self.in_select = False
        #: Why the model gave up (the rest of the document is passed through), or None.
        self.unsure: str | None = None
        self._ambiguous = False  # inside foreign content around a closed, touched point
        self._closed_names: set[bytes] = set()

    # --- what the tokenizer asks --------------------------------------------------------

    @property
    def html_content(self) -> bool:
        """Plain HTML content: the C scanner's ground, where only HTML_STOPS matter."""
        return not self._stack and not self.in_select and self.unsure is None

    @property
    def select_plain(self) -> bool:
        """Inside a ``<select>`` with no names remembered after a text element, where only its
        own end tag and the start tags of tags.SELECT_RUN_STOPS matter: the scanner passes over
        the rest in bulk."""
        return self.in_select and not self._closed_names and self.unsure is None

    @property
    def foreign(self) -> bool:
        """Inside ``<svg>``/``<math>`` (integration points included): never stamp here."""
        return bool(self._stack)

    # --- runs over foreign content (treeruns._scan_foreign_pattern) --------------------------

    def run_state(
        self,
    ) -> tuple[tuple[bytes, ...], int, int, tuple[bytes, ...], int] | None:
        """What a run over foreign content starts from: the ordinary SVG/MathML elements open
        at the top of the stack (none in HTML content, where it starts at ``<svg``/``<math``),
        its flags, the room left on the stack, the remembered names and the room left for
        them. None where no run can start (an integration point or HTML element on top)."""
        if self.unsure is not None or self.in_select:
            return None
        if not self._stack:
            closed = tuple(self._closed_names)
            return (), treeruns.RUN_WHOLE, MAX_DEPTH, closed, MAX_DEPTH - len(closed)
        opened: list[bytes] = []
        for node in reversed(self._stack):
            if node.ns == HTML or node.kind != PLAIN or node.touched:
                break
            if node.name == tags.ANNOTATION_XML:
                break
            opened.append(node.name)
        if not opened:
            return None
        flags = treeruns.RUN_MATH if self._stack[-1].ns == MATHML else 0
        flags |= treeruns.RUN_AMBIGUOUS if self._ambiguous else 0
        flags |= treeruns.RUN_WHOLE if len(opened) == len(self._stack) else 0
        closed = tuple(self._closed_names)
        return (
            tuple(reversed(opened)),
            flags,
            MAX_DEPTH - len(self._stack),
            closed,
            MAX_DEPTH - len(closed),
        )

    def run_result(
        self,
        n_open: int,
        kept: int,
        pushed: tuple[bytes, ...],
        top: int,
        ambiguous: bool,
        added: tuple[bytes, ...],
        html: tuple[bytes, ...] = (),
        html_touched: int = 0,
    ) -> None:
        """Apply what a run did: ``kept`` of the ``n_open`` elements it started with are still
        open, ``pushed`` are open above them (the top one an integration point holding text
        or not, as ``top`` says), and the HTML elements ``html`` above that point (see
        point_result); the ambiguous flag, and the names remembered since."""
        del self._stack[len(self._stack) - n_open + kept :]
        root = SVG if pushed[:1] == (tags.SVG,) else MATHML  # pushed from HTML content
        ns = self._stack[-1].ns if self._stack else root
        self._stack.extend(_Node(ns, name, PLAIN) for name in pushed)
        if pushed and top != treeruns.RUN_PLAIN:
            node = self._stack[-1]
            node.kind = HTML_POINT if ns == SVG else TEXT_POINT
            node.touched = top == treeruns.RUN_TOUCHED
        self._ambiguous = ambiguous and bool(self._stack)
        self._closed_names.update(added)
        if html:
            self.point_result(html, html_touched, False)

    # --- runs over HTML inside an integration point (treeruns._scan_point_pattern) ----------------

    def point_state(self) -> tuple[int, int, tuple[bytes, ...]] | None:
        """What a run over HTML content inside an integration point starts from: the room
        left on the stack, its flags, and (the model being ambiguous) the remembered names.
        None where the current node is neither an HTML element nor an integration point."""
        if self.unsure is not None or self.in_select or not self._stack:
            return None
        top = self._stack[-1]
        if top.ns == HTML:
            flags = 0
        elif top.kind != PLAIN:
            flags = treeruns.POINT_TEXT
        else:
            return None
        if not self._ambiguous:
            return MAX_DEPTH - len(self._stack), flags, ()
        closed = tuple(self._closed_names)
        return MAX_DEPTH - len(self._stack), flags | treeruns.RUN_AMBIGUOUS, closed

    def point_result(self, pushed: tuple[bytes, ...], touched: int, base: bool) -> None:
        """Apply what such a run did: it left the HTML elements ``pushed`` open (bit i of
        ``touched`` set: ``pushed[i]`` saw a start tag), and touched the node it started in
        if ``base``. The elements it closed are remembered already, if at all."""
        if base:
            self._stack[-1].touched = True
        for i, name in enumerate(pushed):
            node = _Node(HTML, name, PLAIN)
            node.touched = bool(touched >> i & 1)
            self._stack.append(node)

    def give_up(self, why: str) -> None:
        if self.unsure is None:
            self.unsure = _UNSURE.format(why)

    def cdata(self) -> bool:
        """Whether ``<![CDATA[`` here opens a CDATA section (else it is a bogus comment).

        Gives up where the answer depends on formatting elements the model does not track.
        """
        top = self._stack[-1] if self._stack else None
        # Around a closed, touched integration point a browser may still be inside it, with
        # HTML rules (no CDATA) or at it again (CDATA) where the model sees otherwise. In a
        # foreign root opened after that, both agree.
        around = self._closed_names and (not self._stack or self._ambiguous)
        if around or (top is not None and top.touched):
            self.give_up("<![CDATA[ after an SVG/MathML text element")
            return False
        if top is not None and top.kind != PLAIN and top.ns != HTML:
            top.touched = True  # its characters are processed under HTML rules
        return top is not None and top.ns != HTML

    def text(self) -> None:
        """Character tokens at the current node."""
        if self._stack and self._stack[-1].kind != PLAIN:
            self._stack[-1].touched = True

    # --- start tags -----------------------------------------------------------------------

    def start_tag(self, name: bytes, attr: AttrLookup, self_closing: bool) -> int:
        """Apply a start tag; DATA or SWITCH for the tokenizer (after a give-up: DATA)."""
        if self.unsure is not None:
            return DATA
        if self._html_rules(name):
            return self._html_start(name, attr, self_closing)
        return self._foreign_start(name, attr, self_closing)

    def _html_rules(self, name: bytes) -> bool:
        """The dispatcher (13.2.6): whether HTML insertion-mode rules handle this start tag."""
        if not self._stack:
            return True
        top = self._stack[-1]
        if top.ns == HTML or top.kind == HTML_POINT:
            return True
        if top.kind == TEXT_POINT:
            return name not in tags.MATHML_TEXT_FOREIGN
        return top.ns == MATHML and top.name == tags.ANNOTATION_XML and name == tags.SVG

    def _html_start(self, name: bytes, attr: AttrLookup, self_closing: bool) -> int:
        if self._stack:
            self._stack[-1].touched = True
        if name == tags.FRAMESET:
            self.give_up("<frameset>")
        elif self.in_select:
            if name in tags.SELECT_UNSURE:
                self.give_up(f"<{_show(name)}> inside <select>")
        elif name == tags.SELECT:
            if self._stack:
                self.give_up("<select> inside SVG/MathML")
            self.in_select = True
        elif name in tags.FOREIGN_OPENERS:
            if not self_closing:
                self._push(SVG if name == tags.SVG else MATHML, name, attr)
        elif name in tags.SWITCHING:
            return SWITCH
        elif self._stack:
            self._html_element(name)
        return DATA

    def _html_element(self, name: bytes) -> None:
        """An HTML start tag inside an integration point."""
        if name in tags.HTML_TABLE_AND_TEMPLATE:
            self.give_up(f"<{_show(name)}> inside SVG/MathML")
        elif name not in tags.HTML_VOID:
            self._push(HTML, name, None)

    def _foreign_start(self, name: bytes, attr: AttrLookup, self_closing: bool) -> int:
        breakout = name in tags.BREAKOUTS or (
            name == tags.FONT and any(attr(a) is not None for a in tags.FONT_ATTRS)
        )
        if breakout:
            while self._stack and self._stack[-1].ns != HTML and self._stack[-1].kind == PLAIN:
                self._pop()
            return self._html_start(name, attr, self_closing)
        if self._ambiguous and name in tags.SWITCHING:
            if name == tags.PLAINTEXT:
                self.give_up("<plaintext> in SVG/MathML after a text element")
                return DATA
            return STRICT
        if not self_closing:
            self._push(self._stack[-1].ns, name, attr)
        return DATA

    def _push(self, ns: int, name: bytes, attr: AttrLookup | None) -> None:
        if len(self._stack) >= MAX_DEPTH:
            self.give_up(f"SVG/MathML nested deeper than {MAX_DEPTH}")
            return
        self._stack.append(_Node(ns, name, self._kind(ns, name, attr)))

    def _kind(self, ns: int, name: bytes, attr: AttrLookup | None) -> int:
        if ns == SVG and name in tags.SVG_HTML_POINTS:
            return HTML_POINT
        if ns == MATHML and name in tags.MATHML_TEXT_POINTS:
            return TEXT_POINT
        if ns == MATHML and name == tags.ANNOTATION_XML and attr is not None:
            encoding = attr(b"encoding")
            if encoding is not None and "&" in encoding:
                self.give_up("a character reference in annotation-xml's encoding")
            elif encoding is not None and encoding.lower() in tags.ANNOTATION_HTML_ENCODINGS:
                return HTML_POINT
        return PLAIN

    # --- end tags -------------------------------------------------------------------------

    def end_tag(self, name: bytes) -> None:
        if self.unsure is not None:
            return
        if not self._stack:
            if self.in_select and name == tags.SELECT:
                self.in_select = False
            elif name in self._closed_names:
                self.give_up(f"</{_show(name)}> after an SVG/MathML text element")
            return
        top = self._stack[-1]
        if top.ns == HTML:  # an HTML element opened inside an integration point
            if name == top.name:
                self._pop()
            else:
                self.give_up(f"</{_show(name)}> inside an SVG/MathML integration point")
        elif name in tags.UNSURE_FOREIGN_END:
            self.give_up(f"</{_show(name)}> in SVG/MathML")
        else:
            self._foreign_end(name)

    def _foreign_end(self, name: bytes) -> None:
        """13.2.6.5 "any other end tag": pop to the open foreign element of that name."""
        top = self._stack[-1]
        if top.touched:
            if name != top.name:
                self.give_up(f"</{_show(name)}> at an SVG/MathML text element")
                return
            self._ambiguous = True
            self._pop()
            return
        for i in range(len(self._stack) - 1, -1, -1):
            node = self._stack[i]
            if node.ns == HTML or (i < len(self._stack) - 1 and node.touched):
                break
            if node.name == name:
                while len(self._stack) > i:
                    self._pop()
                return
        self.give_up(f"</{_show(name)}> that closes no open SVG/MathML element")

    def _pop(self) -> None:
        node = self._stack.pop()
        if self._ambiguous:
            self._closed_names.add(node.name)
            if len(self._closed_names) > MAX_DEPTH:
                self.give_up(f"more than {MAX_DEPTH} SVG/MathML names after a text element")
            if not self._stack:
                self._ambiguous = False
