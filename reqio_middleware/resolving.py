"""Resolving who is asking: one call per request, whatever kind of resolver was given.

``None`` reads ``"reqio.identity"`` from the scope/environ (where the application or an adapter
put it). An ``async def`` is awaited in a cancel scope with the timeout, so no Task is made per
call, under asyncio or trio. A sync function marked with :func:`nonblocking` (or passed with
``resolver_blocking=False``) is called inline: it reads state that is already there, as the
shipped resolvers do. Any other sync function may block, so under an event loop it is sent to a
worker thread with the timeout; under WSGI it runs in the request's thread.

Every answer is ``(identity, None)`` or ``(None, reason)``; failures are logged here, once, and
never raised: a failing resolver costs the page its token, never a 500.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from asgiref.sync import iscoroutinefunction

from .identity import Identity, IdentityError, coerce_identity
from .reasons import RESOLVER_FAILED, RESOLVER_TIMEOUT

__all__ = ["IDENTITY_KEY", "Resolved", "Resolving", "never", "nonblocking"]

logger = logging.getLogger("reqio_middleware")

#: Where the identity is read when no resolver is given (and where adapters store it).
IDENTITY_KEY = "reqio.identity"

Request = Mapping[str, Any]
Resolver = Callable[[Any], Any]
#: ``(identity, None)``, or ``(None, reason)`` when the identity could not be known.
Resolved = tuple[Identity | None, str | None]
F = TypeVar("F", bound=Callable[..., Any])

_NOBODY: Resolved = (None, None)  # resolved: anonymous
_NONBLOCKING_MARK = "__reqio_nonblocking__"
_ANONYMOUS_MARK = "__reqio_anonymous__"

# How a resolver is called.
_DEFAULT, _INLINE, _ASYNC, _THREAD = range(4)


def nonblocking(resolver: F, *, anonymous: Callable[[Any], bool] | None = None) -> F:
    """Mark a sync resolver as one that never blocks, so it is called inline, not in a thread.

    For resolvers that only read what is already in the scope (as
    :data:`.adapters.starlette.user_resolver` does). A resolver that does I/O must not be
    marked: it would stall every request on the event loop.

    ``anonymous``, optional: a cheaper test of the request (``True``: nobody is signed in)
    that the middleware may run before reading a response's headers, so an anonymous
    visitor's responses pass with no more work than a forwarding wrapper does. It is not the
    resolver: the resolver itself is still only called for pages that may carry a token.
    """
    setattr(resolver, _NONBLOCKING_MARK, True)
    if anonymous is not None:
        setattr(resolver, _ANONYMOUS_MARK, anonymous)
    return resolver


class Resolving:
    """The resolver of one middleware, and how to call it."""

    __slots__ = ("_kind", "inline", "nobody", "reads_request", "resolver", "timeout")

    def __init__(self, resolver: Resolver | None, blocking: bool | None, timeout: float) -> None:
        if resolver is not None and not callable(resolver):
            raise TypeError(f"resolver must be callable, not {type(resolver).__name__}")
        self.resolver = resolver
        self.timeout = timeout
        self._kind = _resolver_kind(resolver, blocking)
        #: Whether resolving needs no await (the default resolver or a non-blocking one):
        #: :meth:`resolve_sync` may then be called from async code too.
        self.inline = self._kind in (_DEFAULT, _INLINE)
        #: Whether this is the default resolver: reading ``"reqio.identity"`` costs nothing.
        self.reads_request = self._kind == _DEFAULT
        #: ``request -> True`` when nobody can be signed in, cheaper than resolving: the
        #: default resolver's empty key, or a non-blocking resolver's ``anonymous`` test.
        self.nobody: Callable[[Request], bool] = never
        if self.reads_request:
            self.nobody = _nothing_stored
        elif self.inline:
            self.nobody = getattr(resolver, _ANONYMOUS_MARK, never)

    def resolve_sync(self, request: Request) -> tuple[Identity | None, str | None]:
        """The identity for a request, resolved in this thread: ``(identity, None)``, or
        ``(None, reason)`` when it could not be known (already logged)."""
        if self._kind == _DEFAULT:
            value = request.get(IDENTITY_KEY)
            return _NOBODY if value is None else self.identify(value)
        assert self.resolver is not None
        if self._kind == _ASYNC:
            logger.error(
                "reqio: the identity resolver is an async function; a synchronous server "
                "cannot await it: give a plain function"
            )
            return None, RESOLVER_FAILED
        try:
            value = self.resolver(request)
        except Exception as exc:
            return None, _raised(exc)
        return _NOBODY if value is None else self._answer(value)

    async def resolve_async(self, request: Request) -> tuple[Identity | None, str | None]:
        """:meth:`resolve_sync`, under an event loop (asyncio or trio): an ``async def`` is
        awaited and a blocking resolver sent to a thread, both within ``resolver_timeout``."""
        kind = self._kind
        if kind in (_DEFAULT, _INLINE):
            return self.resolve_sync(request)
        resolver = self.resolver
        assert resolver is not None
        timeout = self.timeout
        try:
            with anyio.move_on_after(timeout) as scope:
                if kind == _ASYNC:
                    value = await resolver(request)
                else:
                    value = await anyio.to_thread.run_sync(
                        resolver, request, abandon_on_cancel=True
                    )
        except Exception as exc:
            return None, _raised(exc)
        if scope.cancelled_caught:
            logger.error(
                "reqio: the identity resolver did not answer within %ss; "
                "the response goes out without a token",
                timeout,
            )
            return None, RESOLVER_TIMEOUT
        return self._answer(value)

    def _answer(self, value: object) -> tuple[Identity | None, str | None]:
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()
            logger.error(
                "reqio: the identity resolver returned an awaitable from a plain function; "
                "make it an `async def` (ASGI) or a plain function that returns the identity"
            )
            return None, RESOLVER_FAILED
        return self.identify(value)

    @staticmethod
    def identify(value: object) -> tuple[Identity | None, str | None]:
        """A resolver's answer as an identity; an invalid one is logged as a failure."""
        if value is None:
            return _NOBODY
        try:
            return coerce_identity(value), None
        except IdentityError as exc:
            logger.error("reqio: the identity resolver returned an invalid identity: %s", exc)
            return None, RESOLVER_FAILED


def _nothing_stored(request: Request) -> bool:
    return IDENTITY_KEY not in request


def never(request: Request) -> bool:
    """The anonymity test of a resolver that has none: anyone may be signed in."""
    return False


def _raised(exc: Exception) -> str:
    logger.error(
        "reqio: the identity resolver raised %s: %s; the response goes out without a token",
        type(exc).__name__,
        exc,
        exc_info=exc,
    )
    return RESOLVER_FAILED


def _resolver_kind(resolver: Resolver | None, blocking: bool | None) -> int:
    if resolver is None:
        return _DEFAULT
    if _is_async(resolver):
        return _ASYNC
    if blocking is None:
        blocking = not getattr(resolver, _NONBLOCKING_MARK, False)
    return _THREAD if blocking else _INLINE


def _is_async(resolver: Callable[..., Any]) -> bool:
    if iscoroutinefunction(resolver):
        return True
    call = getattr(resolver, "__call__", None)  # noqa: B004 - instances with async __call__
    return call is not None and iscoroutinefunction(call)
