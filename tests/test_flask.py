"""Flask's ``Reqio`` extension through Flask's test client, with Flask-Login and Flask-Compress.

Every page is compared with the same application without ``Reqio``: a signed-in page equals it
plus one verified token; anything else is equal byte for byte, headers included.
"""

from __future__ import annotations

import gzip
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flask")
pytest.importorskip("flask_login")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from flask import Flask, g, request  # noqa: E402

from reqio_middleware.adapters.flask import Reqio  # noqa: E402
from reqio_middleware.config import ConfigurationError  # noqa: E402
from tests.apps import common, flask_ext_app  # noqa: E402
from tests.apps.checks import (  # noqa: E402
    check_token_body,
    check_token_headers,
    decode,
    normalise,
    values,
)

BROWSER = {"Accept-Encoding": "gzip, deflate, br"}
TOKEN_PATH = flask_ext_app.TOKEN_PATH
STREAMED = common.page("Streamed")

Result = tuple[int, list[tuple[bytes, bytes]], bytes]


@pytest.fixture(autouse=True)
def _guard(no_secret_leak: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    no_secret_leak.register(common.SECRET)
    for name in ("REQIO_SECRET", "REQIO_PROJECT_ID", "REQIO_AUDIENCE", "REQIO_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)


def decoded(body: bytes, encoding: bytes | None) -> bytes:
    if encoding == b"gzip":
        return gzip.decompress(body)
    if encoding == b"deflate":
        return zlib.decompress(body)
    if encoding == b"br":
        import brotli  # type: ignore[import-not-found,unused-ignore]

        out: bytes = brotli.decompress(body)
        return out
    assert encoding is None, encoding
    return body


def fetch(
    app: Flask, path: str, *, user: str | None = None, method: str = "GET", **headers: str
) -> Result:
    """One request; signed in through the real login route when ``user`` is given."""
    client = app.test_client()
    if user is not None:
        assert client.post(f"/login?user={user}").status_code == 200
    response = client.open(path, method=method, headers=headers)
    raw = response.get_data()
    encoding = response.headers.get("Content-Encoding")
    body = decoded(raw, encoding.encode() if encoding else None)
    response.close()
    headers = [(k, v) for k, v in normalise(response.headers.items()) if k != b"date"]
    return response.status_code, headers, body


def both(path: str, compress: str | None = None, **kwargs: Any) -> tuple[Result, Result]:
    return (
        fetch(flask_ext_app.build(compress=compress), path, **kwargs),
        fetch(flask_ext_app.build(reqio=False, compress=compress), path, **kwargs),
    )


# --- pages --------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [None, "before", "after"])
@pytest.mark.parametrize(
    ("path", "page"), [("/page", common.PAGE), ("/stream", STREAMED), ("/file", common.PAGE)]
)
def test_signed_in_page(compress: str | None, path: str, page: bytes) -> None:
    (status, headers, body), (_, bare_headers, bare_body) = both(
        path, compress, user="alice", **BROWSER
    )
    assert status == 200
    assert bare_body == page
    if compress:
        assert values(headers, b"content-encoding") == values(bare_headers, b"content-encoding")
        assert values(headers, b"content-encoding")  # Flask-Compress did compress the page
    check_token_body(body, bare_body, "alice")
    check_token_headers(headers, bare_headers, None)


@pytest.mark.parametrize("compress", [None, "before", "after"])
@pytest.mark.parametrize(
    ("path", "user"), [("/page", None), ("/stream", None), ("/file", None), ("/json", "alice")]
)
def test_untouched(compress: str | None, path: str, user: str | None) -> None:
    ours, bare = both(path, compress, user=user, **BROWSER)
    assert ours == bare


def test_the_user_is_loaded_only_for_pages_that_can_carry_a_token() -> None:
    app = flask_ext_app.build()
    reqio: Reqio = app.extensions["test_reqio"]
    calls: list[str] = []

    @reqio.identity_loader
    def counted() -> dict[str, str] | None:
        calls.append(request.path)
        return {"sub": "alice", "email": "alice@ex.test"}

    assert fetch(app, "/json")[0] == 200
    assert fetch(app, "/page", method="HEAD")[0] == 200
    assert calls == ["/page"]


def test_a_view_that_signs_the_user_in_renders_their_token() -> None:
    import flask_login

    app = flask_ext_app.build()

    @app.get("/magic-link")
    def magic_link() -> str:
        flask_login.login_user(flask_ext_app.User("hal"))
        return common.PAGE.decode()

    _, _, body = fetch(app, "/magic-link")
    check_token_body(body, common.PAGE, "hal")


def test_head_has_the_headers_of_its_get() -> None:
    app = flask_ext_app.build(compress="after")
    get = fetch(app, "/page", user="bob")
    head = fetch(app, "/page", user="bob", method="HEAD")
    assert (head[0], head[2]) == (200, b"")
    assert head[1] == get[1]


def test_identity_loader_reads_what_before_request_hooks_set() -> None:
    app = flask_ext_app.build()
    reqio: Reqio = app.extensions["test_reqio"]

    @app.before_request
    def load_user() -> None:
        g.user = request.headers.get("X-User")

    @reqio.identity_loader
    def current_identity() -> dict[str, Any] | None:
        user = g.get("user")
        return {"sub": user, "email": f"{user}@ex.test"} if user else None

    _, _, body = fetch(app, "/page", **{"X-User": "carol"})
    check_token_body(body, common.PAGE, "carol")
    status, _, answer = fetch(app, TOKEN_PATH, method="POST", **{"X-User": "carol"})
    assert status == 200
    assert decode(__import__("json").loads(answer)["token"])["sub"] == "carol"


def test_a_failing_identity_loader_is_no_500(caplog: pytest.LogCaptureFixture) -> None:
    app = flask_ext_app.build()
    reqio: Reqio = app.extensions["test_reqio"]

    @reqio.identity_loader
    def broken() -> None:
        raise RuntimeError("the user table is down")

    assert fetch(app, "/page")[:3:2] == (200, common.PAGE)
    assert "the user table is down" in caplog.text


# --- revalidation -------------------------------------------------------------------------


def test_signed_in_user_never_gets_the_anonymous_304() -> None:
    # Without Flask-Compress: it changes the ETag of what it compresses, so that send_file
    # never answers 304 and there is nothing to guard against.
    app = flask_ext_app.build()
    status, headers, _ = fetch(app, "/file", **BROWSER)
    (etag,) = values(headers, b"etag")
    validator = {"If-None-Match": etag.decode()}
    assert fetch(app, "/file", **validator, **BROWSER)[0] == 304  # anonymous caching works
    status, headers, body = fetch(app, "/file", user="dave", **validator, **BROWSER)
    assert status == 200
    check_token_body(body, common.PAGE, "dave")
    validator = {"If-None-Match": '"json-v1"'}
    assert fetch(app, "/json", user="dave", **validator)[0] == 304  # not a page: still cached


# --- token endpoint -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_token_endpoint(method: str) -> None:
    import json

    app = flask_ext_app.build()
    status, headers, body = fetch(app, TOKEN_PATH, method=method, user="erin")
    assert status == 200
    assert decode(json.loads(body)["token"])["sub"] == "erin"
    assert values(headers, b"cache-control") == [b"no-store"]
    assert fetch(app, TOKEN_PATH, method=method)[0] == 401
    cross = fetch(app, TOKEN_PATH, method=method, user="erin", **{"Sec-Fetch-Site": "cross-site"})
    assert cross[0] == 403
    assert fetch(app, TOKEN_PATH + ".js")[0] == 200


def test_no_token_route_without_the_key() -> None:
    app = flask_ext_app.build(config={"REQIO_TOKEN_PATH": None})
    assert fetch(app, TOKEN_PATH, user="erin")[0] == 404


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"REQIO_SECRET": None}, "REQIO_SECRET"),
        ({"REQIO_PROJECT_ID": None}, "REQIO_PROJECT_ID"),
        ({"REQIO_TTL": "soon"}, "REQIO_TTL"),
        ({"REQIO_TOKEN_PATH": "no-slash"}, "REQIO_TOKEN_PATH"),
        ({"REQIO_WIDGET_SRC": "ftp://x"}, "REQIO_WIDGET_SRC"),
    ],
)
def test_init_app_names_the_key(config: dict[str, Any], named: str) -> None:
    app = Flask(__name__)
    app.config.update({"REQIO_SECRET": common.SECRET, "REQIO_PROJECT_ID": common.PROJECT_ID})
    app.config.update(config)
    with pytest.raises(ConfigurationError, match=named) as raised:
        Reqio().init_app(app)
    assert common.SECRET not in str(raised.value)


def test_config_falls_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQIO_SECRET", common.SECRET)
    monkeypatch.setenv("REQIO_PROJECT_ID", common.PROJECT_ID)
    app = flask_ext_app.build(config={"REQIO_SECRET": None, "REQIO_PROJECT_ID": None})
    _, _, body = fetch(app, "/page", user="fay")
    check_token_body(body, common.PAGE, "fay")


def test_older_wrap_still_works_and_says_it_is_deprecated() -> None:
    from reqio_middleware.adapters.flask import wrap

    app = flask_ext_app.build(reqio=False)
    with pytest.deprecated_call():
        wrap(app, secret=common.SECRET, project_id=common.PROJECT_ID)
    _, _, body = fetch(app, "/page", user="gus")
    check_token_body(body, common.PAGE, "gus")


# --- real servers, real login -------------------------------------------------------------


@pytest.fixture(scope="module", params=["gunicorn-gthread", "waitress"])
def servers(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(our server's URL, the bare app's URL), one pair per server for the module."""
    from tests.apps.servers import run

    with (
        run(request.param, "tests.apps.flask_ext_app:server_app") as ours,
        run(request.param, "tests.apps.flask_ext_app:bare_server_app") as bare,
    ):
        yield ours, bare


def _server_headers(response: Any) -> list[tuple[bytes, bytes]]:
    skip = {b"date", b"server"}
    return [(k, v) for k, v in normalise(response.headers.multi_items()) if k not in skip]


@pytest.mark.parametrize(("path", "page"), [("/page", common.PAGE), ("/stream", STREAMED)])
def test_real_server_login_compressed_page_and_token(
    servers: tuple[str, str], path: str, page: bytes
) -> None:
    import httpx

    ours, _ = servers
    with httpx.Client(headers=BROWSER, timeout=10) as client:
        assert client.post(f"{ours}/login", params={"user": "alice"}).status_code == 200
        response = client.get(f"{ours}{path}")
        assert response.headers["content-encoding"] in ("br", "gzip")
        check_token_body(response.content, page, "alice")
        token = client.post(f"{ours}{TOKEN_PATH}")
    assert token.status_code == 200
    assert decode(token.json()["token"])["sub"] == "alice"


@pytest.mark.parametrize("path", ["/page", "/stream", "/json", "/file"])
def test_real_server_anonymous_is_the_bare_app(servers: tuple[str, str], path: str) -> None:
    import httpx

    ours, bare = servers
    with httpx.Client(headers=BROWSER, timeout=10) as client:
        mine, theirs = client.get(f"{ours}{path}"), client.get(f"{bare}{path}")
    assert (mine.status_code, mine.content) == (theirs.status_code, theirs.content)
    assert _server_headers(mine) == _server_headers(theirs)
