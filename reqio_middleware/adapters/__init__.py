"""Framework adapters: put the signed-in user where the outer middleware looks for it.

The middleware wraps the whole application, so it cannot see a framework's idea of "the current
user" directly. Each adapter bridges that gap in the framework's own terms and stores an
:class:`~reqio_middleware.identity.Identity` under :data:`IDENTITY_KEY` of the WSGI environ /
ASGI scope (the key the middleware reads when no ``resolver`` is given), or gives the middleware a
resolver that reads the framework's own state:

- :mod:`reqio_middleware.adapters.django`: ``ReqioIdentityMiddleware`` for ``MIDDLEWARE``.
- :mod:`reqio_middleware.adapters.flask`: ``init_app(app)`` / ``wrap(app, ...)``.
- :mod:`reqio_middleware.adapters.starlette`: ``user_resolver`` for ``AuthenticationMiddleware``.

The framework modules are imported only when used, so installing one framework is enough.
"""

from __future__ import annotations

__all__ = ["IDENTITY_KEY"]

#: Where the middleware reads the identity when it was given no resolver.
IDENTITY_KEY = "reqio.identity"
