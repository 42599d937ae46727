"""Reqio's settings from Django's ``settings.py``: built once, rebuilt when a test changes them.

Each ``REQIO_*`` setting falls back to the environment variable of the same name. A mistake is
an ``ImproperlyConfigured`` naming the setting, raised when the middleware loads (Django builds
its middleware chain before the first request) and reported by ``manage.py check``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from django.conf import settings  # type: ignore[import-untyped,unused-ignore]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped,unused-ignore]
from django.core.signals import setting_changed  # type: ignore[import-untyped,unused-ignore]
from django.utils.module_loading import import_string  # type: ignore[import-untyped,unused-ignore]

from reqio_middleware.adapters._config import build_settings, debug_flag
from reqio_middleware.config import ConfigurationError, Settings
from reqio_middleware.identity import Identity

__all__ = ["ToIdentity", "reqio_debug", "reqio_settings", "user_identity_function"]

#: ``REQIO_USER_IDENTITY``: a signed-in user -> Identity, mapping, or None (no token).
ToIdentity = Callable[[Any], "Identity | Mapping[str, Any] | None"]


@lru_cache(maxsize=1)
def reqio_settings() -> Settings:
    """The validated settings; ``ImproperlyConfigured`` naming the setting otherwise."""
    try:
        return build_settings(lambda key: getattr(settings, key, None), "settings.py")
    except ConfigurationError as exc:
        raise ImproperlyConfigured(str(exc)) from None


def reqio_debug() -> bool:
    """``REQIO_DEBUG``: each page says what happened to it in a ``Reqio-Debug`` header."""
    return debug_flag(lambda key: getattr(settings, key, None))


@lru_cache(maxsize=1)
def user_identity_function() -> ToIdentity | None:
    """``REQIO_USER_IDENTITY`` imported (a dotted path or a callable); ``None`` when unset."""
    from os import environ

    value = getattr(settings, "REQIO_USER_IDENTITY", None) or environ.get("REQIO_USER_IDENTITY")
    if not value:
        return None
    if callable(value):
        func: ToIdentity = value
        return func
    if not isinstance(value, str):
        raise ImproperlyConfigured(
            f"REQIO_USER_IDENTITY must be a dotted path to a function, not {type(value).__name__}"
        )
    try:
        func = import_string(value)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"REQIO_USER_IDENTITY = {value!r} cannot be imported: {exc}"
        ) from None
    if not callable(func):
        raise ImproperlyConfigured(f"REQIO_USER_IDENTITY = {value!r} is not callable")
    return func


def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("REQIO_"):
        reqio_settings.cache_clear()
        user_identity_function.cache_clear()


setting_changed.connect(_forget, dispatch_uid="reqio_middleware.adapters.django.conf")
