"""The one decision about a response, shared by the ASGI and WSGI middlewares.

Every "don't touch" case lives in :func:`decide`, as one list, so the two protocols cannot drift
apart. Each rule answers a bug seen in a peer project (see the research notes): compressed HTML
(django-debug-toolbar #114, #1560), attachments (New Relic), ranges (Starlette #3414), bodiless
statuses (uvicorn #841), UTF-16 pages, mixed-case header names (New Relic #1011). A charset is
read the way a browser reads it (WHATWG MIME type parsing: the first valid ``charset`` wins).

What a page that carries a token does to its headers is :func:`edit_headers`; the fields that
keep every cache from storing it are :mod:`reqio_middleware.cachefields`.

Headers may arrive as bytes (ASGI) or str (WSGI), in any case, from any iterable; values are
read as latin-1, which maps bytes to str one to one, so nothing is lost either way.
"""

from __future__ import annotations

import codecs
import enum
import logging
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any, AnyStr, NamedTuple

from reqio_middleware import cachefields

__all__ = [
    "ENCODED_ACTION",
    "HEAD_ACTION",
    "PASS",
    "PASS_ACTION",
    "REWRITE_ACTION",
    "Action",
    "Classified",
    "CompressedWarning",
    "Decision",
    "classify",
    "decide",
    "declared_length",
    "edit_headers",
    "is_ascii_compatible",
]


class Action(enum.Enum):
    PASS = "pass"  # not ours: forward untouched, byte for byte
    ENCODED = "encoded"  # HTML we cannot read (compressed): forward untouched, warn once
    HEAD = "head"  # a HEAD for a page we would rewrite: header edits only, no token
    REWRITE = "rewrite"  # a page we may rewrite once we know who is asking


class Decision(NamedTuple):
    action: Action
    #: The declared Content-Length, when there is exactly one valid value.
    content_length: int | None = None


PASS = Decision(Action.PASS)

#: What :func:`classify` answers: the action and, for ``REWRITE``, the declared Content-Length
#: as sent (``None`` when absent or when its values disagree), read by :func:`declared_length`.
Classified = tuple[Action, str | bytes | None]

#: Action's members as plain names, for the code that runs per response (here and in both
#: middlewares): on Python 3.11 ``Action.X`` is a descriptor call (~0.2 µs) per use.
PASS_ACTION = Action.PASS
ENCODED_ACTION = Action.ENCODED
HEAD_ACTION = Action.HEAD
REWRITE_ACTION = Action.REWRITE

# Prebuilt answers: building a ``Decision`` is a Python-level ``__new__`` (~0.5 µs), too much
# for something done per response.
_PASSED: Classified = (PASS_ACTION, None)
_ENCODED: Classified = (ENCODED_ACTION, None)
_HEAD: Classified = (HEAD_ACTION, None)
_REWRITE: Classified = (REWRITE_ACTION, None)

# The response headers the decision reads, by lowercase name, as bytes (ASGI) and str (WSGI).
_TYPE, _ENCODING, _LENGTH, _RANGE, _DISPOSITION = range(5)
_WATCHED: dict[str | bytes, int] = {}
for _index, _name in enumerate(
    ("content-type", "content-encoding", "content-length", "content-range", "content-disposition")
):
    _WATCHED[_name] = _WATCHED[_name.encode()] = _index
_UNWATCHED = -1
#: Header names as sent (any case) -> their _WATCHED index or _UNWATCHED, learnt as they come:
#: an application spells its names the same way every time, so this saves a ``.lower()`` per
#: header per response. Bounded, in case names are made up per response.
_NAMES: dict[str | bytes, int] = dict(_WATCHED)
#: Content-Type values as sent -> whether they are rewritable HTML; learnt the same way.
_TYPES: dict[str | bytes, bool] = {}
_LEARNT_MAX = 1024

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_NO_BODY_STATUSES = frozenset({204, 206, 304})
_IDENTITY_ENCODINGS = frozenset({"", "identity"})
_STATEFUL_ENCODINGS = ("utf_7", "iso2022", "hz", "utf_16", "utf_32")
_ASCII_PROBE = "<script src=\"https://reqio.app/widget.js\" data-x='y'></script>\t\r\n"

#: Headers that describe the exact bytes of a representation: wrong once a token is in it.
_REMOVED = frozenset(
    {
        "content-length",
        "etag",
        "last-modified",
        "content-md5",
        "digest",
        "content-digest",
        "repr-digest",
        "accept-ranges",
    }
)
# WHATWG MIME type parsing: what a parameter's name and value may hold, and what is skipped.
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")
_QUOTED_STRING_CHARS = frozenset(
    ["\t", *map(chr, range(0x20, 0x7F)), *map(chr, range(0x80, 0x100))]
)
_HTTP_WHITESPACE = " \t\r\n"


def decide(method: str, status: int, headers: Iterable[tuple[AnyStr, AnyStr]]) -> Decision:
    """Whether a response may carry a token: ``method`` and ``status`` of the request/response,
    ``headers`` as ``(name, value)`` pairs (bytes or str, any case)."""
    action, length = classify(method, status, headers)
    if action is Action.PASS:
        return PASS
    return Decision(action, declared_length(length) if action is Action.REWRITE else None)


def classify(method: str, status: int, headers: Iterable[tuple[AnyStr, AnyStr]]) -> Classified:
    """:func:`decide`, as the middlewares use it: once per response, pass-through ones included.

    So it is written for speed: one pass over the headers, one dict lookup per name, prebuilt
    answers, and the Content-Length left unparsed (an anonymous page never needs it).
    tests/test_policy.py checks it against the rules written plainly.
    """
    if (method != "GET" and method != "HEAD") or status < 200 or status in _NO_BODY_STATUSES:
        return _PASSED
    html = False
    encoded = False
    length: str | bytes | None = None  # the first Content-Length value
    lengths_agree = True  # every Content-Length value is the same
    for raw_name, raw_value in headers:
        name = _NAMES.get(raw_name)
        if name is None:
            name = _learn(raw_name)
        if name == _UNWATCHED:
            continue
        if name == _TYPE:
            rewritable = _TYPES.get(raw_value)
            if rewritable is None:
                rewritable = _learn_type(raw_value)
            if not rewritable:
                return _PASSED  # the common way out: JSON, CSS, images, other charsets
            html = True
        elif name == _LENGTH:
            if length is None:
                length = raw_value
            elif raw_value != length:
                lengths_agree = False
        elif name == _ENCODING:
            encoded = encoded or _text(raw_value).strip().lower() not in _IDENTITY_ENCODINGS
        elif name == _RANGE or _text(raw_value).split(";", 1)[0].strip().lower() == "attachment":
            return _PASSED
    if not html:
        return _PASSED
    if encoded:
        return _ENCODED
    if method == "HEAD":
        return _HEAD
    if length is None or not lengths_agree:
        return _REWRITE
    return (REWRITE_ACTION, length)


def declared_length(value: str | bytes | None) -> int | None:
    """A Content-Length value as a number of bytes; ``None`` unless it is plain digits."""
    if value is None:
        return None
    if value.isdigit() and value.isascii():  # the usual spelling, read without copies
        return int(value)
    text = _text(value).strip()
    if text.isdigit() and text.isascii():
        return int(text)
    return None


def _learn(raw_name: str | bytes) -> int:
    name = _WATCHED.get(raw_name.lower(), _UNWATCHED)
    if len(_NAMES) < _LEARNT_MAX:
        _NAMES[raw_name] = name
    return name


def _learn_type(value: str | bytes) -> bool:
    rewritable = _is_rewritable_type(value)
    if len(_TYPES) < _LEARNT_MAX:
        _TYPES[value] = rewritable
    return rewritable


def _is_rewritable_type(value: str | bytes) -> bool:
    """HTML in an ASCII-compatible (or unnamed) charset."""
    media_type, _, params = _text(value).partition(";")
    if media_type.strip().lower() not in _HTML_TYPES:
        return False
    charset = _charset(params) if params else None
    return charset is None or is_ascii_compatible(charset)


class CompressedWarning:
    """Logs once per middleware that compressed HTML went out without a token, and the fix.

    ``hint`` is a %-format with one ``%s`` for the encoding, and says how to order the
    middleware for its protocol.
    """

    __slots__ = ("_hint", "_warned")

    def __init__(self, hint: str) -> None:
        self._hint = hint
        self._warned = False

    def __call__(self, headers: Iterable[tuple[AnyStr, AnyStr]]) -> None:
        if self._warned:
            return
        self._warned = True
        encoding = ", ".join(
            _text(value) for name, value in headers if _text(name).lower() == "content-encoding"
        )
        logging.getLogger("reqio_middleware").warning(self._hint, encoding)


@lru_cache(maxsize=64)
def is_ascii_compatible(charset: str) -> bool:
    """True when the markup characters of a tag are the same bytes as in ASCII.

    The rewriter works on bytes, so a page must spell ``<script src="...">`` in ASCII; UTF-16/32
    do not, and stateful encodings (UTF-7, ISO-2022-*, HZ) can give ASCII bytes another meaning.
    Unknown charsets are refused: guessing could corrupt a page.
    """
    try:
        name = codecs.lookup(charset).name.replace("-", "_")
    except (LookupError, ValueError):
        return False
    if name.startswith(_STATEFUL_ENCODINGS):
        return False
    try:
        return _ASCII_PROBE.encode(name) == _ASCII_PROBE.encode("ascii")
    except (UnicodeError, LookupError, TypeError):
        return False


def edit_headers(
    headers: Sequence[tuple[AnyStr, AnyStr]], content_length: int | None, *, no_store: bool = True
) -> list[tuple[AnyStr, AnyStr]]:
    """The headers of a page that carries (or, for HEAD, would carry) a per-user token.

    ``Content-Length`` is set to ``content_length`` or removed; validators, digests and
    ``Accept-Ranges`` describe other bytes and go. No cache may keep the page or give it to
    another user: see :mod:`reqio_middleware.cachefields` for every field that says so and why
    (``no_store=False`` lets the user's own browser keep it). Other headers keep their order,
    names and case; repeated fields that are edited are merged into their first line.
    """
    as_bytes = bool(headers) and isinstance(headers[0][0], bytes)
    out: list[tuple[AnyStr, AnyStr]] = []
    edited: dict[str, tuple[int, str]] = {}  # lowercase name -> (where its line is, value)
    for raw_name, raw_value in headers:
        lower = _lower_name(raw_name)
        if lower in _REMOVED:
            continue
        if not cachefields.is_edited(lower):
            out.append((raw_name, raw_value))  # as the application sent it
        elif lower in edited:
            at, value = edited[lower]
            edited[lower] = at, f"{value}, {_text(raw_value)}"  # list fields join with commas
        else:
            edited[lower] = len(out), _text(raw_value)
            out.append((raw_name, raw_value))
    for lower, (at, value) in edited.items():
        out[at] = _unstorable(out[at][0], lower, value, no_store, as_bytes)
    for lower, name in cachefields.always_sent(as_bytes):
        if lower not in edited:
            out.append(_unstorable(name, lower, "", no_store, as_bytes))
    if content_length is not None:
        name = "content-length" if as_bytes else "Content-Length"
        out.append(_pair(name, str(content_length), as_bytes))
    return out


# The same few fields come with every page, so each is parsed and encoded once.
@lru_cache(maxsize=256)
def _unstorable(
    name: str | bytes, lower: str, value: str, no_store: bool, as_bytes: bool
) -> tuple[Any, Any]:
    """The line of edited field ``lower`` (sent as ``name``) on a token page."""
    return _pair(name, cachefields.unstorable(lower, value, no_store=no_store), as_bytes)


@lru_cache(maxsize=256)
def _lower_name(name: str | bytes) -> str:
    return _text(name).lower()


def _pair(name: AnyStr | str, value: str, as_bytes: bool) -> tuple[AnyStr, AnyStr]:
    text = _text(name)
    if as_bytes:
        return text.encode("latin-1"), value.encode("latin-1")  # type: ignore[return-value]
    return text, value  # type: ignore[return-value]


def _charset(params: str) -> str | None:
    """The charset a browser reads from a Content-Type's parameters (the text after its first
    ``;``): the first valid ``charset`` parameter wins, later ones are ignored (WHATWG MIME type
    parsing), so ``charset=utf-16; charset=utf-8`` is UTF-16."""
    for name, value in _parameters(params):
        if name == "charset":
            return value
    return None


def _parameters(params: str) -> Iterator[tuple[str, str]]:
    """The valid ``(lowercase name, value)`` parameters in order, as the WHATWG MIME type parser
    reads them: quoted values unescaped, unquoted ones up to ``;`` less trailing whitespace."""
    text, pos, end = ";" + params, 0, len(params) + 1
    while pos < end:
        pos += 1  # past the ';'
        while pos < end and text[pos] in _HTTP_WHITESPACE:
            pos += 1
        name_end = _find_any(text, ";=", pos)
        name, pos = text[pos:name_end].lower(), name_end
        if pos >= end:
            return
        if text[pos] == ";":
            continue
        pos += 1  # past the '='
        if pos < end and text[pos] == '"':
            value, pos = _quoted_string(text, pos)
            pos = _find_any(text, ";", pos)
        else:
            value_end = _find_any(text, ";", pos)
            value, pos = text[pos:value_end].rstrip(_HTTP_WHITESPACE), value_end
            if not value:
                continue
        if name and _TOKEN_CHARS.issuperset(name) and _QUOTED_STRING_CHARS.issuperset(value):
            yield name, value


def _quoted_string(text: str, pos: int) -> tuple[str, int]:
    """The value of the HTTP quoted string that starts at ``text[pos]`` (a ``"``), and where
    it ends; an unterminated one runs to the end, a trailing backslash stays."""
    value: list[str] = []
    pos += 1
    while pos < len(text):
        char = text[pos]
        pos += 1
        if char == '"':
            break
        if char == "\\":
            value.append(text[pos] if pos < len(text) else "\\")
            pos += 1
        else:
            value.append(char)
    return "".join(value), pos


def _find_any(text: str, chars: str, pos: int) -> int:
    """The index of the first of ``chars`` at or after ``pos``, or ``len(text)``."""
    while pos < len(text) and text[pos] not in chars:
        pos += 1
    return pos


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value
