"""``reqio-middleware demo``: started as a user starts it, looked at with curl and with chromium."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from conftest import ROOT_DIR, SecretGuard, free_port

from reqio_middleware.demo.app import (
    AUDIENCE,
    DEFAULT_USER,
    DEMO_USERS,
    STANDIN_PATH,
    dollars,
    monthly_cents,
)

SCRIPT = Path(sys.executable).with_name("reqio-middleware")
PAGES = ["/", "/stream", "/static/page.html", "/spa"]
SIGNED_IN = [key for key, user in DEMO_USERS.items() if user.identity is not None]
SIGNED_OUT = next(key for key, user in DEMO_USERS.items() if user.identity is None)
TAG = re.compile(rb"<script\b[^>]*" + re.escape(STANDIN_PATH.encode()) + rb"[^>]*>", re.I)
TOKEN_ATTR = re.compile(rb'data-identity-token="([^"]*)"')


class Demo:
    """A ``reqio-middleware demo`` subprocess and what it printed."""

    def __init__(self, port: int, secret: str | None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REQIO_")}
        if secret is not None:
            env["REQIO_SECRET"] = secret
        self.base = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.printed_secret = threading.Event()
        self.proc = subprocess.Popen(
            [str(SCRIPT), "demo", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT_DIR,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("demo secret"):
                self.printed_secret.set()

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Bounded readiness poll: the first answered request means uvicorn is serving."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"demo exited early:\n{''.join(self.lines)}")
            try:
                httpx.get(self.base + "/switch?user=" + DEFAULT_USER, timeout=1.0)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        pytest.fail(f"demo not ready after {timeout} s:\n{''.join(self.lines)}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.reader.join(timeout=10)


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[str, str]]:
    secret = secrets.token_urlsafe(48)
    running = Demo(free_port(), secret)
    try:
        running.wait_ready()
        yield running.base, secret
    finally:
        running.stop()
    output = "".join(running.lines)
    assert secret not in output, "the demo printed REQIO_SECRET, which it was given"


def widget_token(body: bytes) -> str | None:
    tags = TAG.findall(body)
    assert len(tags) == 1, tags
    found = TOKEN_ATTR.findall(tags[0])
    assert len(found) <= 1, tags[0]
    return found[0].decode() if found else None


def expected_claims(user: str) -> dict[str, Any]:
    identity = DEMO_USERS[user].identity
    assert identity is not None
    return identity.claims()


def decode(token: str, secret: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, secret, algorithms=["HS256"], audience=AUDIENCE)
    return claims


# --- over HTTP ------------------------------------------------------------------------------


def test_plain_get_shows_a_token_for_the_default_user(
    demo: tuple[str, str], no_secret_leak: SecretGuard
) -> None:
    base, secret = demo
    no_secret_leak.register(secret)
    response = httpx.get(base + "/")  # no cookies: what `curl http://127.0.0.1:8000/` sees
    assert response.status_code == 200
    token = widget_token(response.content)
    assert token is not None
    claims = decode(token, secret)
    assert {k: claims[k] for k in expected_claims(DEFAULT_USER)} == expected_claims(DEFAULT_USER)
    assert claims["exp"] - claims["iat"] == 300
    no_secret_leak.check(response.text, "the demo page")


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("user", list(DEMO_USERS))
def test_every_page_carries_the_users_token(demo: tuple[str, str], path: str, user: str) -> None:
    base, secret = demo
    response = httpx.get(base + path, cookies={"demo_user": user})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    token = widget_token(response.content)
    if DEMO_USERS[user].identity is None:
        assert token is None
        return
    assert token is not None
    claims = decode(token, secret)
    assert {k: claims[k] for k in expected_claims(user)} == expected_claims(user)


def test_streamed_page_is_streamed(demo: tuple[str, str]) -> None:
    base, _ = demo
    with httpx.stream("GET", base + "/stream") as response:
        chunks = list(response.iter_raw())
    assert "content-length" not in response.headers
    assert len(chunks) >= 1
    assert widget_token(b"".join(chunks)) is not None


def test_token_endpoint_and_switcher(demo: tuple[str, str]) -> None:
    base, secret = demo
    with httpx.Client(base_url=base) as client:
        for user in DEMO_USERS:
            switched = client.get(f"/switch?user={user}&next=/spa")
            assert switched.status_code == 303
            assert switched.headers["location"] == "/spa"
            answer = client.post("/_reqio/token")
            assert answer.headers["cache-control"] == "no-store"
            if DEMO_USERS[user].identity is None:
                assert answer.status_code == 401
                assert "token" not in answer.json()
                continue
            assert answer.status_code == 200
            claims = decode(answer.json()["token"], secret)
            assert claims["sub"] == expected_claims(user)["sub"]
            assert answer.json()["expires_at"] == claims["exp"]


def test_standin_verify_checks_what_reqio_would(demo: tuple[str, str]) -> None:
    base, secret = demo
    now = int(time.time())
    claims = {**expected_claims("annual"), "aud": AUDIENCE, "iat": now, "exp": now + 60}
    url = base + "/reqio-standin/verify"
    good = httpx.post(url, json={"token": jwt.encode(claims, secret)}).json()
    assert good["ok"] is True
    assert good["claims"] == claims
    assert good["monthly_value_cents"] == pytest.approx(claims["traits"]["amount"] / 12)
    bad = {
        "signature": jwt.encode(claims, secret + "x"),
        "audience": jwt.encode({**claims, "aud": "https://reqio.app/p/other"}, secret),
        "expired": jwt.encode({**claims, "exp": now - 10}, secret),
    }
    for word, token in bad.items():
        answer = httpx.post(url, json={"token": token})
        assert answer.status_code == 401
        assert answer.json()["ok"] is False
        assert word in answer.json()["reason"].lower()


def test_generated_secret_is_printed_once_and_signs_the_tokens() -> None:
    running = Demo(free_port(), secret=None)
    try:
        running.wait_ready()
        assert running.printed_secret.wait(timeout=10)
        lines = [line for line in running.lines if line.startswith("demo secret")]
        assert len(lines) == 1
        printed = lines[0].rsplit(" ", 1)[1].strip()
        assert len(printed) >= 64
        token = widget_token(httpx.get(running.base + "/").content)
        assert token is not None
        decode(token, printed)
    finally:
        running.stop()
    assert sum(printed in line for line in running.lines) == 1


# --- in a real browser ----------------------------------------------------------------------


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def panel_shows(page: Any, user: str) -> None:
    """The stand-in verified the token and shows exactly this user's claims."""
    page.wait_for_selector("#reqio-standin[data-state=verified]")
    claims = expected_claims(user)
    traits = claims["traits"]

    def field(name: str) -> str:
        text: str = page.inner_text(f"#reqio-standin [data-field={name}]")
        return text

    assert field("token").startswith("eyJ")
    assert field("sub") == claims["sub"]
    assert field("email") == claims["email"]
    assert field("plan") == traits["plan"]
    assert field("amount").startswith(f"{traits['amount']} cents")
    assert field("interval") == traits["interval"]
    assert field("monthly") == dollars(monthly_cents(traits["amount"], traits["interval"]))
    assert re.fullmatch(r"\d+ s", field("seconds-left"))


def switch_user(page: Any, user: str) -> None:
    """Click the switcher link; returns once the page it redirects back to has loaded."""
    with page.expect_navigation():
        page.click(f".switcher a[data-user={user}]")


def panel_shows_nobody(page: Any) -> None:
    page.wait_for_selector("#reqio-standin[data-state=none]")
    assert "no identity token" in page.inner_text("#reqio-standin")
    assert page.query_selector("#reqio-standin [data-field=sub]") is None


def test_browser_shows_claims_and_follows_the_user_switcher(
    demo: tuple[str, str], page: Any, tmp_path: Path
) -> None:
    base, _ = demo
    page.goto(base + "/")
    panel_shows(page, DEFAULT_USER)

    # The countdown is live: wait (bounded by the page timeout) for it to change.
    first = page.inner_text("#reqio-standin [data-field=seconds-left]")
    page.wait_for_function(
        "t => document.querySelector('#reqio-standin [data-field=seconds-left]').textContent !== t",
        arg=first,
    )

    for user in [*SIGNED_IN[1:], SIGNED_IN[0]]:
        switch_user(page, user)
        panel_shows(page, user)
        assert page.inner_text("#server-user") == DEMO_USERS[user].label

    annual = next(k for k in SIGNED_IN if expected_claims(k)["traits"]["interval"] == "year")
    switch_user(page, annual)
    panel_shows(page, annual)
    # The README's screenshot: refreshed with REQIO_UPDATE_SCREENSHOT=1, so a test run never
    # edits a tracked file; otherwise it goes to the test's temporary folder.
    shots = ROOT_DIR / "docs" if os.environ.get("REQIO_UPDATE_SCREENSHOT") == "1" else tmp_path
    shot = shots / "demo.png"
    page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": 1280, "height": 560})
    assert shot.stat().st_size > 10_000

    switch_user(page, SIGNED_OUT)
    assert page.url == base + "/"
    panel_shows_nobody(page)


@pytest.mark.parametrize("path", ["/stream", "/static/page.html"])
def test_browser_streamed_and_static_pages(demo: tuple[str, str], page: Any, path: str) -> None:
    base, _ = demo
    for user in SIGNED_IN:
        page.context.add_cookies([{"name": "demo_user", "value": user, "url": base}])
        page.goto(base + path)
        panel_shows(page, user)
    switch_user(page, SIGNED_OUT)
    assert page.url == base + path
    panel_shows_nobody(page)


def spa_follows(page: Any, user: str) -> None:
    """The SPA page's own text names the user whose verified token the widget holds."""
    label = DEMO_USERS[user].label
    page.wait_for_function(
        "label => document.getElementById('server-user').textContent === label", arg=label
    )
    assert label in page.inner_text("#spa-status")
    identity = DEMO_USERS[user].identity
    card = page.inner_text("#user-card")
    if identity is None:
        assert "holds no identity" in page.inner_text("#spa-status")
        return
    assert str(identity.sub) in card
    assert identity.email is not None and identity.email in card
    others = [u.label for k, u in DEMO_USERS.items() if k != user and u.identity is not None]
    for text in (page.inner_text("#server-user"), page.inner_text("#spa-status"), card):
        assert not any(other in text for other in others), text
    current = page.query_selector(".switcher a[aria-current=true]")
    assert current is not None and current.get_attribute("data-user") == user


def test_browser_spa_gets_its_token_after_signing_in(demo: tuple[str, str], page: Any) -> None:
    base, _ = demo
    page.context.add_cookies([{"name": "demo_user", "value": SIGNED_OUT, "url": base}])
    page.goto(base + "/spa")
    panel_shows_nobody(page)
    page.wait_for_selector("#spa-status:has-text('holds no identity')")
    assert page.inner_text("#server-user") == DEMO_USERS[SIGNED_OUT].label
    assert page.query_selector("script[data-identity-token]") is None

    for user in SIGNED_IN:
        page.click(f"button[data-sign-in={user}]")
        page.wait_for_function(
            "sub => document.querySelector('#reqio-standin [data-field=sub]')?.textContent === sub",
            arg=expected_claims(user)["sub"],
        )
        panel_shows(page, user)
        spa_follows(page, user)
        page.wait_for_selector("#spa-step:has-text('got a token')")
    # No reload happened: the tag still has no token; the token came from the endpoint.
    assert page.query_selector("script[data-identity-token]") is None

    page.click("#sign-out")
    panel_shows_nobody(page)
    page.wait_for_function(
        "() => document.getElementById('server-user').textContent === "
        f"{DEMO_USERS[SIGNED_OUT].label!r}"
    )
    assert "holds no identity" in page.inner_text("#spa-status")


def test_browser_spa_signed_in_on_load_then_switching_user(
    demo: tuple[str, str], page: Any
) -> None:
    """Loaded signed in, the page says who the widget holds (no "waiting for you to sign in");
    signing in as someone else moves the header with the widget: never two users at once."""
    base, _ = demo
    first, second = SIGNED_IN[0], SIGNED_IN[-1]
    page.context.add_cookies([{"name": "demo_user", "value": first, "url": base}])
    page.goto(base + "/spa")
    panel_shows(page, first)
    spa_follows(page, first)
    assert "waiting for you" not in page.inner_text("main").lower()

    page.click(f"button[data-sign-in={second}]")
    page.wait_for_function(
        "sub => document.querySelector('#reqio-standin [data-field=sub]')?.textContent === sub",
        arg=expected_claims(second)["sub"],
    )
    panel_shows(page, second)
    spa_follows(page, second)


def test_check_against_the_running_demo(demo: tuple[str, str]) -> None:
    """``check`` on a live page: signed in, it verifies the token the tag carries; signed out,
    it says there is none."""
    base, secret = demo
    port = base.rsplit(":", 1)[1]
    common = [
        str(SCRIPT),
        "check",
        base + "/stream",
        "--widget-src",
        f"//127.0.0.1:{port}{STANDIN_PATH}",
        "--project-id",
        "proj_demo",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REQIO_")}
    env.update(REQIO_SECRET=secret, REQIO_AUDIENCE=AUDIENCE)
    signed_in = subprocess.run(
        [*common, "-H", f"Cookie: demo_user={SIGNED_IN[0]}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    signed_out = subprocess.run(
        [*common, "-H", f"Cookie: demo_user={SIGNED_OUT}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    for result in (signed_in, signed_out):
        assert "1 widget-like tag(s), 1 would be rewritten" in result.stdout
        assert secret not in result.stdout + result.stderr
    assert signed_in.returncode == 0, signed_in.stdout + signed_in.stderr
    sub = expected_claims(SIGNED_IN[0])["sub"]
    assert f"token: verified: signature, audience {AUDIENCE}, sub {sub!r}" in signed_in.stdout
    assert signed_out.returncode == 1, signed_out.stdout
    assert "no token on the page" in signed_out.stdout
