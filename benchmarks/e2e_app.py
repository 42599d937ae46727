"""The applications served by ``run.py --e2e`` on loopback.

``app``: Starlette, for uvicorn (``--app-dir benchmarks e2e_app:app``); unwrapped, it is
also what nginx proxies to for the ``sub_filter`` rows. ``wsgi_app``: Flask, for gunicorn and
waitress (``e2e_app:wsgi_app``). With ``REQIO_BENCH_WRAP=1`` each is wrapped in the Reqio
middleware; otherwise it is the bare app. Both store the identity the same way either way, so
the only difference measured is the middleware.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

from pages import CHUNK, PROJECT_ID, chunks, make_page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

WRAP = os.environ.get("REQIO_BENCH_WRAP") == "1"
IDENTITY = {"sub": "user_42", "email": "ada@example.com"}
PAGE = make_page(20_000, "end")
DATA = {"ok": True, "items": [{"id": i, "name": f"item {i}"} for i in range(20)]}
# /big: 100 MB in 64 KiB chunks, the widget in the first MB (references to 2 MB of chunks).
BIG = chunks(make_page(1_000_000, "top"), CHUNK) + chunks(make_page(1_000_000), CHUNK) * 99


async def ident(request: Request) -> Response:
    request.scope["reqio.identity"] = IDENTITY
    return HTMLResponse(PAGE)


async def anon(request: Request) -> Response:
    return HTMLResponse(PAGE)


async def data(request: Request) -> Response:
    return JSONResponse(DATA)


async def big(request: Request) -> Response:
    request.scope["reqio.identity"] = IDENTITY

    async def body() -> AsyncIterator[bytes]:
        for part in BIG:
            yield part

    return StreamingResponse(body(), media_type="text/html; charset=utf-8")


bare = Starlette(
    routes=[Route("/ident", ident), Route("/anon", anon), Route("/json", data), Route("/big", big)]
)
app: Any = bare


def _flask() -> Any:
    from flask import Flask, jsonify, request
    from flask import Response as FlaskResponse

    flask_app = Flask("e2e")

    @flask_app.get("/ident")
    def f_ident() -> str:
        request.environ["reqio.identity"] = IDENTITY
        return PAGE.decode()

    @flask_app.get("/anon")
    def f_anon() -> str:
        return PAGE.decode()

    @flask_app.get("/json")
    def f_json() -> Any:
        return jsonify(DATA)

    @flask_app.get("/big")
    def f_big() -> Any:
        request.environ["reqio.identity"] = IDENTITY

        def body() -> Iterator[bytes]:
            yield from BIG

        return FlaskResponse(body(), mimetype="text/html")

    return flask_app


wsgi_app: Any = None
with contextlib.suppress(ImportError):  # Flask is a test extra; the ASGI half works without it
    wsgi_app = _flask()

if WRAP:
    from reqio_middleware import ReqioMiddleware, ReqioWSGIMiddleware

    app = ReqioMiddleware(bare, project_id=PROJECT_ID)
    if wsgi_app is not None:
        wsgi_app.wsgi_app = ReqioWSGIMiddleware(wsgi_app.wsgi_app, project_id=PROJECT_ID)
