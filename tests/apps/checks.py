"""The assertions every framework and server test makes about a page, written once.

A token page is judged against the same page from the unwrapped application: remove the one
``data-identity-token`` attribute and the bytes must be identical; the token must verify
(HS256, audience) for the expected user; the headers may differ only where the contract says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import jwt

from .common import AUDIENCE, SECRET, WIDGET

TOKEN_ATTR = re.compile(
    rb"""\s+data-identity-token=(["']?)([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)\1"""
)

# Headers the middleware is allowed (or required) to change on a page it rewrote, and those
# that a server sets per response on its own.
EDITED = {
    b"cache-control",
    b"vary",
    b"content-length",
    b"etag",
    b"last-modified",
    b"accept-ranges",
    b"digest",
    b"content-md5",
    b"repr-digest",
    b"content-digest",
    b"x-accel-expires",  # always "0" on a token page: see reqio_middleware/cachefields.py
    b"expires",
    b"surrogate-control",
    b"cdn-cache-control",
    b"edge-control",
}
PER_RESPONSE = {b"date", b"server", b"transfer-encoding", b"connection", b"keep-alive"}

Headers = Iterable[tuple[Any, Any]]


def _b(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("latin-1")


def normalise(headers: Headers) -> list[tuple[bytes, bytes]]:
    """Header pairs as (lower-case name, value) bytes, order kept."""
    return [(_b(k).lower(), _b(v)) for k, v in headers]


def values(headers: Headers, name: bytes) -> list[bytes]:
    return [v for k, v in normalise(headers) if k == name]


def without(headers: Headers, names: set[bytes]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in normalise(headers) if k not in names]


def comma_items(headers: Headers, name: bytes) -> list[bytes]:
    return [
        item.strip().lower()
        for v in values(headers, name)
        for item in v.split(b",")
        if item.strip()
    ]


def decode(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    return claims


def check_token_body(body: bytes, bare_body: bytes, user: str) -> str:
    """The page equals the bare page plus one token attribute, inside the real widget tag."""
    assert SECRET.encode() not in body
    found = list(TOKEN_ATTR.finditer(body))
    assert len(found) == 1, f"expected exactly one token attribute, found {len(found)}"
    match = found[0]
    stripped = body[: match.start()] + body[match.end() :]
    assert stripped == bare_body, "bytes other than the token attribute changed"
    tag_start = bare_body.rindex(WIDGET)
    assert tag_start < match.start() < tag_start + len(WIDGET), "token put outside the widget tag"
    token = match.group(2).decode()
    claims = decode(token)
    assert claims["sub"] == user
    assert claims["email"] == user + "@ex.test"
    return token


def check_token_headers(headers: Headers, bare_headers: Headers, body: bytes | None) -> None:
    """Private, Vary: Cookie, no validators, an exact length (if any); the rest unchanged."""
    cache = comma_items(headers, b"cache-control")
    assert b"private" in cache or b"no-store" in cache, cache
    assert b"public" not in cache
    assert not any(item.startswith(b"s-maxage") for item in cache)
    assert b"cookie" in comma_items(headers, b"vary") or b"*" in comma_items(headers, b"vary")
    for name in (b"etag", b"last-modified", b"accept-ranges"):
        assert not values(headers, name), f"{name!r} kept on a rewritten page"
    lengths = values(headers, b"content-length")
    assert len(lengths) <= 1, lengths
    if lengths and body is not None:
        assert int(lengths[0]) == len(body)
    bare_vary = [i for i in comma_items(bare_headers, b"vary") if i != b"cookie"]
    assert all(i in comma_items(headers, b"vary") for i in bare_vary)
    assert without(headers, EDITED | PER_RESPONSE) == without(bare_headers, EDITED | PER_RESPONSE)
