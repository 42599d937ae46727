"""The token endpoint (``token_path``) and its browser helper (``token_path + ".js"``).

Single-page apps and pages left open past a token's lifetime fetch a fresh token here. The
answer is a per-user secret-derived value, so it is never cached anywhere (``no-store``) and
never given to another site: a browser says ``Sec-Fetch-Site: cross-site`` (or sends an
``Origin`` that is not ours) when another site's page asks, and we refuse with 403 before the
resolver even runs. Every failure is a small JSON error with a precise status, never a 500.

This module is protocol-neutral: the middlewares turn a :class:`Reply` into ASGI messages or a
WSGI response.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from importlib import resources
from urllib.parse import urlsplit

from .config import Settings
from .identity import Identity
from .tokens import token_expiry

__all__ = ["Reply", "anonymous", "check_request", "failure", "script", "token"]

_JSON_HEADERS = (
    ("Content-Type", "application/json"),
    ("Cache-Control", "no-store"),
    ("Vary", "Cookie"),
    ("X-Content-Type-Options", "nosniff"),
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def status_line(self) -> str:
        return f"{self.status} {HTTPStatus(self.status).phrase}"


def check_request(
    method: str, *, sec_fetch_site: str | None, origin: str | None, scheme: str, host: str | None
) -> Reply | None:
    """A refusal for a request we must not answer with a token, or ``None`` to go on."""
    if method not in ("GET", "POST"):
        return _json(
            405, {"error": "method not allowed; use GET or POST"}, [("Allow", "GET, POST")]
        )
    if sec_fetch_site is not None and sec_fetch_site.strip().lower() == "cross-site":
        return _json(403, {"error": "cross-site requests are refused"})
    if origin is not None and not _same_origin(origin, scheme, host):
        return _json(403, {"error": "cross-origin requests are refused"})
    return None


def token(settings: Settings, identity: Identity) -> Reply:
    """200 with a fresh token, or 503 when the minter refuses the identity (already logged)."""
    minted = settings.mint(identity)
    if minted is None:
        return failure()
    return _json(200, {"token": minted, "expires_at": token_expiry(minted)})


def anonymous() -> Reply:
    return _json(401, {"error": "not signed in"})


def failure() -> Reply:
    """The identity could not be determined (resolver raised, hung, or answered garbage)."""
    return _json(503, {"error": "identity unavailable, try again later"})


def script(method: str) -> Reply:
    """The browser helper: static, public and cacheable, the same bytes for everyone."""
    if method not in ("GET", "HEAD"):
        return _json(405, {"error": "method not allowed; use GET"}, [("Allow", "GET, HEAD")])
    body = _script_bytes()
    headers = [
        ("Content-Type", "text/javascript; charset=utf-8"),
        ("Cache-Control", "public, max-age=3600"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Length", str(len(body))),
    ]
    return Reply(200, headers, b"" if method == "HEAD" else body)


@lru_cache(maxsize=1)
def _script_bytes() -> bytes:
    try:
        return resources.files("reqio_middleware").joinpath("static/reqio-identity.js").read_bytes()
    except OSError:
        return b""


def _json(status: int, payload: object, extra: list[tuple[str, str]] | None = None) -> Reply:
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    headers = [*_JSON_HEADERS, *(extra or ()), ("Content-Length", str(len(body)))]
    return Reply(status, headers, body)


def _same_origin(origin: str, scheme: str, host: str | None) -> bool:
    """Whether an ``Origin`` header names the request's own scheme, host and port."""
    if host is None:
        return False
    theirs = _origin_tuple(origin.strip())
    ours = _origin_tuple(f"{scheme}://{host.strip()}")
    return theirs is not None and theirs == ours


def _origin_tuple(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not parts.hostname or scheme not in _DEFAULT_PORTS:
        return None  # "null" (sandboxed/opaque origins) and anything odd: not ours
    return scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme]
