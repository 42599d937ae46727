"""FastAPI: the identity from the app's own ``Depends(...)`` auth, for pages and the endpoint.

Apps whose auth is a dependency (``Depends(get_current_user)``) have no ``scope["user"]`` for
a resolver to read. Write one dependency that says who is signed in, and use it twice::

    from typing import Annotated
    from fastapi import Depends, FastAPI
    from reqio_middleware import ReqioMiddleware
    from reqio_middleware.adapters.fastapi import remember_identity, token_router

    async def current_identity(user: Annotated[User | None, Depends(optional_user)]
                               ) -> dict[str, str] | None:
        return {"sub": str(user.id), "email": user.email} if user else None

    app = FastAPI(dependencies=[Depends(remember_identity(current_identity))])
    app.add_middleware(ReqioMiddleware)            # no resolver: reads what the dependency kept
    app.include_router(token_router(current_identity))   # GET/POST /_reqio/token (+ .js)

:func:`remember_identity` runs the dependency with the request (FastAPI caches it, so a route
that depends on it too pays once) and keeps a signed-in identity in the ASGI scope under
``"reqio.identity"``, where ``ReqioMiddleware`` without a resolver looks once the response
starts; for an anonymous request it keeps nothing, so the middleware's anonymous fast path
stays. :func:`token_router` is the token endpoint as a FastAPI route: its dependency runs like
any other route's, after the ``Sec-Fetch-Site``/``Origin`` check refused cross-site callers. A
dependency that raises 401 (``OAuth2PasswordBearer`` with ``auto_error``) means anonymous. Its
settings (``secret``, ``project_id``... as ``ReqioMiddleware``'s, each falling back to the
environment) are checked when the router is built, so a mistake stops the app at import.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations at runtime,
# and those name closure variables (the app's dependency) that a string could not resolve.

from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from reqio_middleware import endpoint
from reqio_middleware.adapters import IDENTITY_KEY
from reqio_middleware.adapters._endpoint import identity_reply
from reqio_middleware.config import Settings
from reqio_middleware.tokens import Minter

__all__ = ["remember_identity", "token_router"]

#: A FastAPI dependency (sync or async, with sub-dependencies of its own) whose value is an
#: ``Identity``, a mapping of its fields, or ``None`` for anonymous.
IdentityDependency = Callable[..., Any]


def remember_identity(identity: IdentityDependency) -> Callable[..., Awaitable[None]]:
    """A dependency that keeps ``identity``'s signed-in value where ``ReqioMiddleware`` reads it."""

    async def remember_reqio_identity(
        request: Request, value: Annotated[Any, Depends(identity)]
    ) -> None:
        if value is not None:
            request.scope[IDENTITY_KEY] = value

    return remember_reqio_identity


def token_router(
    identity: IdentityDependency,
    *,
    path: str = "/_reqio/token",
    secret: str | bytes | None = None,
    project_id: str | None = None,
    audience: str | None = None,
    ttl: int = 300,
    minter: Minter | None = None,
) -> APIRouter:
    """The token endpoint (``GET``/``POST path``) and its browser helper (``path + ".js"``)."""
    settings = Settings(
        secret=secret,
        project_id=project_id,
        audience=audience,
        ttl=ttl,
        token_path=path,
        minter=minter,
    )

    async def reqio_token(value: Annotated[Any, Depends(identity)]) -> Response:
        return _response(identity_reply(settings, value))

    async def reqio_script(request: Request) -> Response:
        return _response(endpoint.script(request.method))

    router = APIRouter()
    router.add_api_route(
        path,
        reqio_token,
        methods=["GET", "POST"],
        include_in_schema=False,
        route_class_override=_TokenRoute,
    )
    assert settings.script_path is not None
    router.add_api_route(
        settings.script_path, reqio_script, methods=["GET", "HEAD"], include_in_schema=False
    )
    return router


class _TokenRoute(APIRoute):
    """Refuses cross-site requests before the route's dependencies (the user lookup) run."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            refusal = endpoint.check_request(
                request.method,
                sec_fetch_site=request.headers.get("sec-fetch-site"),
                origin=request.headers.get("origin"),
                scheme=request.url.scheme,
                host=request.headers.get("host"),
            )
            if refusal is not None:
                return _response(refusal)
            try:
                return await handler(request)
            except HTTPException as exc:
                if exc.status_code != 401:
                    raise
                reply = endpoint.anonymous()
                response = _response(reply)
                for name, value in (exc.headers or {}).items():
                    response.headers.setdefault(name, value)
                return response

        return guarded


def _response(reply: endpoint.Reply) -> Response:
    return Response(reply.body, status_code=reply.status, headers=dict(reply.headers))
