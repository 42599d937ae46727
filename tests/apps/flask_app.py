"""A Flask application wrapped the documented way: ``app.wsgi_app = ReqioWSGIMiddleware(...)``.

With ``resolver=None`` the view itself stores the identity in
``request.environ["reqio.identity"]``, the default resolver's key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response, jsonify, request, stream_with_context

from .common import PAGE, SETTINGS, iter_stream


def build(wrapped: bool, resolver: Callable[..., Any] | None = None) -> Flask:
    app = Flask(__name__)

    def remember_user() -> None:
        user = request.headers.get("X-User")
        if user:
            request.environ["reqio.identity"] = {"sub": user, "email": user + "@ex.test"}

    @app.get("/page")
    def html_page() -> Response:
        remember_user()
        return Response(PAGE, mimetype="text/html")

    @app.get("/stream")
    def streamed() -> Response:
        remember_user()

        def body() -> Iterator[bytes]:
            yield from iter_stream()

        return Response(stream_with_context(body()), mimetype="text/html")

    @app.get("/json")
    def json_page() -> Response:
        remember_user()
        return jsonify(items=[1, 2, 3])

    if wrapped:
        from reqio_middleware import ReqioWSGIMiddleware

        app.wsgi_app = ReqioWSGIMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, resolver=resolver, **SETTINGS
        )
    return app
