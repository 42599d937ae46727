"""The token endpoint for frameworks that route it themselves (Django, Flask, FastAPI, recipes).

The framework runs its own session and authentication first, then asks here: the request is
refused if it comes from another site (before the user is even looked up), the identity is
loaded, and the answer is the same :class:`~reqio_middleware.endpoint.Reply` the ASGI and WSGI
middlewares give (200 with a token, 401 anonymous, 503 when the lookup failed; ``no-store``).
The framework only turns the reply into its own response object.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable

from reqio_middleware import endpoint
from reqio_middleware.config import ResolverFailure, Settings

__all__ = ["atoken_reply", "identity_reply", "token_reply"]

logger = logging.getLogger("reqio_middleware")

#: ``load()``: the signed-in identity (``Identity`` or mapping) or ``None``; for
#: :func:`atoken_reply` it may return an awaitable of that.
Load = Callable[[], object]


def token_reply(
    settings: Settings,
    load: Load,
    *,
    method: str,
    sec_fetch_site: str | None,
    origin: str | None,
    scheme: str,
    host: str | None,
) -> endpoint.Reply:
    """The endpoint's answer, with ``load`` called only for a same-site GET or POST."""
    refusal = endpoint.check_request(
        method, sec_fetch_site=sec_fetch_site, origin=origin, scheme=scheme, host=host
    )
    if refusal is not None:
        return refusal
    try:
        value = load()
    except Exception as exc:
        return _failed(exc)
    return identity_reply(settings, value)


async def atoken_reply(
    settings: Settings,
    load: Load,
    *,
    method: str,
    sec_fetch_site: str | None,
    origin: str | None,
    scheme: str,
    host: str | None,
) -> endpoint.Reply:
    """:func:`token_reply` for async frameworks: ``load`` may be ``async``."""
    refusal = endpoint.check_request(
        method, sec_fetch_site=sec_fetch_site, origin=origin, scheme=scheme, host=host
    )
    if refusal is not None:
        return refusal
    try:
        value = load()
        if inspect.isawaitable(value):
            value = await value
    except Exception as exc:
        return _failed(exc)
    return identity_reply(settings, value)


def identity_reply(settings: Settings, value: object) -> endpoint.Reply:
    """The answer for an identity already loaded (an invalid one is logged: 503)."""
    try:
        identity = settings.identify(value)
    except ResolverFailure:
        return endpoint.failure()
    if identity is None:
        return endpoint.anonymous()
    return endpoint.token(settings, identity)


def _failed(exc: Exception) -> endpoint.Reply:
    logger.error(
        "reqio: looking up the signed-in user for the token endpoint raised %s: %s",
        type(exc).__name__,
        exc,
        exc_info=exc,
    )
    return endpoint.failure()
