"""The FastAPI app of ``configs.py``, in a module of its own: FastAPI reads the annotations of
routes and dependencies at runtime, so they must be real objects, not the strings that
``from __future__ import annotations`` would make them. Routes and dependencies are
``async def``, as FastAPI's documentation writes them: no thread-pool hop per request.

The identity comes from the app's own dependency. With ``reqio_middleware.adapters.fastapi``
it is kept for the middleware by ``remember_identity`` as an app-wide dependency, as that
module documents; without it the dependency stores it under ``scope["reqio.identity"]`` itself.
"""

from collections.abc import Callable
from typing import Any, Optional

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

DATA = {"ok": True, "items": [{"id": i, "name": f"item {i}"} for i in range(20)]}


def fastapi_app(page: bytes, render: Callable[[str, str], bytes], email: str) -> Any:
    async def current_identity(request: Request) -> Optional[dict[str, str]]:  # noqa: UP045
        uid = request.cookies.get("session")
        return {"sub": uid, "email": email} if uid else None

    app = FastAPI(
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(_keeper(current_identity))],
    )
    identity_dependency = Depends(current_identity)  # FastAPI runs it once per request

    @app.get("/page")
    async def html(identity: Optional[dict[str, str]] = identity_dependency) -> HTMLResponse:  # noqa: UP045
        return HTMLResponse(page)

    @app.get("/seeds")
    async def by_hand(identity: Optional[dict[str, str]] = identity_dependency) -> HTMLResponse:  # noqa: UP045
        return HTMLResponse(render(identity["sub"], email) if identity else page)

    @app.get("/json")
    async def data(identity: Optional[dict[str, str]] = identity_dependency) -> JSONResponse:  # noqa: UP045
        return JSONResponse(DATA)

    return app


def _keeper(identity: Callable[..., Any]) -> Callable[..., Any]:
    """The app-wide dependency that leaves the identity where ReqioMiddleware reads it."""
    try:
        from reqio_middleware.adapters.fastapi import remember_identity
    except ImportError:
        pass
    else:
        keeper: Callable[..., Any] = remember_identity(identity)
        return keeper
    identity_dependency = Depends(identity)

    async def keep(request: Request, value: Any = identity_dependency) -> None:
        if value is not None:
            request.scope["reqio.identity"] = value

    return keep
