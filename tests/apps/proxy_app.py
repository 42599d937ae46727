"""A page that asks every cache to keep it, for tests/test_proxy_cache.py, as ASGI and as WSGI.

The application does what a site in front of a CDN or an nginx ``proxy_cache`` does: it marks
its page cacheable in every vocabulary (``X-Accel-Expires`` first, as nginx reads it), and
varies only on ``Accept-Encoding``. Users are told apart two ways, as real sites do: a session
cookie ``user=NAME``, or ``Authorization: Bearer NAME`` (an API-style client, or a proxy that
authenticates). Without either the page is anonymous, and the middleware leaves it alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from http.cookies import SimpleCookie
from typing import Any

from reqio_middleware import ReqioMiddleware, ReqioWSGIMiddleware

from .common import PAGE, SETTINGS

CACHEABLE = (
    ("X-Accel-Expires", "600"),
    ("Surrogate-Control", "max-age=600"),
    ("CDN-Cache-Control", "max-age=600"),
    ("Cache-Control", "public, max-age=600"),
    ("Vary", "Accept-Encoding"),
)
HEADERS = (("Content-Type", "text/html; charset=utf-8"), *CACHEABLE)


def user_named(cookie: str | None, authorization: str | None) -> Mapping[str, str] | None:
    """The identity a request carries: its ``user`` cookie, else its bearer credentials."""
    name = ""
    if cookie:
        morsel = SimpleCookie(cookie).get("user")
        name = morsel.value if morsel else ""
    if not name and authorization and authorization.lower().startswith("bearer "):
        name = authorization[len("bearer ") :].strip()
    return {"sub": name, "email": f"{name}@ex.test"} if name else None


def asgi_resolver(scope: Mapping[str, Any]) -> Mapping[str, str] | None:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    return user_named(headers.get("cookie"), headers.get("authorization"))


def wsgi_resolver(environ: Mapping[str, Any]) -> Mapping[str, str] | None:
    return user_named(environ.get("HTTP_COOKIE"), environ.get("HTTP_AUTHORIZATION"))


async def bare_asgi(scope: Mapping[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    headers = [(n.lower().encode(), v.encode()) for n, v in HEADERS]
    headers.append((b"content-length", str(len(PAGE)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": PAGE})


def bare_wsgi(environ: Mapping[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [*HEADERS, ("Content-Length", str(len(PAGE)))])
    return [PAGE]


asgi_app = ReqioMiddleware(bare_asgi, resolver=asgi_resolver, **SETTINGS)
wsgi_app = ReqioWSGIMiddleware(bare_wsgi, resolver=wsgi_resolver, **SETTINGS)
