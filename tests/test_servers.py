"""Real servers on loopback, real HTTP through httpx.

uvicorn and hypercorn serve the Starlette app behind ``ReqioMiddleware``; waitress serves a
plain WSGI app behind ``ReqioWSGIMiddleware``. Each server process also serves the bare app
under ``/bare/``, so every comparison is made through the very same server.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from conftest import serve  # noqa: E402

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


def test_head_gets_no_token_and_no_length(client: httpx.Client) -> None:
    got = client.head("/page", headers={"X-User": "alice"})
    want = client.get("/bare/page", headers={"X-User": "alice"})
    assert got.status_code == 200
    assert got.content == b""
    assert not values(got.headers.raw, b"content-length")
    check_token_headers(got.headers.raw, want.headers.raw, None)


@pytest.fixture(scope="module")
def waitress_client() -> Iterator[httpx.Client]:
    with (
        serve(APPS["waitress"], server="waitress", timeout=30.0) as url,
        httpx.Client(base_url=url, timeout=10.0) as c,
    ):
        yield c


def test_head_with_a_body_gets_no_length_either(waitress_client: httpx.Client) -> None:
    """A WSGI app may return its body for HEAD; waitress drops it after counting it."""
    client = waitress_client
    got = client.head("/head-body", headers={"X-User": "alice"})
    bare = client.head("/bare/head-body", headers={"X-User": "alice"})
    assert got.status_code == 200
    # Without the middleware waitress derives a length from the body it drops; with it
    # there is none, since the GET's page (with its token) would be longer.
    assert values(bare.headers.raw, b"content-length") == [str(len(common.PAGE)).encode()]
    assert not values(got.headers.raw, b"content-length")


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
