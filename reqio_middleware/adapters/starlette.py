"""Starlette / FastAPI: resolve the identity from ``scope["user"]``.

Starlette's ``AuthenticationMiddleware`` stores the user in the scope; these resolvers turn it
into an :class:`~reqio_middleware.identity.Identity`::

    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware
    from reqio_middleware import ReqioMiddleware
    from reqio_middleware.adapters.starlette import user_resolver

    app = Starlette(routes=..., middleware=[
        Middleware(AuthenticationMiddleware, backend=MyBackend()),   # outermost
        Middleware(ReqioMiddleware, resolver=user_resolver, token_path="/_reqio/token"),
    ])

Order matters. Starlette lists middleware outermost first (``add_middleware`` adds outermost,
so call it for ``ReqioMiddleware`` *before* ``AuthenticationMiddleware``). With
``AuthenticationMiddleware`` outside ``ReqioMiddleware``, ``scope["user"]`` is set before the
request reaches Reqio, so both rewritten pages and the token endpoint see the user. The other way
round, pages still work (``AuthenticationMiddleware`` sets ``scope["user"]`` on the very scope
dict Reqio holds, and the resolver runs only after the application has started its response),
but the token endpoint answers before the application runs, so it sees no user and says 401.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from reqio_middleware.core import nonblocking
from reqio_middleware.identity import Identity, coerce_identity

__all__ = ["default_identity", "make_user_resolver", "user_resolver"]

Scope = MutableMapping[str, Any]
ToIdentity = Callable[[Any], "Identity | Mapping[str, Any] | None"]
Resolver = Callable[[Scope], "Identity | None"]


def default_identity(user: Any) -> Identity | None:
    """``sub`` from ``user.identity`` (or ``display_name`` when a user leaves it unimplemented,
    as Starlette's ``SimpleUser`` does), ``email`` from ``user.email`` if it is a string."""
    try:
        sub = user.identity
    except (AttributeError, NotImplementedError):
        sub = getattr(user, "display_name", None)
    if sub is None or sub == "":
        return None
    email = getattr(user, "email", None)
    return Identity(sub=sub, email=email if isinstance(email, str) and email else None)


def make_user_resolver(to_identity: ToIdentity) -> Resolver:
    """A resolver that maps an authenticated ``scope["user"]`` with ``to_identity``.

    ``to_identity`` is called only for authenticated users and may return an ``Identity``, a
    mapping or ``None``; an unauthenticated or missing user is anonymous. The resolver is
    called inline on the event loop, so ``to_identity`` must not block (no database query: map
    what the authentication backend already loaded).
    """

    def resolve(scope: Scope) -> Identity | None:
        user = scope.get("user")
        if user is None or not getattr(user, "is_authenticated", False):
            return None
        return coerce_identity(to_identity(user))

    resolve.__name__ = resolve.__qualname__ = "user_resolver"
    # It reads what AuthenticationMiddleware already put in the scope: called inline, no thread.
    return nonblocking(resolve)


#: The resolver for Starlette's own ``BaseUser`` types (see :func:`default_identity`).
user_resolver: Resolver = make_user_resolver(default_identity)
