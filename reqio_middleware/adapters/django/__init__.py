"""Django: ``ReqioMiddleware`` in ``MIDDLEWARE``, ``token_view`` in ``urls.py``, checks in
``INSTALLED_APPS``::

    # settings.py
    INSTALLED_APPS = [..., "reqio_middleware.adapters.django"]   # system checks
    MIDDLEWARE = [
        "django.middleware.gzip.GZipMiddleware",                  # outer: compresses our output
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "reqio_middleware.adapters.django.ReqioMiddleware",       # after auth and compression
        ...,
    ]
    REQIO_SECRET = "..."           # each REQIO_* setting falls back to the environment
    REQIO_PROJECT_ID = "proj_..."  # optional: REQIO_AUDIENCE, REQIO_WIDGET_SRC, REQIO_TTL,
                                   # REQIO_USER_IDENTITY (dotted path: user -> Identity/dict/None)
    # urls.py
    from reqio_middleware.adapters.django import script_view, token_view
    urlpatterns = [..., path("_reqio/token", token_view), path("_reqio/token.js", script_view)]

The older integration (an identity middleware plus a WSGI/ASGI wrap) lives in
:mod:`~reqio_middleware.adapters.django.legacy` and is re-exported here.
"""

from __future__ import annotations

from .identity import default_identity, identity_for
from .legacy import ReqioIdentityMiddleware, async_user_resolver, user_resolver
from .middleware import ReqioMiddleware
from .views import script_view, token_view

__all__ = [
    "ReqioIdentityMiddleware",
    "ReqioMiddleware",
    "async_user_resolver",
    "default_identity",
    "identity_for",
    "script_view",
    "token_view",
    "user_resolver",
]
