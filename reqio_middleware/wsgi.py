"""``ReqioWSGIMiddleware``: the PEP 3333 front door of the request core (:mod:`.core`).

Non-GET/HEAD requests and responses that cannot carry a token go straight through: the
server's own ``start_response`` is called as soon as the application calls ours, and the
application's iterable (a ``wsgi.file_wrapper`` included) is returned as is.

For a page that may carry one, ``start_response`` is held until the first piece of the body,
whether the application returns it or passes it to ``write()`` (PEP 3333 requires middleware
to support both; both go through the same rewriter). That first piece is the only point of
decision: ``wsgiref.validate`` and servers built the same way want ``start_response`` called
before the first block is handed over, and PEP 3333 forbids making the server wait for more
than one block. So the body is whole (exact Content-Length) when the application returned a
list or tuple, or when its first piece is as long as the declared Content-Length; otherwise
it streams, one output block (possibly ``b""``) per input block.

The resolver runs in the request's thread, with no timeout: WSGI frameworks keep the request
(Flask's context, Django's thread-local state) in that thread, so running it elsewhere to
time it out would hide the very data it needs, and an abandoned thread cannot be stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from . import endpoint
from .core import BEFORE, CONDITIONAL_ENVIRON, HOLD, PASS, STREAM, FrontDoor, TokenRequest
from .identity import Identity
from .policy import PASS_ACTION, Classified

if TYPE_CHECKING:
    from .core import Core, Page

__all__ = ["ReqioWSGIMiddleware"]

Environ = dict[str, Any]
Headers = list[tuple[str, str]]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
Write = Callable[[bytes], object]
Known = tuple[Identity | None, str | None]


class StartResponse(Protocol):
    def __call__(
        self, status: str, headers: Headers, exc_info: ExcInfo | None = ..., /
    ) -> Write: ...


# What is wrapped: any WSGI app, whatever its framework's type for start_response (Falcon's,
# wsgiref.types.StartResponse), which the StartResponse protocol given to it may not match.
WSGIApp = Callable[[Environ, Any], Iterable[bytes]]
Resolver = Callable[[Environ], Any]

_ENCODED_HINT = (
    "reqio: a signed-in user's HTML page arrived compressed (Content-Encoding: %s), a coding "
    "this installation cannot decode, and went out without a token. Wrap the application "
    "with ReqioWSGIMiddleware inside (before) the compression middleware so that it sees the "
    "page uncompressed. This warning is logged once."
)
_CREDENTIALS = (("Cookie", "HTTP_COOKIE"), ("Authorization", "HTTP_AUTHORIZATION"))


class ReqioWSGIMiddleware(FrontDoor[WSGIApp]):
    """Give the Reqio widget tag on HTML pages a signed identity token for the signed-in user."""

    encoded_hint = _ENCODED_HINT

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        core = self.core
        if core.settings.token_path is not None:
            reply = self._endpoints(environ, method)
            if reply is not None:
                start_response(reply.status_line, list(reply.headers))
                return [reply.body]
        if method != "GET" and method != "HEAD":
            return self.app(environ, start_response)
        known: Known | None = None
        if method == "GET" and not core.surely_anonymous(environ) and _conditional(environ):
            known = core.resolve_sync(environ)
            if known[0] is not None:  # signed in: the app must render, not answer 304
                environ = {k: v for k, v in environ.items() if k not in CONDITIONAL_ENVIRON}
        response = _Response(core, environ, start_response, method, known)
        result = self.app(environ, response.start_response)
        if response.mode == PASS:
            return result  # decided already: the app's own iterable, file wrappers included
        if response.mode == HOLD and isinstance(result, (list, tuple)):
            # A complete page: the application has returned, so who is asking can be known
            # now. An anonymous page goes out as the application's own list, unwrapped, so the
            # server sees exactly what it would see without us.
            try:
                body = result[0] if len(result) == 1 else b"".join(result)
                out = response.decide(body, complete=True)
            except BaseException:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
                raise
            if out is body:
                return result
            close = getattr(result, "close", None)
            if close is not None:
                close()
            return [out]
        return _Body(response, result)

    def _endpoints(self, environ: Environ, method: str) -> endpoint.Reply | None:
        """The token endpoint's or its script's reply; ``None`` for any other path."""
        path = environ.get("PATH_INFO")
        core = self.core
        if path == core.settings.script_path:
            return endpoint.script(method)
        if path != core.settings.token_path:
            return None
        request = _token_request(environ, method)
        refusal = core.token_refusal(request)
        if refusal is not None:
            return refusal
        return core.token_reply(request, *core.resolve_sync(environ))


class _Response:
    """One GET/HEAD response: our ``start_response`` and ``write``, and the decision."""

    __slots__ = (
        "absorb",
        "classified",
        "core",
        "environ",
        "headers",
        "known",
        "method",
        "mode",
        "page",
        "server_start_response",
        "server_write",
        "status",
    )

    def __init__(
        self,
        core: Core,
        environ: Environ,
        start_response: StartResponse,
        method: str,
        known: Known | None,
    ) -> None:
        self.core, self.environ, self.method = core, environ, method
        self.server_start_response = start_response
        self.known = known  # an identity resolved before the app ran (a conditional GET)
        self.server_write: Write | None = None
        self.mode = BEFORE
        self.absorb = False  # a signed-in HEAD decided whole: later blocks are withheld
        self.status: str
        self.headers: Headers
        self.classified: Classified
        self.page: Page[str]

    def start_response(
        self, status: str, headers: Iterable[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Write:
        try:
            if self.mode != BEFORE:
                if exc_info is None:
                    raise AssertionError("start_response called a second time without exc_info")
                if self.mode != HOLD:
                    return self.replace_headers(status, headers, exc_info)
            # May be a generator: read it once.
            headers = headers if type(headers) is list else list(headers)
            if self.known is None and self.core.surely_anonymous(self.environ):
                return self.pass_through(status, headers, exc_info)  # most traffic: nobody
            code = _CODES.get(status)  # inline: a call costs as much as the lookup
            if code is None:
                code = _code(status)
            if code == 304 and self.core.reads_request and _conditional(self.environ):
                self.core.not_modified(self.environ)
            classified = self.core.classify(self.method, code, headers)
            if classified[0] is PASS_ACTION:  # JSON, assets, ...: the hot path
                if self.core.debug:
                    headers = self.core.page(self.method, classified, headers, None, None).headers
                return self.pass_through(status, headers, exc_info)
            self.mode = HOLD
            self.status, self.headers, self.classified = status, headers, classified
            return self.write
        finally:
            exc_info = None  # no reference cycle through the traceback (PEP 3333)

    def pass_through(self, status: str, headers: Headers, exc_info: ExcInfo | None) -> Write:
        """The response goes out as the application sends it, from its start on."""
        self.mode = PASS
        if exc_info is None:
            self.server_write = self.server_start_response(status, headers)
        else:
            self.server_write = self.server_start_response(status, headers, exc_info)
        return self.server_write

    def replace_headers(
        self, status: str, headers: Iterable[tuple[str, str]], exc_info: ExcInfo
    ) -> Write:
        """``start_response`` with ``exc_info`` once the server has our headers: it replaces
        them, or re-raises if they went out. The new (error) page is not rewritten: its body
        may follow part of the old one."""
        try:
            self.mode = PASS
            self.absorb = False
            self.server_write = self.server_start_response(status, list(headers), exc_info)
            return self.server_write
        finally:
            del exc_info  # no reference cycle through the traceback (PEP 3333)

    def write(self, data: bytes) -> object:
        """The app's ``write()``: the same path as the blocks it returns."""
        mode = self.mode
        if mode == HOLD:
            data = self.decide(data, complete=False)
        elif mode == STREAM:
            data = self.page.feed(data)
        elif self.absorb:
            return None
        assert self.server_write is not None
        return self.server_write(data)

    def send_headers(self, headers: Headers) -> None:
        self.server_write = self.server_start_response(self.status, headers)

    def decide(self, first: bytes, *, complete: bool) -> bytes:
        """The first piece of the body is here: resolve, then pass, rewrite whole, or stream."""
        core = self.core
        known = self.known
        if known is not None and core.still_known(known):
            identity, failure = known
        else:
            identity, failure = core.resolve_sync(self.environ)
        if core.untouched(identity):  # nobody to give a token to: the app's own headers
            self.mode = PASS
            self.send_headers(self.headers)
            return first
        where = f"{self.method} {self.environ.get('PATH_INFO', '')}" if core.debug else ""
        page = self.page = core.page(
            self.method, self.classified, self.headers, identity, failure, where
        )
        if page.mode == PASS:
            self.mode = PASS
            self.send_headers(page.headers)
            return first
        if complete or page.is_whole(first):
            headers, out = page.whole(first)
            self.mode = PASS
            self.absorb = page.head
            self.send_headers(headers)
            return out
        self.mode = STREAM
        self.send_headers(page.stream())
        return page.feed(first)


class _Body:
    """The iterable we hand the server for a page we may rewrite; closes the app's once."""

    __slots__ = ("_closed", "_iterator", "response", "result")

    def __init__(self, response: _Response, result: Iterable[bytes]) -> None:
        self.response = response
        self.result = result
        self._iterator: Iterator[bytes] | None = None
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        if self._iterator is None:
            self._iterator = self._blocks()
        return self._iterator

    def _blocks(self) -> Iterator[bytes]:
        response = self.response
        result = self.result
        for block in result:
            mode = response.mode
            if mode == PASS:
                yield b"" if response.absorb else block
            elif mode == STREAM:
                yield response.page.feed(block)
            elif mode == HOLD:
                yield response.decide(block, complete=False)
            elif block:
                raise AssertionError("the application yielded a body before start_response")
        if response.mode == HOLD:
            yield response.decide(b"", complete=True)
        elif response.mode == STREAM:
            rest = response.page.close()
            response.mode = PASS
            if rest:
                yield rest

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._iterator is not None and hasattr(self._iterator, "close"):
                self._iterator.close()
        finally:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()


def _conditional(environ: Environ) -> bool:
    return any(key in environ for key in CONDITIONAL_ENVIRON)


def _token_request(environ: Environ, method: str) -> TokenRequest:
    host = environ.get("HTTP_HOST")
    if not host and environ.get("SERVER_NAME"):
        host = f"{environ['SERVER_NAME']}:{environ.get('SERVER_PORT', '80')}"
    return TokenRequest(
        method,
        sec_fetch_site=environ.get("HTTP_SEC_FETCH_SITE"),
        origin=environ.get("HTTP_ORIGIN"),
        scheme=environ.get("wsgi.url_scheme", "http"),
        host=host or None,
        credentials=tuple(name for name, key in _CREDENTIALS if environ.get(key)),
    )


def _code(status: str) -> int:
    """The status code of a status line; learnt per line, as applications send a handful."""
    code = _CODES.get(status)
    if code is None:
        try:
            code = int(status.split(" ", 1)[0])
        except ValueError:
            code = 0
        if len(_CODES) < 256:
            _CODES[status] = code
    return code


_CODES: dict[str, int] = {}
