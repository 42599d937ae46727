"""Framework integrations: each framework's users configure Reqio the way that framework
configures everything else.

- :mod:`reqio_middleware.adapters.django`: ``ReqioMiddleware`` for ``MIDDLEWARE``,
  ``token_view`` for ``urls.py``, system checks for ``INSTALLED_APPS``.
- :mod:`reqio_middleware.adapters.flask`: the ``Reqio`` extension.
- :mod:`reqio_middleware.adapters.fastapi`: ``remember_identity`` and ``token_router``, for
  apps whose auth is ``Depends(...)``.
- :mod:`reqio_middleware.adapters.starlette`: ``user_resolver`` for ``AuthenticationMiddleware``.

For other frameworks (Litestar, Quart, Falcon... see ``docs/recipes``) the ASGI/WSGI middleware
reads the identity under :data:`IDENTITY_KEY` of the scope / environ, where the application
puts it, and :func:`token_reply` / :func:`atoken_reply` answer a token endpoint routed by the
framework itself, so that its sessions and authentication apply.

The framework modules are imported only when used, so installing one framework is enough.
"""

from __future__ import annotations

from ._endpoint import atoken_reply, identity_reply, token_reply

__all__ = ["IDENTITY_KEY", "atoken_reply", "identity_reply", "token_reply"]

#: Where the middleware reads the identity when it was given no resolver.
IDENTITY_KEY = "reqio.identity"
