"""The configurations the README documents, each built three ways from the same application.

Every configuration has the routes ``/page`` (HTML, the widget near the end), ``/seeds`` (the
same page with the token minted by hand: the view calls ``jwt.encode`` and the template writes
the attribute, as the seed snippets do, with no Reqio middleware) and ``/json``. A cookie
signs the visitor in through the framework's own authentication, so an anonymous visitor is a
request without it. :func:`build` gives the app

- ``"bare"``: the framework and its authentication, no Reqio (``/seeds`` is served here);
- ``"ours"``: the same with Reqio configured as the README says;
- ``"forward"`` (ASGI only): the same with a middleware that only forwards messages where
  Reqio would be, the floor of any ASGI middleware.

Used in-process by ``configs_bench.py`` and, as ``configs_app.py``, by the servers of the
end-to-end section. A configuration whose integration is not importable raises
:class:`Unavailable` with the reason, and its rows are skipped with it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import jwt
from common import AUDIENCE, PROJECT_ID, SECRET
from inprocess import Forward
from pages import WIDGET_SRC

USER_ID = "user_42"
DJANGO_USER_ID = "42"  # Django's default user model has an integer primary key
EMAIL = "ada@example.com"
DATA = {"ok": True, "items": [{"id": i, "name": f"item {i}"} for i in range(20)]}
JSON_BODY = json.dumps(DATA).encode()
#: The opening of the widget tag, where a template writes the attribute.
TAG_OPEN = f'<script src="{WIDGET_SRC}"'.encode()
ASGI = ("starlette", "fastapi", "django-asgi")
WSGI = ("flask", "django")
NAMES = {
    "starlette": "Starlette AuthenticationMiddleware + user_resolver",
    "fastapi": "FastAPI, identity from a dependency",
    "django-asgi": "Django MIDDLEWARE, ASGI",
    "django": "Django MIDDLEWARE",
    "flask": "Flask Reqio(app)",
}


class Unavailable(Exception):
    """This configuration cannot be built here (the reason is the message)."""


def _missing(name: str, exc: ImportError) -> str:
    return f"{name} is not importable in this checkout ({type(exc).__name__})"


class Seeds:
    """The page with a hand-minted token, split once where the template writes it."""

    def __init__(self, page: bytes) -> None:
        at = page.index(TAG_OPEN) + len(TAG_OPEN)
        self.before, self.after = page[:at], page[at:]

    def render(self, sub: str, email: str) -> bytes:
        now = int(time.time())
        claims = {"sub": sub, "email": email, "aud": AUDIENCE, "iat": now, "exp": now + 300}
        token = jwt.encode(claims, SECRET, algorithm="HS256")
        return b"".join((self.before, b' data-identity-token="', token.encode(), b'"', self.after))


def build(config: str, variant: str, page: bytes) -> tuple[Any, str]:
    """The app and the ``Cookie`` header value that signs the visitor in."""
    builders: dict[str, Callable[[str, bytes], tuple[Any, str]]] = {
        "starlette": _starlette,
        "fastapi": _fastapi,
        "flask": _flask,
        "django": _django,
        "django-asgi": _django_asgi,
    }
    if variant not in ("bare", "ours", "forward"):
        raise ValueError(f"unknown variant {variant!r}")
    return builders[config](variant, page)


# --- Starlette and FastAPI ------------------------------------------------------------------


def _asgi_middleware(variant: str) -> list[Any]:
    from starlette.middleware import Middleware

    if variant == "bare":
        return []
    if variant == "forward":
        return [Middleware(Forward)]
    from reqio_middleware import ReqioMiddleware

    return [Middleware(ReqioMiddleware, secret=SECRET, project_id=PROJECT_ID)]


def _starlette(variant: str, page: bytes) -> tuple[Any, str]:
    """README: AuthenticationMiddleware outermost, then ReqioMiddleware with user_resolver."""
    from starlette.applications import Starlette
    from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    class User(SimpleUser):
        email = EMAIL

        @property
        def identity(self) -> str:
            return self.username

    class CookieBackend(AuthenticationBackend):
        async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, User] | None:
            uid = conn.cookies.get("session")
            return (AuthCredentials(["authenticated"]), User(uid)) if uid else None

    seeds = Seeds(page)

    async def html(request: Request) -> Response:
        return HTMLResponse(page)

    async def by_hand(request: Request) -> Response:
        user = request.user
        if not user.is_authenticated:
            return HTMLResponse(page)
        return HTMLResponse(seeds.render(user.identity, user.email))

    async def data(request: Request) -> Response:
        return JSONResponse(DATA)

    middleware = [Middleware(AuthenticationMiddleware, backend=CookieBackend())]
    if variant == "ours":
        from reqio_middleware import ReqioMiddleware
        from reqio_middleware.adapters.starlette import user_resolver

        middleware.append(
            Middleware(
                ReqioMiddleware, resolver=user_resolver, secret=SECRET, project_id=PROJECT_ID
            )
        )
    else:
        middleware += _asgi_middleware(variant)
    routes = [Route("/page", html), Route("/seeds", by_hand), Route("/json", data)]
    return Starlette(routes=routes, middleware=middleware), f"session={USER_ID}"


def _fastapi(variant: str, page: bytes) -> tuple[Any, str]:
    """A dependency finds the user and stores the identity under ``scope["reqio.identity"]``,
    where ReqioMiddleware (no resolver) reads it."""
    try:
        from configs_fastapi import fastapi_app
    except ImportError as exc:
        raise Unavailable(f"fastapi: {exc}") from None
    app = fastapi_app(page, Seeds(page).render, EMAIL)
    for middleware in _asgi_middleware(variant):
        app.add_middleware(middleware.cls, *middleware.args, **middleware.kwargs)
    return app, f"session={USER_ID}"


# --- Flask ----------------------------------------------------------------------------------


def _flask(variant: str, page: bytes) -> tuple[Any, str]:
    """Flask-Login finds the user in Flask's session, where ``login_user()`` puts its id (the
    way Flask-Login documents); ``Reqio(app)`` does the rest."""
    if variant == "forward":
        raise Unavailable("no forwarding floor for a Flask extension")
    try:
        from flask import Flask, Response, jsonify
        from flask_login import LoginManager, UserMixin, current_user
    except ImportError as exc:
        raise Unavailable(f"flask / flask-login: {exc}") from None
    app = Flask("bench")
    app.config.update(
        SECRET_KEY="bench-flask-key", REQIO_SECRET=SECRET, REQIO_PROJECT_ID=PROJECT_ID
    )
    login = LoginManager(app)
    # The sign-in cookie is made once for every client (this process, wrk, curl), so the
    # session carries no per-client identifier to protect.
    login.session_protection = None

    class User(UserMixin):
        def __init__(self, uid: str) -> None:
            self.id = uid
            self.email = EMAIL

    @login.user_loader
    def load(uid: str) -> User:
        return User(uid)

    seeds = Seeds(page)

    @app.get("/page")
    def html() -> Response:
        return Response(page, mimetype="text/html")

    @app.get("/seeds")
    def by_hand() -> Response:
        if not current_user.is_authenticated:
            return Response(page, mimetype="text/html")
        return Response(seeds.render(current_user.id, current_user.email), mimetype="text/html")

    @app.get("/json")
    def data() -> Any:
        return jsonify(DATA)

    if variant == "ours":
        try:
            from reqio_middleware.adapters.flask import Reqio
        except ImportError as exc:
            raise Unavailable(_missing("reqio_middleware.adapters.flask.Reqio", exc)) from None
        Reqio(app)
    signer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    session = signer.dumps({"_user_id": USER_ID, "_fresh": True})
    return app, f"session={session}"


# --- Django ---------------------------------------------------------------------------------

_DJANGO_READY: list[bool] = []


class DjangoUser:
    """A signed-in user that needs no database (the benchmark measures the request path)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, uid: str) -> None:
        self.pk = self.id = uid
        self.email = EMAIL

    def get_username(self) -> str:
        return self.pk


class DjangoBackend:
    """``AUTHENTICATION_BACKENDS`` entry: the session's user id is the user."""

    def get_user(self, user_id: str) -> DjangoUser:
        return DjangoUser(user_id)

    async def aget_user(self, user_id: str) -> DjangoUser:
        return DjangoUser(user_id)


def _django_setup() -> None:
    if _DJANGO_READY:
        return
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-django-key-0123456789abcdefghijklmnopqrstuvwxyz",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
        AUTHENTICATION_BACKENDS=[f"{__name__}.DjangoBackend"],
        MIDDLEWARE=[],
        DATABASES={},
        USE_TZ=True,
        REQIO_SECRET=SECRET,
        REQIO_PROJECT_ID=PROJECT_ID,
        LOGGING_CONFIG=None,
    )
    django.setup()
    _DJANGO_READY.append(True)


_DJANGO_PAGE: list[bytes] = []
#: The page split once where the template writes the token, as the other configurations do.
_DJANGO_SEEDS: list[Seeds] = []


def _django_views() -> list[Any]:
    from django.http import HttpResponse, JsonResponse
    from django.urls import path

    def html(request: Any) -> HttpResponse:
        return HttpResponse(_DJANGO_PAGE[0], content_type="text/html; charset=utf-8")

    def by_hand(request: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return html(request)
        body = _DJANGO_SEEDS[0].render(str(request.user.pk), request.user.email)
        return HttpResponse(body, content_type="text/html; charset=utf-8")

    def data(request: Any) -> JsonResponse:
        return JsonResponse(DATA)

    return [path("page", html), path("seeds", by_hand), path("json", data)]


def __getattr__(name: str) -> Any:  # ROOT_URLCONF: built on first use, after django.setup()
    if name == "urlpatterns":
        return _django_views()
    raise AttributeError(name)


def _django(variant: str, page: bytes) -> tuple[Any, str]:
    """SessionMiddleware, AuthenticationMiddleware, then Reqio's Django middleware (WSGI)."""
    return _django_handler(variant, page, asgi=False)


def _django_asgi(variant: str, page: bytes) -> tuple[Any, str]:
    """The same chain under Django's ASGI handler: the middleware runs async (``auser()``)."""
    return _django_handler(variant, page, asgi=True)


def _django_handler(variant: str, page: bytes, *, asgi: bool) -> tuple[Any, str]:
    if variant == "forward":
        raise Unavailable("no forwarding floor for a Django middleware")
    try:
        import django  # noqa: F401
    except ImportError as exc:
        raise Unavailable(f"django: {exc}") from None
    middleware = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
    if variant == "ours":
        try:
            from reqio_middleware.adapters.django import ReqioMiddleware  # noqa: F401
        except ImportError as exc:
            raise Unavailable(
                _missing("reqio_middleware.adapters.django.ReqioMiddleware", exc)
            ) from None
        middleware.append("reqio_middleware.adapters.django.ReqioMiddleware")
    _django_setup()
    _DJANGO_PAGE[:] = [page]
    _DJANGO_SEEDS[:] = [Seeds(page)]
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    with override_settings(MIDDLEWARE=middleware):
        # The chain is built here, from the settings of this moment.
        handler = ASGIHandler() if asgi else WSGIHandler()
    return handler, f"sessionid={_django_session()}"


def _django_session() -> str:
    from django.contrib.sessions.backends.signed_cookies import SessionStore

    session = SessionStore()
    session["_auth_user_id"] = DJANGO_USER_ID
    session["_auth_user_backend"] = f"{__name__}.DjangoBackend"
    session.save()
    key: str = session.session_key
    return key
