"""Faults (issue 7, item 3): the middleware must never be the reason a page breaks.

Every fault runs bare and wrapped under the same fake server, and the two are compared: what
the server saw (messages, exception) must be the same, and our logger must not cry wolf.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jwt
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from conftest import serve  # noqa: E402

from reqio_middleware import ReqioMiddleware, ReqioWSGIMiddleware  # noqa: E402
from tests.apps import fault_apps  # noqa: E402
from tests.apps.common import AUDIENCE, PAGE, PROJECT_ID, user_from_environ  # noqa: E402
from tests.apps.common import SECRET as SECRET_FOR_APPS  # noqa: E402

TOKEN = re.compile(rb' data-identity-token="([^"]*)"')
USER = {"sub": "u-42", "email": "u42@ex.test"}


def ours(records: Iterable[logging.LogRecord], level: int = logging.WARNING) -> list[str]:
    return [
        r.getMessage()
        for r in records
        if r.name.startswith("reqio_middleware") and r.levelno >= level
    ]


def scope(path: str = "/", user: str | None = "u-42") -> dict[str, Any]:
    headers = [(b"host", b"testserver")]
    if user is not None:
        headers.append((b"x-user", user.encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
    }


class StrictServer:
    """A fake ASGI server that enforces the message order the way uvicorn's h11 protocol does."""

    def __init__(self, fail_send_after: int | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.started = False
        self.finished = False
        self.fail_send_after = fail_send_after  # bodies accepted before the "socket" breaks
        self.bodies = 0
        self.disconnect = asyncio.Event() if fail_send_after is not None else None

    async def receive(self) -> dict[str, Any]:
        if self.disconnect is not None:
            await self.disconnect.wait()
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: Any) -> None:
        kind = message["type"]
        if self.fail_send_after is not None and self.bodies >= self.fail_send_after:
            assert self.disconnect is not None
            self.disconnect.set()
            raise OSError("Connection reset by peer")  # what uvicorn's transport raises
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("Unexpected ASGI message 'http.response.start' sent.")
            self.started = True
        elif kind == "http.response.body":
            if not self.started:
                raise RuntimeError("Expected ASGI message 'http.response.start'.")
            if self.finished:
                raise RuntimeError("Unexpected ASGI message 'http.response.body' sent.")
            self.finished = not message.get("more_body", False)
            self.bodies += 1
        self.sent.append(dict(message))


def run(app: Any, request: dict[str, Any], server: StrictServer) -> BaseException | None:
    async def main() -> BaseException | None:
        try:
            await app(request, server.receive, server.send)
        except Exception as exc:
            return exc
        return None

    return asyncio.run(main())


def wrap(app: Any, secret: str, **options: Any) -> ReqioMiddleware:
    options.setdefault("resolver", lambda s: USER)
    return ReqioMiddleware(app, secret=secret, project_id=PROJECT_ID, **options)


def body_of(sent: list[dict[str, Any]]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def same_failure(a: BaseException | None, b: BaseException | None) -> bool:
    return type(a) is type(b) and (a is None or b is None or a.args == b.args)


# --- the resolver fails ----------------------------------------------------------------------


class ResolverBoom(Exception):
    pass


GARBAGE: list[object] = [42, "u-42", b"u-42", ["u-42"], {"nope": 1}, {"sub": None}, object()]


def _raising(s: Any) -> Any:
    raise ResolverBoom("resolver down")


async def _araising(s: Any) -> Any:
    raise ResolverBoom("resolver down")


@pytest.mark.parametrize("resolver", [_raising, _araising], ids=["sync", "async"])
def test_asgi_resolver_raises_page_unchanged(
    resolver: Callable[..., Any], secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    bare, wrapped = StrictServer(), StrictServer()
    assert run(fault_apps.asgi_app("page"), scope(), bare) is None
    assert (
        run(wrap(fault_apps.asgi_app("page"), secret, resolver=resolver), scope(), wrapped) is None
    )
    assert wrapped.sent == bare.sent
    assert any("ResolverBoom" in m for m in ours(caplog.records, logging.ERROR))


@pytest.mark.parametrize("value", GARBAGE, ids=lambda v: type(v).__name__)
def test_asgi_resolver_garbage_page_unchanged(
    value: object, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    bare, wrapped = StrictServer(), StrictServer()
    run(fault_apps.asgi_app("page"), scope(), bare)
    app = wrap(fault_apps.asgi_app("page"), secret, resolver=lambda s: value)
    assert run(app, scope(), wrapped) is None
    assert wrapped.sent == bare.sent
    assert ours(caplog.records, logging.ERROR)


@pytest.mark.parametrize("value", GARBAGE, ids=lambda v: type(v).__name__)
def test_wsgi_resolver_garbage_or_raise_page_unchanged(
    value: object, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    for resolver in (lambda e: value, _raising):
        app = ReqioWSGIMiddleware(
            fault_apps.wsgi_app("page"), resolver=resolver, secret=secret, project_id=PROJECT_ID
        )
        _status, headers, body, exc = call_wsgi(app)
        assert exc is None and body == PAGE
        assert headers == [("Content-Type", "text/html; charset=utf-8")]
    assert len(ours(caplog.records, logging.ERROR)) >= 2


def test_asgi_sync_resolver_hangs_past_timeout(
    secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    entered = threading.Event()
    threads_before = threading.active_count()

    def hanging(s: Any) -> Any:
        entered.set()
        release.wait(30)
        return USER

    bare, wrapped = StrictServer(), StrictServer()
    run(fault_apps.asgi_app("page"), scope(), bare)
    app = wrap(fault_apps.asgi_app("page"), secret, resolver=hanging, resolver_timeout=0.05)

    async def main() -> bool:
        try:
            await app(scope(), wrapped.receive, wrapped.send)
            return release.is_set()  # False: the page left while the resolver still hung
        finally:
            # Released before asyncio.run's executor shutdown, which waits for the thread.
            release.set()

    assert asyncio.run(main()) is False
    assert entered.is_set()
    assert wrapped.sent == bare.sent  # out without a token, headers untouched
    assert any("did not answer" in m for m in ours(caplog.records, logging.ERROR))
    # The resolver's thread returns once released (bounded poll, not a sleep as sync).
    deadline = time.monotonic() + 10
    while threading.active_count() > threads_before + 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= threads_before + 1


def test_asgi_async_resolver_hangs_past_timeout_is_cancelled(
    secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    cancelled: list[bool] = []

    async def hanging(s: Any) -> Any:
        try:
            await asyncio.Event().wait()  # never set: only the timeout can end it
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return USER

    async def main() -> tuple[StrictServer, set[asyncio.Task[Any]], set[asyncio.Task[Any]]]:
        before = asyncio.all_tasks()
        server = StrictServer()
        app = wrap(fault_apps.asgi_app("page"), secret, resolver=hanging, resolver_timeout=0.05)
        await app(scope(), server.receive, server.send)
        await asyncio.sleep(0)  # let the cancellation be delivered
        return server, before, asyncio.all_tasks()

    server, before, after = asyncio.run(main())
    assert body_of(server.sent) == PAGE
    assert cancelled == [True]
    assert after == before
    assert any("did not answer" in m for m in ours(caplog.records, logging.ERROR))


# --- the application raises ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["raise-before", "raise-after-start", "raise-after-body", "raise-mid-stream"]
)
@pytest.mark.parametrize("user", [None, "u-42"], ids=["anonymous", "identified"])
def test_asgi_app_raises_like_bare(
    kind: str, user: str | None, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.apps.common import user_from_scope

    bare, wrapped = StrictServer(), StrictServer()
    exc_bare = run(fault_apps.asgi_app(kind), scope(user=user), bare)
    app = wrap(fault_apps.asgi_app(kind), secret, resolver=user_from_scope)
    exc_wrapped = run(app, scope(user=user), wrapped)
    assert isinstance(exc_bare, fault_apps.AppFailure)
    assert same_failure(exc_wrapped, exc_bare)
    if user is None or kind != "raise-mid-stream":
        # Nothing was rewritten: what was held is released exactly as the app sent it.
        assert [m["type"] for m in wrapped.sent] == [m["type"] for m in bare.sent]
        if kind != "raise-after-body":
            assert wrapped.sent == bare.sent
    # A streamed identified page had its headers edited, but every byte the app sent got out.
    assert TOKEN.sub(b"", body_of(wrapped.sent)) == body_of(bare.sent)
    assert not ours(caplog.records)


def call_wsgi(
    app: Any,
) -> tuple[str | None, list[tuple[str, str]] | None, bytes, BaseException | None]:
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        got["status"], got["headers"] = status, headers
        return lambda data: None

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_X_USER": "u-42"}
    chunks: list[bytes] = []
    exc: BaseException | None = None
    result = None
    try:
        result = app(environ, start_response)
        for chunk in result:
            chunks.append(chunk)
    except Exception as e:
        exc = e
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return got.get("status"), got.get("headers"), b"".join(chunks), exc


@pytest.mark.parametrize("kind", ["raise-before", "raise-after-start", "raise-in-iterable"])
def test_wsgi_app_raises_like_bare(
    kind: str, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    bare = call_wsgi(fault_apps.wsgi_app(kind))
    wrapped = call_wsgi(
        ReqioWSGIMiddleware(
            fault_apps.wsgi_app(kind),
            resolver=user_from_environ,
            secret=secret,
            project_id=PROJECT_ID,
        )
    )
    assert isinstance(bare[3], fault_apps.AppFailure)
    assert same_failure(wrapped[3], bare[3])
    if bare[2]:  # a WSGI server sends the status with the first body bytes, not before
        assert wrapped[0] == bare[0]
    assert TOKEN.sub(b"", wrapped[2]) == bare[2]
    assert not ours(caplog.records)


# --- malformed message sequences ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["body-before-start", "two-starts", "after-final-body"])
@pytest.mark.parametrize("user", [None, "u-42"], ids=["anonymous", "identified"])
def test_asgi_malformed_sequences_fail_no_worse(kind: str, user: str | None, secret: str) -> None:
    from tests.apps.common import user_from_scope

    bare, wrapped = StrictServer(), StrictServer()
    exc_bare = run(fault_apps.asgi_app(kind), scope(user=user), bare)
    app = wrap(fault_apps.asgi_app(kind), secret, resolver=user_from_scope)
    exc_wrapped = run(app, scope(user=user), wrapped)
    assert isinstance(exc_bare, RuntimeError)
    assert type(exc_wrapped) is type(exc_bare)
    assert [m["type"] for m in wrapped.sent] == [m["type"] for m in bare.sent]


# --- the client goes away ----------------------------------------------------------------------


@pytest.mark.parametrize("user", [None, "u-42"], ids=["anonymous", "identified"])
def test_asgi_send_raises_oserror_mid_stream(
    user: str | None, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.apps.common import user_from_scope
    from tests.apps.starlette_app import build

    async def one(app: Any) -> tuple[BaseException | None, int, set[asyncio.Task[Any]]]:
        server = StrictServer(fail_send_after=1)
        before = asyncio.all_tasks()
        try:
            await app(scope("/bigstream", user), server.receive, server.send)
            exc: BaseException | None = None
        except Exception as e:
            exc = e
        for _ in range(20):  # let any task started for the response finish or be cancelled
            await asyncio.sleep(0)
        return exc, len(server.sent), asyncio.all_tasks() - before

    threads = threading.active_count()
    exc_bare, _, left_bare = asyncio.run(one(build(wrapped=False)))
    exc_wrapped, sent, left = asyncio.run(one(build(wrapped=True, resolver=user_from_scope)))
    assert type(exc_wrapped) is type(exc_bare)
    assert sent >= 1
    assert left == left_bare == set()
    assert threading.active_count() <= threads + 1  # at most asyncio's resolver worker
    assert not ours(caplog.records)


def test_asgi_disconnect_from_receive(secret: str, caplog: pytest.LogCaptureFixture) -> None:
    """Starlette's StreamingResponse watches receive() for http.disconnect and stops sending."""
    from tests.apps.common import user_from_scope
    from tests.apps.starlette_app import build

    async def one(app: Any) -> tuple[BaseException | None, list[str]]:
        sent: list[str] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            sent.append(message["type"])

        before = asyncio.all_tasks()
        request = dict(scope("/bigstream"), asgi={"version": "3.0", "spec_version": "2.3"})
        try:
            await app(request, receive, send)
            exc: BaseException | None = None
        except Exception as e:
            exc = e
        for _ in range(20):
            await asyncio.sleep(0)
        assert asyncio.all_tasks() == before
        return exc, sent

    exc_bare, sent_bare = asyncio.run(one(build(wrapped=False)))
    exc_wrapped, sent_wrapped = asyncio.run(one(build(wrapped=True, resolver=user_from_scope)))
    assert type(exc_wrapped) is type(exc_bare)
    assert exc_bare is None
    assert not ours(caplog.records)
    assert len(sent_wrapped) <= len(sent_bare) + 1


def test_uvicorn_client_closes_after_first_chunk(
    secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.apps.common import user_from_scope
    from tests.apps.starlette_app import build

    app = build(wrapped=True, resolver=user_from_scope)
    with serve(app, server="uvicorn") as url:
        port = int(url.rsplit(":", 1)[1])
        request = b"GET /bigstream HTTP/1.1\r\nHost: 127.0.0.1\r\nX-User: u-7\r\n\r\n"

        def first_chunk_then_reset() -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(request)
                data = b""
                while b"\r\n\r\n" not in data:
                    piece = sock.recv(65536)
                    assert piece
                    data += piece
                # Linger 0: close() sends a RST, the way a browser tab that goes away does.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return data

        import httpx

        # Warm-up: the sync resolver's worker thread exists from now on.
        assert httpx.get(url + "/bigstream", headers={"X-User": "u-7"}, timeout=10).is_success
        threads = threading.active_count()
        for _ in range(5):
            head = first_chunk_then_reset()
            assert head.startswith(b"HTTP/1.1 200")
        # The server is still healthy and serves the full identified page afterwards.
        response = httpx.get(url + "/bigstream", headers={"X-User": "u-7"}, timeout=10)
        assert response.status_code == 200
        tokens = TOKEN.findall(response.content)
        assert tokens and all(
            jwt.decode(t, SECRET_FOR_APPS, algorithms=["HS256"], audience=AUDIENCE)["sub"] == "u-7"
            for t in tokens
        )
        deadline = time.monotonic() + 10
        while threading.active_count() > threads and time.monotonic() < deadline:
            time.sleep(0.01)
        assert threading.active_count() <= threads
    assert not ours(caplog.records)
    # Nor from the server: the app (and we) took the reset quietly.
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_uvicorn_resolver_hangs_page_goes_out_without_token(
    secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    import httpx

    from tests.apps.common import SETTINGS, user_from_scope
    from tests.apps.starlette_app import build

    release = threading.Event()

    def hanging(s: Any) -> Any:
        if user_from_scope(s) is None:
            return None  # anonymous requests answer at once
        release.wait(30)
        return USER

    app = ReqioMiddleware(build(wrapped=False), resolver=hanging, resolver_timeout=0.1, **SETTINGS)
    with serve(app, server="uvicorn") as url:
        try:
            for path in ("/page", "/stream", "/static/"):
                bare = httpx.get(url + path, timeout=10)
                response = httpx.get(url + path, headers={"X-User": "u-1"}, timeout=10)
                assert response.status_code == 200
                assert response.content == bare.content  # out untouched, without a token
                assert b"data-identity-token" not in response.content
                length = response.headers.get("content-length")
                assert length == bare.headers.get("content-length")
                assert not release.is_set()
        finally:
            release.set()  # before the server stops: its executor waits for the threads
    timeouts = [m for m in ours(caplog.records, logging.ERROR) if "did not answer" in m]
    assert len(timeouts) == 3
