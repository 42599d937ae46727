"""``ReqioMiddleware``: the ASGI 3 front door of the request core (:mod:`.core`).

It translates ASGI messages into calls on the core and nothing else: the start message is
classified; anything that cannot carry a token is forwarded as it comes; a page that may is
held until its first body message shows whether the body comes whole (exact Content-Length)
or in pieces (streamed through the rewriter, no Content-Length). Messages we do not handle
(trailers, early hints, anything new) are forwarded in order, and failures of the application
propagate exactly as without us, after whatever it had sent is released.

Nothing here is asyncio-only: timeouts and threads come from ``anyio``, so the middleware runs
under asyncio and trio servers alike.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from types import FrameType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from . import endpoint
from .config import WINDOW, ConfigurationError
from .core import BEFORE, CONDITIONAL_HEADERS, HOLD, PASS, STREAM, FrontDoor, TokenRequest
from .identity import Identity
from .policy import PASS_ACTION

if TYPE_CHECKING:
    from .core import Core, Page

__all__ = ["ReqioMiddleware"]

logger = logging.getLogger("reqio_middleware")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# What is wrapped: any ASGI app, whatever its framework's own types for the three (Quart and
# Litestar type scopes as TypedDicts, which a MutableMapping parameter would refuse).
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
Resolver = Callable[[Scope], Any]
Known = tuple[Identity | None, str | None]

#: Size of the body messages made from an HTML file sent with ``http.response.pathsend``.
FILE_CHUNK = 64 * 1024

_ENCODED_HINT = (
    "reqio: a signed-in user's HTML page arrived compressed (Content-Encoding: %s), a coding "
    "this installation cannot decode, and went out without a token. Put ReqioMiddleware "
    "inside the compression middleware (added before it with add_middleware, i.e. closer to "
    "the application). This warning is logged once."
)


class ReqioMiddleware(FrontDoor[ASGIApp]):
    """Give the Reqio widget tag on HTML pages a signed identity token for the signed-in user.

    A configuration mistake raises :class:`.config.ConfigurationError` here. When Starlette
    builds its middleware stack (lazily, on the first event, which is the lifespan startup),
    raising would only make servers call lifespan unsupported and answer 500s; so then the
    middleware is built broken and fails the lifespan startup with the message instead.
    """

    encoded_hint = _ENCODED_HINT

    def defer_failure(self) -> bool:
        return _built_by_starlette()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.failure is not None:
            await _refuse(self.failure, scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        core = self.core
        if scope.get("path") in core.settings.endpoint_paths:
            await self._endpoint(scope, method, send)
            return
        if method != "GET" and method != "HEAD":
            await self.app(scope, receive, send)
            return
        known: Known | None = None
        if method == "GET" and not core.surely_anonymous(scope) and _conditional(scope):
            known = await core.resolve_async(scope)
            if known[0] is not None:  # signed in: the app must render, not answer 304
                scope = _unconditional(scope)
        responder = _Responder(core, scope, send, method, known)
        try:
            await self.app(scope, receive, responder.wrapped_send)
        except BaseException:
            # Release what the app had sent so the server sees what it would see without us.
            if responder.mode >= HOLD:
                with contextlib.suppress(Exception):
                    await responder.release()
            raise
        if responder.mode >= HOLD:
            await responder.release()  # the app returned without finishing its response

    async def _endpoint(self, scope: Scope, method: str, send: Send) -> None:
        """Answer the token endpoint or its script."""
        core = self.core
        if scope.get("path") == core.settings.token_path:
            request = _token_request(scope, method)
            reply = core.token_refusal(request)
            if reply is None:
                identity, failure = await core.resolve_async(scope)
                reply = core.token_reply(request, identity, failure)
        else:
            reply = endpoint.script(method)
        headers = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in reply.headers]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body, "more_body": False})


class _Responder:
    """One GET or HEAD response, between the application and the server."""

    __slots__ = ("core", "held", "known", "method", "mode", "page", "scope", "send", "start")

    def __init__(self, core: Core, scope: Scope, send: Send, method: str, known: Known | None):
        self.core, self.scope, self.send, self.method = core, scope, send, method
        self.known = known  # an identity resolved before the app ran (a conditional GET)
        self.mode = BEFORE
        self.page: Page[bytes]
        self.start: Message
        self.held: list[Message]

    async def wrapped_send(self, message: Message) -> None:
        mode = self.mode
        if mode == PASS:  # most messages, so tested first
            await self.send(message)
        elif mode == STREAM and message["type"] == "http.response.body":
            await self.send(self.rewritten(message))  # no coroutine of ours per piece
        elif mode == HOLD:
            await self.on_held(message)
        elif mode == STREAM:
            await self.on_stream(message)
        elif message["type"] != "http.response.start":
            await self.send(message)  # http.response.debug and the like come before start
        elif self.known is None and self.core.surely_anonymous(self.scope):
            self.mode = PASS  # nobody to give a token to: the whole cost of most traffic
            await self.send(message)
        else:
            await self.on_start(message)

    async def on_start(self, message: Message) -> None:
        core = self.core
        headers = message.get("headers", [])
        if not isinstance(headers, list):
            headers = list(headers)
        if message["status"] == 304 and core.reads_request and _conditional(self.scope):
            core.not_modified(self.scope)
        classified = core.classify(self.method, message["status"], headers)
        if classified[0] is PASS_ACTION and not core.debug:  # JSON, assets...: the hot path
            self.mode = PASS
            await self.send(message)
            return
        identity: Identity | None = None
        failure: str | None = None
        if classified[0] is not PASS_ACTION:
            known = self.known
            if known is not None and core.still_known(known):
                identity, failure = known
            elif core.inline:  # no coroutine to make: the shipped resolvers and the default
                identity, failure = core.resolve_sync(self.scope)
            else:
                identity, failure = await core.resolve_async(self.scope)
            if core.untouched(identity):  # most HTML traffic is anonymous
                self.mode = PASS
                await self.send(message)
                return
        where = f"{self.method} {self.scope.get('path', '')}" if core.debug else ""
        page = core.page(self.method, classified, headers, identity, failure, where)
        if page.mode == PASS:
            self.mode = PASS
            await self.send(
                message if page.headers is headers else {**message, "headers": page.headers}
            )
            return
        self.page, self.start, self.held, self.mode = page, message, [], HOLD

    async def on_held(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            data = message.get("body", b"")
            if message.get("more_body", False):
                await self.begin(self.page.stream())
                await self.on_stream(message)
            else:  # the whole page at once: the common case
                headers, out = self.page.whole(data)
                await self.begin(headers)
                await self.send({**message, "body": out, "more_body": False})
        elif kind == "http.response.pathsend":
            await self.send_file(message)
        elif kind == "http.response.zerocopysend":
            await self.begin(self.page.untouched())  # bytes we cannot see: leave the page
            await self.send(message)
        else:
            self.held.append(message)  # kept in order with the bodies

    def rewritten(self, message: Message) -> Message:
        """A body piece of a streamed page, rewritten; the last one ends the stream."""
        more = message.get("more_body", False)
        body = message.get("body", b"")
        out = self.page.feed(body)
        if not more:
            out += self.page.close()
            self.mode = PASS
        # Most pieces of a page come back as they were: their message goes on as it is.
        return message if out is body else {**message, "body": out, "more_body": more}

    async def on_stream(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            await self.send(self.rewritten(message))
        elif kind == "http.response.zerocopysend":
            # Bytes from a file descriptor cannot be rewritten; keep the order and stop here.
            await self.finish_stream()
            await self.send(message)
        else:
            await self.send(message)

    async def begin(self, headers: list[tuple[bytes, bytes]]) -> None:
        """Send the held start with ``headers``, then what came between it and the body."""
        self.mode = STREAM if self.page.mode == STREAM else PASS
        held, self.held = self.held, []
        await self.send({**self.start, "headers": headers})
        for message in held:
            await self.send(message)

    async def finish_stream(self) -> None:
        self.mode = PASS
        rest = self.page.close()
        if rest:
            await self.send({"type": "http.response.body", "body": rest, "more_body": True})

    async def send_file(self, message: Message) -> None:
        """An HTML file sent by path (``FileResponse``): read it so the page gets its token."""
        path = message["path"]
        try:
            size = await anyio.to_thread.run_sync(os.path.getsize, path)
            data = await anyio.Path(path).read_bytes() if size <= WINDOW else None
        except OSError:
            await self.begin(self.page.untouched())  # let the server report it as it would
            await self.send(message)
            return
        if data is None:
            await self.begin(self.page.stream())
            await _stream_file(path, self.page, self.send)
            self.mode = PASS
            return
        headers, out = self.page.whole(data)
        await self.begin(headers)
        if out is data:  # no token: the server sends the file itself
            await self.send(message)
        else:
            await self.send({"type": "http.response.body", "body": out, "more_body": False})

    async def release(self) -> None:
        """Send what we held exactly as the app sent it (or flush the rewriter) and step aside."""
        if self.mode == STREAM:
            await self.finish_stream()
            return
        self.mode = PASS
        held, self.held = self.held, []
        await self.send(self.start)
        for message in held:
            await self.send(message)


async def _stream_file(path: str, page: Page[bytes], send: Send) -> None:
    async with await anyio.open_file(path, "rb") as file:
        while chunk := await file.read(FILE_CHUNK):
            await send({"type": "http.response.body", "body": page.feed(chunk), "more_body": True})
    await send({"type": "http.response.body", "body": page.close(), "more_body": False})


async def _refuse(failure: ConfigurationError, scope: Scope, receive: Receive, send: Send) -> None:
    """A misconfigured middleware: fail the lifespan startup with the message, so the server
    does not start; any request that still arrives (lifespan off) fails the same way."""
    if scope["type"] == "lifespan":
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.failed", "message": f"reqio: {failure}"})
        return
    raise ConfigurationError(str(failure))


def _built_by_starlette() -> bool:
    """Whether the constructor runs inside Starlette's (or FastAPI's) lazy stack build."""
    frame: FrameType | None = sys._getframe(3)  # the constructor's caller, or a subclass's
    for _ in range(3):
        if frame is None:
            return False
        if frame.f_code.co_name == "build_middleware_stack":
            return True
        frame = frame.f_back
    return False


def _conditional(scope: Scope) -> bool:
    """Whether a request is conditional; run for every GET, so names not starting with an
    ``i`` are passed over without a ``lower()``."""
    for name, _ in scope.get("headers", ()):
        if name[:1] in _I and bytes(name).lower() in CONDITIONAL_HEADERS:
            return True
    return False


_I = (b"i", b"I")


def _unconditional(scope: Scope) -> Scope:
    """The scope without the conditional request headers (a copy: the server keeps its own)."""
    headers = [
        (n, v) for n, v in scope.get("headers", ()) if bytes(n).lower() not in CONDITIONAL_HEADERS
    ]
    return {**scope, "headers": headers}


def _token_request(scope: Scope, method: str) -> TokenRequest:
    found: dict[bytes, str] = {}
    for name, value in scope.get("headers", ()):
        lower = bytes(name).lower()
        if lower not in found:
            found[lower] = bytes(value).decode("latin-1")
    host = found.get(b"host")
    if host is None and scope.get("server"):
        server_host, port = scope["server"]
        host = f"{server_host}:{port}" if port is not None else str(server_host)
    return TokenRequest(
        method,
        sec_fetch_site=found.get(b"sec-fetch-site"),
        origin=found.get(b"origin"),
        scheme=scope.get("scheme", "http"),
        host=host,
        credentials=tuple(n for n in ("Cookie", "Authorization") if n.lower().encode() in found),
    )
