"""What a compressed page costs: decoded, rewritten and re-encoded for a signed-in visitor,
against the same page passed through for an anonymous one and the same page uncompressed.

Needs ``reqio_middleware.compression``; without it a compressed page passes through untokened
and the rows are skipped with that reason.
"""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import zlib
from collections.abc import Callable
from typing import Any

from common import PROJECT_ID, SECRET
from inprocess import asgi_scope, receive_empty, wsgi_call, wsgi_environ
from pages import make_page
from report import NOTES, fmt_delta, fmt_t, row, skipped
from timing import Timer

PAGE = make_page(100_000, "end")
GZIPPED = gzip.compress(PAGE, compresslevel=6)
SECTION = "compressed page"


def bench_compressed(timer: Timer) -> None:
    if importlib.util.find_spec("reqio_middleware.compression") is None:
        skipped(SECTION, "gzip 100 KB", "reqio_middleware.compression is not there yet")
        return
    from reqio_middleware import ReqioMiddleware, ReqioWSGIMiddleware

    floor = timer(lambda: zlib.compress(zlib.decompress(GZIPPED, 31), 6))
    asgi = {
        body: ReqioMiddleware(_asgi_app(body, encoded), secret=SECRET, project_id=PROJECT_ID)
        for body, encoded in ((GZIPPED, True), (PAGE, False))
    }
    loop = asyncio.new_event_loop()
    try:
        fns = {
            "gzip signed-in": _asgi(loop, asgi[GZIPPED], True),
            "gzip anonymous": _asgi(loop, asgi[GZIPPED], False),
            "plain signed-in": _asgi(loop, asgi[PAGE], True),
        }
        if _checked("ASGI", fns):
            _compressed_row("ASGI", timer.compare(fns), floor)
    finally:
        loop.close()
    wsgi = {
        body: ReqioWSGIMiddleware(_wsgi_app(body, encoded), secret=SECRET, project_id=PROJECT_ID)
        for body, encoded in ((GZIPPED, True), (PAGE, False))
    }
    fns = {
        "gzip signed-in": lambda: wsgi_call(wsgi[GZIPPED], wsgi_environ("/", True)),
        "gzip anonymous": lambda: wsgi_call(wsgi[GZIPPED], wsgi_environ("/", False)),
        "plain signed-in": lambda: wsgi_call(wsgi[PAGE], wsgi_environ("/", True)),
    }
    if _checked("WSGI", fns):
        _compressed_row("WSGI", timer.compare(fns), floor)


def _checked(section: str, fns: dict[str, Callable[[], bytes]]) -> bool:
    """Signed-in: a gzip body holding exactly one token; anonymous: the app's bytes."""
    rewritten = fns["gzip signed-in"]()
    try:
        stamped = zlib.decompress(rewritten, 31).count(b"data-identity-token")
    except zlib.error:
        stamped = -1
    if stamped != 1 or fns["gzip anonymous"]() != GZIPPED:
        NOTES.append(f"WRONG OUTPUT: compressed page via {section} ({stamped} token(s))")
        return False
    return True


def _compressed_row(section: str, t: dict[str, float], floor: float) -> None:
    added = t["gzip signed-in"] - t["gzip anonymous"]
    row(
        f"{SECTION} ({section})",
        f"gzip 100 KB ({len(GZIPPED) // 1000} KB on the wire), signed-in",
        f"{fmt_t(t['gzip signed-in'])}/req ({fmt_delta(added)} over passing it through)",
        f"anonymous pass-through {fmt_t(t['gzip anonymous'])} · uncompressed signed-in "
        f"{fmt_t(t['plain signed-in'])} · zlib decompress+compress alone {fmt_t(floor)}",
        f"added {added / floor:.2f}x zlib's own round trip",
    )


def _asgi_app(body: bytes, encoded: bool) -> Any:
    headers = [(b"content-type", b"text/html; charset=utf-8")]
    if encoded:
        headers.append((b"content-encoding", b"gzip"))
    headers.append((b"content-length", str(len(body)).encode()))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def _asgi(loop: asyncio.AbstractEventLoop, app: Any, signed_in: bool) -> Callable[[], bytes]:
    scope = asgi_scope("/", signed_in)

    async def once() -> bytes:
        out: list[bytes] = []

        async def send(message: Any) -> None:
            if message["type"] == "http.response.body":
                out.append(message.get("body", b""))

        await app(dict(scope), receive_empty, send)
        return b"".join(out)

    return lambda: loop.run_until_complete(once())


def _wsgi_app(body: bytes, encoded: bool) -> Any:
    headers = [("Content-Type", "text/html; charset=utf-8")]
    if encoded:
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(body))))

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", list(headers))
        return [body]

    return app
