"""Misbehaving ASGI and WSGI applications for the fault tests (tests/test_faults.py).

Each builder takes a ``kind`` naming the fault, so a test can run the same fault bare and
wrapped and compare what the server saw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .common import PAGE, page


class AppFailure(Exception):
    """What the faulty applications raise: a type of our own, so a test can tell it apart."""


HTML = [(b"content-type", b"text/html; charset=utf-8")]
STREAM_PAGE = page("Streamed", padding=10_000)


def asgi_app(kind: str) -> Callable[..., Any]:
    """An ASGI app that fails (or misbehaves) the way ``kind`` says."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        start = {"type": "http.response.start", "status": 200, "headers": list(HTML)}
        if kind == "raise-before":
            raise AppFailure("before start")
        if kind == "raise-after-start":
            await send(start)
            raise AppFailure("after start")
        if kind == "raise-after-body":  # the whole body sent, then a failure on the way out
            await send(start)
            await send({"type": "http.response.body", "body": PAGE})
            raise AppFailure("after body")
        if kind == "raise-mid-stream":
            await send(start)
            await send(
                {"type": "http.response.body", "body": STREAM_PAGE[:5000], "more_body": True}
            )
            raise AppFailure("mid stream")
        if kind == "body-before-start":
            await send({"type": "http.response.body", "body": PAGE})
            return
        if kind == "two-starts":
            await send(start)
            await send(start)
            await send({"type": "http.response.body", "body": PAGE})
            return
        if kind == "after-final-body":
            await send(start)
            await send({"type": "http.response.body", "body": PAGE})
            await send({"type": "http.response.body", "body": b"more"})
            return
        if kind == "stream":  # a long identified page, in many chunks, that watches for leaving
            await send(start)
            for i in range(0, len(STREAM_PAGE), 1000):
                await send(
                    {
                        "type": "http.response.body",
                        "body": STREAM_PAGE[i : i + 1000],
                        "more_body": True,
                    }
                )
            await send({"type": "http.response.body", "body": b""})
            return
        if kind == "page":
            await send(start)
            await send({"type": "http.response.body", "body": PAGE})
            return
        raise ValueError(kind)

    return app


def wsgi_app(kind: str) -> Callable[..., Iterable[bytes]]:
    """A WSGI app that fails the way ``kind`` says."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if kind == "raise-before":
            raise AppFailure("before start")
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        if kind == "raise-after-start":
            raise AppFailure("after start")
        if kind == "raise-in-iterable":
            return _failing()
        if kind == "page":
            return [PAGE]
        raise ValueError(kind)

    return app


def _failing() -> Iterator[bytes]:
    yield STREAM_PAGE[:5000]
    raise AppFailure("mid stream")
