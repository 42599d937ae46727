"""ASGI entry points: ``application`` (behind the middleware) and ``bare_application``."""

from __future__ import annotations

from typing import Any

from django.core.asgi import get_asgi_application

from ..common import SETTINGS
from .settings import configure

configure()


def build() -> tuple[Any, Any]:
    """A fresh (wrapped, bare) pair: handlers load middleware from the settings in force."""
    from reqio_middleware import ReqioMiddleware

    return ReqioMiddleware(get_asgi_application(), **SETTINGS), get_asgi_application()


application, bare_application = build()
