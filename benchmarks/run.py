"""Benchmarks: ``python benchmarks/run.py [--quick] [--e2e]`` prints one table.

Every figure is measured in the same run as what it is compared with, because absolute
numbers drift with machine load while ratios taken side by side hold. Timings are medians of
repeated batches (``time.perf_counter_ns``, gc disabled while timing).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import html.parser
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pages import CHUNK, PROJECT_ID, WIDGET_SRC, chunks, make_page  # noqa: E402

SECRET = "bench-secret-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEF"  # 57 bytes, not a real one
AUDIENCE = f"https://reqio.app/p/{PROJECT_ID}"
IDENTITY = {"sub": "user_42", "email": "ada@example.com", "traits": {"plan": "pro"}}
NEEDLE = WIDGET_SRC.encode()

Row = tuple[str, str, str, str, str]
ROWS: list[Row] = []
NOTES: list[str] = []
#: (page size, widget position) -> {measure: seconds}, for ``--plot``.
REWRITER: dict[tuple[int, str | None], dict[str, float]] = {}


def row(section: str, case: str, ours: str, compared: str, verdict: str) -> None:
    ROWS.append((section, case, ours, compared, verdict))
    print(f"  {section} | {case} | {ours} | {compared} | {verdict}", file=sys.stderr, flush=True)


# --- timing -------------------------------------------------------------------------------


class Timer:
    def __init__(self, quick: bool) -> None:
        self.budget = 0.05 if quick else 0.2  # seconds per repeat
        self.repeat = 5 if quick else 7

    def _plan(self, once_ns: int) -> tuple[int, int]:
        number = max(1, int(self.budget * 1e9 / max(once_ns, 1)))
        repeat = self.repeat if once_ns < self.budget * 1e9 * 2 else 3
        return number, repeat

    def __call__(self, fn: Callable[[], object]) -> float:
        """Median seconds per call."""
        return self.compare({"": fn})[""]

    def compare(self, fns: dict[str, Callable[[], object]]) -> dict[str, float]:
        """Median seconds per call of each, timed round-robin so load drift hits all alike."""
        plans = {}
        for name, fn in fns.items():
            fn()
            t0 = time.perf_counter_ns()
            fn()
            plans[name] = self._plan(time.perf_counter_ns() - t0)
        repeat = min(r for _, r in plans.values())
        times: dict[str, list[float]] = {name: [] for name in fns}
        gc.disable()
        try:
            for _ in range(repeat):
                for name, fn in fns.items():
                    number = plans[name][0]
                    t0 = time.perf_counter_ns()
                    for _ in range(number):
                        fn()
                    times[name].append((time.perf_counter_ns() - t0) / number)
        finally:
            gc.enable()
        return {name: statistics.median(ts) / 1e9 for name, ts in times.items()}

    def compare_async(
        self, loop: asyncio.AbstractEventLoop, fns: dict[str, Callable[[], Awaitable[object]]]
    ) -> dict[str, float]:
        """As :meth:`compare`, timed inside the loop (no per-call loop overhead)."""

        async def batch(fn: Callable[[], Awaitable[object]], n: int) -> int:
            t0 = time.perf_counter_ns()
            for _ in range(n):
                await fn()
            return time.perf_counter_ns() - t0

        plans = {}
        for name, fn in fns.items():
            loop.run_until_complete(batch(fn, 2))
            plans[name] = self._plan(loop.run_until_complete(batch(fn, 1)))
        repeat = min(r for _, r in plans.values())
        times: dict[str, list[float]] = {name: [] for name in fns}
        gc.disable()
        try:
            for _ in range(repeat):
                for name, fn in fns.items():
                    number = plans[name][0]
                    times[name].append(loop.run_until_complete(batch(fn, number)) / number)
        finally:
            gc.enable()
        return {name: statistics.median(ts) / 1e9 for name, ts in times.items()}


def fmt_t(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_rate(nbytes: int, seconds: float) -> str:
    rate = nbytes / seconds
    return f"{rate / 1e9:.2f} GB/s" if rate >= 1e9 else f"{rate / 1e6:.0f} MB/s"


def fmt_size(n: int) -> str:
    return f"{n // 1_000_000} MB" if n >= 1_000_000 else f"{n // 1000} KB"


def verdict(ok: bool, text: str) -> str:
    return f"{text}: {'met' if ok else 'NOT met'}"


# --- rewriter -----------------------------------------------------------------------------


def find_all(page: bytes) -> int:
    """The scan floor: every occurrence of the src, so the whole page is read as ours must."""
    n = 0
    i = page.find(NEEDLE)
    while i >= 0:
        n += 1
        i = page.find(NEEDLE, i + 1)
    return n


NAIVE = re.compile(rb"<script[^>]*>", re.IGNORECASE)


def naive_regex(page: bytes, token: bytes) -> bytes:
    def sub(m: re.Match[bytes]) -> bytes:
        tag = m.group()
        if NEEDLE in tag:
            return tag[:-1] + b' data-identity-token="' + token + b'">'
        return tag

    return NAIVE.sub(sub, page)


class _ScriptFinder(html.parser.HTMLParser):
    found = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and ("src", WIDGET_SRC) in attrs:
            self.found += 1


def stdlib_parser(page: bytes) -> int:
    p = _ScriptFinder(convert_charrefs=False)
    p.feed(page.decode("utf-8", "surrogateescape"))
    p.close()
    return p.found


def lolhtml_rewriter(token: str) -> Callable[[list[bytes]], list[bytes]] | None:
    try:
        import lolhtml
    except ImportError:
        return None

    class Handler:
        def element(self, el: Any) -> None:
            el.set_attribute("data-identity-token", token)

    selector = f'script[src="{WIDGET_SRC}"]'

    def run(parts: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        rw = lolhtml.HTMLRewriter(out.append)
        rw.on(selector, Handler())
        for part in parts:
            rw.write(part)
        rw.end()
        return out

    return run


def bench_rewriter(timer: Timer, quick: bool, token: str) -> None:
    try:
        from reqio_middleware.rewriter import HTMLRewriter, rewrite_html
    except ImportError as exc:
        row("rewriter", "all", f"n/a ({exc})", "", "")
        return
    lol = lolhtml_rewriter(token)
    if lol is None:
        NOTES.append("python-lolhtml is not installed: pip install python-lolhtml")
    tok = token.encode()
    for size in (20_000, 100_000, 1_000_000, 10_000_000):
        for where in (None, "top", "end"):
            page = make_page(size, where)
            parts = chunks(page, CHUNK)
            n = len(page)

            def streamed(parts: list[bytes] = parts) -> list[bytes]:
                rw = HTMLRewriter(token, project_id=PROJECT_ID)
                out = [rw.feed(p) for p in parts]
                out.append(rw.close())
                return out

            whole_out = rewrite_html(page, token, project_id=PROJECT_ID)
            expected = 0 if where is None else 1
            if whole_out.count(tok) != expected or b"".join(streamed()) != whole_out:
                NOTES.append(f"WRONG OUTPUT from ours on {fmt_size(size)} {where}")
            if lol is not None and b"".join(lol(parts)).count(tok) != expected:
                NOTES.append(f"WRONG OUTPUT from lol-html on {fmt_size(size)} {where}")

            fns: dict[str, Callable[[], object]] = {
                "whole": lambda page=page: rewrite_html(page, token, project_id=PROJECT_ID),
                "stream": streamed,
                "find": lambda page=page: find_all(page),
                "regex": lambda page=page: naive_regex(page, tok),
            }
            if lol is not None:
                fns["lol"] = lambda parts=parts: lol(parts)
            t = timer.compare(fns)
            t_whole, t_stream, t_find, t_regex = t["whole"], t["stream"], t["find"], t["regex"]
            t_lol = t.get("lol")
            REWRITER[(size, where)] = t
            t_parser = None  # slow: timed on its own, outside the round-robin
            if not (quick and size >= 10_000_000):
                t_parser = timer(lambda page=page: stdlib_parser(page))

            label = {None: "no widget", "top": "widget near top", "end": "widget near end"}[where]
            ours = (
                f"whole {fmt_t(t_whole)} ({fmt_rate(n, t_whole)}); "
                f"64 KiB stream {fmt_t(t_stream)} ({fmt_rate(n, t_stream)})"
            )
            comp = [f"find {fmt_t(t_find)} ({fmt_rate(n, t_find)})"]
            if t_lol is not None:
                comp.append(f"lol-html {fmt_t(t_lol)} ({fmt_rate(n, t_lol)})")
            comp.append(f"regex {fmt_t(t_regex)}")
            if t_parser is not None:
                comp.append(f"html.parser {fmt_t(t_parser)}")
            best = min(t_whole, t_stream)
            checks = [f"{best / t_find:.1f}x find"]
            if where is None:
                checks.append(verdict(n / t_whole >= 2e9, "≥ 2 GB/s"))
            else:
                checks.append(verdict(n / best >= 500e6, "best ≥ 500 MB/s"))
            if t_lol is not None:
                checks.append(verdict(best <= t_lol, f"best {best / t_lol:.2f}x lol-html"))
            row("rewriter", f"{fmt_size(size)}, {label}", ours, " · ".join(comp), "; ".join(checks))


# --- tokens -------------------------------------------------------------------------------


def bench_tokens(timer: Timer) -> tuple[float, str]:
    import jwt

    from reqio_middleware.identity import Identity
    from reqio_middleware.tokens import ReqioMinter, mint_token

    identity = Identity(**IDENTITY)  # type: ignore[arg-type]
    minter = ReqioMinter(SECRET, AUDIENCE)  # what the middlewares call: secret checked once

    def pyjwt() -> str:
        now = int(time.time())
        claims = dict(IDENTITY, aud=AUDIENCE, iat=now, exp=now + 300)
        return jwt.encode(claims, SECRET, algorithm="HS256")

    def ours() -> str:
        return mint_token(identity, secret=SECRET, audience=AUDIENCE)

    token = ours()
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    if decoded["sub"] != "user_42":
        NOTES.append("WRONG TOKEN from mint_token")
    if minter(identity).count(".") != 2:
        NOTES.append("WRONG TOKEN from ReqioMinter")
    t = timer.compare({"pyjwt": pyjwt, "ours": ours, "minter": lambda: minter(identity)})
    t_jwt, t_ours, t_minter = t["pyjwt"], t["ours"], t["minter"]
    row(
        "token",
        "HS256, sub+email+traits",
        f"ReqioMinter {fmt_t(t_minter)} · mint_token {fmt_t(t_ours)}",
        f"PyJWT encode {fmt_t(t_jwt)}",
        f"{t_minter / t_jwt:.2f}x / {t_ours / t_jwt:.2f}x PyJWT",
    )
    return t_jwt, token


# --- 100 MB stream ------------------------------------------------------------------------


_HUNDRED_MB: list[bytes] = []


def hundred_mb() -> list[bytes]:
    """100 MB as 64 KiB chunks (references to 2 MB of distinct chunks), widget in the first.

    Built once and kept, so that measuring peak memory sees only what streaming allocates.
    """
    if not _HUNDRED_MB:
        first = chunks(make_page(1_000_000, "top"), CHUNK)
        rest = chunks(make_page(1_000_000, None), CHUNK)
        _HUNDRED_MB.extend(first + rest * 99)
    return _HUNDRED_MB


def peak_extra(run: Callable[[], object]) -> int:
    """tracemalloc peak above what was allocated before ``run`` (its input is built lazily)."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        run()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def bench_stream(timer: Timer, token: str) -> None:
    from reqio_middleware.rewriter import HTMLRewriter

    parts = hundred_mb()  # built once, outside timing and outside the memory window
    total = sum(map(len, parts))

    def run(parts: Iterable[bytes] = parts) -> int:
        rw = HTMLRewriter(token, project_id=PROJECT_ID)
        n = 0
        for part in parts:
            n += len(rw.feed(part))
        n += len(rw.close())
        return n

    if run() != total + len(b' data-identity-token=""') + len(token):
        NOTES.append("100 MB stream: output length is not input + one token attribute")
    t = timer(run)
    t_find = timer(lambda: sum(find_all(p) for p in parts))
    peak = peak_extra(run)
    row(
        "stream",
        "HTMLRewriter, 100 MB in 64 KiB chunks",
        f"{fmt_rate(total, t)}, peak +{peak / 1024:.0f} KiB",
        f"find per chunk {fmt_rate(total, t_find)}",
        "; ".join([verdict(total / t >= 300e6, "≥ 300 MB/s"), verdict(peak <= 1 << 20, "≤ 1 MiB")]),
    )


# --- middleware in-process ----------------------------------------------------------------

PAGE_100K = make_page(100_000, "end")
_N = len(PAGE_100K)
CHUNKS_16 = [PAGE_100K[i * _N // 16 : (i + 1) * _N // 16] for i in range(16)]
JSON_BODY = json.dumps({"ok": True, "items": [{"id": i, "name": f"item {i}"} for i in range(20)]})

CASES = [
    ("JSON", "/json", False),
    ("anonymous HTML 100 KB", "/page", False),
    ("identified HTML 100 KB, one body", "/page", True),
    ("identified HTML 100 KB, 16 chunks", "/chunks", True),
]


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response, StreamingResponse
    from starlette.routing import Route

    async def data(request: Request) -> Response:
        return Response(JSON_BODY, media_type="application/json")

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE_100K)

    async def streamed(request: Request) -> Response:
        async def gen() -> Any:
            for c in CHUNKS_16:
                yield c

        return StreamingResponse(gen(), media_type="text/html; charset=utf-8")

    return Starlette(
        routes=[Route("/json", data), Route("/page", page), Route("/chunks", streamed)]
    )


class Forward:
    """The floor of any pure-ASGI middleware: it forwards every message through its own send."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def forward(message: Any) -> None:
            await send(message)

        await self.app(scope, receive, forward)


def asgi_scope(path: str, identified: bool) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"bench.local"),
            (b"accept", b"text/html,*/*"),
            (b"cookie", b"session=0123456789abcdef"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    if identified:
        scope["reqio.identity"] = IDENTITY
    return scope


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: Any) -> None:
    return None


async def asgi_body(app: Any, scope: dict[str, Any]) -> bytes:
    out: list[bytes] = []

    async def send(message: Any) -> None:
        if message["type"] == "http.response.body":
            out.append(message.get("body", b""))

    await app(dict(scope), _receive, send)
    return b"".join(out)


def bench_asgi(timer: Timer, t_jwt: float) -> None:
    try:
        from reqio_middleware import ReqioMiddleware
    except ImportError as exc:
        row("ASGI", "all", f"n/a ({exc})", "", "")
        return
    bare = starlette_app()
    apps = {
        "bare": bare,
        "forward": Forward(bare),
        "reqio": ReqioMiddleware(bare, secret=SECRET, project_id=PROJECT_ID),
    }
    t_floor = timer(lambda: find_all(PAGE_100K)) + t_jwt
    loop = asyncio.new_event_loop()
    try:
        for label, path, identified in CASES:
            scope = asgi_scope(path, identified)
            body = loop.run_until_complete(asgi_body(apps["reqio"], scope))
            if (b"data-identity-token" in body) != identified:
                NOTES.append(f"ASGI {label}: token {'missing' if identified else 'present'}")
            calls = {}
            for name, app in apps.items():

                async def call(app: Any = app, scope: dict[str, Any] = scope) -> None:
                    await app(dict(scope), _receive, _discard)

                calls[name] = call
            t = timer.compare_async(loop, calls)
            middleware_row("ASGI", label, identified, t, t_floor, path == "/chunks")
    finally:
        loop.close()


def middleware_row(
    section: str, label: str, identified: bool, t: dict[str, float], t_floor: float, chunked: bool
) -> None:
    added = t["reqio"] - t["bare"]
    ours = f"{fmt_t(t['reqio'])}/req (+{fmt_t(added)})"
    comp = (
        f"bare {fmt_t(t['bare'])} · forwarding {fmt_t(t['forward'])}"
        f" (+{fmt_t(t['forward'] - t['bare'])})"
    )
    ratio_fwd = t["reqio"] / t["forward"]
    if identified:
        limit = 6.0 if chunked else 5.0
        comp += f" · find+PyJWT {fmt_t(t_floor)}"
        v = verdict(
            added <= limit * t_floor, f"added {added / t_floor:.1f}x find+PyJWT (≤ {limit:g}x)"
        )
        v = f"{ratio_fwd:.2f}x forwarding; {v}"
    else:
        v = verdict(ratio_fwd <= 1.10, f"{ratio_fwd:.2f}x forwarding (≤ 1.10x)")
    row(section, label, ours, comp, v)


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/json":
        body = JSON_BODY.encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]
    if path == "/page":
        start_response(
            "200 OK",
            [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(PAGE_100K)))],
        )
        return [PAGE_100K]
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return iter(CHUNKS_16)


def wsgi_forward(app: Any) -> Any:
    """The floor of a WSGI middleware that wraps ``start_response`` and the body iterable."""

    def wrapped(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        def sr(status: str, headers: Any, exc_info: Any = None) -> Any:
            return start_response(status, headers, exc_info)

        result = app(environ, sr)
        try:
            yield from result
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    return wrapped


def wsgi_environ(path: str, identified: bool) -> dict[str, Any]:
    import io

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
        "HTTP_COOKIE": "session=0123456789abcdef",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if identified:
        environ["reqio.identity"] = IDENTITY
    return environ


def _start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
    return _write


def _write(data: bytes) -> None:
    return None


def wsgi_call(app: Any, environ: dict[str, Any]) -> bytes:
    result = app(dict(environ), _start_response)
    try:
        return b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def bench_wsgi(timer: Timer, t_jwt: float) -> None:
    try:
        from reqio_middleware import ReqioWSGIMiddleware
    except ImportError as exc:
        row("WSGI", "all", f"n/a ({exc})", "", "")
        return
    apps = {
        "bare": wsgi_app,
        "forward": wsgi_forward(wsgi_app),
        "reqio": ReqioWSGIMiddleware(wsgi_app, secret=SECRET, project_id=PROJECT_ID),
    }
    t_floor = timer(lambda: find_all(PAGE_100K)) + t_jwt
    for label, path, identified in CASES:
        environ = wsgi_environ(path, identified)
        body = wsgi_call(apps["reqio"], environ)
        if (b"data-identity-token" in body) != identified:
            NOTES.append(f"WSGI {label}: token {'missing' if identified else 'present'}")
        t = timer.compare(
            {
                name: lambda app=app, environ=environ: wsgi_call(app, environ)
                for name, app in apps.items()
            }
        )
        middleware_row("WSGI", label, identified, t, t_floor, path == "/chunks")


def bench_asgi_stream(timer: Timer) -> None:
    """Peak memory of 100 MB streamed through ReqioMiddleware (identified, widget in chunk 1)."""
    try:
        from reqio_middleware import ReqioMiddleware
    except ImportError:
        return

    parts = hundred_mb()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8")],
            }
        )
        for part in parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    wrapped = ReqioMiddleware(app, secret=SECRET, project_id=PROJECT_ID)
    scope = asgi_scope("/", True)
    sent = [0]

    async def count(message: Any) -> None:
        if message["type"] == "http.response.body":
            sent[0] += len(message.get("body", b""))

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(wrapped(dict(scope), _receive, count))

        async def ours() -> None:
            await wrapped(dict(scope), _receive, _discard)

        async def bare() -> None:
            await app(dict(scope), _receive, _discard)

        t = timer.compare_async(loop, {"ours": ours, "bare": bare})
        seconds, bare_seconds = t["ours"], t["bare"]
        peak = peak_extra(lambda: loop.run_until_complete(wrapped(dict(scope), _receive, _discard)))
    finally:
        loop.close()
    row(
        "stream",
        "ReqioMiddleware (ASGI), 100 MB in 64 KiB messages",
        f"{fmt_rate(sent[0], seconds)} ({fmt_t(seconds)}), peak +{peak / 1024:.0f} KiB",
        f"the same app unwrapped {fmt_t(bare_seconds)}",
        verdict(peak <= 1 << 20, "≤ 1 MiB"),
    )


# --- end to end ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _spawn(cmd: list[str], what: str, ready_url: str, **popen: Any) -> subprocess.Popen[bytes]:
    """Start ``cmd`` and wait until ``ready_url`` answers over HTTP, not merely until the
    port accepts: gunicorn's master binds the socket before its worker has imported the
    app, so a bare connect would let the first wrk round measure the worker's start-up.

    The server's stderr goes to an unlinked temporary file rather than the terminal
    (waitress logs a "Task queue depth" warning whenever wrk's 16 connections outnumber
    its threads); its tail is in the error when the server does not come up.
    """
    import tempfile

    with tempfile.TemporaryFile() as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, **popen)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as resp:
                    resp.read()
                    return proc
            except OSError:
                time.sleep(0.05)
        _stop(proc)
        log.seek(0)
        tail = log.read()[-300:].decode(errors="replace").strip()
        raise RuntimeError(f"{what} did not start: {tail or 'no output'}")


def _start_server(kind: str, wrap: bool) -> tuple[subprocess.Popen[bytes], str]:
    """One server process on a free loopback port; ``wrap`` sets ``REQIO_BENCH_WRAP``.

    Every server gets one process, so the figures compare the middleware and not the number
    of cores a server manages to use. The two WSGI servers get the same 4 threads: gunicorn
    runs the ``gthread`` worker because the ``sync`` worker closes the connection after each
    response (no keep-alive), which would make wrk measure TCP set-up instead of the app.
    """
    port = _free_port()
    env = dict(
        os.environ,
        REQIO_BENCH_WRAP="1" if wrap else "0",
        REQIO_SECRET=SECRET,
        PYTHONPATH=os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p),
    )
    if kind == "uvicorn":
        options = f"--host 127.0.0.1 --port {port} --log-level warning --no-access-log"
        cmd = [sys.executable, "-m", "uvicorn", "e2e_app:app", *options.split()]
    elif kind == "gunicorn":
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers=1",
            "--worker-class=gthread",
            "--threads=4",
            f"--bind=127.0.0.1:{port}",
            "--log-level=warning",
            "e2e_app:wsgi_app",
        ]
    elif kind == "waitress":
        cmd = [
            sys.executable,
            "-m",
            "waitress",
            f"--listen=127.0.0.1:{port}",
            "--threads=4",
            "e2e_app:wsgi_app",
        ]
    else:
        raise ValueError(f"unknown server {kind!r}")
    url = f"http://127.0.0.1:{port}"
    return _spawn(cmd, kind, url + "/json", env=env, cwd=HERE), url


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wrk(url: str, seconds: int) -> tuple[float, float]:
    """Requests per second and wrk's 99th percentile latency in seconds (nan if absent)."""
    out = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        NOTES.append(f"e2e: {errors.group(1)} non-2xx answers from {url}")
    return rps, _seconds(p99.group(1)) if p99 else float("nan")


def _seconds(latency: str) -> float:
    """wrk's latency figures ("812.00us", "5.38ms", "1.02s", "1.00m") in seconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", latency)
    if m is None:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(2)]


def _e2e_cell(rps: float, p99: float) -> str:
    return f"{rps:.0f} req/s, p99 {p99 * 1e3:.2f} ms"


def _interleaved(urls: dict[str, str], rounds: int) -> dict[str, tuple[float, float]]:
    """wrk on each url in turn, ``rounds`` times: the medians of req/s and of p99.

    Taking the servers in turn within each round keeps a drift in machine load from landing
    on one of them only.
    """
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in urls}
    for _ in range(rounds):
        for name, url in urls.items():
            runs[name].append(_wrk(url, E2E_SECONDS))
    return {
        name: (statistics.median(r for r, _ in got), statistics.median(p for _, p in got))
        for name, got in runs.items()
    }


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _download_rss(pid: int, url: str) -> tuple[int, int, bool]:
    """Bytes received, peak RSS growth of process ``pid`` while streaming, whether a token came."""
    import threading

    base = _rss(pid)
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], _rss(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    received = 0
    token = False
    try:
        with urllib.request.urlopen(url, timeout=120) as resp:
            first = resp.read(CHUNK * 2)
            token = b"data-identity-token" in first
            received = len(first)
            while block := resp.read(1 << 20):
                received += len(block)
    finally:
        done.set()
        sampler.join()
    return received, peak[0] - base, token


def _worker_pid(proc: subprocess.Popen[bytes], kind: str) -> int:
    """The process that holds the responses: gunicorn's worker, not its master."""
    if kind != "gunicorn":
        return proc.pid
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    return int(children[0]) if children else proc.pid


E2E_SECONDS = 3  # per wrk run: long enough for a steady rate, short enough to keep runs bounded
E2E_SERVERS = (
    ("uvicorn", "uvicorn + Starlette"),
    ("gunicorn", "gunicorn gthread + Flask"),
    ("waitress", "waitress + Flask"),
)
#: What nginx's ``sub_filter`` puts on the tag: a fixed literal shaped like one of our tokens
#: (the C reference does no minting, only the literal body edit).
NGINX_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyXzQyIiwiZW1haWwiOiJhZGFAZXhhbXBsZS5j"
    "b20iLCJhdWQiOiJodHRwczovL3JlcWlvLmFwcC9wL3Byb2pfYWJjMTIzIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOj"
    "E3MDAwMDAzMDB9.c2lnbmF0dXJlLW9mLWEtZml4ZWQtbGl0ZXJhbC10b2tlbi0tLS0"
)


def bench_e2e(quick: bool) -> None:
    """Real servers on loopback under wrk: wrapped vs bare, then nginx ``sub_filter``."""
    import shutil

    if shutil.which("wrk") is None:
        row("e2e", "all", "n/a (wrk not installed)", "", "")
        return
    rounds = 1 if quick else 3
    for kind, title in E2E_SERVERS:
        servers = {wrap: _start_server(kind, wrap) for wrap in (False, True)}
        try:
            with urllib.request.urlopen(servers[True][1] + "/ident", timeout=10) as resp:
                if b"data-identity-token" not in resp.read():
                    NOTES.append(f"e2e {kind}: the wrapped /ident page has no token")
            for label, path in (
                ("20 KB identified page", "/ident"),
                ("20 KB anonymous page", "/anon"),
                ("JSON", "/json"),
            ):
                got = _interleaved(
                    {"bare": servers[False][1] + path, "ours": servers[True][1] + path}, rounds
                )
                ratio = got["ours"][0] / got["bare"][0]
                check = f"{ratio:.2f}x bare req/s"
                if path == "/ident":
                    check = verdict(ratio >= 0.95, f"{ratio:.2f}x bare req/s (≥ 0.95x)")
                row(
                    f"e2e {title}, wrk -t1 -c16 -d{E2E_SECONDS}s",
                    label,
                    _e2e_cell(*got["ours"]),
                    f"bare {_e2e_cell(*got['bare'])}",
                    check,
                )
            big = {
                wrap: _download_rss(_worker_pid(servers[wrap][0], kind), servers[wrap][1] + "/big")
                for wrap in (False, True)
            }
            if not big[True][2] or big[True][0] < 100 * 1_000_000:
                NOTES.append(f"e2e {kind}: /big came without a token or short")
            row(
                f"e2e {title}",
                "100 MB identified page, one download",
                f"server RSS +{big[True][1] / 2**20:.1f} MiB while streaming",
                f"bare +{big[False][1] / 2**20:.1f} MiB",
                "",
            )
            if kind == "uvicorn":
                bench_nginx(servers[False][1], rounds)
        finally:
            for proc, _ in servers.values():
                _stop(proc)


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    # Kept-alive HTTP/1.1 connections to the app, as wrk keeps its own alive: otherwise
    # nginx would pay a TCP set-up per request that the direct rows do not.
    upstream app {{
        server {upstream};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{plain};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Accept-Encoding "";
        }}
    }}
    server {{
        listen 127.0.0.1:{sub};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # sub_filter only sees an uncompressed body.
            proxy_set_header Accept-Encoding "";
            sub_filter '{old}' '{new}';
            sub_filter_once on;
            # text/html is sub_filter_types' default (naming it again is a duplicate).
        }}
    }}
}}
"""


def _nginx() -> str | None:
    import shutil

    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def bench_nginx(upstream: str, rounds: int) -> None:
    """nginx ``sub_filter`` in front of the bare app: the C reference for a literal body edit.

    Three rows from one interleaved run on the 20 KB identified page: nginx with
    ``sub_filter`` (the same literal token on every page, nothing minted), nginx as a plain
    proxy, and the bare uvicorn app direct. ``sub_filter`` vs plain proxy is the cost of the
    literal rewrite in C; plain proxy vs direct is what a proxy hop costs on this machine.
    nginx runs as one foreground process (``master_process off``, one worker) with its
    config, pid, logs and temp files in a temporary directory.
    """
    import tempfile

    section = f"e2e nginx sub_filter → bare uvicorn, wrk -t1 -c16 -d{E2E_SECONDS}s"
    binary = _nginx()
    if binary is None:
        row(section, "20 KB identified page", "n/a (apt install nginx-light)", "", "")
        return
    old = f'<script src="{WIDGET_SRC}"'
    new = f'<script data-identity-token="{NGINX_TOKEN}" src="{WIDGET_SRC}"'
    if old.encode() not in make_page(20_000, "end"):  # the page e2e_app serves
        NOTES.append("e2e nginx: the sub_filter literal is not on the page (pages.py changed?)")
    version = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr.strip()
    with tempfile.TemporaryDirectory(prefix="reqio-nginx-") as tmp:
        plain, sub = _free_port(), _free_port()
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                tmp=tmp,
                upstream=upstream.removeprefix("http://"),
                plain=plain,
                sub=sub,
                old=old,
                new=new,
            )
        )
        # -e: the error log before the config is read (not /var/log/nginx); -p: the prefix.
        try:
            proc = _spawn(
                [binary, "-p", tmp, "-e", f"{tmp}/error.log", "-c", str(conf)],
                "nginx",
                f"http://127.0.0.1:{plain}/json",
            )
        except RuntimeError as exc:
            row(section, "20 KB identified page", f"n/a ({exc})", "", "")
            return
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{sub}/ident", timeout=10) as resp:
                body = resp.read()
            if f'data-identity-token="{NGINX_TOKEN}"'.encode() not in body:
                NOTES.append("e2e nginx: sub_filter did not put the token on the page")
            got = _interleaved(
                {
                    "sub": f"http://127.0.0.1:{sub}/ident",
                    "plain": f"http://127.0.0.1:{plain}/ident",
                    "direct": upstream + "/ident",
                },
                rounds,
            )
        finally:
            _stop(proc)

    row(
        section,
        f"20 KB identified page: {version.split(': ')[-1]} + sub_filter (literal token)",
        _e2e_cell(*got["sub"]),
        f"nginx plain proxy {_e2e_cell(*got['plain'])}",
        f"{got['sub'][0] / got['plain'][0]:.2f}x plain proxy req/s",
    )
    row(
        section,
        "20 KB identified page: nginx plain proxy",
        _e2e_cell(*got["plain"]),
        f"bare uvicorn direct {_e2e_cell(*got['direct'])}",
        f"{got['plain'][0] / got['direct'][0]:.2f}x direct req/s",
    )


def plot(path: str) -> None:
    """Time per page against page size: ours, python-lolhtml and the ``bytes.find`` floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    series = (
        ("whole", "rewrite_html (whole)", "-o"),
        ("stream", "HTMLRewriter (64 KiB chunks)", "-s"),
        ("lol", "python-lolhtml (64 KiB chunks)", "--^"),
        ("find", "bytes.find floor", ":."),
    )
    panels = zip(axes, ("end", None), ("widget near the end", "no widget"), strict=True)
    for ax, where, title in panels:
        sizes = sorted(size for size, w in REWRITER if w == where)
        for key, label, style in series:
            points = [(n, REWRITER[(n, where)][key]) for n in sizes if key in REWRITER[(n, where)]]
            if points:
                ax.loglog(
                    [n / 1e6 for n, _ in points], [t * 1e3 for _, t in points], style, label=label
                )
        ax.set_title(title)
        ax.set_xticks([n / 1e6 for n in sizes], [fmt_size(n) for n in sizes])
        ax.set_xlabel("page size")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("time per page (ms)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"reqio-middleware rewriter vs lol-html; {machine().split(';')[0]}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}")


# --- report -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for dist in ("reqio-middleware", "python-lolhtml", "PyJWT", "starlette"):
        try:
            from importlib.metadata import version

            versions.append(f"{dist} {version(dist)}")
        except Exception:
            versions.append(f"{dist} -")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, {cpu}, load average {load} at start; "
        f"Python {platform.python_version()} "
        f"({platform.python_implementation()}); {platform.system()} {platform.release()}; "
        + ", ".join(versions)
    )


def print_table() -> None:
    header = ("section", "case", "ours", "compared with (same run)", "ratio / target")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, a rougher table")
    parser.add_argument(
        "--e2e",
        action="store_true",
        help="also run real servers (uvicorn, gunicorn, waitress, nginx) under wrk on loopback",
    )
    parser.add_argument("--plot", metavar="PNG", help="also draw rewriter time vs page size")
    parser.add_argument(
        "--only", default="", help="comma-separated sections: rewriter,token,stream,asgi,wsgi,e2e"
    )
    args = parser.parse_args(argv)
    only = {s for s in args.only.split(",") if s}

    def want(name: str) -> bool:
        return not only or name in only

    timer = Timer(args.quick)
    started = time.monotonic()
    print(f"machine: {machine()}", flush=True)
    t_jwt, token = bench_tokens(timer)  # always: the other sections compare against it
    if want("rewriter"):
        bench_rewriter(timer, args.quick, token)
    if want("stream"):
        bench_stream(timer, token)
        bench_asgi_stream(timer)
    if want("asgi"):
        bench_asgi(timer, t_jwt)
    if want("wsgi"):
        bench_wsgi(timer, t_jwt)
    if args.e2e or "e2e" in only:
        bench_e2e(args.quick)
    print()
    print_table()
    if args.plot and REWRITER:
        plot(args.plot)
    for note in NOTES:
        print(f"note: {note}")
    print(f"\n({time.monotonic() - started:.0f} s; figures are medians, MB = 10^6 bytes)")
    return 1 if any(n.startswith("WRONG") for n in NOTES) else 0


if __name__ == "__main__":
    sys.exit(main())
