"""The FastAPI app of ``configs.py``, in a module of its own: FastAPI reads the annotations of
routes and dependencies at runtime, so they must be real objects, not the strings that
``from __future__ import annotations`` would make them. Routes and the dependency are
``async def``, as FastAPI's documentation writes them: no thread-pool hop per request."""

from collections.abc import Callable
from typing import Any, Optional

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

DATA = {"ok": True, "items": [{"id": i, "name": f"item {i}"} for i in range(20)]}


def fastapi_app(page: bytes, render: Callable[[str, str], bytes], email: str) -> Any:
    async def current_user(request: Request) -> Optional[str]:  # noqa: UP045 - read at runtime
        uid = request.cookies.get("session")
        if uid:
            request.scope["reqio.identity"] = {"sub": uid, "email": email}
        return uid

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    user_dependency = Depends(current_user)

    @app.get("/page")
    async def html(user: Optional[str] = user_dependency) -> HTMLResponse:  # noqa: UP045
        return HTMLResponse(page)

    @app.get("/seeds")
    async def by_hand(user: Optional[str] = user_dependency) -> HTMLResponse:  # noqa: UP045
        return HTMLResponse(render(user, email) if user else page)

    @app.get("/json")
    async def data(user: Optional[str] = user_dependency) -> JSONResponse:  # noqa: UP045
        return JSONResponse(DATA)

    return app
