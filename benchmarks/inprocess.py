"""The middlewares called in-process (no server): added time per request against the bare app
and a wrapper that only forwards messages."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from common import IDENTITY, PROJECT_ID, SECRET, find_all
from pages import make_page
from report import NOTES, fmt_delta, fmt_t, row, verdict
from timing import Timer

PAGE_100K = make_page(100_000, "end")
_N = len(PAGE_100K)
CHUNKS_16 = [PAGE_100K[i * _N // 16 : (i + 1) * _N // 16] for i in range(16)]
JSON_BODY = json.dumps({"ok": True, "items": [{"id": i, "name": f"item {i}"} for i in range(20)]})

CASES = [
    ("JSON", "/json", False),
    ("anonymous HTML 100 KB", "/page", False),
    ("identified HTML 100 KB, one body", "/page", True),
    ("identified HTML 100 KB, 16 chunks", "/chunks", True),
]


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response, StreamingResponse
    from starlette.routing import Route

    async def data(request: Request) -> Response:
        return Response(JSON_BODY, media_type="application/json")

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE_100K)

    async def streamed(request: Request) -> Response:
        async def gen() -> Any:
            for c in CHUNKS_16:
                yield c

        return StreamingResponse(gen(), media_type="text/html; charset=utf-8")

    return Starlette(
        routes=[Route("/json", data), Route("/page", page), Route("/chunks", streamed)]
    )


class Forward:
    """The floor of any pure-ASGI middleware: it forwards every message through its own send."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def forward(message: Any) -> None:
            await send(message)

        await self.app(scope, receive, forward)


def asgi_scope(path: str, identified: bool) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"bench.local"),
            (b"accept", b"text/html,*/*"),
            (b"cookie", b"session=0123456789abcdef"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    if identified:
        scope["reqio.identity"] = IDENTITY
    return scope


async def receive_empty() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def discard(message: Any) -> None:
    return None


async def asgi_body(app: Any, scope: dict[str, Any]) -> bytes:
    out: list[bytes] = []

    async def send(message: Any) -> None:
        if message["type"] == "http.response.body":
            out.append(message.get("body", b""))

    await app(dict(scope), receive_empty, send)
    return b"".join(out)


def bench_asgi(timer: Timer, t_jwt: float) -> None:
    try:
        from reqio_middleware import ReqioMiddleware
    except ImportError as exc:
        row("ASGI", "all", f"n/a ({exc})", "", "")
        return
    bare = starlette_app()
    apps = {
        "bare": bare,
        "forward": Forward(bare),
        "reqio": ReqioMiddleware(bare, secret=SECRET, project_id=PROJECT_ID),
    }
    t_floor = timer(lambda: find_all(PAGE_100K)) + t_jwt
    loop = asyncio.new_event_loop()
    try:
        for label, path, identified in CASES:
            scope = asgi_scope(path, identified)
            body = loop.run_until_complete(asgi_body(apps["reqio"], scope))
            if (b"data-identity-token" in body) != identified:
                NOTES.append(f"ASGI {label}: token {'missing' if identified else 'present'}")
            calls = {}
            for name, app in apps.items():

                async def call(app: Any = app, scope: dict[str, Any] = scope) -> None:
                    await app(dict(scope), receive_empty, discard)

                calls[name] = call
            t = timer.compare_async(loop, calls)
            middleware_row("ASGI", label, identified, t, t_floor, path == "/chunks")
    finally:
        loop.close()


def middleware_row(
    section: str, label: str, identified: bool, t: dict[str, float], t_floor: float, chunked: bool
) -> None:
    added = t["reqio"] - t["bare"]
    ours = f"{fmt_t(t['reqio'])}/req ({fmt_delta(added)})"
    comp = (
        f"bare {fmt_t(t['bare'])} · forwarding {fmt_t(t['forward'])}"
        f" ({fmt_delta(t['forward'] - t['bare'])})"
    )
    ratio_fwd = t["reqio"] / t["forward"]
    if identified:
        limit = 6.0 if chunked else 5.0
        comp += f" · find+PyJWT {fmt_t(t_floor)}"
        v = verdict(
            added <= limit * t_floor, f"added {added / t_floor:.1f}x find+PyJWT (≤ {limit:g}x)"
        )
        v = f"{ratio_fwd:.2f}x forwarding; {v}"
    else:
        v = verdict(ratio_fwd <= 1.10, f"{ratio_fwd:.2f}x forwarding (≤ 1.10x)")
    row(section, label, ours, comp, v)


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/json":
        body = JSON_BODY.encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]
    if path == "/page":
        start_response(
            "200 OK",
            [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(PAGE_100K)))],
        )
        return [PAGE_100K]
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return iter(CHUNKS_16)


def wsgi_forward(app: Any) -> Any:
    """The floor of a WSGI middleware that wraps ``start_response`` and the body iterable."""

    def wrapped(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        def sr(status: str, headers: Any, exc_info: Any = None) -> Any:
            return start_response(status, headers, exc_info)

        result = app(environ, sr)
        try:
            yield from result
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    return wrapped


def wsgi_environ(path: str, identified: bool) -> dict[str, Any]:
    import io

    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "bench.local",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "bench.local",
        "HTTP_ACCEPT": "text/html,*/*",
        "HTTP_COOKIE": "session=0123456789abcdef",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if identified:
        environ["reqio.identity"] = IDENTITY
    return environ


def _start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
    return _write


def _write(data: bytes) -> None:
    return None


def wsgi_call(app: Any, environ: dict[str, Any]) -> bytes:
    result = app(dict(environ), _start_response)
    try:
        return b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def bench_wsgi(timer: Timer, t_jwt: float) -> None:
    try:
        from reqio_middleware import ReqioWSGIMiddleware
    except ImportError as exc:
        row("WSGI", "all", f"n/a ({exc})", "", "")
        return
    apps = {
        "bare": wsgi_app,
        "forward": wsgi_forward(wsgi_app),
        "reqio": ReqioWSGIMiddleware(wsgi_app, secret=SECRET, project_id=PROJECT_ID),
    }
    t_floor = timer(lambda: find_all(PAGE_100K)) + t_jwt
    for label, path, identified in CASES:
        environ = wsgi_environ(path, identified)
        body = wsgi_call(apps["reqio"], environ)
        if (b"data-identity-token" in body) != identified:
            NOTES.append(f"WSGI {label}: token {'missing' if identified else 'present'}")
        t = timer.compare(
            {
                name: lambda app=app, environ=environ: wsgi_call(app, environ)
                for name, app in apps.items()
            }
        )
        middleware_row("WSGI", label, identified, t, t_floor, path == "/chunks")
