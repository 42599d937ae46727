"""Real frameworks, end to end, each compared with the same application without the middleware.

Starlette and FastAPI through ``add_middleware`` (TestClient), Flask through ``app.wsgi_app``,
Django under WSGI (``wsgiref`` calls, checked by ``wsgiref.validate``) and under ASGI
(``ASGIHandler`` called directly; Django sends mixed-case header names).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from tests.apps import common  # noqa: E402
from tests.apps.checks import (  # noqa: E402
    check_token_body,
    check_token_headers,
    normalise,
    values,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous"),
]

USERS = ("alice", "user-42")


@pytest.fixture(autouse=True)
def _guard_secret(no_secret_leak: Any) -> None:
    no_secret_leak.register(common.SECRET)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "user" in metafunc.fixturenames:
        metafunc.parametrize("user", USERS)


# --- Starlette ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def starlette_clients() -> Iterator[tuple[Any, Any]]:
    from starlette.testclient import TestClient

    from tests.apps import starlette_app

    with (
        TestClient(starlette_app.build(wrapped=True)) as wrapped,
        TestClient(starlette_app.build(wrapped=False)) as bare,
    ):
        yield wrapped, bare


@pytest.mark.parametrize("path", ["/page", "/stream", "/static/", "/bigstream"])
def test_starlette_identified_page(
    starlette_clients: tuple[Any, Any], path: str, user: str
) -> None:
    wrapped, bare = starlette_clients
    got = wrapped.get(path, headers={"X-User": user})
    want = bare.get(path, headers={"X-User": user})
    assert got.status_code == want.status_code == 200
    check_token_body(got.content, want.content, user)
    check_token_headers(got.headers.raw, want.headers.raw, got.content)


@pytest.mark.parametrize(
    ("path", "identified"),
    [
        ("/page", False),
        ("/stream", False),
        ("/static/", False),
        ("/static/index.html", False),
        ("/json", False),
        ("/json", True),
    ],
)
def test_starlette_untouched(
    starlette_clients: tuple[Any, Any], path: str, identified: bool
) -> None:
    """Anonymous pages and non-HTML are the bare application's, headers included."""
    wrapped, bare = starlette_clients
    headers = {"X-User": "alice"} if identified else {}
    got, want = wrapped.get(path, headers=headers), bare.get(path, headers=headers)
    assert (got.status_code, got.headers.raw, got.content) == (
        want.status_code,
        want.headers.raw,
        want.content,
    )


def test_starlette_head_gets_no_token_and_no_length(starlette_clients: tuple[Any, Any]) -> None:
    wrapped, bare = starlette_clients
    got = wrapped.head("/page", headers={"X-User": "alice"})
    want = bare.head("/page", headers={"X-User": "alice"})
    assert got.status_code == 200
    assert got.content == b""
    assert b"data-identity-token" not in b"".join(v for _, v in got.headers.raw)
    get = wrapped.get("/page", headers={"X-User": "alice"})  # a signed-in HEAD matches its GET
    assert values(got.headers.raw, b"content-length") == [str(len(get.content)).encode()]
    check_token_headers(got.headers.raw, want.headers.raw, get.content)


def test_starlette_resolver_called_once_and_only_for_html() -> None:
    from starlette.testclient import TestClient

    from tests.apps import starlette_app

    calls: list[str] = []

    def counting(scope: dict[str, Any]) -> dict[str, str] | None:
        calls.append(scope["path"])
        return common.user_from_scope(scope)

    client = TestClient(starlette_app.build(wrapped=True, resolver=counting))
    assert client.get("/json", headers={"X-User": "alice"}).status_code == 200
    assert calls == []
    assert b"data-identity-token" in client.get("/stream", headers={"X-User": "alice"}).content
    assert calls == ["/stream"]


def _asgi_call(
    app: Any,
    path: str,
    *,
    method: str = "GET",
    headers: list[tuple[bytes, bytes]] | None = None,
    extensions: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One request straight through the ASGI interface; returns every message sent."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "extensions": extensions or {},
        "state": {},
    }
    messages: list[dict[str, Any]] = []

    async def run() -> None:
        done = asyncio.Event()
        requested = False

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)
            if message["type"] == "http.response.pathsend" or (
                message["type"] == "http.response.body" and not message.get("more_body", False)
            ):
                done.set()

        await asyncio.wait_for(app(scope, receive, send), timeout=10)

    asyncio.run(run())
    return messages


def _asgi_response(messages: list[dict[str, Any]]) -> tuple[int, list[Any], bytes]:
    start = messages[0]
    assert start["type"] == "http.response.start"
    body = b""
    for message in messages[1:]:
        if message["type"] == "http.response.body":
            body += message.get("body", b"")
        elif message["type"] == "http.response.pathsend":
            body += Path(message["path"]).read_bytes()
    return start["status"], list(start.get("headers", [])), body


def test_starlette_static_page_sent_by_pathsend_gets_token() -> None:
    """Under a server offering ``http.response.pathsend``, StaticFiles sends a path, not bytes."""
    from tests.apps import starlette_app

    ext = {"http.response.pathsend": {}}
    hdrs = [(b"x-user", b"alice")]
    wrapped = starlette_app.build(wrapped=True)
    bare = starlette_app.build(wrapped=False)
    bare_messages = _asgi_call(bare, "/static/", headers=hdrs, extensions=ext)
    assert [m["type"] for m in bare_messages][-1] == "http.response.pathsend"  # really exercised
    status, headers, body = _asgi_response(
        _asgi_call(wrapped, "/static/", headers=hdrs, extensions=ext)
    )
    _, bare_headers, bare_body = _asgi_response(bare_messages)
    assert status == 200
    check_token_body(body, bare_body, "alice")
    check_token_headers(headers, bare_headers, body)


# --- FastAPI ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sync", "async"])
def fastapi_clients(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any]]:
    from starlette.testclient import TestClient

    from tests.apps import fastapi_app

    def sync_resolver(scope: dict[str, Any]) -> dict[str, str] | None:
        return common.user_from_scope(scope)

    async def async_resolver(scope: dict[str, Any]) -> dict[str, str] | None:
        return common.user_from_scope(scope)

    resolver: Callable[..., Any] = sync_resolver if request.param == "sync" else async_resolver
    with (
        TestClient(fastapi_app.build(wrapped=True, resolver=resolver)) as wrapped,
        TestClient(fastapi_app.build(wrapped=False)) as bare,
    ):
        yield wrapped, bare


@pytest.mark.parametrize("path", ["/page", "/sync-page"])
def test_fastapi_identified_page(fastapi_clients: tuple[Any, Any], path: str, user: str) -> None:
    wrapped, bare = fastapi_clients
    got = wrapped.get(path, headers={"X-User": user})
    want = bare.get(path, headers={"X-User": user})
    assert got.status_code == want.status_code == 200
    check_token_body(got.content, want.content, user)
    check_token_headers(got.headers.raw, want.headers.raw, got.content)


@pytest.mark.parametrize(
    ("path", "identified"), [("/page", False), ("/json", True), ("/json", False)]
)
def test_fastapi_untouched(fastapi_clients: tuple[Any, Any], path: str, identified: bool) -> None:
    wrapped, bare = fastapi_clients
    headers = {"X-User": "alice"} if identified else {}
    got, want = wrapped.get(path, headers=headers), bare.get(path, headers=headers)
    assert (got.status_code, got.headers.raw, got.content) == (
        want.status_code,
        want.headers.raw,
        want.content,
    )


def test_fastapi_sync_resolver_runs_off_the_event_loop() -> None:
    from starlette.testclient import TestClient

    from tests.apps import fastapi_app

    resolver_threads: list[int] = []
    loop_threads: list[int] = []

    def sync_resolver(scope: dict[str, Any]) -> dict[str, str] | None:
        resolver_threads.append(threading.get_ident())
        return common.user_from_scope(scope)

    app = fastapi_app.build(wrapped=True, resolver=sync_resolver)

    @app.get("/whoami")  # type: ignore[untyped-decorator]
    async def whoami() -> int:
        loop_threads.append(threading.get_ident())
        return 0

    with TestClient(app) as client:
        client.get("/whoami")
        assert b"data-identity-token" in client.get("/page", headers={"X-User": "bob"}).content
    assert len(resolver_threads) == 1 and len(loop_threads) == 1
    assert resolver_threads[0] != loop_threads[0]


# --- Flask --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["header-resolver", "default-resolver"])
def flask_clients(request: pytest.FixtureRequest) -> tuple[Any, Any]:
    from tests.apps import flask_app

    resolver = common.user_from_environ if request.param == "header-resolver" else None
    return (
        flask_app.build(wrapped=True, resolver=resolver).test_client(),
        flask_app.build(wrapped=False).test_client(),
    )


def _flask_get(client: Any, path: str, headers: dict[str, str]) -> tuple[str, Any, bytes]:
    """Read the whole response at once: Flask's streamed contexts must not interleave."""
    response = client.get(path, headers=headers)
    try:
        return response.status, list(response.headers.to_wsgi_list()), response.get_data()
    finally:
        response.close()


@pytest.mark.parametrize("path", ["/page", "/stream"])
def test_flask_identified_page(flask_clients: tuple[Any, Any], path: str, user: str) -> None:
    wrapped, bare = flask_clients
    status, headers, body = _flask_get(wrapped, path, {"X-User": user})
    bare_status, bare_headers, bare_body = _flask_get(bare, path, {"X-User": user})
    assert status == bare_status == "200 OK"
    check_token_body(body, bare_body, user)
    check_token_headers(headers, bare_headers, body)


@pytest.mark.parametrize(
    ("path", "identified"),
    [("/page", False), ("/stream", False), ("/json", True), ("/json", False)],
)
def test_flask_untouched(flask_clients: tuple[Any, Any], path: str, identified: bool) -> None:
    wrapped, bare = flask_clients
    headers = {"X-User": "alice"} if identified else {}
    assert _flask_get(wrapped, path, headers) == _flask_get(bare, path, headers)


# --- Django under WSGI --------------------------------------------------------------------


def _wsgi_call(
    app: Any, path: str, *, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[str, list[tuple[str, str]], bytes]:
    """One request through a PEP 3333 app via plain ``wsgiref`` parts, validated both sides."""
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ.update(REQUEST_METHOD=method, PATH_INFO=path, QUERY_STRING="")
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    started: list[tuple[str, list[tuple[str, str]]]] = []
    written: list[bytes] = []

    def start_response(status: str, response_headers: Any, exc_info: Any = None) -> Any:
        started.append((status, list(response_headers)))
        return written.append

    result = validator(app)(environ, start_response)
    try:
        chunks = [bytes(chunk) for chunk in result]
    finally:
        result.close()
    assert len(started) == 1
    return started[0][0], started[0][1], b"".join(written) + b"".join(chunks)


@pytest.fixture
def django_wsgi() -> Iterator[tuple[Any, Any]]:
    from tests.apps.django_project.settings import project_settings

    with project_settings():  # other test modules configure Django for themselves too
        from tests.apps.django_project import wsgi

        yield wsgi.build()


@pytest.mark.parametrize("path", ["/page", "/stream"])
def test_django_wsgi_identified_page(django_wsgi: tuple[Any, Any], path: str, user: str) -> None:
    wrapped, bare = django_wsgi
    status, headers, body = _wsgi_call(wrapped, path, headers={"X-User": user})
    bare_status, bare_headers, bare_body = _wsgi_call(bare, path, headers={"X-User": user})
    assert status == bare_status == "200 OK"
    check_token_body(body, bare_body, user)
    check_token_headers(headers, bare_headers, body)


@pytest.mark.parametrize(
    ("path", "identified"),
    [("/page", False), ("/stream", False), ("/json", True), ("/json", False)],
)
def test_django_wsgi_untouched(django_wsgi: tuple[Any, Any], path: str, identified: bool) -> None:
    wrapped, bare = django_wsgi
    headers = {"X-User": "alice"} if identified else {}
    assert _wsgi_call(wrapped, path, headers=headers) == _wsgi_call(bare, path, headers=headers)


def test_django_wsgi_head(django_wsgi: tuple[Any, Any]) -> None:
    wrapped, bare = django_wsgi
    status, headers, body = _wsgi_call(wrapped, "/page", method="HEAD", headers={"X-User": "a"})
    _, bare_headers, _ = _wsgi_call(bare, "/page", method="HEAD", headers={"X-User": "a"})
    assert status == "200 OK"
    assert b"data-identity-token" not in body
    assert not values(headers, b"content-length")
    check_token_headers(headers, bare_headers, None)


# --- Django under ASGI --------------------------------------------------------------------


@pytest.fixture
def django_asgi() -> Iterator[tuple[Any, Any]]:
    from tests.apps.django_project.settings import project_settings

    with project_settings():
        from tests.apps.django_project import asgi

        yield asgi.build()


@pytest.mark.parametrize("path", ["/page", "/stream"])
def test_django_asgi_identified_page(django_asgi: tuple[Any, Any], path: str, user: str) -> None:
    wrapped, bare = django_asgi
    hdrs = [(b"x-user", user.encode())]
    bare_messages = _asgi_call(bare, path, headers=hdrs)
    assert any(k != k.lower() for k, _ in bare_messages[0]["headers"])  # Django's mixed case
    status, headers, body = _asgi_response(_asgi_call(wrapped, path, headers=hdrs))
    _, bare_headers, bare_body = _asgi_response(bare_messages)
    assert status == 200
    check_token_body(body, bare_body, user)
    check_token_headers(headers, bare_headers, body)
    names = [k.lower() for k, _ in normalise(headers)]
    assert names.count(b"vary") <= 1 and names.count(b"cache-control") == 1


@pytest.mark.parametrize(
    ("path", "identified"),
    [("/page", False), ("/stream", False), ("/json", True), ("/json", False)],
)
def test_django_asgi_untouched(django_asgi: tuple[Any, Any], path: str, identified: bool) -> None:
    """Anonymous and JSON: the bare handler's status, headers (their case too) and bytes."""
    wrapped, bare = django_asgi
    hdrs = [(b"x-user", b"alice")] if identified else []
    assert _asgi_response(_asgi_call(wrapped, path, headers=hdrs)) == _asgi_response(
        _asgi_call(bare, path, headers=hdrs)
    )


def test_django_asgi_head(django_asgi: tuple[Any, Any]) -> None:
    """Django sends the body on HEAD (the server drops it): it must go out without a token."""
    wrapped, bare = django_asgi
    hdrs = [(b"x-user", b"alice")]
    status, headers, body = _asgi_response(
        _asgi_call(wrapped, "/page", method="HEAD", headers=hdrs)
    )
    _, bare_headers, bare_body = _asgi_response(
        _asgi_call(bare, "/page", method="HEAD", headers=hdrs)
    )
    _, _, get_body = _asgi_response(_asgi_call(wrapped, "/page", headers=hdrs))
    assert status == 200
    assert bare_body and body == b""  # a signed-in HEAD's body is withheld, its length the GET's
    assert values(headers, b"content-length") == [str(len(get_body)).encode()]
    check_token_headers(headers, bare_headers, get_body)


def test_flask_head(flask_clients: tuple[Any, Any]) -> None:
    wrapped, bare = flask_clients
    response = wrapped.head("/page", headers={"X-User": "alice"})
    bare_response = bare.head("/page", headers={"X-User": "alice"})
    headers = list(response.headers.to_wsgi_list())
    assert response.status_code == 200
    assert response.get_data() == b""
    # Flask leaves a HEAD's body out: the stamped length cannot be known, the app's stays.
    bare_list = list(bare_response.headers.to_wsgi_list())
    assert values(headers, b"content-length") == values(bare_list, b"content-length")
    check_token_headers(headers, bare_list, None)
