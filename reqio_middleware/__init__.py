"""Give the Reqio widget a signed identity for the signed-in user, with no template changes.

The public names are exported lazily: importing the package for the rewriter or the
token helpers does not pull in the ASGI/WSGI machinery (or asgiref) until it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .asgi import ReqioMiddleware
    from .core import nonblocking
    from .identity import Identity, IdentityError
    from .rewriter import HTMLRewriter, rewrite_html
    from .tokens import ReditusMinter, mint_token
    from .wsgi import ReqioWSGIMiddleware

__all__ = [
    "HTMLRewriter",
    "Identity",
    "IdentityError",
    "ReditusMinter",
    "ReqioMiddleware",
    "ReqioWSGIMiddleware",
    "mint_token",
    "nonblocking",
    "rewrite_html",
]

_WHERE = {
    "Identity": "identity",
    "IdentityError": "identity",
    "mint_token": "tokens",
    "ReditusMinter": "tokens",
    "rewrite_html": "rewriter",
    "HTMLRewriter": "rewriter",
    "ReqioMiddleware": "asgi",
    "ReqioWSGIMiddleware": "wsgi",
    "nonblocking": "core",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'reqio_middleware' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
