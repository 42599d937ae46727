"""Flask: store the signed-in user's identity where the outer Reqio middleware reads it.

The Reqio WSGI middleware wraps ``app.wsgi_app`` and cannot see Flask's request context, so an
``after_request`` hook stores the identity in ``request.environ["reqio.identity"]``::

    from reqio_middleware.adapters.flask import wrap
    wrap(app, token_path="/_reqio/token")          # middleware + hook, secret from REQIO_SECRET

or, to place the middleware yourself::

    from reqio_middleware.adapters.flask import init_app
    init_app(app, identity=lambda: {"sub": g.user.id} if g.get("user") else None)
    app.wsgi_app = ReqioWSGIMiddleware(app.wsgi_app, resolver=request_resolver(app))

``identity`` is a zero-argument callable run inside the request context (so it can read
``flask.g``, ``session`` or Flask-Login's ``current_user``) that returns an ``Identity``, a
mapping or ``None``. The default uses Flask-Login's ``current_user`` when Flask-Login is
installed, and is anonymous otherwise.

The hook runs after the view, so a view that logs the user in renders a page with their token.
The token endpoint answers before Flask dispatches, so :func:`request_resolver` (used by
:func:`wrap`) runs ``identity`` in a fresh request context for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from reqio_middleware.adapters import IDENTITY_KEY
from reqio_middleware.identity import Identity, coerce_identity

if TYPE_CHECKING:
    from flask import Flask
    from flask.wrappers import Response

__all__ = ["flask_login_identity", "init_app", "request_resolver", "wrap"]

IdentityFunc = Callable[[], "Identity | Mapping[str, Any] | None"]

_EXTENSION = "reqio"


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


def init_app(app: Flask, identity: IdentityFunc | None = None) -> None:
    """Register the hook that stores ``identity()`` in the environ after each request."""
    func = identity or flask_login_identity
    app.extensions[_EXTENSION] = func

    def store_reqio_identity(response: Response) -> Response:
        from flask import request

        # None is stored too: "Flask ran, nobody is signed in" (see request_resolver).
        request.environ[IDENTITY_KEY] = coerce_identity(func())
        return response

    app.after_request(store_reqio_identity)


def request_resolver(app: Flask) -> Callable[[MutableMapping[str, Any]], Identity | None]:
    """A resolver that reads what the hook stored, or asks ``identity()`` for the endpoint."""

    def resolve(environ: MutableMapping[str, Any]) -> Identity | None:
        if IDENTITY_KEY in environ:
            return coerce_identity(environ[IDENTITY_KEY])
        func: IdentityFunc = app.extensions.get(_EXTENSION, flask_login_identity)
        with app.request_context(dict(environ)):
            return coerce_identity(func())

    return resolve


def wrap(app: Flask, *, identity: IdentityFunc | None = None, **middleware_kwargs: Any) -> Flask:
    """``init_app`` plus ``app.wsgi_app = ReqioWSGIMiddleware(app.wsgi_app, ...)``; returns app."""
    from reqio_middleware.wsgi import ReqioWSGIMiddleware

    init_app(app, identity)
    middleware_kwargs.setdefault("resolver", request_resolver(app))
    wrapped: Any = ReqioWSGIMiddleware(app.wsgi_app, **middleware_kwargs)  # type: ignore[arg-type,unused-ignore]
    app.wsgi_app = wrapped  # type: ignore[method-assign]
    return app
