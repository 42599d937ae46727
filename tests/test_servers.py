"""Real servers on loopback, real HTTP through httpx.

uvicorn and hypercorn serve the Starlette app behind ``ReqioMiddleware``; waitress serves a
plain WSGI app behind ``ReqioWSGIMiddleware``. Each server process also serves the bare app
under ``/bare/``, so every comparison is made through the very same server.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from conftest import _wait_ready, free_port, serve  # noqa: E402

from tests.apps import common  # noqa: E402
from tests.apps.checks import (  # noqa: E402
    TOKEN_ATTR,
    check_token_body,
    check_token_headers,
    decode,
    normalise,
    values,
)

APPS = {
    "uvicorn": "tests.apps.starlette_app:app",
    "hypercorn": "tests.apps.starlette_app:app",
    "waitress": "tests.apps.wsgi_app:app",
}


@pytest.fixture(autouse=True)
def _guard_secret(no_secret_leak: Any) -> None:
    no_secret_leak.register(common.SECRET)


@pytest.fixture(scope="module", params=sorted(APPS))
def base_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with serve(APPS[request.param], server=request.param, timeout=30.0) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10.0) as c:
        yield c


def _headers_but_date(response: httpx.Response) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in normalise(response.headers.raw) if k != b"date"]


def test_single_body_page_has_exact_length(client: httpx.Client) -> None:
    got = client.get("/page", headers={"X-User": "alice"})
    want = client.get("/bare/page", headers={"X-User": "alice"})
    assert got.status_code == 200
    lengths = values(got.headers.raw, b"content-length")
    assert lengths == [str(len(got.content)).encode()]
    assert common.SECRET.encode() not in got.content + b"".join(v for _, v in got.headers.raw)
    check_token_body(got.content, want.content, "alice")
    check_token_headers(got.headers.raw, want.headers.raw, got.content)


def test_static_index_gets_token(client: httpx.Client) -> None:
    """Validators and ``public`` go; under waitress the body came through wsgi.file_wrapper."""
    got = client.get("/static/", headers={"X-User": "carol"})
    want = client.get("/bare/static/", headers={"X-User": "carol"})
    assert got.status_code == 200
    check_token_body(got.content, want.content, "carol")
    check_token_headers(got.headers.raw, want.headers.raw, got.content)


@pytest.mark.parametrize("path", ["/stream", "/bigstream"])
def test_streamed_page_tag_split_across_chunks(client: httpx.Client, path: str) -> None:
    got = client.get(path, headers={"X-User": "bob"})
    want = client.get("/bare" + path, headers={"X-User": "bob"})
    assert got.status_code == 200
    check_token_body(got.content, want.content, "bob")
    check_token_headers(got.headers.raw, want.headers.raw, got.content)
    if path == "/bigstream":  # far bigger than any look-ahead: must go out as it comes
        assert not values(got.headers.raw, b"content-length")
        assert values(got.headers.raw, b"transfer-encoding") == [b"chunked"]


@pytest.mark.parametrize(
    ("path", "user"),
    [("/json", "alice"), ("/json", None), ("/page", None), ("/stream", None), ("/nope", "alice")],
)
def test_untouched_responses_identical_to_bare(
    client: httpx.Client, path: str, user: str | None
) -> None:
    headers = {"X-User": user} if user else {}
    got = client.get(path, headers=headers)
    want = client.get("/bare" + path, headers=headers)
    assert (got.status_code, _headers_but_date(got), got.content) == (
        want.status_code,
        _headers_but_date(want),
        want.content,
    )


def test_signed_in_head_matches_its_get(client: httpx.Client) -> None:
    got = client.head("/page", headers={"X-User": "alice"})
    get = client.get("/page", headers={"X-User": "alice"})
    want = client.get("/bare/page", headers={"X-User": "alice"})
    assert got.status_code == 200
    assert got.content == b""
    # Exact when the app gave the HEAD its body (Starlette does); the app's own when it did
    # not (the WSGI app here honours HEAD), as the stamped length cannot be known then.
    length = values(got.headers.raw, b"content-length")
    assert length in ([str(len(get.content)).encode()], values(want.headers.raw, b"content-length"))
    check_token_headers(
        got.headers.raw,
        want.headers.raw,
        get.content if length != values(want.headers.raw, b"content-length") else None,
    )


def test_anonymous_head_keeps_the_apps_headers(client: httpx.Client) -> None:
    got = client.head("/page")
    bare = client.head("/bare/page")
    assert got.status_code == 200 and got.content == b""
    assert _headers_but_date(got) == _headers_but_date(bare)


@pytest.fixture(scope="module")
def waitress_url() -> Iterator[str]:
    with serve(APPS["waitress"], server="waitress", timeout=30.0) as url:
        yield url


def _raw_exchange(url: str, request: bytes, answers: int) -> bytes:
    """Send ``request`` over one connection; read until ``answers`` status lines, or with
    ``answers=-1`` until the server closes the connection (bounded either way)."""
    host, port = url.removeprefix("http://").split(":")
    data = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        for _ in range(1000):
            enough = answers != -1 and data.count(b"HTTP/1.1 ") >= answers
            if enough and data.endswith((b"\r\n\r\n", b"\n")):
                break
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def _raw_head(url: str, path: str, user: str | None) -> list[tuple[bytes, bytes]]:
    """Two HEADs on one connection, as (headers without Date, what followed them) pairs.

    A third HEAD asks the server to close the connection, and everything is read up to that
    close: whatever a server wrote after the first two answers' headers is then all here,
    however the bytes were split into packets.
    """
    extra = f"X-User: {user}\r\n" if user else ""
    head = f"HEAD {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode()
    last = f"HEAD {path} HTTP/1.1\r\nHost: test\r\n{extra}Connection: close\r\n\r\n".encode()
    data = _raw_exchange(url, head + head + last, answers=-1)
    out = []
    for answer in data.split(b"HTTP/1.1 ")[1:3]:
        headers, _, rest = answer.partition(b"\r\n\r\n")
        lines = [line for line in headers.split(b"\r\n") if not line.startswith(b"Date:")]
        out.append((b"\r\n".join(lines), rest))
    return out


@pytest.mark.parametrize("path", ["/head-body", "/page"])
def test_signed_in_head_sends_no_body_bytes_on_the_wire(waitress_url: str, path: str) -> None:
    """A WSGI app may return its body for HEAD (``/head-body``) or leave it out (``/page``, as
    Flask and Django do); waitress would send a body it is given or, without a length, a
    chunked terminator. A signed-in HEAD ends with its headers."""
    answers = _raw_head(waitress_url, path, "alice")
    assert len(answers) == 2
    for headers, rest in answers:
        assert rest == b"", (headers, rest)
        assert b"transfer-encoding" not in headers.lower()
        assert b"content-length: " in headers.lower()


@pytest.mark.parametrize("path", ["/head-body", "/page"])
def test_anonymous_head_on_the_wire_is_the_bare_apps(waitress_url: str, path: str) -> None:
    assert _raw_head(waitress_url, path, None) == _raw_head(waitress_url, "/bare" + path, None)


def test_bounded_concurrency_mixed_traffic(base_url: str, client: httpx.Client) -> None:
    """200 requests, 16 at a time: no errors, and every token names that request's user."""
    bare_page = {p: client.get("/bare" + p).content for p in ("/page", "/stream", "/static/")}
    mix = ["/page", "/stream", "/json", "/static/"]
    plan = [(mix[i % len(mix)], f"user-{i}" if i % 3 else None) for i in range(200)]
    outcomes: list[str] = []

    async def one(http: httpx.AsyncClient, path: str, user: str | None) -> None:
        response = await http.get(path, headers={"X-User": user} if user else {})
        assert response.status_code == 200, (path, response.status_code)
        lengths = values(response.headers.raw, b"content-length")
        assert not lengths or int(lengths[0]) == len(response.content)
        if path == "/json":
            assert response.content == common.JSON_BODY
        elif user is None:
            assert response.content == bare_page[path]
        else:
            token = check_token_body(response.content, bare_page[path], user)
            assert decode(token)["sub"] == user
        outcomes.append(path if user is None or path == "/json" else "token")

    async def run() -> list[BaseException | None]:
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
        async with httpx.AsyncClient(base_url=base_url, timeout=20.0, limits=limits) as http:
            gate = asyncio.Semaphore(16)

            async def bounded(path: str, user: str | None) -> None:
                async with gate:
                    await one(http, path, user)

            return await asyncio.gather(*(bounded(p, u) for p, u in plan), return_exceptions=True)

    errors = [e for e in asyncio.run(run()) if e is not None]
    assert errors == [], errors[:3]
    assert len(outcomes) == 200
    assert outcomes.count("token") == sum(1 for p, u in plan if u and p != "/json")


def test_token_attribute_pattern_is_strict() -> None:
    """The checker itself must be able to fail: a page without a token, or with two, is refused."""
    with pytest.raises(AssertionError):
        check_token_body(common.PAGE, common.PAGE, "alice")
    assert TOKEN_ATTR.search(b'<script data-identity-token="a.b.c">') is not None


# --- revalidation: a signed-in user never gets a 304 for a page cached without a token -----


@pytest.mark.parametrize("path", ["/static/", "/file"])
def test_revalidation_after_login_gets_the_tokened_page(client: httpx.Client, path: str) -> None:
    first = client.get(path)  # the anonymous visit, cached by the browser with its validators
    assert first.status_code == 200 and TOKEN_ATTR.search(first.content) is None
    validators = {}
    if "etag" in first.headers:
        validators["If-None-Match"] = first.headers["etag"]
    if "last-modified" in first.headers:
        validators["If-Modified-Since"] = first.headers["last-modified"]
    assert validators, "the app must give its static page a validator"
    # Anonymous caching keeps working: the revalidation is answered as without us (304 from
    # StaticFiles; FileResponse renders the page again).
    anonymous = client.get(path, headers=validators)
    assert anonymous.status_code == client.get("/bare" + path, headers=validators).status_code
    assert path != "/static/" or anonymous.status_code == 304
    for name, value in validators.items():
        signed_in = client.get(path, headers={name: value, "X-User": "alice"})
        assert signed_in.status_code == 200, name
        assert TOKEN_ATTR.search(signed_in.content) is not None, name
        assert "etag" not in signed_in.headers and "last-modified" not in signed_in.headers
        assert "no-store" in signed_in.headers["cache-control"]


# --- what trio and misconfigured servers do -----------------------------------------------


@contextlib.contextmanager
def _process(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def _env(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def test_hypercorn_trio_worker_gives_the_page_a_token() -> None:
    """No asyncio-only primitive on the request path: resolving (a sync resolver goes to a
    worker thread here) and rewriting work under trio."""
    if importlib.util.find_spec("trio") is None:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)("trio is not installed")
    port = free_port()
    command = [sys.executable, "-m", "hypercorn", "--worker-class", "trio"]
    command += ["--bind", f"127.0.0.1:{port}", APPS["hypercorn"]]
    with _process(command, _env()) as proc:
        _wait_ready(port, 30.0, alive=lambda: proc.poll() is None)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0) as c:
            page = c.get("/page", headers={"X-User": "alice"})
            stream = c.get("/stream", headers={"X-User": "alice"})
            anonymous = c.get("/page")
            bare = c.get("/bare/page", headers={"X-User": "alice"})
            bare_stream = c.get("/bare/stream", headers={"X-User": "alice"})
    for response, want in ((page, bare), (stream, bare_stream)):
        assert response.status_code == 200
        check_token_body(response.content, want.content, "alice")
    assert anonymous.content == bare.content


@pytest.mark.parametrize(
    "factory", ["tests.apps.starlette_app:misconfigured", "tests.apps.fastapi_app:misconfigured"]
)
def test_uvicorn_refuses_to_start_when_the_secret_is_missing(factory: str) -> None:
    """``add_middleware`` builds the middleware lazily; the mistake must still stop the
    server, with the message, instead of answering every request with a 500."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", factory]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with _process(command, _env(REQIO_SECRET=None, REQIO_AUDIENCE=None)) as proc:
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("uvicorn started although the middleware is misconfigured")
    text = output.decode(errors="replace")
    assert proc.returncode != 0, text
    assert "REQIO_SECRET" in text and "Application startup failed" in text, text


# --- revalidation in a real browser: anonymous visit, login, revisit, reload ----------------

BROWSER_WIDGET_JS = """\
var tag = document.querySelector("script[data-project-id]");
window.__pageToken = tag && tag.getAttribute("data-identity-token");
"""


class _CookieBackend(AuthenticationBackend):
    """The visitor is whoever the ``user`` cookie names (a stand-in for a real session)."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        name = conn.cookies.get("user")
        return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None


def _browser_site(port: int, directory: Path, seen: list[int]) -> Any:
    from reqio_middleware import ReqioMiddleware
    from reqio_middleware.adapters.starlette import user_resolver

    widget = f"//127.0.0.1:{port}/w/widget.js"
    (directory / "index.html").write_text(
        f"<!doctype html><html><head><title>static</title></head><body><h1>Hello</h1>"
        f'<script src="{widget}" data-project-id="{common.PROJECT_ID}"></script></body></html>'
    )

    async def login(request: Request) -> Response:
        response = RedirectResponse("/static/", status_code=303)
        response.set_cookie("user", "alice", samesite="lax")
        return response

    async def widget_js(request: Request) -> Response:
        return Response(BROWSER_WIDGET_JS, media_type="text/javascript")

    app = Starlette(
        routes=[
            Route("/login", login),
            Route("/w/widget.js", widget_js),
            Mount("/static", StaticFiles(directory=directory, html=True)),
        ],
        middleware=[
            Middleware(AuthenticationMiddleware, backend=_CookieBackend()),
            Middleware(
                ReqioMiddleware,
                resolver=user_resolver,
                widget_src="https:" + widget,
                **common.SETTINGS,
            ),
        ],
    )

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        async def record(message: Any) -> None:
            if message["type"] == "http.response.start" and scope["path"] == "/static/":
                seen.append(message["status"])
            await send(message)

        await app(scope, receive, record)

    return counting


def test_chromium_gets_the_token_after_login_despite_its_cache(
    browser: Any, tmp_path: Path
) -> None:
    seen: list[int] = []
    late: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await late["app"](scope, receive, send)

    with serve(app) as base:
        late["app"] = _browser_site(int(base.rsplit(":", 1)[1]), tmp_path, seen)
        context = browser.new_context()
        try:
            tab = context.new_page()
            tab.goto(base + "/static/")  # anonymous: cached with its ETag and Last-Modified
            assert tab.evaluate("() => window.__pageToken") is None
            tab.goto(base + "/login")  # logs in, then revisits the page (a revalidation)
            revisit = tab.evaluate("() => window.__pageToken")
            tab.reload()
            reloaded = tab.evaluate("() => window.__pageToken")
            tab.goto(base + "/static/")
            again = tab.evaluate("() => window.__pageToken")
        finally:
            context.close()
    for token in (revisit, reloaded, again):
        assert token, seen
        claims = decode(token)
        assert claims["sub"] == "alice"
    assert 304 not in seen[1:], seen  # the signed-in visits were rendered, never revalidated
