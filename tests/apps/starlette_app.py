"""A Starlette application with every kind of page, served bare or behind ``ReqioMiddleware``.

``app`` (for real servers) routes ``/bare/...`` to the unwrapped application and everything
else to the wrapped one, so one server process shows both side by side.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .common import JSON_BODY, PAGE, PROJECT_ID, SETTINGS, stream_chunks, user_from_scope

STATIC_DIR = Path(__file__).parent / "static"
BIG_PADDING = 300_000  # bigger than any sane look-ahead window: the body must stream


async def _chunks(padding: int) -> AsyncIterator[bytes]:
    for piece in stream_chunks(size=64 if not padding else 16_384, padding=padding):
        yield piece


async def html_page(request: Request) -> Response:
    return HTMLResponse(PAGE)


async def streamed(request: Request) -> Response:
    return StreamingResponse(_chunks(0), media_type="text/html")


async def big_streamed(request: Request) -> Response:
    return StreamingResponse(_chunks(BIG_PADDING), media_type="text/html; charset=utf-8")


async def json_page(request: Request) -> Response:
    return Response(JSON_BODY, media_type="application/json")


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def file_page(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html")


def build(wrapped: bool, resolver: Callable[..., Any] | None = user_from_scope) -> Starlette:
    app = Starlette(
        routes=[
            Route("/page", html_page),
            Route("/stream", streamed),
            Route("/bigstream", big_streamed),
            Route("/json", json_page),
            Route("/health", health),
            Route("/file", file_page),
            Mount("/static", StaticFiles(directory=STATIC_DIR, html=True)),
        ]
    )
    if wrapped:
        from reqio_middleware import ReqioMiddleware

        app.add_middleware(ReqioMiddleware, resolver=resolver, **SETTINGS)
    return app


def misconfigured() -> Starlette:
    """``add_middleware`` with no secret anywhere (a uvicorn ``--factory``): the server must
    refuse to start, saying what to set, rather than answer 500s."""
    from reqio_middleware import ReqioMiddleware

    app = Starlette(routes=[Route("/health", health)])
    app.add_middleware(ReqioMiddleware, project_id=PROJECT_ID)
    return app


def _dispatcher() -> Callable[..., Any]:
    wrapped_app = build(wrapped=True)
    bare_app = build(wrapped=False)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/bare/"):
            scope = dict(scope, path=path[len("/bare") :], raw_path=None)
            await bare_app(scope, receive, send)
        else:
            await wrapped_app(scope, receive, send)

    return app


app = _dispatcher()
