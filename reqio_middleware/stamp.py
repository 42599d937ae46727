"""Stamping: the widget's start tag with exactly one ``data-identity-token``."""

from __future__ import annotations

import functools
import html
import re

from .matcher import _CACHED_TAG_BYTES, _attributes

TOKEN_ATTR = b"data-identity-token"


def _stamp(buf: bytes, start: int, end: int, token: bytes) -> bytes:
    """The tag at ``buf[start:end]`` with exactly one ``data-identity-token`` carrying ``token``.

    An existing attribute (any case, quoted or not, valueless, duplicated) is replaced where
    the first one stands and the others are removed: browsers keep the first of duplicates,
    so page content must never be able to pre-seed the value the widget reads.
    """
    tag = buf[start:end]
    before, after = _stamp_plan(tag) if len(tag) <= _CACHED_TAG_BYTES else _plan(tag)
    return b"".join((before, TOKEN_ATTR, b'="', token, b'"', after))


def _plan(tag: bytes) -> tuple[bytes, bytes]:
    """What goes before and after the new attribute in a stamped ``tag``."""
    attrs = [a for a in _attributes(tag, 7, len(tag)) if a.name == TOKEN_ATTR]
    if not attrs:
        return tag[:7] + b" ", tag[7:]
    pieces = []
    at = attrs[0].end
    for attr in attrs[1:]:
        pieces.append(tag[at : attr.start])
        at = attr.end
    pieces.append(tag[at:])
    return tag[: attrs[0].start], b"".join(pieces)


_stamp_plan = functools.lru_cache(maxsize=256)(_plan)


def _encode_token(token: str) -> bytes:
    # A JWT is [A-Za-z0-9_.-] and goes in as it is; a custom minter's token is escaped so it
    # can never end the attribute, and written as character references where not ASCII,
    # which any ASCII-compatible page encoding carries unchanged.
    if token.isascii() and _ESCAPED.search(token) is None:
        return token.encode("ascii")
    return html.escape(token, quote=True).encode("ascii", "xmlcharrefreplace")


_ESCAPED = re.compile("[&<>\"']")  # what html.escape(quote=True) replaces
