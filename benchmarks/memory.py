"""100 MB streamed through the rewriter and the ASGI middleware: throughput and peak memory."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Callable, Iterable
from typing import Any

from common import PROJECT_ID, SECRET, find_all
from inprocess import asgi_scope, discard, receive_empty
from pages import CHUNK, chunks, make_page
from report import NOTES, fmt_rate, fmt_t, row, verdict
from timing import Timer

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
        loop.run_until_complete(wrapped(dict(scope), receive_empty, count))

        async def ours() -> None:
            await wrapped(dict(scope), receive_empty, discard)

        async def bare() -> None:
            await app(dict(scope), receive_empty, discard)

        t = timer.compare_async(loop, {"ours": ours, "bare": bare})
        seconds, bare_seconds = t["ours"], t["bare"]
        peak = peak_extra(
            lambda: loop.run_until_complete(wrapped(dict(scope), receive_empty, discard))
        )
    finally:
        loop.close()
    row(
        "stream",
        "ReqioMiddleware (ASGI), 100 MB in 64 KiB messages",
        f"{fmt_rate(sent[0], seconds)} ({fmt_t(seconds)}), peak +{peak / 1024:.0f} KiB",
        f"the same app unwrapped {fmt_t(bare_seconds)}",
        verdict(peak <= 1 << 20, "≤ 1 MiB"),
    )
