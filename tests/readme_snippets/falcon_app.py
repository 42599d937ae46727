# Falcon: a Falcon middleware keeps the identity in the WSGI environ (req.env), where
# ReqioWSGIMiddleware around the app reads it; the token endpoint is a resource.
from typing import Any

import falcon

from reqio_middleware import ReqioWSGIMiddleware
from reqio_middleware.adapters import IDENTITY_KEY, token_reply
from reqio_middleware.config import Settings

PAGE = (  # a page with the widget tag
    '<html><body><script src="https://reqio.app/widget.js" data-project-id="proj_abc123"'
    " async></script></body></html>"
)
reqio_settings = Settings()  # REQIO_SECRET and REQIO_PROJECT_ID from the environment


def current_identity(req: falcon.Request) -> dict[str, str] | None:  # your own auth
    user = req.context.get("user")
    return {"sub": user} if user else None


class CookieAuth:  # stands in for your authentication middleware
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = req.get_cookie_values("user")
        req.context.user = values[0] if values else None


class RememberReqioIdentity:
    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        identity = current_identity(req)
        if identity is not None:
            req.env[IDENTITY_KEY] = identity


class ReqioToken:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        reply = token_reply(
            reqio_settings,
            lambda: current_identity(req),
            method=req.method,
            sec_fetch_site=req.get_header("Sec-Fetch-Site"),
            origin=req.get_header("Origin"),
            scheme=req.scheme,
            host=req.get_header("Host"),
        )
        resp.status = reply.status
        resp.set_headers(reply.headers)
        resp.data = reply.body

    on_post = on_get


class Home:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.text = PAGE


app = falcon.App(middleware=(CookieAuth(), RememberReqioIdentity()))
app.add_route("/", Home())
app.add_route("/_reqio/token", ReqioToken())
application = ReqioWSGIMiddleware(app)
