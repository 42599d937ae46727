"""System checks (``manage.py check``, and every ``runserver``): :func:`register` is called by
the app config when ``"reqio_middleware.adapters.django"`` is in ``INSTALLED_APPS``.

- ``reqio.E001``: the ``REQIO_*`` settings cannot work (the message names the setting).
- ``reqio.E002``: ``REQIO_USER_IDENTITY`` cannot be imported.
- ``reqio.W001``: a compression middleware is listed after ``ReqioMiddleware`` (so it is inside
  it): pages reach Reqio compressed and go out without a token.
- ``reqio.W002``: ``AuthenticationMiddleware`` is missing or listed after ``ReqioMiddleware``, so
  ``request.user`` is not there when Reqio looks for it.
- ``reqio.W003``: the old integration (``ReqioIdentityMiddleware`` in ``MIDDLEWARE``, or the
  ``WSGI_APPLICATION`` wrapped in ``ReqioWSGIMiddleware``) is active as well as the new one.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings  # type: ignore[import-untyped,unused-ignore]
from django.core import checks  # type: ignore[import-untyped,unused-ignore]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped,unused-ignore]
from django.utils.module_loading import import_string  # type: ignore[import-untyped,unused-ignore]

from .conf import reqio_settings, user_identity_function

__all__ = ["check_middleware", "check_settings", "register"]

MIDDLEWARE_PATH = "reqio_middleware.adapters.django.ReqioMiddleware"
_OLD_PATHS = (
    "reqio_middleware.adapters.django.ReqioIdentityMiddleware",
    "reqio_middleware.adapters.django.legacy.ReqioIdentityMiddleware",
)
_AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
_AUTH_NAMES = frozenset(
    {"AuthenticationMiddleware", "RemoteUserMiddleware", "PersistentRemoteUserMiddleware"}
)
#: Middleware known to compress responses (and any subclass of Django's GZipMiddleware).
_ENCODERS = (
    "django.middleware.gzip.GZipMiddleware",
    "compression_middleware.middleware.CompressionMiddleware",
    "django_brotli.middleware.BrotliMiddleware",
)


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    errors: list[Any] = []
    try:
        reqio_settings()
    except ImproperlyConfigured as exc:
        errors.append(checks.Error(str(exc), id="reqio.E001"))
    try:
        user_identity_function()
    except ImproperlyConfigured as exc:
        errors.append(checks.Error(str(exc), id="reqio.E002"))
    return errors


def check_middleware(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    middleware = list(getattr(settings, "MIDDLEWARE", None) or ())
    if MIDDLEWARE_PATH not in middleware:
        return []
    ours = middleware.index(MIDDLEWARE_PATH)
    found: list[Any] = []
    inner_encoders = [path for path in middleware[ours + 1 :] if _is_encoder(path)]
    if inner_encoders:
        found.append(
            checks.Warning(
                f"{inner_encoders[0]} is listed after ReqioMiddleware in MIDDLEWARE, so it "
                "compresses pages before Reqio sees them and they go out without a token.",
                hint=f"Move {MIDDLEWARE_PATH} after {inner_encoders[0]}.",
                id="reqio.W001",
            )
        )
    if not any(_is_authentication(path) for path in middleware[:ours]):
        found.append(
            checks.Warning(
                "AuthenticationMiddleware is not listed before ReqioMiddleware, so request.user "
                "is not set when Reqio looks for it and no page gets a token.",
                hint=f"List {_AUTH} before {MIDDLEWARE_PATH}.",
                id="reqio.W002",
            )
        )
    old = [path for path in middleware if path in _OLD_PATHS]
    if old or _wsgi_application_is_wrapped():
        found.append(
            checks.Warning(
                "Both Reqio integrations are active: ReqioMiddleware in MIDDLEWARE and the "
                "older wrap (ReqioIdentityMiddleware, or ReqioWSGIMiddleware around the WSGI "
                "application). Every page is rewritten twice.",
                hint="Keep ReqioMiddleware; remove ReqioIdentityMiddleware from MIDDLEWARE "
                "and the ReqioWSGIMiddleware/ReqioMiddleware wrap from wsgi.py/asgi.py.",
                id="reqio.W003",
            )
        )
    return found


def _is_encoder(path: str) -> bool:
    from django.middleware.gzip import GZipMiddleware  # type: ignore[import-untyped,unused-ignore]

    return path in _ENCODERS or _is_subclass(path, GZipMiddleware)


def _is_authentication(path: str) -> bool:
    """Django's authentication middleware or a subclass, found by class name: importing
    ``django.contrib.auth`` here would fail in a project that does not install it."""
    if path == _AUTH:
        return True
    cls = _import(path)
    return isinstance(cls, type) and any(c.__name__ in _AUTH_NAMES for c in cls.__mro__)


def _is_subclass(path: str, base: type) -> bool:
    cls = _import(path)
    return isinstance(cls, type) and issubclass(cls, base)


def _import(path: str) -> object:
    try:
        found: object = import_string(path)
    except Exception:  # an unimportable entry is Django's own check to report
        return None
    return found


def _wsgi_application_is_wrapped() -> bool:
    """Whether ``WSGI_APPLICATION`` (what runserver serves) is wrapped by the old middleware."""
    path = getattr(settings, "WSGI_APPLICATION", None)
    if not isinstance(path, str) or not path:
        return False
    from reqio_middleware.wsgi import ReqioWSGIMiddleware

    try:
        app = import_string(path)
    except Exception:
        return False
    return isinstance(app, ReqioWSGIMiddleware)


def register() -> None:
    checks.register(check_settings, checks.Tags.compatibility)
    checks.register(check_middleware, checks.Tags.compatibility)
