"""Framework adapters, end to end through the real frameworks and the real middlewares.

Each framework serves a page with the widget tag; behind the Reqio middleware a signed-in user's
page must carry a token that verifies and names that user, an anonymous page must come back byte
for byte, and the token endpoint must answer for the user the framework's own auth knows.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import jwt
import pytest

from reqio_middleware.adapters import IDENTITY_KEY
from reqio_middleware.identity import Identity

PROJECT = "proj_adapters"
AUDIENCE = f"https://reqio.app/p/{PROJECT}"
PAGE = (
    "<!doctype html><html><head><title>t</title></head><body><p>hello</p>"
    f'<script src="https://reqio.app/widget.js" data-project-id="{PROJECT}" async></script>'
    "</body></html>"
)
TOKEN_RE = re.compile(r'data-identity-token="([^"]*)"')
TOKEN_PATH = "/_reqio/token"


def page_claims(html: str, secret: str) -> dict[str, Any]:
    """The claims of the one token on the page, verified as Reqio would."""
    tokens = TOKEN_RE.findall(html)
    assert len(tokens) == 1, html
    return verify(tokens[0], secret)


def verify(token: str, secret: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, secret, algorithms=["HS256"], audience=AUDIENCE)
    return claims


def reqio_kwargs(secret: str, **extra: Any) -> dict[str, Any]:
    return {"secret": secret, "project_id": PROJECT, **extra}


# --- Starlette / FastAPI -----------------------------------------------------------------

starlette = pytest.importorskip("starlette")

from starlette.applications import Starlette  # noqa: E402
from starlette.authentication import (  # noqa: E402
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    SimpleUser,
)
from starlette.middleware import Middleware  # noqa: E402
from starlette.middleware.authentication import AuthenticationMiddleware  # noqa: E402
from starlette.requests import HTTPConnection, Request  # noqa: E402
from starlette.responses import HTMLResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from reqio_middleware.adapters.starlette import (  # noqa: E402
    default_identity,
    make_user_resolver,
    user_resolver,
)


class AppUser(BaseUser):
    """A user with a numeric id and an email, like a database-backed one."""

    def __init__(self, pk: int, email: str) -> None:
        self.pk, self.email = pk, email

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return f"user {self.pk}"

    @property
    def identity(self) -> str:
        return str(self.pk)


class HeaderBackend(AuthenticationBackend):
    """``X-User: 42`` is user 42; ``X-User: name:alice`` a ``SimpleUser``; no header, nobody."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        value = conn.headers.get("x-user")
        if not value:
            return None
        if value.startswith("name:"):
            return AuthCredentials(["authenticated"]), SimpleUser(value[5:])
        return AuthCredentials(["authenticated"]), AppUser(int(value), f"u{value}@example.com")


async def starlette_page(request: Request) -> Response:
    return HTMLResponse(PAGE)


def starlette_app(secret: str, *, auth_outside: bool, resolver: Any = user_resolver) -> Starlette:
    from reqio_middleware.asgi import ReqioMiddleware

    auth = Middleware(AuthenticationMiddleware, backend=HeaderBackend())
    reqio = Middleware(
        ReqioMiddleware, resolver=resolver, **reqio_kwargs(secret, token_path=TOKEN_PATH)
    )
    # Starlette lists middleware outermost first.
    stack = [auth, reqio] if auth_outside else [reqio, auth]
    return Starlette(routes=[Route("/", starlette_page)], middleware=stack)


@pytest.mark.parametrize("auth_outside", [True, False], ids=["auth-outside", "auth-inside"])
def test_starlette_page_carries_the_authenticated_user(secret: str, auth_outside: bool) -> None:
    client = TestClient(starlette_app(secret, auth_outside=auth_outside))
    claims = page_claims(client.get("/", headers={"X-User": "42"}).text, secret)
    assert claims["sub"] == "42"
    assert claims["email"] == "u42@example.com"
    anonymous = client.get("/")
    assert anonymous.content == PAGE.encode()


def test_starlette_endpoint_needs_authentication_outside(secret: str) -> None:
    """The endpoint answers before the app runs: only an outer AuthenticationMiddleware works."""
    outside = TestClient(starlette_app(secret, auth_outside=True))
    answer = outside.post(TOKEN_PATH, headers={"X-User": "7"})
    assert answer.status_code == 200
    assert verify(answer.json()["token"], secret)["sub"] == "7"
    assert outside.post(TOKEN_PATH).status_code == 401

    inside = TestClient(starlette_app(secret, auth_outside=False))
    assert inside.post(TOKEN_PATH, headers={"X-User": "7"}).status_code == 401


def test_starlette_simple_user_uses_display_name(secret: str) -> None:
    client = TestClient(starlette_app(secret, auth_outside=True))
    claims = page_claims(client.get("/", headers={"X-User": "name:alice"}).text, secret)
    assert claims["sub"] == "alice"
    assert "email" not in claims


def test_starlette_custom_mapping(secret: str) -> None:
    def to_identity(user: Any) -> Mapping[str, Any]:
        return {"sub": user.pk, "traits": {"plan": "pro", "amount": 1200, "interval": "month"}}

    client = TestClient(
        starlette_app(secret, auth_outside=True, resolver=make_user_resolver(to_identity))
    )
    claims = page_claims(client.get("/", headers={"X-User": "9"}).text, secret)
    assert claims["sub"] == "9"
    assert claims["traits"] == {"plan": "pro", "amount": 1200, "interval": "month"}


def test_starlette_resolver_ignores_unauthenticated_users() -> None:
    class Anonymous(BaseUser):
        is_authenticated = False

    called: list[Any] = []
    resolver = make_user_resolver(lambda user: called.append(user) or {"sub": "x"})
    assert resolver({"type": "http"}) is None
    assert resolver({"type": "http", "user": Anonymous()}) is None
    assert called == []
    assert default_identity(SimpleUser("")) is None


def test_fastapi_add_middleware_order(secret: str) -> None:
    fastapi = pytest.importorskip("fastapi")
    from reqio_middleware.asgi import ReqioMiddleware

    app = fastapi.FastAPI()

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return PAGE

    # add_middleware puts the last one added outermost: Reqio first, then authentication.
    app.add_middleware(
        ReqioMiddleware, resolver=user_resolver, **reqio_kwargs(secret, token_path=TOKEN_PATH)
    )
    app.add_middleware(AuthenticationMiddleware, backend=HeaderBackend())
    client = TestClient(app)
    assert page_claims(client.get("/", headers={"X-User": "5"}).text, secret)["sub"] == "5"
    assert (
        verify(client.get(TOKEN_PATH, headers={"X-User": "5"}).json()["token"], secret)["sub"]
        == "5"
    )


# --- Flask -------------------------------------------------------------------------------

flask = pytest.importorskip("flask")

from reqio_middleware.adapters import flask as reqio_flask  # noqa: E402

#: The tests of the older Flask functions (kept working, deprecated in favour of Reqio).
older_flask_api = pytest.mark.filterwarnings("ignore:.*is deprecated. use Reqio:DeprecationWarning")


def flask_app() -> Any:
    app = flask.Flask(__name__)
    app.secret_key = "flask-session-key-not-the-reqio-secret"

    @app.post("/login")
    def login() -> str:
        flask.session["user"] = int(flask.request.args["id"])
        return "ok"

    @app.get("/login-and-render")  # e.g. a magic-link landing page; only GET pages are rewritten
    def login_and_render() -> str:
        flask.session["user"] = 77
        return PAGE

    @app.get("/")
    def index() -> str:
        return PAGE

    return app


def session_identity() -> Identity | None:
    """A tiny login: the session's user id, no Flask-Login needed."""
    user = flask.session.get("user")
    return None if user is None else Identity(sub=user, email=f"u{user}@example.com")


@older_flask_api
def test_flask_wrap_rewrites_pages_and_serves_the_endpoint(secret: str) -> None:
    app = reqio_flask.wrap(
        flask_app(), identity=session_identity, **reqio_kwargs(secret, token_path=TOKEN_PATH)
    )
    client = app.test_client()
    assert client.get("/").data == PAGE.encode()
    assert client.post(TOKEN_PATH).status_code == 401

    client.post("/login?id=12")
    claims = page_claims(client.get("/").get_data(as_text=True), secret)
    assert (claims["sub"], claims["email"]) == ("12", "u12@example.com")
    answer = client.post(TOKEN_PATH)
    assert answer.status_code == 200
    assert verify(answer.get_json()["token"], secret)["sub"] == "12"


@older_flask_api
def test_flask_login_during_the_request_is_seen(secret: str) -> None:
    app = reqio_flask.wrap(flask_app(), identity=session_identity, **reqio_kwargs(secret))
    html = app.test_client().get("/login-and-render").get_data(as_text=True)
    assert page_claims(html, secret)["sub"] == "77"


@older_flask_api
def test_flask_init_app_with_the_plain_middleware(secret: str) -> None:
    from reqio_middleware.wsgi import ReqioWSGIMiddleware

    app = flask_app()
    reqio_flask.init_app(app, identity=session_identity)
    app.wsgi_app = ReqioWSGIMiddleware(app.wsgi_app, **reqio_kwargs(secret))  # type: ignore[method-assign]
    client = app.test_client()
    client.post("/login?id=3")
    assert page_claims(client.get("/").get_data(as_text=True), secret)["sub"] == "3"


def test_flask_default_identity_without_flask_login_is_anonymous(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "flask_login", None)  # as if it were not installed
    app = flask_app()
    with app.test_request_context("/"):
        assert reqio_flask.flask_login_identity() is None


@older_flask_api
def test_flask_login(secret: str) -> None:
    import flask_login

    app = flask_app()
    manager = flask_login.LoginManager(app)

    class User(flask_login.UserMixin):  # type: ignore[misc]
        def __init__(self, pk: str) -> None:
            self.id, self.email = pk, f"{pk}@example.com"

    manager.user_loader(User)

    @app.post("/fl-login")
    def fl_login() -> str:
        flask_login.login_user(User("31"))
        return "ok"

    reqio_flask.wrap(app, **reqio_kwargs(secret, token_path=TOKEN_PATH))
    client = app.test_client()
    client.post("/fl-login")
    claims = page_claims(client.get("/").get_data(as_text=True), secret)
    assert (claims["sub"], claims["email"]) == ("31", "31@example.com")
    assert verify(client.post(TOKEN_PATH).get_json()["token"], secret)["sub"] == "31"


# --- Django ------------------------------------------------------------------------------

django = pytest.importorskip("django")


class DjangoUser:
    """What ``request.user`` looks like to the adapter: ``pk``, ``email``, ``is_authenticated``."""

    is_authenticated = True

    def __init__(self, pk: int, email: str) -> None:
        self.pk, self.email = pk, email


class DjangoAnonymous:
    is_authenticated = False
    pk = None


class CookieAuth:
    """Stands in for Django's AuthenticationMiddleware (the ``user`` cookie is the user id), so
    the test needs no database; sync and async capable like the adapter."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from asgiref.sync import iscoroutinefunction, markcoroutinefunction

        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def _login(self, request: Any) -> None:
        pk = request.COOKIES.get("user")
        request.user = DjangoUser(int(pk), f"d{pk}@example.com") if pk else DjangoAnonymous()

    def __call__(self, request: Any) -> Any:
        self._login(request)
        if self.async_mode:
            return self.get_response(request)  # the coroutine, awaited by Django
        return self.get_response(request)


def django_view(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse(PAGE, content_type="text/html; charset=utf-8")


def custom_identity(user: Any) -> dict[str, Any]:
    return {"sub": user.pk, "traits": {"plan": "team", "amount": 9900, "interval": "year"}}


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("", django_view)]


class _URLConf:
    @property
    def urlpatterns(self) -> list[Any]:
        return _urlpatterns()


@pytest.fixture
def django_settings() -> Iterator[Callable[..., Any]]:
    from django.conf import settings
    from django.test.utils import override_settings

    if not settings.configured:  # another test module may have configured Django already
        settings.configure(
            DEBUG=False,
            SECRET_KEY="django-test-key-not-the-reqio-secret",
            ALLOWED_HOSTS=["*"],
            INSTALLED_APPS=[],
            MIDDLEWARE=[],
            DATABASES={},
            USE_TZ=True,
            ROOT_URLCONF=_URLConf(),
        )
        django.setup()
    overrides: list[Any] = []

    def use(**extra: Any) -> None:
        override = override_settings(
            ROOT_URLCONF=_URLConf(),
            ALLOWED_HOSTS=["*"],
            MIDDLEWARE=[
                f"{__name__}.CookieAuth",
                "reqio_middleware.adapters.django.ReqioIdentityMiddleware",
            ],
            **extra,
        )
        override.enable()
        overrides.append(override)

    try:
        yield use
    finally:
        for override in reversed(overrides):
            override.disable()


def test_django_test_client_stores_the_identity_in_meta(
    django_settings: Callable[..., Any],
) -> None:
    from django.test import Client

    django_settings()
    client = Client()
    client.cookies["user"] = "5"
    response = client.get("/")
    assert response.wsgi_request.META[IDENTITY_KEY] == Identity(sub="5", email="d5@example.com")
    anonymous = Client().get("/")
    assert IDENTITY_KEY not in anonymous.wsgi_request.META


@pytest.mark.parametrize("user_identity", [None, "custom"])
def test_django_wsgi_end_to_end(
    django_settings: Callable[..., Any], secret: str, user_identity: str | None
) -> None:
    from django.core.handlers.wsgi import WSGIHandler
    from werkzeug.test import Client as WSGIClient

    from reqio_middleware.wsgi import ReqioWSGIMiddleware

    django_settings(REQIO_USER_IDENTITY=f"{__name__}.custom_identity" if user_identity else None)
    app = ReqioWSGIMiddleware(WSGIHandler(), **reqio_kwargs(secret))
    client = WSGIClient(app)
    client.set_cookie("user", "41")
    claims = page_claims(client.get("/").get_data(as_text=True), secret)
    assert claims["sub"] == "41"
    if user_identity:
        assert claims["traits"] == {"plan": "team", "amount": 9900, "interval": "year"}
    else:
        assert claims["email"] == "d41@example.com"
    assert WSGIClient(app).get("/").get_data() == PAGE.encode()


def test_django_asgi_end_to_end(django_settings: Callable[..., Any], secret: str) -> None:
    from django.core.handlers.asgi import ASGIHandler

    from reqio_middleware.asgi import ReqioMiddleware

    django_settings()
    app = ReqioMiddleware(ASGIHandler(), **reqio_kwargs(secret))

    async def run() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            signed_in = await c.get("/", headers={"Cookie": "user=8"})
            return signed_in, await c.get("/")

    signed_in, anonymous = asyncio.run(run())
    claims = page_claims(signed_in.text, secret)
    assert (claims["sub"], claims["email"]) == ("8", "d8@example.com")
    assert anonymous.content == PAGE.encode()


def test_django_middleware_is_async_under_an_async_chain() -> None:
    from asgiref.sync import iscoroutinefunction

    from reqio_middleware.adapters.django import ReqioIdentityMiddleware

    async def get_response(request: Any) -> Any:
        return None

    assert iscoroutinefunction(ReqioIdentityMiddleware(get_response))
    assert not iscoroutinefunction(ReqioIdentityMiddleware(lambda request: None))


# The real django.contrib.auth + sessions stack needs INSTALLED_APPS that other test modules may
# have configured differently in this process, so it runs in a fresh interpreter. Sessions are
# signed cookies and the authentication backend needs no database.
DJANGO_AUTH_SCRIPT = r"""
import asyncio, json, os, sys
import django
from django.conf import settings

class Backend:
    def get_user(self, user_id):
        return User(user_id)

class User:
    is_authenticated = True
    is_active = True
    def __init__(self, pk):
        self.pk, self.email = pk, f"s{pk}@example.com"

settings.configure(
    SECRET_KEY="django-test-key-not-the-reqio-secret",
    ALLOWED_HOSTS=["*"],
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
    DATABASES={},
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    AUTHENTICATION_BACKENDS=["__main__.Backend"],
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "reqio_middleware.adapters.django.ReqioIdentityMiddleware",
    ],
    ROOT_URLCONF="__main__",
    USE_TZ=True,
)
django.setup()

from django.http import HttpResponse
from django.urls import path

PAGE = os.environ["PAGE"]
urlpatterns = [path("", lambda request: HttpResponse(PAGE, content_type="text/html"))]

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.signed_cookies import SessionStore

session = SessionStore()
session.update({SESSION_KEY: "23", BACKEND_SESSION_KEY: "__main__.Backend", HASH_SESSION_KEY: ""})
session.save()
cookie = f"sessionid={session.session_key}"

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
import httpx
from werkzeug.test import Client
from reqio_middleware.adapters.django import async_user_resolver, user_resolver
from reqio_middleware.asgi import ReqioMiddleware
from reqio_middleware.wsgi import ReqioWSGIMiddleware

kw = dict(secret=os.environ["REQIO_TEST_SECRET"], project_id=os.environ["PROJECT"],
          token_path=os.environ["TOKEN_PATH"])
out = {}
wsgi = Client(ReqioWSGIMiddleware(WSGIHandler(), resolver=user_resolver, **kw), use_cookies=False)
out["wsgi"] = [
    wsgi.get("/", headers={"Cookie": cookie}).get_data(as_text=True),
    [wsgi.post(kw["token_path"], headers={"Cookie": cookie}).status_code,
     wsgi.post(kw["token_path"], headers={"Cookie": cookie}).get_json()],
    wsgi.post(kw["token_path"]).status_code,
]

async def run_asgi():
    app = ReqioMiddleware(ASGIHandler(), resolver=async_user_resolver, **kw)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as c:
        page = await c.get("/", headers={"Cookie": cookie})
        token = await c.post(kw["token_path"], headers={"Cookie": cookie})
        anonymous = await c.post(kw["token_path"])
        return [page.text, [token.status_code, token.json()], anonymous.status_code]

out["asgi"] = asyncio.run(run_asgi())
print(json.dumps(out))
"""


def test_django_auth_and_sessions_page_and_endpoint(secret: str) -> None:
    """The real SessionMiddleware/AuthenticationMiddleware stack under WSGI and ASGI, and the
    token endpoint, where the resolvers read the session themselves."""
    import json
    import os
    import subprocess
    from pathlib import Path

    env = dict(
        os.environ, REQIO_TEST_SECRET=secret, PAGE=PAGE, PROJECT=PROJECT, TOKEN_PATH=TOKEN_PATH
    )
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH")) if p
    )
    done = subprocess.run(
        [sys.executable, "-c", DJANGO_AUTH_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for server in ("wsgi", "asgi"):
        page, (status, body), anonymous_status = results[server]
        claims = page_claims(page, secret)
        assert (claims["sub"], claims["email"]) == ("23", "s23@example.com"), server
        assert status == 200, (server, body)
        assert verify(body["token"], secret)["sub"] == "23"
        assert anonymous_status == 401, server
