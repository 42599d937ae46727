"""The README's blocks (``tests/readme_snippets``): each type-checks under ``mypy --strict`` and
works as pasted, in its framework: a signed-in page carries a verified token, an anonymous one
is left alone, and the token endpoint answers for the framework's own notion of the user.

Litestar, Quart and Falcon have no integration module: these recipes are how they are done.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from tests.apps import common  # noqa: E402
from tests.apps.checks import TOKEN_ATTR, decode  # noqa: E402

SNIPPETS = ROOT / "tests" / "readme_snippets"
TOKEN_PATH = "/_reqio/token"

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(autouse=True)
def _environment(no_secret_leak: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the snippets read from the environment, as a deployment would set it."""
    no_secret_leak.register(common.SECRET)
    monkeypatch.setenv("REQIO_SECRET", common.SECRET)
    monkeypatch.setenv("REQIO_PROJECT_ID", common.PROJECT_ID)


def snippet(name: str) -> ModuleType:
    """A fresh import of one snippet, under the environment of this test."""
    pytest.importorskip(name.split("_", 1)[0])
    module_name = f"tests.readme_snippets.{name}"
    sys.modules.pop(module_name, None)
    return importlib.import_module(module_name)


def token_of(html: bytes | str) -> dict[str, Any]:
    body = html.encode() if isinstance(html, str) else html
    found = TOKEN_ATTR.findall(body)
    assert len(found) == 1, body
    return decode(found[0][1].decode())


def test_snippets_type_check_strictly() -> None:
    for needed in ("mypy", "django", "flask", "flask_login", "fastapi", "litestar", "quart"):
        pytest.importorskip(needed)
    pytest.importorskip("falcon")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(SNIPPETS / "mypy.ini"), str(SNIPPETS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


# --- Django -------------------------------------------------------------------------------


def test_django_snippet_order_passes_the_checks() -> None:
    pytest.importorskip("django")
    from django.test.utils import override_settings

    from reqio_middleware.adapters.django.checks import check_middleware
    from tests.apps.django_project.settings import project_settings

    settings = snippet("django_settings")
    with project_settings(), override_settings(MIDDLEWARE=settings.MIDDLEWARE):
        assert check_middleware() == []
    assert settings.REQIO_PROJECT_ID == common.PROJECT_ID
    identity = snippet("django_identity").user_identity(
        type("U", (), {"pk": 7, "email": "u@ex.test"})()
    )
    assert identity == {"sub": "7", "email": "u@ex.test", "traits": {"plan": "team"}}


# --- Flask --------------------------------------------------------------------------------


def test_flask_snippet() -> None:
    from flask import Response, g, request

    module = snippet("flask_app")
    app = module.app

    class User:
        def __init__(self, pk: str) -> None:
            self.id, self.email = pk, f"{pk}@ex.test"

    @app.before_request
    def load_user() -> None:  # the app's own auth, which the snippet's loader reads
        name = request.headers.get("X-User")
        if name:
            g.user = User(name)

    @app.get("/")
    def home() -> Response:
        return Response(common.PAGE, mimetype="text/html")

    client = app.test_client()
    assert token_of(client.get("/", headers={"X-User": "alice"}).data)["sub"] == "alice"
    assert client.get("/").data == common.PAGE
    answer = client.post(TOKEN_PATH, headers={"X-User": "alice"})
    assert decode(answer.get_json()["token"])["sub"] == "alice"


# --- FastAPI ------------------------------------------------------------------------------


def test_fastapi_snippet() -> None:
    from fastapi.responses import HTMLResponse
    from fastapi.testclient import TestClient

    app = snippet("fastapi_app").app

    @app.get("/", response_class=HTMLResponse)
    async def home() -> HTMLResponse:
        return HTMLResponse(common.PAGE * 3)  # over GZipMiddleware's minimum size

    with TestClient(app, headers={"Accept-Encoding": "gzip"}) as client:
        assert client.get("/").content == common.PAGE * 3
        assert client.post(TOKEN_PATH).status_code == 401
        client.cookies.set("user", "bob")
        signed_in = client.get("/")
        assert signed_in.headers["content-encoding"] == "gzip"
        assert len(TOKEN_ATTR.findall(signed_in.content)) == 3
        assert token_of(signed_in.content.split(b"</html>")[0])["sub"] == "bob"
        answer = client.post(TOKEN_PATH)
        assert decode(answer.json()["token"])["sub"] == "bob"


# --- Litestar -----------------------------------------------------------------------------


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """Litestar configures logging (root handlers) when its app starts: undo it afterwards."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("logging_restored")
def test_litestar_recipe() -> None:
    from litestar.testing import TestClient

    module = snippet("litestar_app")
    with TestClient(app=module.app) as client:
        anonymous = client.get("/")
        assert anonymous.text == module.PAGE
        assert client.post("/login", params={"user": "carol"}).status_code == 201
        assert token_of(client.get("/").text)["sub"] == "carol"
        answer = client.post(TOKEN_PATH)
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"
        assert decode(answer.json()["token"])["sub"] == "carol"
        assert client.get(TOKEN_PATH, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403


# --- Quart --------------------------------------------------------------------------------


def test_quart_recipe() -> None:
    import httpx

    module = snippet("quart_app")

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=module.asgi_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            anonymous = await c.get("/")
            await c.post("/login", params={"user": "dan"})
            return [anonymous, await c.get("/"), await c.post(TOKEN_PATH)]

    anonymous, signed_in, answer = asyncio.run(run())
    assert anonymous.text == module.PAGE
    assert token_of(signed_in.text)["sub"] == "dan"
    assert answer.status_code == 200, answer.text
    assert decode(answer.json()["token"])["sub"] == "dan"


# --- Falcon -------------------------------------------------------------------------------


@pytest.fixture
def falcon_client() -> Iterator[Any]:
    from werkzeug.test import Client

    yield Client(snippet("falcon_app").application)


def test_falcon_recipe(falcon_client: Any) -> None:
    module = sys.modules["tests.readme_snippets.falcon_app"]
    assert falcon_client.get("/").get_data(as_text=True) == module.PAGE
    falcon_client.set_cookie("user", "erin")
    assert token_of(falcon_client.get("/").get_data())["sub"] == "erin"
    answer = falcon_client.post(TOKEN_PATH)
    assert answer.status_code == 200
    assert decode(json.loads(answer.get_data())["token"])["sub"] == "erin"


@pytest.mark.parametrize("framework", ["litestar", "quart", "falcon"])
def test_recipe_page_shows_the_tested_code(framework: str) -> None:
    """docs/recipes/<framework>.md carries the snippet file verbatim, so what is documented is
    what these tests run."""
    text = (ROOT / "docs" / "recipes" / f"{framework}.md").read_text()
    code = (SNIPPETS / f"{framework}_app.py").read_text()
    assert f"```python\n{code}```" in text
