# Quart: an after_request hook keeps the identity in the ASGI scope, where ReqioMiddleware
# (around the app) reads it once the response starts; the token endpoint is a route.
# Serve `asgi_app` (hypercorn myapp:asgi_app).
from quart import Quart, Response, request, session

from reqio_middleware import ReqioMiddleware
from reqio_middleware.adapters import IDENTITY_KEY, atoken_reply
from reqio_middleware.config import Settings

app = Quart(__name__)
app.secret_key = "your-session-key"
PAGE = (  # a page with the widget tag
    '<html><body><script src="https://reqio.app/widget.js" data-project-id="proj_abc123"'
    " async></script></body></html>"
)
reqio_settings = Settings()  # REQIO_SECRET and REQIO_PROJECT_ID from the environment


def current_identity() -> dict[str, str] | None:  # your own notion of the signed-in user
    user = session.get("user")
    return {"sub": user} if user else None


@app.after_request
async def remember_reqio_identity(response: Response) -> Response:
    identity = current_identity()
    if identity is not None:
        request.scope[IDENTITY_KEY] = identity  # type: ignore[literal-required]
    return response


@app.route("/_reqio/token", methods=["GET", "POST"])
async def reqio_token() -> Response:
    reply = await atoken_reply(
        reqio_settings,
        current_identity,
        method=request.method,
        sec_fetch_site=request.headers.get("Sec-Fetch-Site"),
        origin=request.headers.get("Origin"),
        scheme=request.scheme,
        host=request.host,
    )
    return Response(reply.body, status=reply.status, headers=dict(reply.headers))


@app.post("/login")
async def login() -> str:
    session["user"] = request.args["user"]
    return "ok"


@app.get("/")
async def home() -> Response:
    return Response(PAGE, mimetype="text/html")


asgi_app = ReqioMiddleware(app)
