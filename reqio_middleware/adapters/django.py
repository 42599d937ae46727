"""Django: store the signed-in ``request.user`` where the outer Reqio middleware reads it.

Reqio's middleware wraps the whole Django application (it has to see the finished HTML), so it
cannot read ``request.user`` itself. This Django middleware, listed after
``AuthenticationMiddleware``, stores the user's identity under ``"reqio.identity"`` of the WSGI
environ (``request.META`` *is* the environ) or of the ASGI scope (``request.scope``); the outer
middleware reads it from there once the response has started::

    # settings.py
    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "reqio_middleware.adapters.django.ReqioIdentityMiddleware",
        ...,
    ]
    REQIO_USER_IDENTITY = "myapp.reqio.identity"   # optional: user -> Identity / dict / None

    # wsgi.py
    from django.core.wsgi import get_wsgi_application
    from reqio_middleware import ReqioWSGIMiddleware
    from reqio_middleware.adapters.django import user_resolver
    application = ReqioWSGIMiddleware(get_wsgi_application(),
                                      resolver=user_resolver, token_path="/_reqio/token")

    # asgi.py
    from django.core.asgi import get_asgi_application
    from reqio_middleware import ReqioMiddleware
    from reqio_middleware.adapters.django import async_user_resolver
    application = ReqioMiddleware(get_asgi_application(),
                                  resolver=async_user_resolver, token_path="/_reqio/token")

``resolver=`` is only needed for the token endpoint: the endpoint answers before Django runs, so
those resolvers read the user from the session themselves (the same way Django's session and
authentication middleware do). For rewritten pages they return what
``ReqioIdentityMiddleware`` stored and never touch the session again. Without a token endpoint,
leave ``resolver`` out.

The identity is computed after the view, so a view that logs the user in (``login()``) gets the
new user's token on the page it renders.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async

from reqio_middleware.adapters import IDENTITY_KEY
from reqio_middleware.identity import Identity, coerce_identity

__all__ = [
    "ReqioIdentityMiddleware",
    "async_user_resolver",
    "default_identity",
    "identity_for",
    "user_resolver",
]

ToIdentity = Callable[[Any], "Identity | Mapping[str, Any] | None"]

# Stored for anonymous users by nothing; this marks "Django ran and found no user" so the
# resolvers do not redo the session lookup for anonymous pages.
_ANONYMOUS = "reqio.anonymous"


def default_identity(user: Any) -> Identity:
    """``sub`` is the primary key (as a string), ``email`` the user's email when it has one."""
    email = getattr(user, "email", None)
    return Identity(sub=str(user.pk), email=email if isinstance(email, str) and email else None)


def _to_identity() -> ToIdentity:
    from django.conf import settings  # type: ignore[import-untyped,unused-ignore]
    from django.utils.module_loading import import_string  # type: ignore[import-untyped,unused-ignore]

    path = getattr(settings, "REQIO_USER_IDENTITY", None)
    if not path:
        return default_identity
    func: ToIdentity = import_string(path) if isinstance(path, str) else path
    return func


def identity_for(user: Any) -> Identity | None:
    """The identity of ``user`` through ``settings.REQIO_USER_IDENTITY``; anonymous is ``None``."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return coerce_identity(_to_identity()(user))


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
