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
cannot carry a token go out without the user being loaded. Nor is the user loaded when
Flask-Login could only find an anonymous one (no user id in the session, no remember cookie, no
request or header loader): the response then leaves exactly as the view made it. A HEAD is
treated as its GET (Flask renders the body and drops it), so its headers are the GET's.

Revalidation: for a signed-in conditional GET, ``If-None-Match``/``If-Modified-Since`` are set
aside while the view runs, so ``send_file`` and Flask's static files cannot answer 304 with an
anonymous copy the browser cached; a response that is not stamped is made conditional again.

The functions ``wrap``, ``init_app`` and ``request_resolver`` are the older integration (the
WSGI middleware around ``app.wsgi_app``), kept for existing code; prefer :class:`Reqio`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar

from reqio_middleware import endpoint
from reqio_middleware.adapters import IDENTITY_KEY
from reqio_middleware.adapters._config import build_settings, debug_flag
from reqio_middleware.adapters._endpoint import token_reply
from reqio_middleware.adapters._responses import (
    Headers,
    Outcome,
    ResponseDriver,
    log_stamp_failure,
    stream_sync,
)
from reqio_middleware.config import Settings
from reqio_middleware.core import CONDITIONAL_ENVIRON, Core
from reqio_middleware.identity import Identity, coerce_identity
from reqio_middleware.policy import PASS_ACTION

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
_HELD = "reqio.validators"  # the environ key of the validators set aside
_ENCODED_HINT = (
    "reqio: a signed-in user's HTML page reached the Reqio extension compressed "
    "(Content-Encoding: %s) and went out without a token: an after_request hook compressed it "
    "before Reqio's. This warning is logged once."
)
_CACHED_VALIDATORS = ("if_none_match", "if_modified_since")
_IF_NONE_MATCH, _IF_MODIFIED_SINCE = CONDITIONAL_ENVIRON
_FLASK_LOGIN_USER_ID = "_user_id"  # where flask_login.login_user() keeps the user's id
_REMEMBER_COOKIE = "remember_token"  # flask_login.config.COOKIE_NAME
_UNKNOWN = object()


def flask_login_identity() -> Identity | None:
    """Flask-Login's ``current_user``: ``sub`` from ``get_id()``, ``email`` if it has one."""
    try:
        from flask_login import current_user
    except ImportError:
        return None
    user = current_user._get_current_object()  # the proxy resolves the user on each use
    if not getattr(user, "is_authenticated", False):
        return None
    email = getattr(user, "email", None)
    return Identity(sub=user.get_id(), email=email if isinstance(email, str) and email else None)


def _flask_login_nobody(app: Flask, request: Any, session: Any, g: Any) -> bool:
    """Whether Flask-Login can only find an anonymous user here, known without loading it.

    That is: the user is not loaded yet, the login manager has no request or header loader
    (which could find a user anywhere), the session holds no user id and the request carries
    no remember cookie. Loading the user would then only compute the session identifier and
    answer ``AnonymousUserMixin``. Anything else (or a Flask-Login that keeps its loaders
    elsewhere) answers ``False``, and the user is loaded as usual.
    """
    if "_login_user" in g:
        return False
    manager = getattr(app, "login_manager", None)
    if (
        manager is None
        or getattr(manager, "_request_callback", _UNKNOWN) is not None
        or getattr(manager, "_header_callback", _UNKNOWN) is not None
        or _FLASK_LOGIN_USER_ID in session
    ):
        return False
    remember = app.config.get("REMEMBER_COOKIE_NAME", _REMEMBER_COOKIE)
    return remember not in request.cookies


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
        state = _State(self, app, settings, debug_flag(app.config.get))
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


class _State:
    """One app's settings, core and hooks (``app.extensions["reqio"]``)."""

    def __init__(self, reqio: Reqio, app: Flask, settings: Settings, debug: bool) -> None:
        from flask import after_this_request, g, request, session

        self.reqio = reqio
        self.app = app
        self.settings = settings
        self.driver = ResponseDriver(Core(settings, encoded_hint=_ENCODED_HINT, debug=debug))
        self.debug = self.driver.core.debug
        # Flask's context-local proxies, looked up once here rather than imported per request.
        self._after_this_request = after_this_request
        self._request: Any = request
        self._session: Any = session
        self._g: Any = g

    def before_request(self) -> None:
        request = self._request._get_current_object()
        environ = request.environ
        if (
            (_IF_NONE_MATCH in environ or _IF_MODIFIED_SINCE in environ)
            and request.method in ("GET", "HEAD")
            and self._identity()[0] is not None
        ):
            _set_validators_aside(request)
        self._after_this_request(self.after_request)

    def after_request(self, response: Response) -> Response:
        request = self._request._get_current_object()
        held = request.environ.pop(_HELD, None)
        if held is not None:
            _restore_validators(request, held)
        stamped = False
        if not self._surely_anonymous(request):
            stamped = self._consider(request, response)
        if not stamped and held is not None and _has_validators(response):
            response.make_conditional(request.environ)
        return response

    def _surely_anonymous(self, request: Any) -> bool:
        """Nobody can be signed in (see :meth:`_nobody`) and no debug header is due: the
        response leaves as the view made it, its headers unread."""
        if self.debug:
            return False
        session = self._session._get_current_object()
        accessed = getattr(session, "accessed", True)
        try:
            nobody = self._nobody(request, session)
        except Exception:  # the loader is asked then, and its failure handled as usual
            return False
        if not accessed:
            session.accessed = False
        return nobody

    def _consider(self, request: Any, response: Response) -> bool:
        """Whether the response is stamped, after reading its headers and, for a page, the
        user."""
        # A HEAD is decided as its GET: Flask renders its body, the server drops it.
        method = "GET" if request.method == "HEAD" else request.method
        status = response.status_code
        if self.driver.passes(method, status, response.headers.get("Content-Type")):
            return False
        headers = response.headers.to_wsgi_list()
        classified = self.driver.needs_identity(method, status, headers)
        if classified is None:
            return False
        return self._stamp(request, response, method, classified, headers)

    def _stamp(
        self, request: Any, response: Response, method: str, classified: Any, headers: Headers
    ) -> bool:
        identity, failed = (None, False)
        if classified[0] is not PASS_ACTION:
            identity, failed = self._identity()
            if identity is None and not self.debug:
                return False  # nobody to stamp, nothing to add
        try:
            outcome = self.driver.decide(
                method,
                classified,
                headers,
                identity,
                failed,
                streaming=response.is_streamed,
                body=response.get_data,
                where=f"{request.method} {request.path}" if self.debug else "",
            )
            _apply(response, outcome)
        except Exception as exc:  # never a 500 because of us
            log_stamp_failure(exc)
            return False
        return outcome.stamped

    def _identity(self) -> tuple[Identity | None, bool]:
        session = self._session._get_current_object()
        # Loading the user opens the session, and Flask then adds "Vary: Cookie"; an anonymous
        # page must leave as it would without Reqio, so only what the app read counts.
        accessed = getattr(session, "accessed", True)
        try:
            if self._nobody(self._request._get_current_object(), session):
                identity, failed = None, False
            else:
                identity, failed = self.reqio.identity(), False
        except Exception as exc:
            logger.error(
                "reqio: the identity loader raised %s: %s; the response goes out without a token",
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
            identity, failed = None, True
        if identity is None and not accessed:
            session.accessed = False
        return identity, failed

    def _nobody(self, request: Any, session: Any) -> bool:
        """The default loader, and Flask-Login can only find an anonymous user."""
        return self.reqio._load_identity is flask_login_identity and _flask_login_nobody(
            self.app, request, session, self._g._get_current_object()
        )

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


def _apply(response: Response, outcome: Outcome) -> None:
    from werkzeug.datastructures import Headers as WerkzeugHeaders

    if outcome.page is not None:
        original = response.response
        chunks = stream_sync(outcome.page, response.iter_encoded())
        response.response = _Stream(chunks, getattr(original, "close", None))
    elif outcome.body is not None:
        if outcome.headers is None:
            response.set_data(outcome.body)
        else:  # the new headers carry the new Content-Length
            response.response = [outcome.body]
    if outcome.headers is not None:
        response.headers = WerkzeugHeaders(outcome.headers)


class _Stream:
    """A streamed body through the rewriter; closing it closes the view's iterable."""

    def __init__(self, chunks: Iterator[bytes], close: Callable[[], object] | None) -> None:
        self._chunks = chunks
        self._close = close

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        if self._close is not None:
            self._close()


def _has_validators(response: Response) -> bool:
    return "ETag" in response.headers or "Last-Modified" in response.headers


def _set_validators_aside(request: Any) -> None:
    environ = request.environ
    environ[_HELD] = {k: environ.pop(k) for k in CONDITIONAL_ENVIRON if k in environ}
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
