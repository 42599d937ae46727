"""``ReqioMiddleware``: the ASGI 3 middleware, in the style of Starlette's ``GZipMiddleware``.

For every HTTP response the application starts, :func:`.policy.classify` (the decision of
:func:`.policy.decide`) looks at the start message only. Anything that is not a rewritable
HTML page is forwarded message by message, untouched, through a bare wrapper. A rewritable
page is handled by a per-request :class:`_Responder`; nothing request-specific is ever stored
on the middleware.

How a rewritable page leaves:

* the identity is resolved when the start message arrives (the app has started its response,
  so what it stored in the scope is there); an anonymous page is forwarded at once, untouched
  and never scanned;
* the whole body in one message (the common case), or a declared ``Content-Length`` of at most
  :data:`.config.WINDOW` bytes: the start message is held until the body is complete; a token
  is minted only when the rewriter meets a widget tag, and the page goes out with its new,
  exact ``Content-Length``;
* anything longer or open-ended streams through the rewriter with ``Content-Length`` removed
  (the server then frames the body itself). An exact length here would mean holding the whole
  page, since every widget tag on it gets a token.

So a length is either exact or absent, never wrong. Messages we do not handle (trailers,
debug, early hints, zero-copy sends, anything new) are forwarded in order, and failures of
the application propagate exactly as without us, after whatever it had sent is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, BinaryIO

from asgiref.sync import iscoroutinefunction, sync_to_async

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

__all__ = ["ReqioMiddleware"]

logger = logging.getLogger("reqio_middleware")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Resolver = Callable[[Scope], Any]

#: Size of the body messages made from an HTML file sent with ``http.response.pathsend``.
FILE_CHUNK = 64 * 1024

_ENCODED_HINT = (
    "reqio: an HTML response arrived compressed (Content-Encoding: %s) and was left without a "
    "token. Put ReqioMiddleware inside the compression middleware (added before it with "
    "add_middleware, i.e. closer to the application) so that it sees the page uncompressed. "
    "This warning is logged once."
)

# The states of a response (_Responder.mode).
_BEFORE = 0  # nothing from the app yet
_PASS = 1  # forward everything untouched
_HOLD = 2  # start (and maybe some body) held back until we know the whole body
_STREAM = 3  # start sent with edited headers; bodies go through the rewriter

# Tasks of sync resolvers that overran their timeout: a thread cannot be stopped, so the task
# is kept alive here until its thread returns (asyncio only holds weak references to tasks).
_overrunning: set[asyncio.Task[Any]] = set()


class ReqioMiddleware:
    """Give the Reqio widget tag on HTML pages a signed identity token for the signed-in user."""

    def __init__(
        self,
        app: ASGIApp,
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
        self._resolver_is_async = resolver is not None and _is_async(resolver)
        self._threaded_resolver = (
            sync_to_async(resolver, thread_sensitive=False)
            if resolver is not None and not self._resolver_is_async
            else None
        )
        self.warn_encoded = CompressedWarning(_ENCODED_HINT)
        self._token_path = self.settings.token_path

    def __repr__(self) -> str:
        return f"ReqioMiddleware({self.app!r}, settings={self.settings!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        if self._token_path is not None:
            path = scope.get("path")
            if path == self._token_path:
                await _send_reply(send, await self._token_reply(scope, method))
                return
            if path == self.settings.script_path:
                await _send_reply(send, endpoint.script(method))
                return
        if method != "GET" and method != "HEAD":
            await self.app(scope, receive, send)
            return
        responder = _Responder(self, scope, send, method)
        try:
            await self.app(scope, receive, responder.wrapped_send)
        except BaseException:
            # Release what the app had sent so the server sees what it would see without us.
            if responder.mode >= _HOLD:
                with contextlib.suppress(Exception):
                    await responder.release()
            raise
        if responder.mode >= _HOLD:
            await responder.release()  # the app returned without finishing its response

    # -- identity ---------------------------------------------------------------------------

    async def resolve(self, scope: Scope) -> Identity | None:
        """The identity for this request; :class:`ResolverFailure` (logged) when unknown."""
        if self.resolver is None:
            value = scope.get("reqio.identity")
        else:
            value = await self._call_resolver(scope)
        return self.settings.identify(value)

    async def _call_resolver(self, scope: Scope) -> object:
        assert self.resolver is not None
        timeout = self.settings.resolver_timeout
        if self._resolver_is_async:
            task: asyncio.Task[Any] = asyncio.ensure_future(self.resolver(scope))
        else:
            assert self._threaded_resolver is not None
            task = asyncio.ensure_future(self._threaded_resolver(scope))
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            if self._resolver_is_async:
                task.cancel()
            else:
                _overrunning.add(task)
                task.add_done_callback(_forget)
            logger.error(
                "reqio: the identity resolver did not answer within %ss; "
                "the response goes out without a token",
                timeout,
            )
            raise ResolverFailure("timeout")
        exc = task.exception()
        if exc is not None:
            logger.error(
                "reqio: the identity resolver raised %s: %s; the response goes out without a token",
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
            raise ResolverFailure(type(exc).__name__)
        value = task.result()
        if inspect.isawaitable(value):
            logger.error(
                "reqio: the identity resolver returned an awaitable from a plain function; "
                "make it an `async def` so it can be awaited with a timeout"
            )
            if inspect.iscoroutine(value):
                value.close()
            raise ResolverFailure("awaitable")
        return value

    # -- the token endpoint -----------------------------------------------------------------

    async def _token_reply(self, scope: Scope, method: str) -> endpoint.Reply:
        headers = _request_headers(scope)
        host = headers.get("host")
        if host is None and scope.get("server"):
            server_host, port = scope["server"]
            host = f"{server_host}:{port}" if port is not None else str(server_host)
        refusal = endpoint.check_request(
            method,
            sec_fetch_site=headers.get("sec-fetch-site"),
            origin=headers.get("origin"),
            scheme=scope.get("scheme", "http"),
            host=host,
        )
        if refusal is not None:
            return refusal
        try:
            identity = await self.resolve(scope)
        except ResolverFailure:
            return endpoint.failure()
        if identity is None:
            return endpoint.anonymous()
        return endpoint.token(self.settings, identity)


class _Responder:
    """The state of one rewritable response (a GET or HEAD), between the app and the server."""

    __slots__ = (
        "declared",
        "held",
        "held_size",
        "method",
        "middleware",
        "mode",
        "rewriter",
        "scope",
        "send",
        "start",
        "start_headers",
        "who",
    )

    def __init__(self, middleware: ReqioMiddleware, scope: Scope, send: Send, method: str) -> None:
        # Only what every response needs; the rest is set when a page is held (hold()).
        self.middleware = middleware
        self.scope = scope
        self.send = send
        self.method = method
        self.mode = _BEFORE

    def hold(
        self,
        message: Message,
        headers: list[tuple[bytes, bytes]],
        declared: int | None,
        identity: Identity,
    ) -> None:
        self.who = identity
        self.mode = _HOLD
        self.start: Message | None = message
        self.start_headers = headers
        self.declared = declared
        self.held: list[Message] = []
        self.held_size = 0
        self.rewriter: HTMLRewriter | None = None

    async def wrapped_send(self, message: Message) -> None:
        mode = self.mode
        if mode == _PASS:  # most messages, so tested first
            await self.send(message)
        elif mode == _HOLD:
            await self.on_held(message)
        elif mode == _STREAM:
            await self.on_stream(message)
        elif message["type"] != "http.response.start":
            await self.send(message)  # http.response.debug and the like come before start
        elif (
            self.method == "GET"
            and self.middleware.resolver is None
            and "reqio.identity" not in self.scope
        ):
            # Nobody to give a token to: the default resolver reads the scope now, and would
            # find no identity. Whatever this response is, it goes out untouched, so its
            # headers need no reading (the compressed-HTML warning is about tokens lost, and
            # none is lost here). Most traffic is anonymous; this is its whole cost.
            self.mode = _PASS
            await self.send(message)
        else:
            try:
                headers = message["headers"]  # a subscript is cheaper than .get()
            except KeyError:
                headers = ()
            if not isinstance(headers, list):
                headers = list(headers)
                message = {**message, "headers": headers}
            action, length = classify(self.method, message["status"], headers)
            if action is not PASS_ACTION:  # PASS (JSON, assets, ...) is the hot path
                if action is REWRITE_ACTION:
                    # Someone may be signed in (the anonymous GETs left above): who is asking
                    # decides everything else. The app has started its response, so whatever
                    # it stored in the scope is there for the resolver.
                    identity = await self.identity()
                    if identity is not None:
                        self.hold(message, headers, declared_length(length), identity)
                        return
                elif action is HEAD_ACTION:
                    message = {**message, "headers": edit_headers(headers, None)}
                elif action is ENCODED_ACTION:
                    self.middleware.warn_encoded(headers)
            self.mode = _PASS
            await self.send(message)

    async def on_held(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            if not self.held and not message.get("more_body", False):
                await self.finish_one(message)  # the common case: the whole page at once
                return
            self.held.append(message)
            self.held_size += len(message.get("body", b""))
            if not message.get("more_body", False):
                await self.finish_whole()
            elif (
                self.declared is None
                or self.declared > self.middleware.settings.window
                or self.held_size > self.middleware.settings.window
            ):
                await self.begin_stream()
        elif kind == "http.response.pathsend" and not self.held:
            await self.send_file(message)
        elif kind in ("http.response.zerocopysend", "http.response.pathsend"):
            # Body bytes we cannot see: give up on this page and replay it as it was.
            self.held.append(message)
            await self.release()
        else:
            self.held.append(message)  # kept in order with the bodies

    async def on_stream(self, message: Message) -> None:
        assert self.rewriter is not None
        kind = message["type"]
        if kind == "http.response.body":
            more = message.get("more_body", False)
            out = self.rewriter.feed(message.get("body", b""))
            if not more:
                out += self.rewriter.close()
                self.mode = _PASS
            await self.send({**message, "body": out, "more_body": more})
        elif kind == "http.response.zerocopysend":
            # Bytes from a file descriptor cannot be rewritten; keep the order and stop here.
            rest = self.rewriter.close()
            self.mode = _PASS
            if rest:
                await self.send({"type": "http.response.body", "body": rest, "more_body": True})
            await self.send(message)
        else:
            await self.send(message)

    # -- the decisions ----------------------------------------------------------------------

    async def finish_one(self, message: Message) -> None:
        """The page came as one message: :meth:`finish_whole` without the bookkeeping."""
        start = self.start
        assert start is not None
        self.mode = _PASS
        self.start = None
        new = self.middleware.settings.rewrite(message.get("body", b""), self.who)
        if new is not None:
            start = {**start, "headers": edit_headers(self.start_headers, len(new))}
            message = {**message, "body": new, "more_body": False}
        await self.send(start)
        await self.send(message)

    async def finish_whole(self) -> None:
        """The whole body is here: stamp it if a widget tag is there."""
        bodies = [m for m in self.held if m["type"] == "http.response.body"]
        body = b"".join(m.get("body", b"") for m in bodies)
        new = self.middleware.settings.rewrite(body, self.who)
        if new is None:
            await self.release()
            return
        assert self.start is not None
        others = [m for m in self.held if m["type"] != "http.response.body"]
        self.mode = _PASS
        self.held = []
        await self.send({**self.start, "headers": edit_headers(self.start_headers, len(new))})
        for other in others:
            await self.send(other)
        await self.send({**bodies[-1], "body": new, "more_body": False})

    async def begin_stream(self) -> None:
        """Too long (or open-ended) to hold: stream it through the rewriter."""
        assert self.start is not None
        held, self.held = self.held, []
        self.rewriter = self.middleware.settings.rewriter(self.who)
        self.mode = _STREAM
        await self.send({**self.start, "headers": edit_headers(self.start_headers, None)})
        for message in held:
            if self.mode == _STREAM:
                await self.on_stream(message)
            else:
                await self.send(message)

    async def send_file(self, message: Message) -> None:
        """An HTML file sent by path (``FileResponse``): read it so the page gets its token."""
        path = message["path"]
        settings = self.middleware.settings
        try:
            size = await sync_to_async(os.path.getsize, thread_sensitive=False)(path)
            small = size <= settings.window
            data = await _read_file(path) if small else b""
        except OSError:
            self.held.append(message)  # let the server report the file as it would
            await self.release()
            return
        assert self.start is not None
        if small:
            new = settings.rewrite(data, self.who)
            if new is None:
                self.held.append(message)  # no widget: the server sends the file itself
                await self.release()
                return
            self.mode = _PASS
            await self.send({**self.start, "headers": edit_headers(self.start_headers, len(new))})
            await self.send({"type": "http.response.body", "body": new, "more_body": False})
            return
        self.mode = _PASS
        await self.send({**self.start, "headers": edit_headers(self.start_headers, None)})
        await _stream_file(path, settings.rewriter(self.who), self.send)

    async def release(self) -> None:
        """Send what we held exactly as the app sent it (or flush the rewriter) and step aside."""
        if self.mode == _STREAM:
            assert self.rewriter is not None
            self.mode = _PASS
            rest = self.rewriter.close()
            if rest:
                await self.send({"type": "http.response.body", "body": rest, "more_body": True})
            return
        held, self.held = self.held, []
        start, self.start = self.start, None
        self.mode = _PASS
        if start is not None:
            await self.send(start)
        for message in held:
            await self.send(message)

    async def identity(self) -> Identity | None:
        try:
            if self.middleware.resolver is None:  # the default: no coroutine to wait for
                value = self.scope.get("reqio.identity")
                return None if value is None else self.middleware.settings.identify(value)
            return await self.middleware.resolve(self.scope)
        except ResolverFailure:
            return None


async def _read_file(path: str) -> bytes:
    def read() -> bytes:
        with open(path, "rb") as file:
            return file.read()

    return await sync_to_async(read, thread_sensitive=False)()


async def _stream_file(path: str, rewriter: HTMLRewriter, send: Send) -> None:
    file = await sync_to_async(_open_binary, thread_sensitive=False)(path)
    try:
        read = sync_to_async(file.read, thread_sensitive=False)
        while True:
            chunk = await read(FILE_CHUNK)
            if not chunk:
                break
            await send(
                {"type": "http.response.body", "body": rewriter.feed(chunk), "more_body": True}
            )
        await send({"type": "http.response.body", "body": rewriter.close(), "more_body": False})
    finally:
        await sync_to_async(file.close, thread_sensitive=False)()


def _open_binary(path: str) -> BinaryIO:
    return open(path, "rb")


async def _send_reply(send: Send, reply: endpoint.Reply) -> None:
    headers = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in reply.headers]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body, "more_body": False})


def _request_headers(scope: Scope) -> dict[str, str]:
    """The request headers we look at, by lowercase name (the first of duplicates wins)."""
    wanted = {b"host", b"origin", b"sec-fetch-site"}
    found: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        lower = bytes(name).lower()
        if lower in wanted and lower.decode() not in found:
            found[lower.decode()] = bytes(value).decode("latin-1")
    return found


def _is_async(resolver: Callable[..., Any]) -> bool:
    if iscoroutinefunction(resolver):
        return True
    call = getattr(resolver, "__call__", None)  # noqa: B004 - instances with async __call__
    return call is not None and iscoroutinefunction(call)


def _forget(task: asyncio.Task[Any]) -> None:
    _overrunning.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not report it at garbage collection
