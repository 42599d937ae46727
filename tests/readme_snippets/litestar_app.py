# Litestar: ReqioMiddleware as a Litestar middleware, after the session middleware, reading
# the session from the scope; the token endpoint as a route. Litestar's compression_config
# compresses inside every middleware, so leave it off (compress at the server or proxy), or
# signed-in pages are stamped only where Reqio can decode and re-encode them.
from typing import Any

from litestar import Litestar, Request, Response, get, post, route
from litestar.middleware import DefineMiddleware
from litestar.middleware.session.server_side import ServerSideSessionConfig

from reqio_middleware import ReqioMiddleware
from reqio_middleware.adapters import atoken_reply
from reqio_middleware.config import Settings


def session_identity(scope: Any) -> dict[str, str] | None:
    session = scope.get("session")
    user = session.get("user") if isinstance(session, dict) else None
    return {"sub": user} if user else None


PAGE = (  # a page with the widget tag
    '<html><body><script src="https://reqio.app/widget.js" data-project-id="proj_abc123"'
    " async></script></body></html>"
)
reqio_settings = Settings()  # REQIO_SECRET and REQIO_PROJECT_ID from the environment


@route("/_reqio/token", http_method=["GET", "POST"])
async def reqio_token(request: Request[Any, Any, Any]) -> Response[bytes]:
    reply = await atoken_reply(
        reqio_settings,
        lambda: session_identity(request.scope),
        method=request.method,
        sec_fetch_site=request.headers.get("sec-fetch-site"),
        origin=request.headers.get("origin"),
        scheme=request.url.scheme,
        host=request.headers.get("host"),
    )
    return Response(reply.body, status_code=reply.status, headers=dict(reply.headers))


@post("/login")
async def login(request: Request[Any, Any, Any]) -> None:  # your own login
    request.set_session({"user": request.query_params["user"]})


@get("/", media_type="text/html")
async def home() -> str:
    return PAGE


session = ServerSideSessionConfig()  # or your own session backend
app = Litestar(
    route_handlers=[home, login, reqio_token],
    middleware=[
        session.middleware,
        # Litestar types scopes as TypedDicts, ReqioMiddleware (like Starlette's) as mappings.
        DefineMiddleware(ReqioMiddleware, resolver=session_identity),  # type: ignore[arg-type]
    ],
)
