"""Flask: the ``Reqio`` extension, configured from ``app.config`` like any Flask extension::

    from flask import Flask, g
    from reqio_middleware.adapters.flask import Reqio

    app = Flask(__name__)
    app.config["REQIO_SECRET"] = "..."         # each key falls back to the environment
    app.config["REQIO_PROJECT_ID"] = "proj_..."
    reqio = Reqio(app)                         # or: reqio = Reqio(); reqio.init_app(app)

    @reqio.identity_loader                     # optional: the default is Flask-Login's
    def current_identity() -> dict[str, str] | None:          # current_user, if installed
        return {"sub": str(g.user.id)} if g.get("user") else None

Keys: ``REQIO_SECRET``, ``REQIO_PROJECT_ID``, ``REQIO_AUDIENCE``, ``REQIO_WIDGET_SRC``,
``REQIO_TTL`` and ``REQIO_TOKEN_PATH`` (the token endpoint, a Flask route, so sessions,
``before_request`` hooks and Flask-Login apply to it; its browser helper is served at the same
path plus ``.js``). A missing secret or audience raises at ``init_app``, naming the key.

How it fits in Flask: the rewrite runs after the view, before every ``after_request`` hook, so
extensions that compress (Flask-Compress) compress the stamped page, whichever was initialised
first. It looks at the response's status and headers first: JSON, files and anything else that
cannot carry a token go out without the user being loaded. A HEAD is treated as its GET (Flask
renders the body and drops it), so its headers are the GET's.

Revalidation: for a signed-in conditional GET, ``If-None-Match``/``If-Modified-Since`` are set
aside while the view runs, so ``send_file`` and Flask's static files cannot answer 304 with an
anonymous copy the browser cached; a response that is not stamped is made conditional again.

The functions ``wrap``, ``init_app`` and ``request_resolver`` are the older integration (the
WSGI middleware around ``app.wsgi_app``), kept for existing code; prefer :class:`Reqio`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from reqio_middleware import endpoint
from reqio_middleware.adapters import IDENTITY_KEY
from reqio_middleware.adapters._config import build_settings
from reqio_middleware.adapters._endpoint import token_reply
from reqio_middleware.config import Settings
from reqio_middleware.identity import Identity, coerce_identity
from reqio_middleware.policy import REWRITE_ACTION, classify, edit_headers
from reqio_middleware.rewriter import HTMLRewriter

if TYPE_CHECKING:
    from flask import Flask
    from flask.wrappers import Response

__all__ = [
    "IdentityLoader",
    "Reqio",
    "flask_login_identity",
    "init_app",
    "request_resolver",
    "wrap",
]

logger = logging.getLogger("reqio_middleware")

#: A zero-argument function run in the request context: the signed-in user's identity (an
#: ``Identity`` or a mapping of its fields), or ``None`` when nobody is signed in.
IdentityLoader = Callable[[], "Identity | Mapping[str, Any] | None"]
_Loader = TypeVar("_Loader", bound=IdentityLoader)

_EXTENSION = "reqio"
_LEGACY_EXTENSION = "reqio_identity_loader"  # the older init_app()/wrap()
_VALIDATORS = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE")
_CACHED_VALIDATORS = ("if_none_match", "if_modified_since")


def flask_login_identity() -> Identity | None:
    """Flask-Login's ``current_user``: ``sub`` from ``get_id()``, ``email`` if it has one."""
    try:
        from flask_login import current_user
    except ImportError:
        return None
    if not getattr(current_user, "is_authenticated", False):
        return None
    email = getattr(current_user, "email", None)
    return Identity(
        sub=current_user.get_id(), email=email if isinstance(email, str) and email else None
    )


class Reqio:
    """The Flask extension: stamps the widget tag of signed-in users' pages."""

    def __init__(self, app: Flask | None = None) -> None:
        self._load_identity: IdentityLoader = flask_login_identity
        if app is not None:
            self.init_app(app)

    def identity_loader(self, func: _Loader) -> _Loader:
        """Decorator: the function that says who is signed in (see :data:`IdentityLoader`)."""
        self._load_identity = func
        return func

    def init_app(self, app: Flask) -> None:
        """Read ``app.config`` (raising, with the key, if it cannot work) and hook into ``app``."""
        settings = build_settings(app.config.get, "app.config", token_path=True)
        state = _State(self, settings)
        app.extensions[_EXTENSION] = state
        # First of the app's before_request hooks, so that nothing earlier can skip it; it
        # registers the rewrite to run before every after_request hook.
        app.before_request_funcs.setdefault(None, []).insert(0, state.before_request)
        if settings.token_path is not None:
            app.add_url_rule(
                settings.token_path, "reqio_token", state.token_view, methods=["GET", "POST"]
            )
        if settings.script_path is not None:
            app.add_url_rule(settings.script_path, "reqio_script", state.script_view)

    def identity(self) -> Identity | None:
        """The current request's identity (in a request context); errors propagate."""
        return coerce_identity(self._load_identity())


@dataclass
class _State:
    """One app's settings and hooks (``app.extensions["reqio"]``)."""

    reqio: Reqio
    settings: Settings

    def before_request(self) -> None:
        from flask import after_this_request, request

        environ = request.environ
        if (
            request.method in ("GET", "HEAD")
            and ("HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ)
            and self._identity() is not None
        ):
            _set_validators_aside(request)
        after_this_request(self.after_request)

    def after_request(self, response: Response) -> Response:
        from flask import request

        held = request.environ.pop("reqio.validators", None)
        if held is not None:
            _restore_validators(request, held)
        method = "GET" if request.method == "HEAD" else request.method
        action = classify(method, response.status_code, response.headers.items())[0]
        try:
            if action is REWRITE_ACTION:
                identity = self._identity()
                if identity is not None and self._stamp(response, identity):
                    return response
        except Exception as exc:  # never a 500 because of us
            logger.error(
                "reqio: could not stamp the page, it goes out without a token: %s: %s",
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
        if held is not None and ("ETag" in response.headers or "Last-Modified" in response.headers):
            response.make_conditional(request.environ)
        return response

    def _identity(self) -> Identity | None:
        from flask import session

        # Loading the user opens the session, and Flask then adds "Vary: Cookie"; an anonymous
        # page must leave as it would without Reqio, so only what the app read counts.
        accessed = getattr(session, "accessed", True)
        try:
            identity = self.reqio.identity()
        except Exception as exc:
            logger.error(
                "reqio: the identity loader raised %s: %s; the response goes out without a token",
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
            identity = None
        if identity is None and not accessed:
            session.accessed = False  # type: ignore[attr-defined,unused-ignore]
        return identity

    def _stamp(self, response: Response, identity: Identity) -> bool:
        from werkzeug.datastructures import Headers

        if response.is_streamed:
            original = response.response
            chunks = response.iter_encoded()
            closers = [original.close] if hasattr(original, "close") else []
            response.response = _Stream(_rewrite(chunks, self.settings.rewriter(identity)), closers)
            response.headers = Headers(edit_headers(list(response.headers.items()), None))
            return True
        new = self.settings.rewrite(response.get_data(), identity)
        if new is None:  # no widget tag, or the minter refused (logged)
            return False
        response.set_data(new)
        length = len(new) if "Content-Length" in response.headers else None
        response.headers = Headers(edit_headers(list(response.headers.items()), length))
        return True

    def token_view(self) -> Response:
        from flask import request

        reply = token_reply(
            self.settings,
            self.reqio.identity,
            method=request.method,
            sec_fetch_site=request.headers.get("Sec-Fetch-Site"),
            origin=request.headers.get("Origin"),
            scheme=request.scheme,
            host=request.host,
        )
        return _response(reply)

    def script_view(self) -> Response:
        from flask import request

        return _response(endpoint.script(request.method))


class _Stream:
    """A streamed body through the rewriter; closing it closes the view's iterable."""

    def __init__(self, chunks: Iterator[bytes], closers: list[Callable[[], object]]) -> None:
        self._chunks = chunks
        self._closers = closers

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        for close in self._closers:
            close()


def _rewrite(chunks: Iterable[bytes], rewriter: HTMLRewriter) -> Iterator[bytes]:
    for chunk in chunks:
        out = rewriter.feed(chunk)
        if out:
            yield out
    rest = rewriter.close()
    if rest:
        yield rest


def _set_validators_aside(request: Any) -> None:
    environ = request.environ
    environ["reqio.validators"] = {k: environ.pop(k) for k in _VALIDATORS if k in environ}
    for name in _CACHED_VALIDATORS:
        request.__dict__.pop(name, None)


def _restore_validators(request: Any, held: dict[str, str]) -> None:
    request.environ.update(held)
    for name in _CACHED_VALIDATORS:
        request.__dict__.pop(name, None)


def _response(reply: endpoint.Reply) -> Response:
    from flask import current_app

    response: Response = current_app.response_class(
        reply.body, status=reply.status, headers=reply.headers
    )
    return response


# --- the older integration ------------------------------------------------------------------


def init_app(app: Flask, identity: IdentityLoader | None = None) -> None:
    """Deprecated (use :class:`Reqio`): a hook that stores ``identity()`` in the environ for an
    outer ``ReqioWSGIMiddleware``."""
    warnings.warn(
        "reqio_middleware.adapters.flask.init_app() is deprecated: use Reqio(app)",
        DeprecationWarning,
        stacklevel=2,
    )
    _store_identity_after_requests(app, identity)


def _store_identity_after_requests(app: Flask, identity: IdentityLoader | None) -> None:
    func = identity or flask_login_identity
    app.extensions[_LEGACY_EXTENSION] = func

    def store_reqio_identity(response: Response) -> Response:
        from flask import request

        # None is stored too: "Flask ran, nobody is signed in" (see request_resolver).
        request.environ[IDENTITY_KEY] = coerce_identity(func())
        return response

    app.after_request(store_reqio_identity)


def request_resolver(app: Flask) -> Callable[[MutableMapping[str, Any]], Identity | None]:
    """For the older integration: what the hook stored, or ``identity()`` for the endpoint."""

    def resolve(environ: MutableMapping[str, Any]) -> Identity | None:
        if IDENTITY_KEY in environ:
            return coerce_identity(environ[IDENTITY_KEY])
        func: IdentityLoader = app.extensions.get(_LEGACY_EXTENSION, flask_login_identity)
        with app.request_context(dict(environ)):
            return coerce_identity(func())

    return resolve


def wrap(app: Flask, *, identity: IdentityLoader | None = None, **middleware_kwargs: Any) -> Flask:
    """Deprecated (use :class:`Reqio`): ``app.wsgi_app = ReqioWSGIMiddleware(app.wsgi_app)``
    plus the hook; returns ``app``."""
    from reqio_middleware.wsgi import ReqioWSGIMiddleware

    warnings.warn(
        "reqio_middleware.adapters.flask.wrap() is deprecated: use Reqio(app)",
        DeprecationWarning,
        stacklevel=2,
    )
    _store_identity_after_requests(app, identity)
    middleware_kwargs.setdefault("resolver", request_resolver(app))
    wrapped: Any = ReqioWSGIMiddleware(app.wsgi_app, **middleware_kwargs)  # type: ignore[arg-type,unused-ignore]
    app.wsgi_app = wrapped  # type: ignore[method-assign]
    return app
