"""The Flask extension's anonymous fast path: when Flask-Login can only find an anonymous user
(no user id in the session, no remember cookie, no request or header loader), the user is not
loaded and the response is exactly the application's own; in every other case it is loaded.

Each response is compared with the same application without ``Reqio``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("flask_login")

from flask import Flask

from tests.apps import common, flask_ext_app
from tests.apps.checks import decode

TOKEN = re.compile(rb'data-identity-token="([^"]+)"')

#: How a request's session and cookies are set up before it is sent.
Prepare = Callable[[Any], None]


@pytest.fixture(autouse=True)
def _guard(no_secret_leak: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    no_secret_leak.register(common.SECRET)
    for name in ("REQIO_SECRET", "REQIO_PROJECT_ID", "REQIO_AUDIENCE", "REQIO_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)


def counting_loads(app: Flask) -> list[str]:
    """Counts Flask-Login's user loads (``LoginManager._load_user``) for ``app``."""
    manager = app.login_manager  # type: ignore[attr-defined]
    real = manager._load_user
    calls: list[str] = []

    def load() -> Any:
        calls.append("load")
        return real()

    manager._load_user = load
    return calls


def nothing(client: Any) -> None:
    return None


def signed_out_session(client: Any) -> None:
    with client.session_transaction() as session:
        session["theme"] = "dark"


def session_left_by_logout(client: Any) -> None:
    """What ``logout_user()`` leaves when another session identifier was recorded."""
    with client.session_transaction() as session:
        session["_id"] = "an-identifier-of-another-client"
        session["theme"] = "dark"


def remember_cookie(client: Any) -> None:
    client.set_cookie("remember_token", "not-a-valid-remember-token")


def signed_in(client: Any) -> None:
    assert client.post("/login?user=alice").status_code == 200


def fetch(app: Flask, path: str, prepare: Prepare) -> tuple[int, list[tuple[str, str]], bytes]:
    client = app.test_client()
    prepare(client)
    response = client.get(path)
    body = response.get_data()
    response.close()
    headers = sorted((k.lower(), v) for k, v in response.headers.items() if k.lower() != "date")
    return response.status_code, headers, body


@pytest.mark.parametrize("path", ["/page", "/json", "/stream"])
@pytest.mark.parametrize("prepare", [nothing, signed_out_session, session_left_by_logout])
def test_nobody_signed_in_the_user_is_not_loaded_and_the_response_is_the_apps(
    path: str, prepare: Prepare
) -> None:
    app = flask_ext_app.build()
    loads = counting_loads(app)
    ours = fetch(app, path, prepare)
    bare = fetch(flask_ext_app.build(reqio=False), path, prepare)
    assert loads == []
    assert ours == bare  # headers included: no Set-Cookie or Vary of our making
    assert TOKEN.search(ours[2]) is None


def test_a_remember_cookie_means_the_user_is_loaded() -> None:
    app = flask_ext_app.build()
    loads = counting_loads(app)
    status, _, body = fetch(app, "/page", remember_cookie)
    assert status == 200
    assert loads == ["load"]
    assert TOKEN.search(body) is None  # the cookie is no valid remember token


def test_a_signed_in_session_is_loaded_and_stamped() -> None:
    app = flask_ext_app.build()
    loads = counting_loads(app)
    body = fetch(app, "/page", signed_in)[2]
    assert loads == ["load"]
    tokens = TOKEN.findall(body)
    assert len(tokens) == 1
    assert decode(tokens[0].decode())["sub"] == "alice"


def test_a_request_loader_is_always_asked() -> None:
    app = flask_ext_app.build()
    found: list[str] = []

    def from_header(request: Any) -> flask_ext_app.User | None:
        found.append(request.path)
        key = request.headers.get("X-Api-Key")
        return flask_ext_app.User(key) if key else None

    app.login_manager.request_loader(from_header)  # type: ignore[attr-defined]
    client = app.test_client()
    body = client.get("/page", headers={"X-Api-Key": "bob"}).get_data()
    assert found == ["/page"]
    assert decode(TOKEN.findall(body)[0].decode())["sub"] == "bob"


def test_a_custom_identity_loader_is_always_asked() -> None:
    app = flask_ext_app.build()
    asked: list[str] = []

    @app.extensions["test_reqio"].identity_loader
    def custom() -> dict[str, str]:
        asked.append("asked")
        return {"sub": "carol"}

    body = fetch(app, "/page", nothing)[2]
    assert asked == ["asked"]
    assert decode(TOKEN.findall(body)[0].decode())["sub"] == "carol"
