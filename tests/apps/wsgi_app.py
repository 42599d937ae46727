"""A plain PEP 3333 app for real WSGI servers: bare under ``/bare/``, wrapped elsewhere."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any
from wsgiref.util import FileWrapper

from .common import JSON_BODY, PAGE, SETTINGS, iter_stream, user_from_environ

BIG_PADDING = 300_000
INDEX = Path(__file__).parent / "static" / "index.html"


def bare(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/page":
        start_response(
            "200 OK",
            [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(PAGE)))],
        )
        # Like Flask and Django, honour HEAD here: waitress sends whatever body it is given.
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [PAGE]
    if path == "/head-body":
        # PEP 3333 lets an app return its body for HEAD too; the server drops it, but waitress
        # first counts it into a Content-Length.
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [PAGE]
    if path in ("/stream", "/bigstream"):
        big = path == "/bigstream"
        start_response("200 OK", [("Content-Type", "text/html")])
        return _stream(16_384 if big else 64, BIG_PADDING if big else 0)
    if path in ("/static/", "/file"):
        # A static file the way servers prefer it: wsgi.file_wrapper, validators, a length;
        # /static/ answers revalidations with 304, /file renders again (as FileResponse does).
        stat = INDEX.stat()
        etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        if path == "/static/" and environ.get("HTTP_IF_NONE_MATCH") == etag:
            start_response("304 Not Modified", [("ETag", etag)])
            return []
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(stat.st_size)),
                ("ETag", etag),
                ("Last-Modified", formatdate(stat.st_mtime, usegmt=True)),
                ("Accept-Ranges", "bytes"),
                ("Cache-Control", "public, max-age=60"),
            ],
        )
        wrapper = environ.get("wsgi.file_wrapper", FileWrapper)
        return wrapper(INDEX.open("rb"), 8192)  # type: ignore[no-any-return]
    if path == "/json":
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(JSON_BODY)))],
        )
        return [JSON_BODY]
    if path == "/health":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]


def _stream(size: int, padding: int) -> Iterator[bytes]:
    yield from iter_stream(size, padding)


def _build() -> Callable[..., Iterable[bytes]]:
    from reqio_middleware import ReqioWSGIMiddleware

    wrapped = ReqioWSGIMiddleware(bare, resolver=user_from_environ, **SETTINGS)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/bare/"):
            environ["PATH_INFO"] = path[len("/bare") :]
            return bare(environ, start_response)
        return wrapped(environ, start_response)

    return app


app = _build()
