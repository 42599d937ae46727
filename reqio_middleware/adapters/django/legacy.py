"""The older Django integration: the identity stored for an outer ASGI/WSGI middleware.

Prefer :class:`~reqio_middleware.adapters.django.ReqioMiddleware` in ``MIDDLEWARE``: it rewrites
inside Django's chain, so ``GZipMiddleware`` and ``ConditionalGetMiddleware`` work with it. This
way remains for stacks where Django is one application among others behind one WSGI/ASGI
middleware (the middleware then wraps the whole stack, not Django):
``ReqioIdentityMiddleware``, listed after ``AuthenticationMiddleware``, stores the user's
identity under ``"reqio.identity"`` of the WSGI environ (``request.META`` *is* the environ) or
of the ASGI scope (``request.scope``), where the outer middleware reads it once the response
has started::

    MIDDLEWARE = [..., "django.contrib.auth.middleware.AuthenticationMiddleware",
                  "reqio_middleware.adapters.django.ReqioIdentityMiddleware", ...]

    # wsgi.py
    application = ReqioWSGIMiddleware(get_wsgi_application(),
                                      resolver=user_resolver, token_path="/_reqio/token")
    # asgi.py
    application = ReqioMiddleware(get_asgi_application(),
                                  resolver=async_user_resolver, token_path="/_reqio/token")

``resolver=`` is only needed for the token endpoint: the endpoint answers before Django runs, so
those resolvers read the user from the session themselves. For rewritten pages they return what
``ReqioIdentityMiddleware`` stored. The outer middleware must sit inside any compression
middleware of the outer stack, and Django's own ``GZipMiddleware`` cannot be used with it.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async

from reqio_middleware.adapters import IDENTITY_KEY
from reqio_middleware.identity import Identity

from .identity import default_identity, identity_for

__all__ = [
    "ReqioIdentityMiddleware",
    "async_user_resolver",
    "default_identity",
    "identity_for",
    "user_resolver",
]

# Stored for anonymous users: "Django ran and found no user", so the resolvers do not redo the
# session lookup for anonymous pages.
_ANONYMOUS = "reqio.anonymous"


def _store(request: Any, identity: Identity | None) -> None:
    scope = getattr(request, "scope", None)
    target: MutableMapping[str, Any] = scope if isinstance(scope, dict) else request.META
    if identity is None:
        target[_ANONYMOUS] = True
    else:
        target[IDENTITY_KEY] = identity


class ReqioIdentityMiddleware:
    """Stores ``request.user``'s identity for the outer Reqio middleware (sync and async)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        response = self.get_response(request)
        _store(request, identity_for(getattr(request, "user", None)))
        return response

    async def __acall__(self, request: Any) -> Any:
        response = await self.get_response(request)
        # request.user is lazy and the identity function may query the database: both are
        # synchronous Django ORM work, so it runs in Django's sync thread.
        identity = await sync_to_async(identity_for)(getattr(request, "user", None))
        _store(request, identity)
        return response


def _user_from_session(request: Any) -> Any:
    from django.contrib.auth import get_user  # type: ignore[import-untyped,unused-ignore]
    from django.contrib.sessions.middleware import SessionMiddleware  # type: ignore[import-untyped,unused-ignore]

    SessionMiddleware(lambda request: None).process_request(request)
    return get_user(request)


def user_resolver(environ: MutableMapping[str, Any]) -> Identity | None:
    """WSGI resolver: the stored identity, or (token endpoint) the session's user."""
    if IDENTITY_KEY in environ:
        identity: Identity | None = environ[IDENTITY_KEY]
        return identity
    if environ.get(_ANONYMOUS):
        return None
    if "type" in environ:  # an ASGI scope: called in a worker thread by the caller
        from django.core.handlers.asgi import ASGIRequest  # type: ignore[import-untyped,unused-ignore]

        request: Any = ASGIRequest(environ, io.BytesIO())
    else:
        from django.core.handlers.wsgi import WSGIRequest  # type: ignore[import-untyped,unused-ignore]

        request = WSGIRequest(environ)
    return identity_for(_user_from_session(request))


async def async_user_resolver(scope: MutableMapping[str, Any]) -> Identity | None:
    """ASGI resolver: like :func:`user_resolver`, with the database work in Django's thread."""
    if IDENTITY_KEY in scope:
        identity: Identity | None = scope[IDENTITY_KEY]
        return identity
    if scope.get(_ANONYMOUS):
        return None
    resolve: Callable[[MutableMapping[str, Any]], Awaitable[Identity | None]]
    resolve = sync_to_async(user_resolver)
    return await resolve(scope)
