"""What happens to one response once the decision is made: :class:`Page`.

A page either passes (its headers, with the debug header when debugging) or is held until its
body shows whether it comes whole (:meth:`Page.whole`: rewritten at once, exact
Content-Length) or in pieces (:meth:`Page.stream`, :meth:`Page.feed`, :meth:`Page.close`:
streamed through the rewriter, no Content-Length). A HEAD's body bytes are always withheld. An
already-compressed page goes through the optional ``compression`` module's decoder and encoder
around the rewriter, when it supports the coding.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, AnyStr, Generic, Protocol

from .identity import Identity
from .policy import edit_headers
from .reasons import (
    DEBUG_HEADER,
    HEAD_EDITED,
    MINTER_FAILED,
    NO_WIDGET_TAG,
    NOT_STAMPABLE,
    REENCODED,
    REWRITTEN,
    STREAMED,
    UNREADABLE,
)
from .rewriter import HTMLRewriter, explain, rewrite_html

if TYPE_CHECKING:
    from .core import Core

__all__ = [
    "BEFORE",
    "HOLD",
    "PASS",
    "STREAM",
    "Page",
    "Stream",
    "compression_supports",
    "header_text",
]

# The states of a response, one set for every front door.
BEFORE = 0  #: nothing from the application yet
PASS = 1  #: everything goes out untouched (apart from the debug header)
HOLD = 2  #: headers held until the body shows whether it comes whole
STREAM = 3  #: edited headers sent; body pieces go through the rewriter

_DEBUG_BYTES = DEBUG_HEADER.lower().encode("latin-1")


class Stream(Protocol):
    """What rewrites a body in pieces: :class:`.rewriter.HTMLRewriter`, or the compression
    module's wrapper around one."""

    def feed(self, chunk: bytes) -> bytes: ...

    def close(self) -> bytes: ...


def _compression_wrap() -> Callable[[str, Stream], Stream | None] | None:
    """``compression.wrap(coding, stream)`` when that optional module is there."""
    try:
        module = importlib.import_module(".compression", __package__)
    except ImportError:
        return None
    wrap: Callable[[str, Stream], Stream | None] | None = getattr(module, "wrap", None)
    return wrap


_wrap_encoded = _compression_wrap()


def compression_supports(coding: str) -> bool:
    """Whether a signed-in page compressed with ``coding`` can be decoded and re-encoded."""
    return _wrap_encoded is not None and _wrap_encoded(coding, _NullStream()) is not None


class Page(Generic[AnyStr]):
    """One response after the decision: what goes out, and the rewriting of its body.

    ``mode`` is :data:`PASS` (send :attr:`headers` and the body untouched) or :data:`HOLD`
    (hold the headers until the body shows whether it comes whole: then :meth:`whole`, or
    :meth:`stream` and :meth:`feed`/:meth:`close` for the pieces). Headers are ``bytes`` pairs
    under ASGI, ``str`` pairs elsewhere; what is added follows the same type.
    """

    __slots__ = (
        "_rewriter",
        "_stream",
        "_widget_like",
        "coding",
        "core",
        "declared",
        "head",
        "headers",
        "identity",
        "mode",
        "reason",
        "where",
    )

    def __init__(
        self,
        core: Core,
        headers: list[tuple[AnyStr, AnyStr]],
        where: str,
        reason: str | None,
        identity: Identity | None = None,
        declared: int | None = None,
        coding: str | None = None,
        *,
        head: bool = False,
    ) -> None:
        self.core = core
        self.where = where
        self.identity = identity
        #: the declared Content-Length, when there is exactly one valid value
        self.declared = declared
        self.coding = coding
        self.head = head
        self._rewriter: HTMLRewriter | None = None
        self._stream: Stream | None = None
        self._widget_like = False  # debugging a stream: a chunk mentioned the widget
        self.reason = reason
        self.mode = HOLD if reason is None else PASS
        self.headers: list[tuple[AnyStr, AnyStr]] = (
            headers if reason is None else self._noted(headers, reason)
        )

    def is_whole(self, first: bytes) -> bool:
        """Whether a first body piece is the whole body: as long as the declared length."""
        return self.declared is not None and len(first) >= self.declared

    def whole(self, body: bytes) -> tuple[list[tuple[AnyStr, AnyStr]], bytes]:
        """The headers and body to send for a body that is all here (exact Content-Length)."""
        assert self.identity is not None
        self.mode = PASS
        if self.head and not body:
            # A HEAD without its body: the GET's edits, but the stamped length cannot be known
            # without the body. The application's own length stays: without any, a server
            # frames the HEAD as chunked and writes a terminator a client would misread.
            return self._noted(edit_headers(self.headers, self.declared), HEAD_EDITED), b""
        new, reason = self._rewrite(body, self.identity)
        if new is None:
            return self._noted(self.headers, reason), b"" if self.head else body
        headers = edit_headers(self.headers, len(new))
        return self._noted(headers, reason), b"" if self.head else new

    def untouched(self, reason: str = UNREADABLE) -> list[tuple[AnyStr, AnyStr]]:
        """Give up on the page (its body cannot be read): the application's own headers."""
        self.mode = PASS
        return self._noted(self.headers, reason)

    def stream(self) -> list[tuple[AnyStr, AnyStr]]:
        """Start streaming: the edited headers, without Content-Length."""
        assert self.identity is not None
        self.mode = STREAM
        rewriter = self._rewriter = self.core.rewriter(self.identity)
        self._stream = rewriter if self.coding is None else self._wrapped(rewriter)
        return self._noted(edit_headers(self.headers, None), STREAMED)

    def feed(self, chunk: bytes) -> bytes:
        """A piece of a streamed body, rewritten (nothing for a HEAD)."""
        assert self._stream is not None
        out = self._stream.feed(chunk)
        if self.core.debug and not self._widget_like and self.coding is None:
            assert self._rewriter is not None
            self._widget_like = self._rewriter._matcher.looks_like(chunk)
        return b"" if self.head else out

    def close(self) -> bytes:
        """The rest of a streamed body; logs the outcome now known (when debugging)."""
        assert self._stream is not None and self._rewriter is not None
        self.mode = PASS
        out = self._stream.close()
        if self.core.debug:
            reason = _found_reason(self._rewriter, self.coding)
            if reason == NO_WIDGET_TAG and self._widget_like:
                reason = f"{NOT_STAMPABLE}: {WHERE_NO_TAG}"
            self.core.note(reason, self.where)
        return b"" if self.head else out

    def _rewrite(self, body: bytes, identity: Identity) -> tuple[bytes | None, str]:
        """The body stamped for ``identity``, or ``None`` and why not."""
        settings = self.core.settings
        minted: list[str | None] = []

        def token() -> str | None:
            minted.append(settings.mint(identity))
            return minted[0]

        if self.coding is None:
            new = rewrite_html(
                body, token, widget_src=settings.widget_src, project_id=settings.project_id
            )
            if minted and minted[0] is not None:
                return new, REWRITTEN
        else:
            rewriter = HTMLRewriter(
                token, widget_src=settings.widget_src, project_id=settings.project_id
            )
            stream = self._wrapped(rewriter)
            new = stream.feed(body) + stream.close()
            if rewriter.found and minted and minted[0] is not None:
                return new, f"{REWRITTEN}; {REENCODED} {self.coding}"
        if minted:
            return None, MINTER_FAILED
        return None, self._why_not(body) if self.core.debug else NO_WIDGET_TAG

    def _why_not(self, body: bytes) -> str:
        """Debugging only: whether a widget-like tag was there but could not be stamped."""
        if self.coding is not None:
            return NO_WIDGET_TAG
        settings = self.core.settings
        probe = HTMLRewriter("", widget_src=settings.widget_src, project_id=settings.project_id)
        probe.feed(body)
        probe.close()
        reason = _found_reason(probe, None)
        if reason != NO_WIDGET_TAG:
            return reason
        # Where no tag can be (a comment, raw text, an attribute value) is not a miss of the
        # rewriter's, but it is why this user got no token: name the first such place.
        for report in explain(body, widget_src=settings.widget_src, project_id=settings.project_id):
            if not report.rewritten:
                return f"{NOT_STAMPABLE}: {report.reason}"
        return NO_WIDGET_TAG

    def _wrapped(self, rewriter: HTMLRewriter) -> Stream:
        assert self.coding is not None and _wrap_encoded is not None
        stream = _wrap_encoded(self.coding, rewriter)
        assert stream is not None  # Core.page checked that the coding is supported
        return stream

    def _noted(
        self, headers: list[tuple[AnyStr, AnyStr]], reason: str
    ) -> list[tuple[AnyStr, AnyStr]]:
        self.reason = reason
        if not self.core.debug:
            return headers
        if reason != STREAMED:
            self.core.note(reason, self.where)
        as_bytes = bool(headers) and isinstance(headers[0][0], bytes)
        added: Any = (
            (_DEBUG_BYTES, reason.encode("latin-1")) if as_bytes else (DEBUG_HEADER, reason)
        )
        return [*headers, added]


class _NullStream:
    """Stands in for a rewriter when asking the compression module whether it can decode."""

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def close(self) -> bytes:
        return b""


#: A streamed page mentioned the widget but held no widget tag a browser would see.
WHERE_NO_TAG = (
    "the widget is mentioned only where a browser sees no tag (a comment, raw text or an "
    "attribute value); `reqio-middleware check` on the page says where"
)


def _found_reason(rewriter: HTMLRewriter, coding: str | None) -> str:
    if rewriter.found:
        return REWRITTEN if coding is None else f"{REWRITTEN}; {REENCODED} {coding}"
    missed = getattr(rewriter, "missed", None)
    return f"{NOT_STAMPABLE}: {missed}" if missed else NO_WIDGET_TAG


def header_text(headers: Sequence[tuple[AnyStr, AnyStr]], name: str) -> str:
    """The values of one response header (any case, bytes or str), joined as one text."""
    values = []
    for raw_name, raw_value in headers:
        text = raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name
        if text.lower() == name:
            values.append(
                raw_value.decode("latin-1") if isinstance(raw_value, bytes) else raw_value
            )
    return ", ".join(v.strip() for v in values)
