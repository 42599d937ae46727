"""What a page that carries a per-user token tells every cache on its way: do not keep me.

``Cache-Control: private, no-store`` says it to caches that follow HTTP caching (RFC 9111). But
CDNs and reverse proxies obey a field of their own first, and would store the page, then serve
one user's token to the next, on that field's say-so. So each of them is answered in its own
vocabulary:

- ``Surrogate-Control`` (the W3C Edge Architecture field, read by Varnish's built-in rules,
  Fastly and Squid). While it is present, Varnish ignores Cache-Control's ``private`` and
  ``no-store`` and Fastly takes its TTL from it. It becomes ``no-store, max-age=0``; its
  ``content=`` directives (ESI processing) are kept.
- ``CDN-Cache-Control`` and every other RFC 9213 targeted field, ``<Name>-CDN-Cache-Control``
  (Cloudflare, Vercel, Netlify...). A cache with a targeted field of its own ignores
  Cache-Control. Each becomes ``no-store, max-age=0``.
- ``Edge-Control`` (Akamai), where ``!no-store`` caches in spite of Cache-Control. It becomes
  ``no-store, max-age=0``; ``dca=`` (ESI processing) is kept.
- ``X-LiteSpeed-Cache-Control`` (LiteSpeed's cache) becomes ``no-cache``, its "do not cache";
  ``esi=`` is kept.
- ``X-Accel-Expires`` (nginx), which outranks Cache-Control in nginx's ``proxy_cache``. It is
  always sent as ``0`` ("do not cache"), even when the application sent none: then it still
  holds behind an nginx told to ignore Cache-Control (``proxy_ignore_headers Cache-Control``, a
  common micro-caching set-up), and nginx does not pass ``X-Accel-*`` fields on to clients.
- ``Expires``, read by HTTP/1.0 caches and by caches told to ignore Cache-Control, becomes
  ``0``: an invalid date, which RFC 9111 says means "already expired".
- ``Vary`` gains ``Cookie`` and ``Authorization`` (unless it has them, in any case, or ``*``):
  the request fields that tell users apart, for a cache that stores the page in spite of all
  the above (one told to ignore each of these fields) but still keys what it stores by Vary.

The targeted fields are replaced only when the application sent them. Without them, each of
those caches falls back to Cache-Control (RFC 9213 section 2.1, and the Edge Architecture's
rules), so adding them would tell no cache anything new.

No response field can stop a cache configured to store everything whatever the origin says
(Cloudflare's "ignore cache-control" edge TTL, Google Cloud CDN's ``FORCE_CACHE_ALL``, nginx
ignoring every field above and Vary too): such a cache must not be put in front of token pages.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["always_sent", "is_edited", "unstorable"]


class _Targeted(NamedTuple):
    #: The field's own "do not store".
    value: str
    #: Directives (lowercase names) that are not about storage and are kept after ``value``.
    kept: frozenset[str] = frozenset()


_NO_STORE = "no-store, max-age=0"
_TARGETED: dict[str, _Targeted] = {
    "surrogate-control": _Targeted(_NO_STORE, frozenset({"content"})),
    "cdn-cache-control": _Targeted(_NO_STORE),
    "edge-control": _Targeted(_NO_STORE, frozenset({"dca"})),
    "x-litespeed-cache-control": _Targeted("no-cache", frozenset({"esi"})),
    "x-accel-expires": _Targeted("0"),
    "expires": _Targeted("0"),
}
_TARGETED_SUFFIX = "-cdn-cache-control"  # RFC 9213: <Name>-CDN-Cache-Control

#: Cache-Control directives that would let a shared cache store the page, or let a cache
#: store it in spite of ``no-store`` (``must-understand``, RFC 9111 section 5.2.2.3), and the
#: ones added back in front.
_DROPPED_CACHE_DIRECTIVES = frozenset(
    {"public", "s-maxage", "private", "no-store", "immutable", "must-understand"}
)
#: The request fields a resolver tells users apart by.
_VARIED = ("Cookie", "Authorization")
_ALWAYS_TEXT = (
    ("cache-control", "Cache-Control"),
    ("vary", "Vary"),
    ("x-accel-expires", "X-Accel-Expires"),
)
# ASGI's header names are lowercase (its spec); WSGI's keep the conventional case.
_ALWAYS_BYTES = tuple((lower, lower) for lower, _ in _ALWAYS_TEXT)
_DIRECTIVES = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*")+')
_NAME_END = re.compile(r"[=;]")


def is_edited(lower: str) -> bool:
    """Whether the field named ``lower`` (lowercase) is rewritten on a token page."""
    return (
        lower == "cache-control"
        or lower == "vary"
        or lower in _TARGETED
        or lower.endswith(_TARGETED_SUFFIX)
    )


def always_sent(as_bytes: bool) -> tuple[tuple[str, str], ...]:
    """``(lowercase name, name as sent)`` of the fields every token page carries."""
    return _ALWAYS_BYTES if as_bytes else _ALWAYS_TEXT


def unstorable(lower: str, value: str, *, no_store: bool = True) -> str:
    """The value of field ``lower`` on a token page, from the application's ``value`` (all of
    its lines joined with commas; ``""`` when it sent none).

    ``no_store=False`` leaves ``no-store`` out of Cache-Control only, so that the user's own
    browser may keep the page; every shared cache is still told not to.
    """
    if lower == "cache-control":
        return _cache_control(value, no_store)
    if lower == "vary":
        return _vary(value)
    field = _TARGETED.get(lower) or _TARGETED["cdn-cache-control"]
    kept = [d for d in _directives(value) if _directive_name(d) in field.kept]
    return ", ".join([field.value, *kept])


def _cache_control(value: str, no_store: bool) -> str:
    kept = [d for d in _directives(value) if _directive_name(d) not in _DROPPED_CACHE_DIRECTIVES]
    return ", ".join(["private", "no-store", *kept] if no_store else ["private", *kept])


def _vary(value: str) -> str:
    """``value``'s tokens, each once (compared case-insensitively), and those of ``_VARIED``
    it lacks, unless it varies on everything (``*``)."""
    tokens: list[str] = []
    seen: set[str] = set()
    for item in value.split(","):
        token = item.strip()
        if token and token.lower() not in seen:
            seen.add(token.lower())
            tokens.append(token)
    if "*" not in seen:
        tokens.extend(name for name in _VARIED if name.lower() not in seen)
    return ", ".join(tokens)


def _directives(value: str) -> list[str]:
    """The directives of a list field, in order, each once (repeated lines repeat them)."""
    directives: dict[str, None] = {}
    for directive in _DIRECTIVES.findall(value):
        if directive.strip():
            directives.setdefault(directive.strip(), None)
    return list(directives)


def _directive_name(directive: str) -> str:
    return _NAME_END.split(directive, 1)[0].strip().lower()
