"""A FastAPI application: an HTML route and a JSON route, behind ``add_middleware``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from .common import PAGE, PROJECT_ID, SETTINGS


def build(wrapped: bool, resolver: Callable[..., Any] | None = None) -> FastAPI:
    app = FastAPI()

    @app.get("/page", response_class=HTMLResponse)
    async def html_page() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.get("/sync-page", response_class=HTMLResponse)
    def sync_html_page() -> str:
        return PAGE.decode()

    @app.get("/json")
    async def json_page() -> dict[str, Any]:
        return {"items": [1, 2, 3], "html": "<script src='https://reqio.app/widget.js'></script>"}

    if wrapped:
        from reqio_middleware import ReqioMiddleware

        app.add_middleware(ReqioMiddleware, resolver=resolver, **SETTINGS)
    return app


def misconfigured() -> FastAPI:
    """The README's FastAPI set-up with no secret anywhere: the server must refuse to start."""
    from reqio_middleware import ReqioMiddleware

    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(ReqioMiddleware, project_id=PROJECT_ID)
    return app
