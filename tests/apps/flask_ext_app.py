"""A Flask application with Flask-Login and (optionally) Flask-Compress, set up with ``Reqio``.

Users sign in with ``POST /login?user=<id>`` (Flask-Login's session cookie); their email is
``<id>@ex.test``. ``build(reqio=False)`` is the same application without Reqio, the reference
every page is compared with.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import flask_login
from flask import Flask, Response, jsonify, request, send_file, stream_with_context

from reqio_middleware.adapters.flask import Reqio

from .common import PAGE, PROJECT_ID, SECRET, iter_stream

TOKEN_PATH = "/_reqio/token"


class User(flask_login.UserMixin):  # type: ignore[misc]
    def __init__(self, pk: str) -> None:
        self.id, self.email = pk, pk + "@ex.test"


def build(
    *, reqio: bool = True, compress: str | None = None, config: dict[str, Any] | None = None
) -> Flask:
    """``compress``: ``"before"``/``"after"`` initialises Flask-Compress before/after Reqio."""
    app = Flask(__name__)
    app.secret_key = "flask-session-key-not-the-reqio-secret"
    app.config.update(REQIO_SECRET=SECRET, REQIO_PROJECT_ID=PROJECT_ID, REQIO_TOKEN_PATH=TOKEN_PATH)
    app.config.update(config or {})
    manager = flask_login.LoginManager(app)
    manager.user_loader(User)
    _routes(app)
    if compress == "before":
        _compress(app)
    if reqio:
        app.extensions["test_reqio"] = Reqio(app)
    if compress == "after":
        _compress(app)
    return app


def _compress(app: Flask) -> None:
    from flask_compress import Compress

    app.config["COMPRESS_MIN_SIZE"] = 0
    Compress(app)


def _routes(app: Flask) -> None:
    @app.post("/login")
    def login() -> str:
        flask_login.login_user(User(request.args["user"]))
        return "ok"

    @app.get("/page")
    def page() -> Response:
        return Response(PAGE, mimetype="text/html")

    @app.get("/stream")
    def stream() -> Response:
        def body() -> Iterator[bytes]:
            yield from iter_stream()

        return Response(stream_with_context(body()), mimetype="text/html")

    @app.get("/file")
    def file() -> Response:
        return send_file(io.BytesIO(PAGE), mimetype="text/html", etag="page-v1")

    @app.get("/json")
    def json_page() -> Response:
        response = jsonify(items=[1, 2, 3])
        response.set_etag("json-v1")
        return response


#: For the real-server tests: Flask-Compress on, with and without Reqio.
server_app = build(compress="before")
bare_server_app = build(reqio=False, compress="before")
