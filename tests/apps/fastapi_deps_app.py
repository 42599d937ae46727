"""A FastAPI application whose auth is a dependency, with Reqio's dependency and token router.

Users sign in with ``POST /login?user=<id>`` (Starlette's signed session cookie); the
``optional_user`` dependency reads it, as an app's own ``get_current_user`` would.
``/strict/...`` uses a bearer-token dependency that raises 401 for anonymous callers
(older FastAPI releases' ``HTTPBearer`` answered 403 there, so the 401 is raised here). Starlette's
``GZipMiddleware`` is outermost, Reqio inside it. ``build(reqio=False)`` is the same app
without Reqio.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware

from reqio_middleware import ReqioMiddleware
from reqio_middleware.adapters.fastapi import remember_identity, token_router

from .common import PAGE, PROJECT_ID, SECRET, iter_stream

TOKEN_PATH = "/_reqio/token"
STRICT_TOKEN_PATH = "/strict/token"
calls: list[str] = []  # paths for which current_identity ran


def optional_user(request: Request) -> str | None:
    user: str | None = request.session.get("user")
    return user


async def current_identity(
    request: Request, user: Annotated[str | None, Depends(optional_user)]
) -> dict[str, str] | None:
    calls.append(request.url.path)
    return {"sub": user, "email": f"{user}@ex.test"} if user else None


bearer = HTTPBearer(auto_error=False)


def bearer_identity(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> dict[str, str]:
    if credentials is None:
        raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    return {"sub": credentials.credentials, "email": f"{credentials.credentials}@ex.test"}


def build(*, reqio: bool = True) -> FastAPI:
    # Without Reqio the app still runs its own auth for every request, as an app would.
    auth = remember_identity(current_identity) if reqio else current_identity
    app = FastAPI(dependencies=[Depends(auth)])

    @app.post("/login")
    async def login(request: Request, user: str) -> dict[str, bool]:
        request.session["user"] = user
        return {"ok": True}

    @app.get("/page", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(iter_stream(), media_type="text/html")

    @app.get("/json")
    async def json_page() -> dict[str, Any]:
        return {"items": [1, 2, 3]}

    if reqio:
        app.add_middleware(ReqioMiddleware, secret=SECRET, project_id=PROJECT_ID)
        app.include_router(token_router(current_identity, secret=SECRET, project_id=PROJECT_ID))
        app.include_router(
            token_router(
                bearer_identity, path=STRICT_TOKEN_PATH, secret=SECRET, project_id=PROJECT_ID
            )
        )
    app.add_middleware(GZipMiddleware, minimum_size=0)
    app.add_middleware(SessionMiddleware, secret_key="session-key-not-the-reqio-secret")
    return app


#: For the real-server tests.
server_app = build()
bare_server_app = build(reqio=False)
