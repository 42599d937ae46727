"""The README's configurations called in-process: anonymous, signed-in and JSON requests,
against the same app without Reqio, a forwarding-only middleware and the seeds' way."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from configs import ASGI, DATA, NAMES, WSGI, Unavailable, build
from pages import make_page
from report import NOTES, fmt_delta, fmt_t, row, skipped, verdict
from timing import Timer

PAGE_SIZE = 100_000
#: The page the end-to-end section serves, on which the seeds' way is the issue's yardstick.
SMALL_PAGE_SIZE = 20_000
TOKEN = b"data-identity-token"
#: label -> (path, signed in?, page size): the requests each configuration is timed on.
REQUESTS = {
    "JSON": ("/json", False, PAGE_SIZE),
    "anonymous page": ("/page", False, PAGE_SIZE),
    "signed-in 20 KB page": ("/page", True, SMALL_PAGE_SIZE),
    "signed-in 100 KB page": ("/page", True, PAGE_SIZE),
}


def bench_configs(timer: Timer) -> None:
    pages = {size: make_page(size, "end") for size in (SMALL_PAGE_SIZE, PAGE_SIZE)}
    for config in (*ASGI, *WSGI):
        section = f"in-process: {NAMES[config]}"
        try:
            built = {size: _apps(config, page) for size, page in pages.items()}
        except Unavailable as exc:
            skipped(section, "all", str(exc))
            continue
        loop = asyncio.new_event_loop()
        try:
            for label, (path, signed_in, size) in REQUESTS.items():
                apps, cookie = built[size]
                asked = {name: (app, path) for name, app in apps.items()}
                if signed_in:
                    asked["seeds"] = (apps["bare"], "/seeds")
                t = _timed(timer, loop, config, label, asked, cookie if signed_in else None)
                if t is not None:
                    _config_row(section, label, t, signed_in)
        finally:
            loop.close()


def _timed(
    timer: Timer,
    loop: asyncio.AbstractEventLoop,
    config: str,
    label: str,
    asked: dict[str, tuple[Any, str]],
    cookie: str | None,
) -> dict[str, float] | None:
    """Each app's answer checked, then all timed round-robin; ASGI ones inside the loop."""
    if config in ASGI:
        coros = {name: _asgi_caller(app, path, cookie) for name, (app, path) in asked.items()}
        bodies = {name: loop.run_until_complete(fn()) for name, fn in coros.items()}
        if not _outputs_right(config, label, bodies, cookie is not None):
            return None
        return timer.compare_async(loop, coros)
    calls = {name: _wsgi_caller(app, path, cookie) for name, (app, path) in asked.items()}
    if not _outputs_right(config, label, {n: fn() for n, fn in calls.items()}, cookie is not None):
        return None
    return timer.compare(calls)


def _apps(config: str, page: bytes) -> tuple[dict[str, Any], str]:
    bare, cookie = build(config, "bare", page)
    apps = {"bare": bare, "ours": build(config, "ours", page)[0]}
    if config in ASGI:
        # A framework's own middleware has no forwarding floor: it is compared with bare.
        with contextlib.suppress(Unavailable):
            apps["forward"] = build(config, "forward", page)[0]
    return apps, cookie


def _outputs_right(config: str, label: str, bodies: dict[str, bytes], signed_in: bool) -> bool:
    """Ours stamps exactly the signed-in page; the seeds' way stamps its own; the rest not."""
    for name, body in bodies.items():
        want = signed_in and name in ("ours", "seeds")
        if not _is_the_apps_answer(label, body):
            NOTES.append(f"WRONG OUTPUT: {config} {label} {name}: not the app's answer")
            return False
        got = body.count(TOKEN)
        if got != int(want):
            NOTES.append(f"WRONG OUTPUT: {config} {label} {name}: {got} token(s)")
            return False
    return True


def _is_the_apps_answer(label: str, body: bytes) -> bool:
    """The route's own answer, not an error page (a framework answers 4xx/5xx with a body)."""
    if label != "JSON":
        return body.rstrip().endswith(b"</html>")
    try:
        return bool(json.loads(body) == DATA)
    except ValueError:
        return False


def _config_row(section: str, label: str, t: dict[str, float], signed_in: bool) -> None:
    ours = t["ours"]
    compared = [f"bare {fmt_t(t['bare'])}"]
    if "forward" in t:
        compared.append(f"forwarding {fmt_t(t['forward'])}")
    if signed_in:
        compared.append(f"seeds' way {fmt_t(t['seeds'])}")
        check = verdict(ours <= t["seeds"], f"{ours / t['seeds']:.2f}x the seeds' time (≤ 1.00x)")
    else:
        floor, what = (t["forward"], "forwarding") if "forward" in t else (t["bare"], "bare")
        limit = 1.05 if label == "JSON" else 1.10
        check = verdict(ours <= limit * floor, f"{ours / floor:.2f}x {what} (≤ {limit:.2f}x)")
    row(
        section,
        label,
        f"{fmt_t(ours)}/req ({fmt_delta(ours - t['bare'])})",
        " · ".join(compared),
        check,
    )


# --- callers: one request, its body returned ------------------------------------------------


def _asgi_caller(app: Any, path: str, cookie: str | None) -> Callable[[], Awaitable[bytes]]:
    headers = [(b"host", b"bench.local"), (b"accept", b"text/html,*/*")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def once() -> bytes:
        out: list[bytes] = []
        received: list[bool] = []

        async def receive() -> dict[str, Any]:
            if not received:
                received.append(True)
                return {"type": "http.request", "body": b"", "more_body": False}
            # Listening for a disconnect (Django does): the client stays until the response
            # is complete, and the application cancels this wait.
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                out.append(message.get("body", b""))

        await app(dict(scope, state={}), receive, send)
        return b"".join(out)

    return once


def _wsgi_caller(app: Any, path: str, cookie: str | None) -> Callable[[], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "bench.local",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "bench.local",
        "HTTP_ACCEPT": "text/html,*/*",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], Any]:
        return _ignore

    def once() -> bytes:
        result = app(dict(environ, **{"wsgi.input": io.BytesIO(b"")}), start_response)
        try:
            return b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    return once


def _ignore(data: bytes) -> None:
    return None


__all__ = ["bench_configs"]
