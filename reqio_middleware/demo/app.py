"""The demo: a Starlette app wrapped in ``ReqioMiddleware``, with a local stand-in for the widget.

``reqio.app`` is not reachable offline, so ``widget_src`` points at this app's own
``/reqio-standin/widget.js``. The stand-in does what the real widget's backend does with a token
(checks signature, audience and expiry at ``/reqio-standin/verify``) and shows the claims, so
what the middleware did is visible in the browser, not only in the page source.

The src is scheme-relative (``//127.0.0.1:8000/...``): the rewriter only matches ``https:`` and
scheme-relative srcs, and the demo is served over plain http.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import quote

import jwt
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Scope

from ..asgi import ReqioMiddleware
from ..identity import Identity

__all__ = ["DEMO_USERS", "PROJECT_ID", "TOKEN_PATH", "DemoUser", "create_app", "run"]

PROJECT_ID = "proj_demo"
AUDIENCE = f"https://reqio.app/p/{PROJECT_ID}"
TOKEN_PATH = "/_reqio/token"
COOKIE = "demo_user"
ANONYMOUS = "anonymous"
STANDIN_PATH = "/reqio-standin/widget.js"
REAL_WIDGET = "https://reqio.app/widget.js"

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"


@dataclass(frozen=True)
class DemoUser:
    key: str
    label: str
    identity: Identity | None


DEMO_USERS = {
    "monthly": DemoUser(
        "monthly",
        "Maya Chen, pro monthly",
        Identity(
            sub=1001,
            email="maya@example.com",
            traits={"plan": "pro", "amount": 2900, "interval": "month"},
        ),
    ),
    "annual": DemoUser(
        "annual",
        "Arjun Rao, pro annual",
        Identity(
            sub=1002,
            email="arjun@example.com",
            traits={"plan": "pro", "amount": 29000, "interval": "year"},
        ),
    ),
    ANONYMOUS: DemoUser(ANONYMOUS, "signed out", None),
}
DEFAULT_USER = "monthly"

PAGES = [
    ("/", "Server-rendered"),
    ("/stream", "Streamed"),
    ("/static/page.html", "Static file"),
    ("/spa", "SPA (sign in after load)"),
]


def current_user(conn: HTTPConnection) -> DemoUser:
    """The cookie picks the user; no cookie means the default user, so plain curl sees a token."""
    return DEMO_USERS.get(conn.cookies.get(COOKIE, DEFAULT_USER), DEMO_USERS[DEFAULT_USER])


def resolve(scope: Scope) -> Identity | None:
    """The demo's resolver: what a real app would read from its session."""
    return current_user(HTTPConnection(scope)).identity


def monthly_cents(amount: int, interval: str | None) -> float:
    """What an annual price is worth per month: the number revenue dashboards compare."""
    return amount / 12 if interval == "year" else float(amount)


def dollars(cents: float) -> str:
    return f"${cents / 100:,.2f}"


# --- pages ----------------------------------------------------------------------------------


class Pages:
    def __init__(self, widget_src: str) -> None:
        self.widget_src = widget_src
        self.tag = (
            f'<script src="{html.escape(widget_src)}" data-project-id="{PROJECT_ID}" '
            f"async></script>"
        )

    def layout(self, path: str, user: DemoUser, title: str, body: str) -> str:
        nav = " ".join(
            f'<a href="{href}"{" aria-current=page" if href == path else ""}>{name}</a>'
            for href, name in PAGES
        )
        return (
            "<!doctype html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
            f"<title>reqio-middleware demo: {html.escape(title)}</title>\n"
            '<link rel=stylesheet href="/demo-static/demo.css">\n'
            f'<script src="{TOKEN_PATH}.js" defer></script>\n'
            "</head>\n<body>\n<header>\n<h1>reqio-middleware demo</h1>\n"
            f"<nav>{nav}</nav>\n</header>\n"
            f"{self.switcher(path, user)}\n<main>\n<h2>{html.escape(title)}</h2>\n{body}\n"
            f"{self.explain_tag()}\n</main>\n"
            '<aside id="reqio-standin" aria-live="polite"></aside>\n'
            f"{self.tag}\n</body>\n</html>\n"
        )

    def switcher(self, path: str, user: DemoUser) -> str:
        links = " ".join(
            f'<a class=user href="/switch?user={key}&amp;next={quote(path)}"'
            f'{" aria-current=true" if key == user.key else ""} data-user="{key}">'
            f"{html.escape(u.label)}</a>"
            for key, u in DEMO_USERS.items()
        )
        return (
            f'<section class=switcher>\n<p>Signed in as: <strong id="server-user">'
            f"{html.escape(user.label)}</strong>. Switch user (cookie <code>{COOKIE}</code>): "
            f'{links}</p>\n<div id="user-card">{self.user_card(user)}</div>\n</section>'
        )

    def user_card(self, user: DemoUser) -> str:
        ident = user.identity
        if ident is None:
            return (
                "<p>Signed out: the middleware leaves the widget tag alone, so the widget gets "
                "no identity token.</p>"
            )
        traits = dict(ident.traits or {})
        amount = int(traits.get("amount", 0))
        interval = traits.get("interval")
        return (
            "<p>The app's session says: "
            f"user <code>{html.escape(str(ident.sub))}</code>, "
            f"<code>{html.escape(ident.email or '')}</code>, plan "
            f"<code>{html.escape(str(traits.get('plan')))}</code>, "
            f"{dollars(amount)} per {html.escape(str(interval))} "
            f"(monthly value <strong>{dollars(monthly_cents(amount, interval))}</strong>).</p>"
        )

    def explain_tag(self) -> str:
        return (
            "<section class=tag>\n<h3>The widget tag, as the template wrote it</h3>\n"
            f"<pre>{html.escape(self.tag)}</pre>\n"
            "<p>ReqioMiddleware rewrites it on the way out with a fresh "
            "<code>data-identity-token</code> (view the page source, or "
            "<code>curl</code> this page). The real widget lives at "
            f"<code>{REAL_WIDGET}</code>; <code>reqio.app</code> is not reachable from this "
            "offline demo, so <code>widget_src</code> points at the local stand-in "
            f"<code>{html.escape(self.widget_src)}</code>, which verifies the token the way "
            "Reqio's backend would (signature, audience, expiry) and shows its claims in the "
            "panel. <code>/_reqio/token.js</code> keeps the token fresh on a page left open.</p>\n"
            "</section>"
        )

    def index(self, user: DemoUser) -> str:
        body = (
            "<p>This page is rendered by the server as one <code>HTMLResponse</code>. The "
            "middleware sees the whole body at once.</p>"
        )
        return self.layout("/", user, "Server-rendered page", body)

    def stream_parts(self, user: DemoUser) -> list[str]:
        """The page cut into chunks, three of the cuts inside the widget tag itself."""
        cuts = [5, len('<script src="//'), len(self.tag) - len(" async></script>")]
        pieces = [self.tag[a:b] for a, b in zip([0, *cuts], [*cuts, len(self.tag)], strict=True)]
        shown = " | ".join(f"<code>{html.escape(p)}</code>" for p in pieces)
        body = (
            "<p>This page is a <code>StreamingResponse</code>: the app yields it in chunks and "
            "the widget tag arrives split across four of them:</p>\n"
            f"<p class=chunks>{shown}</p>\n<p>The middleware rewrites it as it streams by, "
            "holding back only the bytes of an unfinished tag.</p>"
        )
        page = self.layout("/stream", user, "Streamed page", body)
        at = page.rindex(self.tag)
        head, tail = page[:at], page[at + len(self.tag) :]
        middle = head.index("<main>")
        return [head[:middle], head[middle:], *pieces, tail]

    def spa(self, user: DemoUser) -> str:
        buttons = " ".join(
            f'<button type=button data-sign-in="{key}" data-sub="{html.escape(str(ident.sub))}"'
            f' data-label="{html.escape(u.label)}">Sign in as {html.escape(u.label)}</button>'
            for key, u in DEMO_USERS.items()
            if (ident := u.identity) is not None
        )
        waiting = (
            "Signed out: the widget has no identity. Sign in below."
            if user.identity is None
            else f"Signed in as {html.escape(user.label)}: the widget is checking its token\u2026"
        )
        body = (
            "<p>A single-page app signs in without reloading the page, so the tag in the HTML "
            "cannot carry the new user's token. After signing in, the page asks "
            f"<code>{TOKEN_PATH}</code> (answered by the middleware itself) through "
            f"<code>{TOKEN_PATH}.js</code> and hands the token to "
            "<code>window.Reqio.identify(token)</code>. The page's text follows the identity "
            "the widget holds.</p>\n"
            f'<p>{buttons} <button type=button id="sign-out">Sign out</button></p>\n'
            f'<p id="spa-status" role=status>{waiting}</p>\n'
            '<p id="spa-step" class=step></p>\n'
            '<script src="/demo-static/spa.js" defer></script>'
        )
        return self.layout("/spa", user, "SPA: sign in after load", body)


def render_static_site(folder: Path, pages: Pages) -> None:
    """Write the static page once at start-up: its tag must name this demo's host and port."""
    template = (TEMPLATES / "static-page.html").read_text("utf-8")
    switch = " ".join(
        f'<a class=user href="/switch?user={key}&amp;next=/static/page.html" '
        f'data-user="{key}">{html.escape(u.label)}</a>'
        for key, u in DEMO_USERS.items()
    )
    text = (
        template.replace("{{TAG}}", pages.tag)
        .replace("{{SWITCH}}", switch)
        .replace("{{EXPLAIN}}", pages.explain_tag())
    )
    (folder / "page.html").write_text(text, "utf-8")


# --- the app --------------------------------------------------------------------------------


def create_app(*, secret: str, widget_src: str, ttl: int = 300) -> ASGIApp:
    """The demo app, wrapped in the middleware exactly as a user's app would be."""
    pages = Pages(widget_src)
    site = tempfile.TemporaryDirectory(prefix="reqio-demo-")
    render_static_site(Path(site.name), pages)

    async def index(request: Request) -> Response:
        return HTMLResponse(pages.index(current_user(request)))

    async def stream(request: Request) -> Response:
        parts = pages.stream_parts(current_user(request))

        async def chunks() -> AsyncIterator[bytes]:
            for part in parts:
                yield part.encode("utf-8")
                await asyncio.sleep(0)  # let each chunk go out on its own

        return StreamingResponse(chunks(), media_type="text/html; charset=utf-8")

    async def spa(request: Request) -> Response:
        return HTMLResponse(pages.spa(current_user(request)))

    async def switch(request: Request) -> Response:
        user = request.query_params.get("user", DEFAULT_USER)
        if user not in DEMO_USERS:
            return JSONResponse({"error": f"unknown demo user {user!r}"}, status_code=400)
        target = request.query_params.get("next", "/")
        if target not in {href for href, _ in PAGES}:
            target = "/"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, user, samesite="lax", httponly=True)
        return response

    async def session(request: Request) -> Response:
        """The SPA's sign-in call: sets the session cookie, renders nothing."""
        if request.headers.get("sec-fetch-site", "same-origin") == "cross-site":
            return JSONResponse({"error": "cross-site"}, status_code=403)
        user = (await request.body()).decode("utf-8", "replace").strip()
        if user not in DEMO_USERS:
            return JSONResponse({"error": f"unknown demo user {user!r}"}, status_code=400)
        response = JSONResponse({"user": user, "label": DEMO_USERS[user].label})
        response.set_cookie(COOKIE, user, samesite="lax", httponly=True)
        return response

    async def standin_widget(request: Request) -> Response:
        return FileResponse(STATIC / "widget.js", media_type="text/javascript")

    async def verify(request: Request) -> Response:
        """What Reqio's backend does with a token: signature, audience, expiry, then the claims."""
        cors = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}
        try:
            token = json.loads(await request.body())["token"]
            if not isinstance(token, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"ok": False, "reason": 'send {"token": "..."}'}, 400, cors)
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                audience=AUDIENCE,
                options={"require": ["sub", "exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            return JSONResponse({"ok": False, "reason": str(exc)}, 401, cors)
        traits = claims.get("traits") or {}
        amount = traits.get("amount")
        monthly = monthly_cents(amount, traits.get("interval")) if isinstance(amount, int) else None
        seconds_left = int(claims["exp"]) - int(time.time())
        return JSONResponse(
            {
                "ok": True,
                "header": jwt.get_unverified_header(token),
                "claims": claims,
                "monthly_value_cents": monthly,
                "seconds_left": seconds_left,
                "checked": ["signature (HS256)", f"audience {AUDIENCE}", "expiry"],
            },
            200,
            cors,
        )

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/stream", stream),
            Route("/spa", spa),
            Route("/switch", switch),
            Route("/demo/session", session, methods=["POST"]),
            Route(STANDIN_PATH, standin_widget),
            Route("/reqio-standin/verify", verify, methods=["POST"]),
            Mount("/demo-static", StaticFiles(directory=STATIC)),
            Mount("/static", StaticFiles(directory=site.name)),
        ]
    )
    app.state.static_site = site  # removed when the app goes away
    return ReqioMiddleware(
        app,
        resolver=resolve,
        secret=secret,
        project_id=PROJECT_ID,
        widget_src=widget_src,
        ttl=ttl,
        token_path=TOKEN_PATH,
    )


def browser_host(host: str) -> str:
    """The host a browser on this machine uses to reach a server bound to ``host``."""
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def run(*, host: str = "127.0.0.1", port: int = 8000, out: TextIO) -> None:
    import uvicorn

    secret = os.environ.get("REQIO_SECRET", "")
    if secret:
        print("Using the signing secret from REQIO_SECRET.", file=out)
    else:
        secret = secrets.token_urlsafe(48)
        # The one place a secret is printed on purpose: it is the demo's own, made just now,
        # and inspecting its tokens (reqio-middleware inspect) needs it.
        print(f"demo secret (generated; export REQIO_SECRET to choose one): {secret}", file=out)
        print(
            "  try: REQIO_SECRET=<demo secret> REQIO_PROJECT_ID=proj_demo "
            "reqio-middleware inspect <token>",
            file=out,
        )
    widget_src = f"//{browser_host(host)}:{port}{STANDIN_PATH}"
    app = create_app(secret=secret, widget_src=widget_src)
    print(
        f"reqio-middleware demo: http://{browser_host(host)}:{port}/  (project {PROJECT_ID}, "
        f"widget_src {widget_src}; Ctrl+C stops)",
        file=out,
        flush=True,
    )
    print(
        f"  check a page: reqio-middleware check http://{browser_host(host)}:{port}/ "
        f"--widget-src {widget_src} --project-id {PROJECT_ID}",
        file=out,
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="info")
