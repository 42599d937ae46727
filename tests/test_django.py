"""Django's ``ReqioMiddleware``, ``token_view`` and system checks, through Django's test clients.

Every page is judged against the same project without ``ReqioMiddleware`` in ``MIDDLEWARE``:
a signed-in page equals it plus one verified token; anything else equals it byte for byte,
headers included. Sync stacks run under ``Client`` (WSGI handler), async ones under
``AsyncClient`` (ASGI handler), both with ``GZipMiddleware`` listed first, as projects do, and
a browser's ``Accept-Encoding``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

django = pytest.importorskip("django")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from reqio_middleware import ReqioWSGIMiddleware  # noqa: E402
from tests.apps import common  # noqa: E402
from tests.apps.checks import (  # noqa: E402
    check_token_body,
    check_token_headers,
    decode,
    normalise,
    values,
)
from tests.apps.django_project.settings import project_settings  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume"),
]

GZIP = "django.middleware.gzip.GZipMiddleware"
CONDITIONAL = "django.middleware.http.ConditionalGetMiddleware"
CSRF = "django.middleware.csrf.CsrfViewMiddleware"
AUTH = "tests.apps.django_project.fakeauth.CookieAuthMiddleware"
REQIO = "reqio_middleware.adapters.django.ReqioMiddleware"
STACK = [GZIP, AUTH, REQIO]
BROWSER = {"Accept-Encoding": "gzip, deflate, br"}
MODES = ("sync", "async")
STREAMED = common.page("Streamed")


@pytest.fixture(autouse=True)
def _project(no_secret_leak: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    no_secret_leak.register(common.SECRET)
    for name in ("REQIO_SECRET", "REQIO_PROJECT_ID", "REQIO_AUDIENCE", "REQIO_TTL"):
        monkeypatch.delenv(name, raising=False)
    with project_settings():
        yield


def use(middleware: list[str], **extra: Any) -> Any:
    """``override_settings`` for one stack, with Reqio's settings."""
    from django.test.utils import override_settings

    settings: dict[str, Any] = {
        "REQIO_SECRET": common.SECRET,
        "REQIO_PROJECT_ID": common.PROJECT_ID,
        "MIDDLEWARE": middleware,
    }
    settings.update(extra)
    return override_settings(**settings)


Result = tuple[int, list[tuple[bytes, bytes]], bytes]


def fetch(
    mode: str, path: str, *, method: str = "GET", user: str | None = None, **headers: str
) -> Result:
    """One request through a fresh handler (so MIDDLEWARE as it is now), decoded if gzipped."""
    from django.test import AsyncClient, Client

    client = Client() if mode == "sync" else AsyncClient()
    if user is not None:
        client.cookies["user"] = user
    if mode == "sync":
        response = client.generic(method, path, headers=headers)
        body = b"".join(response) if response.streaming else response.content
    else:

        async def run() -> Any:
            response = await client.generic(method, path, headers=headers)
            if not response.streaming:
                return response, response.content
            if response.is_async:
                return response, b"".join([part async for part in response.streaming_content])
            return response, b"".join(response.streaming_content)

        response, body = asyncio.run(run())
    headers = normalise(response.items())
    if response.get("Content-Encoding") == "gzip":
        # Django's gzip adds random bytes against BREACH: compare what it compressed.
        body = gzip.decompress(body)
        headers = [(k, v) for k, v in headers if k != b"content-length"]
    return response.status_code, headers, body


def both(mode: str, path: str, stack: list[str] = STACK, **kwargs: Any) -> tuple[Result, Result]:
    """The response with ``stack`` and the one from the same stack without Reqio."""
    with use(stack):
        ours = fetch(mode, path, **kwargs)
    with use([m for m in stack if m != REQIO]):
        bare = fetch(mode, path, **kwargs)
    return ours, bare


# --- pages --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("path", "page"),
    [
        ("/user/page", common.PAGE),
        ("/user/stream", STREAMED),
        ("/user/astream", STREAMED),
        ("/user/file", common.PAGE),
    ],
)
def test_signed_in_page_compressed_after_the_rewrite(mode: str, path: str, page: bytes) -> None:
    (status, headers, body), (_, bare_headers, bare_body) = both(
        mode, path, user="alice", **BROWSER
    )
    assert status == 200
    assert values(headers, b"content-encoding") == [b"gzip"]  # GZipMiddleware did compress it
    assert bare_body == page
    check_token_body(body, bare_body, "alice")
    check_token_headers(headers, bare_headers, None)
    assert b"no-store" in values(headers, b"cache-control")[0]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("path", "user"),
    [
        ("/user/page", None),
        ("/user/stream", None),
        ("/user/astream", None),
        ("/user/file", None),
        ("/user/attachment", "alice"),
        ("/json", "alice"),
        ("/user/cached.json", "alice"),
    ],
)
def test_anonymous_and_other_responses_untouched(mode: str, path: str, user: str | None) -> None:
    ours, bare = both(mode, path, user=user, **BROWSER)
    assert ours == bare


@pytest.mark.parametrize("mode", MODES)
def test_a_view_that_stores_the_identity_itself(mode: str) -> None:
    (_, _, body), (_, _, bare_body) = both(mode, "/page", **{"X-User": "bob"})
    check_token_body(body, bare_body, "bob")


@pytest.mark.parametrize("mode", MODES)
def test_head_has_the_headers_of_its_get(mode: str) -> None:
    with use(STACK):
        get = fetch(mode, "/user/page", user="alice", **BROWSER)
        head = fetch(mode, "/user/page", method="HEAD", user="alice", **BROWSER)
    assert head[0] == 200
    assert head[2] == b""
    assert head[1] == get[1]
    anonymous, bare = both(mode, "/user/page", method="HEAD", **BROWSER)
    assert anonymous == bare


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("identity", "traits"),
    [
        ("tests.apps.django_project.fakeauth.plan_identity", {"plan": "team"}),
        ("tests.apps.django_project.fakeauth.async_plan_identity", {"plan": "team"}),
    ],
)
def test_user_identity_setting(mode: str, identity: str, traits: dict[str, str]) -> None:
    with use(STACK, REQIO_USER_IDENTITY=identity):
        _, _, body = fetch(mode, "/user/page", user="carol")
    token = check_token_body(body, common.PAGE, "carol")
    assert decode(token)["traits"] == traits


@pytest.mark.parametrize("mode", MODES)
def test_a_failing_identity_function_is_no_500(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    broken = "tests.apps.django_project.fakeauth.broken_identity"
    with use(STACK, REQIO_USER_IDENTITY=broken):
        status, _, body = fetch(mode, "/user/page", user="carol")
    assert (status, body) == (200, common.PAGE)
    assert "the profile table is down" in caplog.text


def test_middleware_is_sync_and_async_capable() -> None:
    from asgiref.sync import iscoroutinefunction

    from reqio_middleware.adapters.django import ReqioMiddleware

    async def get_response(request: Any) -> Any:
        return None

    with use(STACK):
        assert iscoroutinefunction(ReqioMiddleware(get_response))
        assert not iscoroutinefunction(ReqioMiddleware(lambda request: None))


# --- revalidation -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "stack",
    [
        [GZIP, CONDITIONAL, AUTH, REQIO],  # ConditionalGetMiddleware outside Reqio
        [GZIP, AUTH, REQIO, CONDITIONAL],  # and inside it
    ],
    ids=["outer", "inner"],
)
@pytest.mark.parametrize("path", ["/user/page", "/user/cached"])
def test_signed_in_user_never_gets_the_anonymous_304(
    mode: str, stack: list[str], path: str
) -> None:
    with use(stack):
        status, headers, _ = fetch(mode, path, **BROWSER)
        assert status == 200
        (etag,) = values(headers, b"etag")
        validator = {"If-None-Match": etag.decode()}
        assert fetch(mode, path, **validator, **BROWSER)[0] == 304  # anonymous caching works
        status, headers, body = fetch(mode, path, user="dave", **validator, **BROWSER)
    assert status == 200
    assert not values(headers, b"etag")
    check_token_body(body, common.PAGE, "dave")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stack", [[AUTH, REQIO], [AUTH, REQIO, CONDITIONAL]])
def test_signed_in_revalidation_of_other_responses_still_304(mode: str, stack: list[str]) -> None:
    with use(stack):
        status, _, _ = fetch(
            mode, "/user/cached.json", user="dave", **{"If-None-Match": '"json-v1"'}
        )
    assert status == 304


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"REQIO_SECRET": None}, "REQIO_SECRET"),
        ({"REQIO_PROJECT_ID": None}, "REQIO_PROJECT_ID"),
        ({"REQIO_TTL": "soon"}, "REQIO_TTL"),
        ({"REQIO_TTL": -5}, "REQIO_TTL"),
        ({"REQIO_WIDGET_SRC": "ftp://x"}, "REQIO_WIDGET_SRC"),
        ({"REQIO_USER_IDENTITY": "no.such.module.func"}, "REQIO_USER_IDENTITY"),
    ],
)
def test_misconfiguration_fails_when_the_middleware_loads(
    settings: dict[str, Any], named: str
) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from reqio_middleware.adapters.django import ReqioMiddleware

    with use(STACK, **settings), pytest.raises(ImproperlyConfigured, match=named) as raised:
        ReqioMiddleware(lambda request: None)
    assert common.SECRET not in str(raised.value)


def test_settings_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQIO_SECRET", common.SECRET)
    monkeypatch.setenv("REQIO_PROJECT_ID", common.PROJECT_ID)
    monkeypatch.setenv("REQIO_TTL", "120")
    with use(STACK, REQIO_SECRET=None, REQIO_PROJECT_ID=None):
        _, _, body = fetch("sync", "/user/page", user="erin")
    claims = decode(check_token_body(body, common.PAGE, "erin"))
    assert claims["exp"] - claims["iat"] == 120


# --- system checks ------------------------------------------------------------------------


DJANGO_AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"


def _wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    return []


#: A ``WSGI_APPLICATION`` wrapped the older way.
OLD_WRAP = ReqioWSGIMiddleware(_wsgi_app, **common.SETTINGS)


def _check_ids(middleware: list[str], **settings: Any) -> list[str]:
    """The checks' ids for a MIDDLEWARE list (AUTH written as Django's: checks import nothing
    of django.contrib.auth, which this project does not install)."""
    from reqio_middleware.adapters.django.checks import check_middleware, check_settings

    middleware = [DJANGO_AUTH if path == AUTH else path for path in middleware]
    with use(middleware, **settings):
        return sorted(m.id for m in [*check_settings(), *check_middleware()])


@pytest.mark.parametrize(
    ("middleware", "settings", "ids"),
    [
        ([GZIP, AUTH, REQIO], {}, []),
        ([AUTH, REQIO, GZIP], {}, ["reqio.W001"]),
        ([GZIP, REQIO, AUTH], {}, ["reqio.W002"]),
        (
            [GZIP, AUTH, "reqio_middleware.adapters.django.ReqioIdentityMiddleware", REQIO],
            {},
            ["reqio.W003"],
        ),
        ([GZIP, AUTH, REQIO], {"WSGI_APPLICATION": f"{__name__}.OLD_WRAP"}, ["reqio.W003"]),
        ([GZIP, AUTH, REQIO], {"REQIO_SECRET": None}, ["reqio.E001"]),
        ([GZIP, AUTH, REQIO], {"REQIO_USER_IDENTITY": "nowhere.fn"}, ["reqio.E002"]),
        ([], {}, []),
    ],
)
def test_system_checks(middleware: list[str], settings: dict[str, Any], ids: list[str]) -> None:
    assert _check_ids(middleware, **settings) == ids


def test_installed_app_registers_the_checks() -> None:
    from django.core import checks
    from django.test.utils import override_settings

    with (
        override_settings(INSTALLED_APPS=["reqio_middleware.adapters.django"]),
        use([AUTH, REQIO, GZIP]),
    ):
        found = [m.id for m in checks.run_checks()]
    assert "reqio.W001" in found


# --- token endpoint -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_token_view(mode: str, method: str) -> None:
    with use(STACK):
        status, headers, body = fetch(mode, "/_reqio/token", method=method, user="frank")
        anonymous = fetch(mode, "/_reqio/token", method=method)
        cross = fetch(
            mode, "/_reqio/token", method=method, user="frank", **{"Sec-Fetch-Site": "cross-site"}
        )

    assert status == 200
    assert decode(json.loads(body)["token"])["sub"] == "frank"
    assert values(headers, b"cache-control") == [b"no-store"]
    assert anonymous[0] == 401
    assert cross[0] == 403
    assert b"token" not in cross[2]


def test_token_view_post_needs_django_csrf_token() -> None:
    from django.test import Client

    with use([CSRF, AUTH, REQIO]):
        client = Client(enforce_csrf_checks=True)
        client.cookies["user"] = "gina"
        assert client.post("/_reqio/token").status_code == 403
        assert client.get("/_reqio/token").status_code == 200  # GET needs no CSRF token
        page = client.get("/user/page")  # a stamped page hands out the CSRF cookie
        check_token_body(page.content, common.PAGE, "gina")
        csrf = client.cookies["csrftoken"].value
        answer = client.post("/_reqio/token", headers={"X-CSRFToken": csrf})
    assert answer.status_code == 200
    assert decode(answer.json()["token"])["sub"] == "gina"


def test_script_view_serves_the_helper() -> None:
    with use(STACK):
        status, headers, body = fetch("sync", "/_reqio/token.js")
    assert status == 200
    assert values(headers, b"content-type")[0].startswith(b"text/javascript")
    assert b"ReqioIdentity" in body


# --- real servers, real login -------------------------------------------------------------

SERVER_APPS = {
    "gunicorn": "tests.apps.django_project.server_app:wsgi",
    "uvicorn": "tests.apps.django_project.server_app:asgi",
}


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A migrated SQLite database with the user ``alice`` (password ``alicealice``)."""
    import os
    import subprocess

    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.apps.django_project.server_settings",
        REQIO_TEST_DB=str(tmp_path_factory.mktemp("django") / "db.sqlite3"),
        PYTHONPATH=str(ROOT),
    )
    done = subprocess.run(
        [sys.executable, "-m", "tests.apps.django_project.server_app", "alice"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {
        "DJANGO_SETTINGS_MODULE": env["DJANGO_SETTINGS_MODULE"],
        "REQIO_TEST_DB": env["REQIO_TEST_DB"],
    }


@pytest.fixture(scope="module", params=sorted(SERVER_APPS))
def servers(request: pytest.FixtureRequest, database: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(our server's URL, the bare project's URL), one pair per server for the module."""
    from tests.apps.servers import run

    app = SERVER_APPS[request.param]
    with (
        run(request.param, app, env=database) as ours,
        run(request.param, app, env={**database, "REQIO_TEST_BARE": "1"}) as bare,
    ):
        yield ours, bare


def _login(client: Any, base: str) -> None:
    """Django's LoginView with its CSRF token, as a browser submits it."""
    assert client.get(f"{base}/login/").status_code == 200
    response = client.post(
        f"{base}/login/",
        data={
            "username": "alice",
            "password": "alicealice",
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
    )
    assert response.status_code == 302, response.text


def _server_headers(response: Any) -> list[tuple[bytes, bytes]]:
    skip = {b"date", b"server", b"content-length"}  # gzip's anti-BREACH bytes vary the length
    return [(k, v) for k, v in normalise(response.headers.multi_items()) if k not in skip]


@pytest.mark.parametrize(("path", "page"), [("/page", common.PAGE), ("/stream", STREAMED)])
def test_real_server_login_compressed_page_and_token(
    servers: tuple[str, str], path: str, page: bytes
) -> None:
    import httpx

    ours, _ = servers
    with httpx.Client(headers=BROWSER, timeout=10) as client:
        _login(client, ours)
        response = client.get(f"{ours}{path}")
        assert response.headers["content-encoding"] == "gzip"
        check_token_body(response.content, page, "alice")
        csrf = client.cookies["csrftoken"]
        token = client.post(f"{ours}/_reqio/token", headers={"X-CSRFToken": csrf})
    assert token.status_code == 200
    assert decode(token.json()["token"])["sub"] == "alice"


@pytest.mark.parametrize("path", ["/page", "/stream", "/json"])
def test_real_server_anonymous_is_the_bare_project(servers: tuple[str, str], path: str) -> None:
    import httpx

    ours, bare = servers
    with httpx.Client(headers=BROWSER, timeout=10) as client:
        mine, theirs = client.get(f"{ours}{path}"), client.get(f"{bare}{path}")
    assert (mine.status_code, mine.content) == (theirs.status_code, theirs.content)
    assert _server_headers(mine) == _server_headers(theirs)


def test_real_server_revalidation_after_login(servers: tuple[str, str]) -> None:
    import httpx

    ours, _ = servers
    with httpx.Client(headers=BROWSER, timeout=10) as client:
        etag = client.get(f"{ours}/page").headers["etag"]
        assert client.get(f"{ours}/page", headers={"If-None-Match": etag}).status_code == 304
        _login(client, ours)
        response = client.get(f"{ours}/page", headers={"If-None-Match": etag})
    assert response.status_code == 200
    check_token_body(response.content, common.PAGE, "alice")


WIDGET_SELECTOR = 'script[src="https://reqio.app/widget.js"][data-project-id="proj_abc123"]'


@pytest.fixture
def tab(browser: Any) -> Iterator[Any]:
    """A fresh Chromium context with its HTTP cache (no request routing, which would turn the
    cache off); the widget's host is unreachable from tests, so its script just fails."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def test_browser_revisit_and_reload_after_login(tab: Any, servers: tuple[str, str]) -> None:
    """Anonymous visit (cached with its ETag), login through the form, revisit, reload: the
    browser revalidates, and must get the page with the user's token, never the 304."""
    base = servers[0]
    statuses: list[int] = []
    tab.on("response", lambda r: statuses.append(r.status) if r.url == f"{base}/page" else None)
    sent: list[str | None] = []
    tab.on(
        "request",
        lambda r: sent.append(r.headers.get("if-none-match")) if r.url == f"{base}/page" else None,
    )
    tab.goto(f"{base}/page", wait_until="domcontentloaded")
    assert tab.get_attribute(WIDGET_SELECTOR, "data-identity-token") is None
    tab.goto(f"{base}/login/", wait_until="domcontentloaded")
    tab.fill("input[name=username]", "alice")
    tab.fill("input[name=password]", "alicealice")
    with tab.expect_navigation(url=f"{base}/page", wait_until="domcontentloaded"):
        tab.click("button")
    # "domcontentloaded": the widget's script (unreachable here) need not fail first.
    for visit in (
        lambda: tab.goto(f"{base}/page", wait_until="domcontentloaded"),
        lambda: tab.reload(wait_until="domcontentloaded"),
    ):
        visit()
        token = tab.get_attribute(WIDGET_SELECTOR, "data-identity-token")
        assert token is not None
        assert decode(token)["sub"] == "alice"
    assert 304 not in statuses[1:], statuses


def test_browser_helper_posts_with_the_csrf_token(tab: Any, servers: tuple[str, str]) -> None:
    base = servers[0]
    tab.goto(f"{base}/login/", wait_until="domcontentloaded")
    tab.fill("input[name=username]", "alice")
    tab.fill("input[name=password]", "alicealice")
    with tab.expect_navigation(url=f"{base}/page", wait_until="domcontentloaded"):
        tab.click("button")
    tab.goto(f"{base}/helper", wait_until="domcontentloaded")
    tab.wait_for_function("() => window.ReqioIdentity !== undefined", timeout=10_000)
    with tab.expect_response(f"{base}/_reqio/token") as answer:
        tab.evaluate("() => window.ReqioIdentity.refresh()")
    assert answer.value.status == 200
    assert decode(answer.value.json()["token"])["sub"] == "alice"


@pytest.mark.parametrize("server", sorted(SERVER_APPS))
def test_a_misconfigured_project_does_not_start(server: str, database: dict[str, str]) -> None:
    """No secret: the server stops at start-up, saying which setting to add, and never
    answers requests with 500s."""
    from tests.apps.servers import refused

    env = {**database, "REQIO_SECRET": "", "REQIO_TEST_NO_SECRET": "1"}
    output = refused(server, SERVER_APPS[server], env)
    assert "ImproperlyConfigured" in output
    assert "REQIO_SECRET is not set" in output
