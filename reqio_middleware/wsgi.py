"""``ReqioWSGIMiddleware``: the PEP 3333 middleware, same policy and settings as the ASGI one.

Non-GET/HEAD requests and responses that are not rewritable HTML go straight through: the
server's own ``start_response`` is called as soon as the application calls ours, and the
application's iterable (a ``wsgi.file_wrapper`` included) is returned as is.

For a rewritable page, ``start_response`` is held until the first block of the body (the
application may call it lazily, inside that first iteration):

* the body is complete in hand (the application returned a list or tuple, or the first block is
  as long as the declared ``Content-Length``): the identity is resolved, a token is minted only
  if a widget tag is there, and the page goes out with an exact ``Content-Length``. A list or
  tuple with nothing stored under ``reqio.identity`` (and the default resolver) is known to be
  anonymous as soon as the application returns: the headers go to the server then, and the
  application's own list is returned, unwrapped;
* otherwise the identity is resolved at the first block; an anonymous page goes out untouched,
  others stream through the rewriter without ``Content-Length``, one output block (possibly
  ``b""``) per input block, so the server is never made to wait for several blocks.

Why not hold several blocks to get an exact length for short streamed pages, as the ASGI
middleware does: ``wsgiref.validate`` (and servers built the same way) require
``start_response`` to have been called by the time the first block is handed over, and PEP 3333
forbids blocking the server on more than one block; together they leave the first block as
the only point of decision.

If the application uses ``write()`` while the headers are held, they are released untouched
and what it writes (and yields after) passes through: ``write()`` is a legacy path.

The resolver runs in the request's thread, with no timeout: WSGI frameworks keep the request
(Flask's context, Django's thread-local state) in that thread, so running the resolver in
another one to time it out would hide the very data it needs, and an abandoned thread could
not be stopped anyway. Its exceptions are handled exactly as under ASGI.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Protocol

from . import endpoint
from .config import DEFAULT_RESOLVER_TIMEOUT, DEFAULT_WIDGET_SRC, ResolverFailure, Settings
from .identity import Identity
from .policy import (
    ENCODED_ACTION,
    HEAD_ACTION,
    PASS_ACTION,
    REWRITE_ACTION,
    CompressedWarning,
    classify,
    declared_length,
    edit_headers,
)
from .rewriter import HTMLRewriter
from .tokens import Minter

__all__ = ["ReqioWSGIMiddleware"]

logger = logging.getLogger("reqio_middleware")

Environ = dict[str, Any]
Headers = list[tuple[str, str]]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
Write = Callable[[bytes], object]


class StartResponse(Protocol):
    def __call__(
        self, status: str, headers: Headers, exc_info: ExcInfo | None = ..., /
    ) -> Write: ...


WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
Resolver = Callable[[Environ], Any]

_ENCODED_HINT = (
    "reqio: an HTML response arrived compressed (Content-Encoding: %s) and was left without a "
    "token. Wrap the application with ReqioWSGIMiddleware inside (before) the compression "
    "middleware so that it sees the page uncompressed. This warning is logged once."
)

# The states of a response (_Response.mode).
_NONE = 0  # the app has not called start_response yet
_PASS = 1  # the server has the headers; the body goes through untouched
_HOLD = 2  # a rewritable page: headers held until the first block
_STREAM = 3  # the server has edited headers; blocks go through the rewriter
# A HEAD for a page we would rewrite: edited headers, and the app's body (which a HEAD may
# carry) withheld, or the server would count it into a Content-Length that is not the GET's:
# the GET's page carries a token the HEAD's does not.
_HEAD = 4


class ReqioWSGIMiddleware:
    """Give the Reqio widget tag on HTML pages a signed identity token for the signed-in user."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        resolver: Resolver | None = None,
        secret: str | bytes | None = None,
        project_id: str | None = None,
        audience: str | None = None,
        widget_src: str = DEFAULT_WIDGET_SRC,
        ttl: int = 300,
        token_path: str | None = None,
        minter: Minter | None = None,
        resolver_timeout: float = DEFAULT_RESOLVER_TIMEOUT,
    ) -> None:
        self.app = app
        self.settings = Settings(
            secret=secret,
            project_id=project_id,
            audience=audience,
            widget_src=widget_src,
            ttl=ttl,
            token_path=token_path,
            minter=minter,
            resolver_timeout=resolver_timeout,
        )
        if resolver is not None and not callable(resolver):
            raise TypeError(f"resolver must be callable, not {type(resolver).__name__}")
        self.resolver = resolver
        self.warn_encoded = CompressedWarning(_ENCODED_HINT)
        self._token_path = self.settings.token_path

    def __repr__(self) -> str:
        return f"ReqioWSGIMiddleware({self.app!r}, settings={self.settings!r})"

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if self._token_path is not None:
            path = environ.get("PATH_INFO")
            if path == self._token_path:
                return _reply(start_response, self._token_reply(environ, method))
            if path == self.settings.script_path:
                return _reply(start_response, endpoint.script(method))
        if method != "GET" and method != "HEAD":
            return self.app(environ, start_response)
        response = _Response(self, environ, start_response, method)
        result = self.app(environ, response.start_response)
        mode = response.mode
        if mode == _PASS:
            return result  # decided already: the app's own iterable, file wrappers included
        if (
            mode == _HOLD
            and self.resolver is None
            and "reqio.identity" not in environ
            and isinstance(result, (list, tuple))
        ):
            # A complete page, and nobody to give a token to (the default resolver would find
            # nothing): what _Body would do at its first block, done now, without wrapping the
            # iterable. The application has returned, so its environ is final.
            response.mode = _PASS
            try:
                response.send_headers(response.headers)
            except BaseException:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
                raise
            return result
        return _Body(response, result)

    def resolve(self, environ: Environ) -> Identity | None:
        """The identity for this request; :class:`ResolverFailure` (logged) when unknown."""
        if self.resolver is None:
            value = environ.get("reqio.identity")
        else:
            try:
                value = self.resolver(environ)
            except Exception as exc:
                logger.error(
                    "reqio: the identity resolver raised %s: %s; "
                    "the response goes out without a token",
                    type(exc).__name__,
                    exc,
                    exc_info=exc,
                )
                raise ResolverFailure(type(exc).__name__) from None
            if inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()
                logger.error(
                    "reqio: the identity resolver returned an awaitable; under WSGI it must be "
                    "a plain function"
                )
                raise ResolverFailure("awaitable")
        return self.settings.identify(value)

    def _token_reply(self, environ: Environ, method: str) -> endpoint.Reply:
        host = environ.get("HTTP_HOST")
        if not host and environ.get("SERVER_NAME"):
            host = f"{environ['SERVER_NAME']}:{environ.get('SERVER_PORT', '80')}"
        refusal = endpoint.check_request(
            method,
            sec_fetch_site=environ.get("HTTP_SEC_FETCH_SITE"),
            origin=environ.get("HTTP_ORIGIN"),
            scheme=environ.get("wsgi.url_scheme", "http"),
            host=host or None,
        )
        if refusal is not None:
            return refusal
        try:
            identity = self.resolve(environ)
        except ResolverFailure:
            return endpoint.failure()
        if identity is None:
            return endpoint.anonymous()
        return endpoint.token(self.settings, identity)


class _Response:
    """One GET/HEAD response: our ``start_response`` and ``write``, and the decision."""

    __slots__ = (
        "environ",
        "headers",
        "length",
        "method",
        "middleware",
        "mode",
        "rewriter",
        "server_start_response",
        "server_write",
        "status",
    )

    def __init__(
        self,
        middleware: ReqioWSGIMiddleware,
        environ: Environ,
        start_response: StartResponse,
        method: str,
    ) -> None:
        # Only what every response needs; the rest is set when a page is held.
        self.middleware = middleware
        self.environ = environ
        self.server_start_response = start_response
        self.method = method
        self.server_write: Write | None = None
        self.mode = _NONE
        # Set when a page is held (in start_response):
        self.status: str
        self.headers: Headers
        self.length: str | bytes | None  # the declared Content-Length, as sent
        self.rewriter: HTMLRewriter | None

    def start_response(
        self, status: str, headers: Iterable[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Write:
        try:
            mode = self.mode
            if mode != _NONE:
                if exc_info is None:
                    raise AssertionError("start_response called a second time without exc_info")
                if mode in (_PASS, _STREAM):
                    return self.replace_headers(status, headers, exc_info)
            if type(headers) is not list:
                headers = list(headers)  # may be a generator: read it once
            code = _CODES.get(status)  # inline: a call costs as much as the lookup
            action, length = classify(self.method, _code(status) if code is None else code, headers)
            if action is REWRITE_ACTION:
                self.mode = _HOLD
                self.status = status
                self.headers = headers
                self.length = length
                self.rewriter = None
                return self.write
            mode = _PASS
            if action is not PASS_ACTION:  # PASS (JSON, assets, ...) is the hot path
                if action is HEAD_ACTION:
                    headers = edit_headers(headers, None)
                    mode = _HEAD
                elif action is ENCODED_ACTION:
                    self.middleware.warn_encoded(headers)
            self.mode = mode
            if exc_info is None:
                write = self.server_write = self.server_start_response(status, headers)
            else:
                write = self.server_write = self.server_start_response(status, headers, exc_info)
            return self.write if mode == _HEAD else write
        finally:
            exc_info = None  # no reference cycle through the traceback (PEP 3333)

    def replace_headers(
        self, status: str, headers: Iterable[tuple[str, str]], exc_info: ExcInfo
    ) -> Write:
        """``start_response`` with ``exc_info`` once the server has our headers: it replaces
        them, or re-raises if they went out. The new (error) page is not rewritten: its body
        may follow part of the old one."""
        try:
            headers = list(headers)
            self.mode = _PASS
            self.rewriter = None
            if classify(self.method, _code(status), headers)[0] is HEAD_ACTION:
                headers = edit_headers(headers, None)
            self.server_write = self.server_start_response(status, headers, exc_info)
            return self.server_write
        finally:
            del exc_info  # no reference cycle through the traceback (PEP 3333)

    def write(self, data: bytes) -> object:
        """The app's ``write()``: release held headers untouched and pass its bytes through."""
        if self.mode == _HOLD:
            self.send_headers(self.headers)
            self.mode = _PASS
        assert self.server_write is not None
        if self.mode == _HEAD:
            return None
        if self.mode == _STREAM:
            assert self.rewriter is not None
            return self.server_write(self.rewriter.feed(data))
        return self.server_write(data)

    def send_headers(self, headers: Headers) -> None:
        self.server_write = self.server_start_response(self.status, headers)

    def whole(self, body: bytes) -> bytes:
        """The complete body: stamped when someone is signed in and a widget tag is there."""
        self.mode = _PASS
        identity = self.identity()
        if identity is not None:
            new = self.middleware.settings.rewrite(body, identity)
            if new is not None:
                self.send_headers(edit_headers(self.headers, len(new)))
                return new
        self.send_headers(self.headers)
        return body

    def first_block(self, block: bytes) -> bytes:
        """Decide at the first block of a body that may go on."""
        declared = declared_length(self.length)
        if declared is not None and len(block) >= declared:
            return self.whole(block)
        identity = self.identity()
        if identity is None:
            self.mode = _PASS
            self.send_headers(self.headers)
            return block
        self.rewriter = self.middleware.settings.rewriter(identity)
        self.mode = _STREAM
        self.send_headers(edit_headers(self.headers, None))
        return self.rewriter.feed(block)

    def identity(self) -> Identity | None:
        try:
            return self.middleware.resolve(self.environ)
        except ResolverFailure:
            return None


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
        if response.mode == _HOLD and isinstance(result, (list, tuple)):
            yield response.whole(b"".join(result))
            return
        for block in result:
            mode = response.mode
            if mode == _PASS:
                yield block
            elif mode == _STREAM:
                assert response.rewriter is not None
                yield response.rewriter.feed(block)
            elif mode == _HOLD:
                yield response.first_block(block)
            elif mode == _HEAD:
                yield b""  # one empty bytestring per absorbed block (PEP 3333)
            elif block:
                raise AssertionError("the application yielded a body before start_response")
        if response.mode == _HOLD:
            yield response.whole(b"")
        elif response.mode == _STREAM:
            assert response.rewriter is not None
            response.mode = _PASS
            rest = response.rewriter.close()
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


def _reply(start_response: StartResponse, reply: endpoint.Reply) -> list[bytes]:
    start_response(reply.status_line, list(reply.headers))
    return [reply.body]


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
