"""WSGI entry points: ``application`` (behind the middleware) and ``bare_application``."""

from __future__ import annotations

from typing import Any

from django.core.wsgi import get_wsgi_application

from ..common import SETTINGS
from .settings import configure

configure()


def build() -> tuple[Any, Any]:
    """A fresh (wrapped, bare) pair: handlers load middleware from the settings in force."""
    from reqio_middleware import ReqioWSGIMiddleware

    return ReqioWSGIMiddleware(get_wsgi_application(), **SETTINGS), get_wsgi_application()


application, bare_application = build()
