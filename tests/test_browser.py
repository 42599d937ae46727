"""The browser helper (static/reqio-identity.js) in a real headless Chromium.

A Starlette app behind ``ReqioMiddleware`` (token endpoint at ``/_reqio/token``, tokens living
6 s, refreshed 3 s before expiry, so the helper's 5 s minimum delay applies) is served by uvicorn
on loopback. Its pages load a stand-in widget that records every ``Reqio.identify`` call in
``window.__identifyCalls``, and every page script is an external file, so the same page works
under ``Content-Security-Policy: script-src 'self'``. Waiting is event-based
(``page.wait_for_function`` on the recorded calls), never a sleep.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from conftest import IN_CI, serve
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from reqio_middleware.adapters.starlette import user_resolver

try:
    import playwright.sync_api  # noqa: F401
except ImportError:  # a test dependency: missing is a skip locally, a failure under CI
    if IN_CI:
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

PROJECT = "proj_browser"
AUDIENCE = f"https://reqio.app/p/{PROJECT}"
TTL = 6
MARGIN = 3
STRICT_CSP = "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'"

WIDGET_JS = """\
window.__identifyCalls = window.__identifyCalls || [];
window.Reqio = {
  identify: function (token) { window.__identifyCalls.push(token); }
};
var tag = document.querySelector("script[data-project-id]");
window.__pageToken = tag && tag.getAttribute("data-identity-token");
"""

# The page's own script: log in through a fetch, then tell the helper.
APP_JS = """\
document.getElementById("login").addEventListener("click", function () {
  fetch("/login", {method: "POST", credentials: "same-origin"}).then(function () {
    document.dispatchEvent(new Event("reqio:login"));
  });
});
"""

PAGE = """<!doctype html>
<html><head><title>browser</title>
<script src="/_reqio/token.js" data-refresh-margin="{margin}" defer></script>
<script src="/app.js" defer></script>
</head><body>
<button id="login">Log in</button>
<script>window.__inlineRan = true;</script>
<script src="//127.0.0.1:{port}/w/widget.js" data-project-id="{project}" async></script>
</body></html>
"""


class CookieBackend(AuthenticationBackend):
    """The visitor is whoever the ``user`` cookie names (a test stand-in for real sessions)."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        name = conn.cookies.get("user")
        if not name:
            return None
        return AuthCredentials(["authenticated"]), SimpleUser(name)


def build_app(port: int, secret: str) -> Any:
    from reqio_middleware.asgi import ReqioMiddleware

    async def page(request: Request) -> Response:
        html = PAGE.format(port=port, project=PROJECT, margin=MARGIN)
        response = HTMLResponse(html)
        if request.url.path == "/strict":
            response.headers["Content-Security-Policy"] = STRICT_CSP
        return response

    async def login(request: Request) -> Response:
        response = Response(status_code=204)
        response.set_cookie("user", "alice", httponly=True, samesite="lax")
        return response

    async def script(request: Request) -> Response:
        body = WIDGET_JS if request.url.path == "/w/widget.js" else APP_JS
        return Response(body, media_type="text/javascript")

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/strict", page),
            Route("/login", login, methods=["POST"]),
            Route("/app.js", script),
            Route("/w/widget.js", script),
        ],
        # AuthenticationMiddleware outermost: the token endpoint answers before the app runs,
        # so scope["user"] must be set before the request reaches ReqioMiddleware.
        middleware=[
            Middleware(AuthenticationMiddleware, backend=CookieBackend()),
            Middleware(
                ReqioMiddleware,
                resolver=user_resolver,
                secret=secret,
                project_id=PROJECT,
                widget_src=f"https://127.0.0.1:{port}/w/widget.js",
                ttl=TTL,
                token_path="/_reqio/token",
            ),
        ],
    )
    return app


class LateApp:
    """The app needs the port (the widget's src names it), which is known once serving."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "request before the app was built"
        await self.app(scope, receive, send)


@pytest.fixture
def site(secret: str) -> Iterator[tuple[str, str]]:
    late = LateApp()
    with serve(late) as base:
        late.app = build_app(int(base.rsplit(":", 1)[1]), secret)
        yield base, secret


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    try:
        tab = context.new_page()
        # Registered before any page script runs, so no event can be missed.
        tab.add_init_script(
            "window.__cspViolations = [];"
            "document.addEventListener('securitypolicyviolation', function (e) {"
            "  window.__cspViolations.push({directive: e.effectiveDirective,"
            "    blocked: e.blockedURI, sample: e.sample});"
            "});"
            "document.addEventListener('reqio:signedout', function () {"
            "  window.__signedOut = true;"
            "});"
        )
        yield tab
    finally:
        context.close()


def claims(token: str, secret: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(
        token, secret, algorithms=["HS256"], audience=AUDIENCE, options={"verify_exp": False}
    )
    return decoded


def calls(tab: Any) -> list[str]:
    result: list[str] = tab.evaluate("() => window.__identifyCalls || []")
    return result


def log_in_after_load(tab: Any, url: str) -> str:
    """Open the page anonymously, log in with the button, return the first identified token."""
    tab.goto(url)
    # Anonymous at load: the helper asked the endpoint, got 401, and stopped.
    tab.wait_for_function("() => window.__signedOut === true", timeout=10_000)
    assert calls(tab) == []
    assert tab.evaluate("() => window.__pageToken") is None
    tab.click("#login")
    tab.wait_for_function("() => (window.__identifyCalls || []).length >= 1", timeout=10_000)
    first: str = calls(tab)[0]
    return first


def test_login_after_load_gets_a_token_through_the_endpoint(
    site: tuple[str, str], page: Any
) -> None:
    base, secret = site
    token = log_in_after_load(page, base + "/")
    payload = claims(token, secret)
    assert payload["sub"] == "alice"
    assert payload["exp"] - payload["iat"] == TTL


def test_page_kept_open_past_expiry_gets_a_fresh_token(site: tuple[str, str], page: Any) -> None:
    base, secret = site
    first = claims(log_in_after_load(page, base + "/"), secret)
    # The refresh is due MARGIN s before expiry (5 s at least): past the first token's expiry
    # at the latest; 30 s is only the give-up bound.
    page.wait_for_function("() => window.__identifyCalls.length >= 2", timeout=30_000)
    second = claims(calls(page)[1], secret)
    assert second["sub"] == "alice"
    assert second["iat"] > first["iat"]
    assert second["exp"] > first["exp"]


def test_explicit_refresh_and_stop(site: tuple[str, str], page: Any) -> None:
    base, secret = site
    log_in_after_load(page, base + "/")
    page.evaluate("() => window.ReqioIdentity.stop()")
    token = page.evaluate("() => window.ReqioIdentity.refresh()")
    assert claims(token, secret)["sub"] == "alice"
    assert calls(page)[-1] == token


def test_strict_csp_page_works_without_violations(site: tuple[str, str], page: Any) -> None:
    base, secret = site
    response = page.goto(base + "/strict")
    assert response is not None
    assert response.headers["content-security-policy"] == STRICT_CSP
    token = log_in_after_load(page, base + "/strict")
    assert claims(token, secret)["sub"] == "alice"
    violations = page.evaluate("() => window.__cspViolations")
    # The page's one inline script is the control: CSP is enforced and violations are seen.
    assert page.evaluate("() => window.__inlineRan === undefined")
    assert [v["blocked"] for v in violations] == ["inline"], json.dumps(violations)


def test_signed_in_page_schedules_from_the_token_on_the_tag(
    site: tuple[str, str], page: Any
) -> None:
    base, secret = site
    page.context.add_cookies([{"name": "user", "value": "bob", "url": base}])
    page.goto(base + "/")
    page_token = page.evaluate("() => window.__pageToken")
    if page_token is None:  # the widget script may run before or after the helper
        page.wait_for_function("() => window.__pageToken !== undefined", timeout=10_000)
        page_token = page.evaluate("() => window.__pageToken")
    first = claims(page_token, secret)
    assert first["sub"] == "bob"
    # The widget reads the tag's token itself: the helper's first call is the refresh.
    page.wait_for_function("() => (window.__identifyCalls || []).length >= 1", timeout=30_000)
    second = claims(calls(page)[0], secret)
    assert second["sub"] == "bob"
    assert second["iat"] > first["iat"]


def test_network_error_is_retried_with_backoff(site: tuple[str, str], page: Any) -> None:
    base, secret = site
    log_in_after_load(page, base + "/")
    failures: list[str] = []

    def fail_once(route: Any) -> None:
        if not failures:
            failures.append(route.request.url)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(base + "/_reqio/token", fail_once)
    page.evaluate("() => { window.ReqioIdentity.stop(); window.ReqioIdentity.refresh(); }")
    # The first attempt fails at the network level; the retry (1 s later) gets a token.
    page.wait_for_function("() => window.__identifyCalls.length >= 2", timeout=15_000)
    assert failures == [base + "/_reqio/token"]
    assert claims(calls(page)[1], secret)["sub"] == "alice"
