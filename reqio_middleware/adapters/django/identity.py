"""Who ``request.user`` is, as an :class:`~reqio_middleware.identity.Identity`.

``sub`` is the user's primary key and ``email`` their email, unless ``REQIO_USER_IDENTITY``
names a function that maps the user to an identity (or a mapping, or ``None`` for no token).

Under an async stack the user is loaded with ``request.auser()`` (no thread), the default
mapping runs inline (it reads two attributes), and a custom sync mapping runs in Django's sync
thread, since it may query the database; an ``async def`` mapping is awaited.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.contrib.auth import SESSION_KEY  # type: ignore[import-untyped,unused-ignore]
from django.utils.functional import (  # type: ignore[import-untyped,unused-ignore]
    LazyObject,
    SimpleLazyObject,
    empty,
)

from reqio_middleware.adapters import IDENTITY_KEY
from reqio_middleware.identity import Identity, coerce_identity

from .conf import user_identity_function

__all__ = [
    "Lookup",
    "aidentity_of",
    "default_identity",
    "forget_anonymous_lookup",
    "identity_for",
    "identity_of",
    "nobody_signed_in",
    "surely_anonymous",
]

#: Where Django's ``AuthenticationMiddleware`` defines the lazy ``request.user`` it sets.
_DJANGO_AUTH_MIDDLEWARE = "django.contrib.auth.middleware"


def default_identity(user: Any) -> Identity:
    """``sub`` is the primary key (as a string), ``email`` the user's email when it has one."""
    email = getattr(user, "email", None)
    return Identity(sub=str(user.pk), email=email if isinstance(email, str) and email else None)


def identity_for(user: Any) -> Identity | None:
    """The identity of ``user`` through ``REQIO_USER_IDENTITY``; anonymous is ``None``."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    func = user_identity_function()
    if func is None:
        return default_identity(user)
    if iscoroutinefunction(func):
        return coerce_identity(async_to_sync(func)(user))
    return coerce_identity(func(user))


def identity_of(request: Any) -> Identity | None:
    """The identity of the request's user (sync stacks)."""
    stored = _stored(request)
    if stored is not _NOTHING:
        return coerce_identity(stored)
    if surely_anonymous(request):
        return None
    return identity_for(getattr(request, "user", None))


def nobody_signed_in(request: Any) -> bool:
    """No identity stored by a view, and a user that can only be anonymous (see
    :func:`surely_anonymous`): the request's answer is ``None``, with nothing loaded."""
    return _stored(request) is _NOTHING and surely_anonymous(request)


async def aidentity_of(request: Any) -> Identity | None:
    """The identity of the request's user (async stacks), without a thread when it can."""
    stored = _stored(request)
    if stored is not _NOTHING:
        return coerce_identity(stored)
    if surely_anonymous(request):
        return None
    user = await _auser(request)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    func = user_identity_function()
    if func is None:
        return default_identity(user)
    if iscoroutinefunction(func):
        return coerce_identity(await func(user))
    return coerce_identity(await sync_to_async(func)(user))


_NOTHING = object()


def surely_anonymous(request: Any) -> bool:
    """Whether ``request.user`` can only be anonymous, known without loading it.

    That is Django's own lazy user, not loaded yet, over a session that has no key (the request
    carried no session cookie) and no user id stored since: ``django.contrib.auth.get_user``
    then answers ``AnonymousUser`` without asking a backend. Loading it would open the session
    for nothing; any other user object (another authentication middleware's, or one a view
    set) is looked up as usual.
    """
    found = request.__dict__
    user = found.get("user")
    if (
        type(user) is not SimpleLazyObject
        or user._wrapped is not empty
        or "_cached_user" in found
        or "_acached_user" in found
    ):
        return False
    setup = object.__getattribute__(user, "_setupfunc")
    if getattr(setup, "__module__", None) != _DJANGO_AUTH_MIDDLEWARE:
        return False
    session = found.get("session")
    if session is None or getattr(session, "session_key", True) is not None:
        return False
    cache = session.__dict__.get("_session_cache")
    return cache is None or SESSION_KEY not in cache


def _stored(request: Any) -> object:
    """What a view stored under ``"reqio.identity"`` (the key the other middlewares read)."""
    scope = getattr(request, "scope", None)
    where = scope if isinstance(scope, dict) else request.META
    return where.get(IDENTITY_KEY, _NOTHING)


async def _auser(request: Any) -> Any:
    user = getattr(request, "user", None)
    if not isinstance(user, LazyObject):
        return user  # no AuthenticationMiddleware, or a view set it (login())
    if user._wrapped is not empty:
        return user._wrapped
    auser = getattr(request, "auser", None)
    if auser is not None:
        return await auser()
    return await sync_to_async(_evaluated)(user)


def _evaluated(user: Any) -> Any:
    bool(user.is_authenticated)  # loads the lazy user from the session
    return user


class Lookup:
    """What looking the user up changes on the request, noted before the lookup.

    An anonymous page must leave as the project without Reqio would send it, but reading
    ``request.user`` opens the session, and ``SessionMiddleware`` then adds ``Vary: Cookie``.
    When the user turns out anonymous, :func:`forget_anonymous_lookup` puts back the session's
    ``accessed`` flag and the unevaluated lazy user, so only what the view itself read counts.
    """

    __slots__ = ("accessed", "cached", "lazy", "session")

    def __init__(self, request: Any) -> None:
        self.session = request.__dict__.get("session")
        self.accessed = getattr(self.session, "accessed", True)
        user = request.__dict__.get("user")
        self.lazy = user if isinstance(user, LazyObject) and user._wrapped is empty else None
        self.cached = "_acached_user" in request.__dict__


def forget_anonymous_lookup(request: Any, lookup: Lookup) -> None:
    if not lookup.accessed:
        lookup.session.accessed = False
    if lookup.lazy is not None:
        lookup.lazy._wrapped = empty
    if not lookup.cached:
        request.__dict__.pop("_acached_user", None)
