"""The token endpoint and its script, through both middlewares; the app never runs there."""

from __future__ import annotations

import asyncio
import json
import logging
from importlib import resources
from typing import Any

import jwt
import pytest

from reqio_middleware.asgi import ReqioMiddleware
from reqio_middleware.identity import Identity
from reqio_middleware.tokens import ReditusMinter
from reqio_middleware.wsgi import ReqioWSGIMiddleware

PROJECT = "proj_abc123"
AUDIENCE = f"https://reqio.app/p/{PROJECT}"
PATH = "/_reqio/token"
USER = {"sub": 42, "email": "u@example.com"}
KINDS = ["asgi", "wsgi"]


class Reply:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def header(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name]

    def json(self) -> Any:
        return json.loads(self.body)


def asgi_app(scope: Any, receive: Any, send: Any) -> Any:
    raise AssertionError("the application must not run for the token path")


def wsgi_app(environ: Any, start_response: Any) -> Any:
    raise AssertionError("the application must not run for the token path")


async def forwarding_asgi_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"app"})


def forwarding_wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app"]


def request(
    kind: str,
    *,
    method: str = "GET",
    path: str = PATH,
    headers: dict[str, str] | None = None,
    app: Any = None,
    extra: dict[str, Any] | None = None,
    **options: Any,
) -> Reply:
    options.setdefault("token_path", PATH)
    options.setdefault("project_id", PROJECT)
    headers = {"host": "testserver", **(headers or {})}
    if kind == "asgi":
        mw = ReqioMiddleware(app or asgi_app, **options)
        out: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            out.append(message)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "scheme": "http",
            "server": ("testserver", 80),
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            **(extra or {}),
        }
        asyncio.run(mw(scope, receive, send))
        start, *bodies = out
        return Reply(
            start["status"],
            [(n.decode(), v.decode()) for n, v in start["headers"]],
            b"".join(m.get("body", b"") for m in bodies),
        )
    wmw = ReqioWSGIMiddleware(app or wsgi_app, **options)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "wsgi.url_scheme": "http",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()},
        **(extra or {}),
    }
    seen: list[Any] = []

    def start_response(status: str, hdrs: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.extend([status, hdrs])
        return lambda data: None

    result = wmw(environ, start_response)
    body = b"".join(result)
    return Reply(int(seen[0].split()[0]), seen[1], body)


def assert_json_reply(reply: Reply) -> None:
    assert reply.header("content-type") == ["application/json"]
    assert reply.header("cache-control") == ["no-store"]
    assert reply.header("vary") == ["Cookie"]
    assert reply.header("content-length") == [str(len(reply.body))]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_identified_user_gets_a_token(
    kind: str, method: str, secret: str, no_secret_leak: Any
) -> None:
    reply = request(kind, method=method, resolver=lambda req: USER, secret=secret)
    assert reply.status == 200
    assert_json_reply(reply)
    payload = reply.json()
    claims = jwt.decode(payload["token"], secret, algorithms=["HS256"], audience=AUDIENCE)
    assert claims["sub"] == "42" and claims["email"] == USER["email"]
    assert payload["expires_at"] == claims["exp"] == claims["iat"] + 300
    no_secret_leak.check(reply.body.decode(), "response body")


@pytest.mark.parametrize("kind", KINDS)
def test_default_resolver_reads_what_an_outer_layer_stored(kind: str) -> None:
    reply = request(
        kind, minter=lambda i: f"tok-{i.sub}", extra={"reqio.identity": Identity(sub="bob")}
    )
    assert reply.status == 200 and reply.json() == {"token": "tok-bob", "expires_at": None}


@pytest.mark.parametrize("kind", KINDS)
def test_other_minters_are_used(kind: str, secret: str) -> None:
    reply = request(kind, resolver=lambda req: USER, minter=ReditusMinter(secret * 2, "prod_1"))
    payload = reply.json()
    claims = jwt.decode(payload["token"], secret * 2, algorithms=["HS512"])
    assert claims["UserId"] == "42" and claims["ProductId"] == "prod_1"
    assert payload["expires_at"] is None


@pytest.mark.parametrize("kind", KINDS)
def test_anonymous_gets_401(kind: str, secret: str) -> None:
    reply = request(kind, resolver=lambda req: None, secret=secret)
    assert reply.status == 401 and "error" in reply.json() and "token" not in reply.json()
    assert_json_reply(reply)


@pytest.mark.parametrize("kind", KINDS)
def test_cross_site_is_refused_before_resolving(kind: str, secret: str) -> None:
    calls: list[int] = []
    reply = request(
        kind,
        headers={"sec-fetch-site": "cross-site"},
        resolver=lambda req: calls.append(1) or USER,
        secret=secret,
    )
    assert reply.status == 403 and "token" not in reply.json()
    assert_json_reply(reply)
    assert calls == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("site", ["same-origin", "same-site", "none"])
def test_same_site_fetches_are_answered(kind: str, site: str) -> None:
    reply = request(kind, headers={"sec-fetch-site": site}, resolver=lambda r: USER, minter=str)
    assert reply.status == 200


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://testserver.evil",
        "http://testserver:8080",
        "null",
        "https://testserver",
        "garbage",
    ],
)
def test_foreign_origin_is_refused(kind: str, origin: str) -> None:
    reply = request(kind, headers={"origin": origin}, resolver=lambda r: USER, minter=str)
    assert reply.status == 403


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("origin", ["http://testserver", "HTTP://TestServer:80"])
def test_own_origin_is_answered(kind: str, origin: str) -> None:
    reply = request(kind, headers={"origin": origin}, resolver=lambda r: USER, minter=str)
    assert reply.status == 200


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["PUT", "DELETE", "HEAD", "OPTIONS"])
def test_other_methods_get_405(kind: str, method: str) -> None:
    reply = request(kind, method=method, resolver=lambda r: USER, minter=str)
    assert reply.status == 405 and reply.header("allow") == ["GET, POST"]
    assert reply.header("cache-control") == ["no-store"]


def boom(request: Any) -> object:
    raise RuntimeError("database down")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("resolver", [boom, lambda r: 12, lambda r: {"sub": ""}])
def test_resolver_failure_is_503_never_500(kind: str, resolver: Any, secret: str) -> None:
    reply = request(kind, resolver=resolver, secret=secret)
    assert reply.status == 503 and "token" not in reply.json()
    assert_json_reply(reply)


@pytest.mark.parametrize("kind", KINDS)
def test_minter_failure_is_503(kind: str) -> None:
    def minter(identity: Identity) -> str:
        raise ValueError("too big")

    assert request(kind, resolver=lambda r: USER, minter=minter).status == 503


def test_resolver_timeout_is_503_under_asgi() -> None:
    async def resolver(scope: Any) -> object:
        await asyncio.Event().wait()
        return USER

    reply = request("asgi", resolver=resolver, minter=str, resolver_timeout=0.05)
    assert reply.status == 503


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", ["/", "/_reqio/token/", "/_reqio/tokenx", "/_reqio/token.json"])
def test_other_paths_reach_the_app(kind: str, path: str) -> None:
    app = forwarding_asgi_app if kind == "asgi" else forwarding_wsgi_app
    assert request(kind, path=path, app=app, minter=str).body == b"app"


# --- the browser helper ---------------------------------------------------------------------


def script_bytes() -> bytes:
    return resources.files("reqio_middleware").joinpath("static/reqio-identity.js").read_bytes()


@pytest.mark.parametrize("kind", KINDS)
def test_script_is_served_next_to_the_endpoint(kind: str) -> None:
    reply = request(kind, path=PATH + ".js", minter=str)
    assert reply.status == 200
    assert reply.body == script_bytes()
    assert reply.header("content-type") == ["text/javascript; charset=utf-8"]
    assert reply.header("cache-control") == ["public, max-age=3600"]
    assert reply.header("content-length") == [str(len(script_bytes()))]


@pytest.mark.parametrize("kind", KINDS)
def test_script_head_has_no_body(kind: str) -> None:
    reply = request(kind, method="HEAD", path=PATH + ".js", minter=str)
    assert reply.status == 200 and reply.body == b""
    assert reply.header("content-length") == [str(len(script_bytes()))]


@pytest.mark.parametrize("kind", KINDS)
def test_script_refuses_post(kind: str) -> None:
    assert request(kind, method="POST", path=PATH + ".js", minter=str).status == 405


@pytest.mark.parametrize("kind", KINDS)
def test_without_token_path_the_app_answers(kind: str) -> None:
    app = forwarding_asgi_app if kind == "asgi" else forwarding_wsgi_app
    assert request(kind, app=app, token_path=None, minter=str).body == b"app"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("credential", ["cookie", "authorization"])
def test_401_to_a_request_with_credentials_says_why_once(
    kind: str, credential: str, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    options = {"secret": secret, "resolver": lambda request: None}
    headers = {credential: "session=abc" if credential == "cookie" else "Bearer abc"}
    with caplog.at_level(logging.WARNING, logger="reqio_middleware"):
        replies = [request(kind, headers=headers, **options) for _ in range(2)]
    assert [r.status for r in replies] == [401, 401]
    # One middleware per request() call: each warns once; the same middleware warns once.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    for message in warnings:
        assert credential.capitalize() in message
        assert "before the application runs" in message and "token_view" in message


@pytest.mark.parametrize("kind", KINDS)
def test_401_without_credentials_is_quiet(
    kind: str, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="reqio_middleware"):
        assert request(kind, secret=secret, resolver=lambda r: None).status == 401
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_the_same_middleware_warns_about_credentials_once(
    secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    mw = ReqioWSGIMiddleware(wsgi_app, secret=secret, project_id=PROJECT, token_path=PATH)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": PATH, "HTTP_COOKIE": "session=abc"}
    with caplog.at_level(logging.WARNING, logger="reqio_middleware"):
        for _ in range(3):
            b"".join(mw(dict(environ), lambda status, headers, exc_info=None: None))
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
