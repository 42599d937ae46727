"""Settings for the framework-native integrations, read from the framework's own configuration.

Django reads ``settings.REQIO_*``, Flask ``app.config["REQIO_*"]``; each key falls back to the
environment variable of the same name, so a deployment that sets ``REQIO_SECRET`` in the
environment works either way. A mistake is reported with the key the user has to fix, when the
integration loads (not on the first signed-in page view).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from reqio_middleware.config import ConfigurationError, Settings
from reqio_middleware.rewriter import DEFAULT_WIDGET_SRC

__all__ = ["KEYS", "Lookup", "build_settings", "debug_flag"]

#: Every key an integration reads, in the order a message lists them.
KEYS = (
    "REQIO_SECRET",
    "REQIO_PROJECT_ID",
    "REQIO_AUDIENCE",
    "REQIO_WIDGET_SRC",
    "REQIO_TTL",
    "REQIO_TOKEN_PATH",
    "REQIO_DEBUG",
)

#: ``lookup(key)``: the framework's value for ``key``, or ``None`` when it is not set there.
Lookup = Callable[[str], object]

# Settings' messages start with the argument's name; this maps it back to the key.
_ARGUMENT_KEYS = {
    "project_id": "REQIO_PROJECT_ID",
    "widget_src": "REQIO_WIDGET_SRC",
    "ttl": "REQIO_TTL",
    "token_path": "REQIO_TOKEN_PATH",
}


def build_settings(lookup: Lookup, where: str, *, token_path: bool = False) -> Settings:
    """:class:`Settings` from ``lookup`` over the environment; ``where`` names the place the
    keys live (``"settings.py"``, ``"app.config"``) in error messages.

    ``token_path`` says whether ``REQIO_TOKEN_PATH`` is read (Flask serves the endpoint from
    it; Django routes it in ``urls.py``).
    """
    value = _reader(lookup)
    secret = value("REQIO_SECRET")
    project_id = value("REQIO_PROJECT_ID")
    audience = value("REQIO_AUDIENCE")
    if not secret:
        raise ConfigurationError(
            f"REQIO_SECRET is not set: add it to {where} or set the REQIO_SECRET "
            "environment variable (the project's signing secret from the Reqio dashboard)"
        )
    if not audience and not project_id:
        raise ConfigurationError(
            f"REQIO_PROJECT_ID is not set: add it to {where} or set the REQIO_PROJECT_ID "
            "environment variable (or set REQIO_AUDIENCE to the token audience)"
        )
    try:
        return Settings(
            secret=_secret(secret),
            project_id=_text(project_id, "REQIO_PROJECT_ID"),
            audience=_text(audience, "REQIO_AUDIENCE"),
            widget_src=_text(value("REQIO_WIDGET_SRC"), "REQIO_WIDGET_SRC") or DEFAULT_WIDGET_SRC,
            ttl=_ttl(value("REQIO_TTL")),
            token_path=_text(value("REQIO_TOKEN_PATH"), "REQIO_TOKEN_PATH") if token_path else None,
            environ={},
        )
    except ConfigurationError as exc:
        key = _ARGUMENT_KEYS.get(str(exc).split(" ", 1)[0])
        if key is None:
            raise
        raise ConfigurationError(f"{key} in {where} (or the environment): {exc}") from None


def debug_flag(lookup: Lookup) -> bool:
    """``REQIO_DEBUG``: a bool, or a string such as ``"1"``/``"true"`` (the environment's)."""
    value = _reader(lookup)("REQIO_DEBUG")
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _reader(lookup: Lookup) -> Callable[[str], object]:
    def value(key: str) -> object:
        found = lookup(key)
        if found is None or found == "":
            return os.environ.get(key) or None
        return found

    return value


def _secret(value: object) -> str | bytes:
    if isinstance(value, (str, bytes)):
        return value
    raise ConfigurationError(f"REQIO_SECRET must be a str or bytes, not {type(value).__name__}")


def _text(value: object, key: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ConfigurationError(f"{key} must be a str, not {type(value).__name__}")


def _ttl(value: object) -> int:
    """``REQIO_TTL``: an int in settings, or digits (the environment has only strings)."""
    if value is None:
        return 300
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ConfigurationError(f"REQIO_TTL must be a positive number of seconds, not {value!r}")
