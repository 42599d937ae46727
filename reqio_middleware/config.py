"""Settings shared by the ASGI and WSGI middlewares, checked once at construction.

A misconfigured middleware must fail when the application starts, not on the first signed-in
page view, and its message must say which environment variable to set. Both middlewares build
one :class:`Settings` and keep everything request-specific out of it.

The secret itself is never kept here: it goes straight into the minter, so no ``repr``, log
line or error message built from the settings can contain it.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping

from .identity import Identity, IdentityError, coerce_identity
from .rewriter import DEFAULT_WIDGET_SRC, HTMLRewriter, WidgetSource
from .tokens import Minter, ReqioMinter

__all__ = [
    "DEFAULT_RESOLVER_TIMEOUT",
    "DEFAULT_WIDGET_SRC",
    "WINDOW",
    "ConfigurationError",
    "ResolverFailure",
    "Settings",
]

logger = logging.getLogger("reqio_middleware")

DEFAULT_RESOLVER_TIMEOUT = 5.0
DEFAULT_AUDIENCE = "https://reqio.app/p/{project_id}"

#: Largest HTML file sent by path (ASGI ``http.response.pathsend``) that is read whole, so the
#: rewritten page carries an exact Content-Length; a larger one is streamed without one. Bodies
#: the application hands over itself follow one rule instead: exact when the first piece is the
#: whole body (see :mod:`.core`).
WINDOW = 256 * 1024


class ConfigurationError(ValueError):
    """The middleware cannot run with these arguments and environment; the message says why."""


class ResolverFailure(Exception):
    """The identity could not be determined; the reason has already been logged."""


class Settings:
    """What both middlewares need, validated. Built from keyword arguments over the environment."""

    __slots__ = (
        "endpoint_paths",
        "minter",
        "project_id",
        "resolver_timeout",
        "script_path",
        "token_path",
        "ttl",
        "widget_src",
    )

    def __init__(
        self,
        *,
        secret: str | bytes | None = None,
        project_id: str | None = None,
        audience: str | None = None,
        widget_src: str = DEFAULT_WIDGET_SRC,
        ttl: int = 300,
        token_path: str | None = None,
        minter: Minter | None = None,
        resolver_timeout: float = DEFAULT_RESOLVER_TIMEOUT,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        project_id = project_id if project_id is not None else (env.get("REQIO_PROJECT_ID") or None)
        if project_id is not None and (not isinstance(project_id, str) or not project_id.strip()):
            raise ConfigurationError(
                f"project_id must be a non-empty str (REQIO_PROJECT_ID), not {project_id!r}"
            )
        self.project_id = project_id
        self.widget_src = _check_widget_src(widget_src)
        self.ttl = _check_ttl(ttl)
        self.token_path = _check_token_path(token_path)
        self.script_path = None if self.token_path is None else self.token_path + ".js"
        #: The paths the middleware answers itself (none without ``token_path``).
        self.endpoint_paths: frozenset[str] = frozenset(
            () if self.token_path is None else (self.token_path, self.token_path + ".js")
        )
        self.resolver_timeout = _check_timeout(resolver_timeout)
        if minter is not None:
            if not callable(minter):
                raise ConfigurationError(f"minter must be callable, not {type(minter).__name__}")
            self.minter: Minter = minter
            return
        if secret is None:
            secret = env.get("REQIO_SECRET") or None
        if not secret:
            raise ConfigurationError(
                "no signing secret: set the REQIO_SECRET environment variable "
                "(or pass secret=, or a minter=)"
            )
        if audience is None:
            audience = env.get("REQIO_AUDIENCE") or None
        if audience is None:
            if project_id is None:
                raise ConfigurationError(
                    "no token audience: set REQIO_PROJECT_ID (the audience is then "
                    "https://reqio.app/p/<project_id>) or REQIO_AUDIENCE "
                    "(or pass project_id= or audience=)"
                )
            audience = DEFAULT_AUDIENCE.format(project_id=project_id)
        try:
            self.minter = ReqioMinter(secret, audience, self.ttl)
        except (TypeError, ValueError) as exc:
            # The minter's messages never contain the secret; keep them, with our type.
            raise ConfigurationError(str(exc)) from None

    def __repr__(self) -> str:
        return (
            f"Settings(project_id={self.project_id!r}, widget_src={self.widget_src!r}, "
            f"ttl={self.ttl!r}, token_path={self.token_path!r}, "
            f"resolver_timeout={self.resolver_timeout!r}, minter={type(self.minter).__name__})"
        )

    def identify(self, value: object) -> Identity | None:
        """Turn a resolver's answer into an identity; a bad answer is logged and raised."""
        try:
            return coerce_identity(value)
        except IdentityError as exc:
            logger.error("reqio: the identity resolver returned an invalid identity: %s", exc)
            raise ResolverFailure(str(exc)) from None

    def mint(self, identity: Identity) -> str | None:
        """A token for ``identity``, or ``None`` (logged) when the minter refuses it."""
        try:
            token = self.minter(identity)
        except Exception as exc:
            logger.error(
                "reqio: could not mint a token, page served without one: %s: %s",
                type(exc).__name__,
                exc,
            )
            return None
        if not isinstance(token, str) or not token:
            logger.error(
                "reqio: the minter returned %s instead of a token string, page served without one",
                type(token).__name__,
            )
            return None
        return token

    def rewriter(self, identity: Identity) -> HTMLRewriter:
        """A streaming rewriter that mints for ``identity`` when it meets the first widget tag."""
        return HTMLRewriter(
            lambda: self.mint(identity), widget_src=self.widget_src, project_id=self.project_id
        )


def _check_widget_src(widget_src: object) -> str:
    # One rule for what a widget URL is: the rewriter's, which also decides what matches it.
    if not isinstance(widget_src, str):
        raise ConfigurationError(f"widget_src must be a str URL, not {type(widget_src).__name__}")
    try:
        WidgetSource(widget_src)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    return widget_src


def _check_ttl(ttl: object) -> int:
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        raise ConfigurationError(f"ttl must be a positive int number of seconds, not {ttl!r}")
    return ttl


def _check_token_path(token_path: object) -> str | None:
    if token_path is None:
        return None
    if (
        not isinstance(token_path, str)
        or not token_path.startswith("/")
        or any(c in token_path for c in "?# ")
    ):
        raise ConfigurationError(
            f"token_path must be a URL path starting with '/', e.g. '/_reqio/token'; "
            f"got {token_path!r}"
        )
    return token_path


def _check_timeout(timeout: object) -> float:
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ConfigurationError(
            f"resolver_timeout must be a positive number of seconds, not {timeout!r}"
        )
    return float(timeout)
