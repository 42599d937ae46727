"""FastAPI with dependency-based auth: ``remember_identity`` for pages, ``token_router`` for the
endpoint, through FastAPI's TestClient, compared with the same app without Reqio."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from reqio_middleware.adapters.fastapi import token_router  # noqa: E402
from reqio_middleware.config import ConfigurationError  # noqa: E402
from tests.apps import common, fastapi_deps_app  # noqa: E402
from tests.apps.checks import (  # noqa: E402
    check_token_body,
    check_token_headers,
    decode,
    normalise,
    values,
)

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

BROWSER = {"Accept-Encoding": "gzip, deflate, br"}
Result = tuple[int, list[tuple[bytes, bytes]], bytes]


@pytest.fixture(autouse=True)
def _guard(no_secret_leak: Any) -> None:
    no_secret_leak.register(common.SECRET)
    fastapi_deps_app.calls.clear()


def fetch(
    app: Any, path: str, *, user: str | None = None, method: str = "GET", **headers: str
) -> tuple[Result, list[tuple[bytes, bytes]]]:
    """(status, headers, decoded body) and the raw headers (``Content-Length`` is the
    compressed one, which varies with gzip's timestamp; it is left out of the first)."""
    with TestClient(app) as client:
        if user is not None:
            assert client.post("/login", params={"user": user}).status_code == 200
        response = client.request(method, path, headers=headers)
    raw = normalise(response.headers.multi_items())
    kept = [(k, v) for k, v in raw if k not in (b"content-length", b"date")]
    return (response.status_code, kept, response.content), raw


def both(path: str, **kwargs: Any) -> tuple[Result, Result]:
    ours, _ = fetch(fastapi_deps_app.build(), path, **kwargs)
    bare, _ = fetch(fastapi_deps_app.build(reqio=False), path, **kwargs)
    return ours, bare


@pytest.mark.parametrize(
    ("path", "page"), [("/page", common.PAGE), ("/stream", common.page("Streamed"))]
)
def test_signed_in_page_through_the_dependency(path: str, page: bytes) -> None:
    (status, headers, body), (_, bare_headers, bare_body) = both(path, user="alice", **BROWSER)
    assert status == 200
    assert bare_body == page
    assert values(headers, b"content-encoding") == [b"gzip"]
    check_token_body(body, bare_body, "alice")
    check_token_headers(headers, bare_headers, None)


@pytest.mark.parametrize(("path", "user"), [("/page", None), ("/stream", None), ("/json", "al")])
def test_untouched(path: str, user: str | None) -> None:
    ours, bare = both(path, user=user, **BROWSER)
    assert ours == bare


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_token_router_runs_the_apps_dependency(method: str) -> None:
    app = fastapi_deps_app.build()
    (status, headers, body), _ = fetch(app, "/_reqio/token", method=method, user="bob")
    assert status == 200
    assert decode(json.loads(body)["token"])["sub"] == "bob"
    assert values(headers, b"cache-control") == [b"no-store"]
    (status, headers, _), _ = fetch(app, "/_reqio/token", method=method)
    assert (status, values(headers, b"cache-control")) == (401, [b"no-store"])


def test_cross_site_is_refused_before_the_dependency_runs() -> None:
    app = fastapi_deps_app.build()
    fetch(app, "/json", user="bob")
    fastapi_deps_app.calls.clear()
    (status, _, body), _ = fetch(app, "/_reqio/token", **{"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    assert b"token" not in body
    assert "/_reqio/token" not in fastapi_deps_app.calls


def test_a_dependency_that_raises_401_is_anonymous() -> None:
    app = fastapi_deps_app.build()
    path = fastapi_deps_app.STRICT_TOKEN_PATH
    (status, headers, body), _ = fetch(app, path)
    assert status == 401
    assert values(headers, b"cache-control") == [b"no-store"]
    (status, _, body), _ = fetch(app, path, Authorization="Bearer carol")
    assert status == 200
    assert decode(json.loads(body)["token"])["sub"] == "carol"


def test_helper_script_is_served() -> None:
    (status, _, body), _ = fetch(fastapi_deps_app.build(), "/_reqio/token.js")
    assert status == 200
    assert b"ReqioIdentity" in body


def test_a_misconfigured_router_fails_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQIO_SECRET", raising=False)
    with pytest.raises(ConfigurationError, match="REQIO_SECRET"):
        token_router(fastapi_deps_app.current_identity, project_id=common.PROJECT_ID)


# --- real servers, real login -------------------------------------------------------------


@pytest.fixture(scope="module", params=["uvicorn", "hypercorn"])
def servers(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(our server's URL, the bare app's URL), one pair per server for the module."""
    from tests.apps.servers import run

    with (
        run(request.param, "tests.apps.fastapi_deps_app:server_app") as ours,
        run(request.param, "tests.apps.fastapi_deps_app:bare_server_app") as bare,
    ):
        yield ours, bare


def _server_headers(response: Any) -> list[tuple[bytes, bytes]]:
    skip = {b"date", b"server", b"content-length"}  # gzip's timestamp may change the length
    return [(k, v) for k, v in normalise(response.headers.multi_items()) if k not in skip]


@pytest.mark.parametrize(
    ("path", "page"), [("/page", common.PAGE), ("/stream", common.page("Streamed"))]
)
def test_real_server_login_compressed_page_and_token(
    servers: tuple[str, str], path: str, page: bytes
) -> None:
    import httpx

    ours, _ = servers
    with httpx.Client(headers=BROWSER, timeout=10) as client:
        assert client.post(f"{ours}/login", params={"user": "alice"}).status_code == 200
        response = client.get(f"{ours}{path}")
        assert response.headers["content-encoding"] == "gzip"
        check_token_body(response.content, page, "alice")
        token = client.post(f"{ours}/_reqio/token")
    assert token.status_code == 200
    assert decode(token.json()["token"])["sub"] == "alice"


@pytest.mark.parametrize("path", ["/page", "/stream", "/json"])
def test_real_server_anonymous_is_the_bare_app(servers: tuple[str, str], path: str) -> None:
    import httpx

    ours, bare = servers
    with httpx.Client(headers=BROWSER, timeout=10) as client:
        mine, theirs = client.get(f"{ours}{path}"), client.get(f"{bare}{path}")
    assert (mine.status_code, mine.content) == (theirs.status_code, theirs.content)
    assert _server_headers(mine) == _server_headers(theirs)
