"""Character references in attribute values, decoded exactly as the WHATWG HTML tokenizer does.

``html.unescape`` is close but not the tokenizer: it drops numeric references to code points
such as U+0001 or U+FDD0 that a browser keeps, so a value it decodes can differ from the one a
browser hands to the URL parser. Deciding where a ``src`` points needs the browser's value.
"""

from __future__ import annotations

import re
from html.entities import html5

__all__ = ["decode_attribute"]

# A reference candidate: ``&#`` with digits, ``&#x`` with hex digits, or ``&`` with a run of
# ASCII alphanumerics; each may end in ``;``. ``&`` followed by anything else is plain text,
# and so is ``&#``/``&#x`` without digits.
_REFERENCE = re.compile(r"&(?:#[xX]([0-9A-Fa-f]+);?|#([0-9]+);?|([A-Za-z0-9]+;?))")

# Names that may appear without ``;`` (``&amp``, ``&copy``...): the tokenizer's legacy table.
_LEGACY = frozenset(name for name in html5 if not name.endswith(";"))
_LONGEST_LEGACY = max(map(len, _LEGACY))

# Numeric references to 0x80-0x9F name the windows-1252 character with that byte, as the
# tokenizer's replacement table says; the five bytes windows-1252 leaves undefined are kept.
_WINDOWS_1252 = {
    0x80: "\u20ac", 0x82: "\u201a", 0x83: "\u0192", 0x84: "\u201e", 0x85: "\u2026",
    0x86: "\u2020", 0x87: "\u2021", 0x88: "\u02c6", 0x89: "\u2030", 0x8A: "\u0160",
    0x8B: "\u2039", 0x8C: "\u0152", 0x8E: "\u017d", 0x91: "\u2018", 0x92: "\u2019",
    0x93: "\u201c", 0x94: "\u201d", 0x95: "\u2022", 0x96: "\u2013", 0x97: "\u2014",
    0x98: "\u02dc", 0x99: "\u2122", 0x9A: "\u0161", 0x9B: "\u203a", 0x9C: "\u0153",
    0x9E: "\u017e", 0x9F: "\u0178",
}  # fmt: skip


def decode_attribute(value: str) -> str:
    """``value`` (an attribute value as written, without its quotes) as the tokenizer reads it.

    U+0000 becomes U+FFFD, numeric and named references are replaced, and a named reference
    without ``;`` that is followed by ``=`` or an ASCII alphanumeric stays as written (the
    attribute-value rule that keeps ``?a=1&copy=2`` intact). Newline normalisation is the
    input stream's job, not the tokenizer's, and is not done here.
    """
    if "&" not in value:
        return value.replace("\0", "\ufffd") if "\0" in value else value
    if "\0" in value:
        value = value.replace("\0", "\ufffd")
    return _REFERENCE.sub(_replace, value)


def _replace(match: re.Match[str]) -> str:
    hex_digits, digits, name = match.groups()
    if name is not None:
        return _named(name, match.string, match.end())
    if hex_digits is not None:
        return _numeric(_number(hex_digits, 16, 6))
    return _numeric(_number(digits, 10, 7))


def _number(digits: str, base: int, width: int) -> int:
    """The value of ``digits``, or 0x110000 (out of range) when it has more than ``width``
    significant digits: long decimal strings are costly for ``int`` and refused past a limit.
    """
    digits = digits.lstrip("0")
    return int(digits, base) if 0 < len(digits) <= width else (0 if not digits else 0x110000)


def _numeric(number: int) -> str:
    """The character a numeric reference stands for; every code point not listed is kept."""
    if number == 0 or number > 0x10FFFF or 0xD800 <= number <= 0xDFFF:
        return "\ufffd"
    return _WINDOWS_1252.get(number) or chr(number)


def _named(run: str, text: str, end: int) -> str:
    """The replacement for ``&`` + ``run`` (alphanumerics, perhaps ending in ``;``) that ends at
    ``text[end]``: the longest name in the table that the run starts with, or the run as is.

    A name ending in ``;`` can only be the whole run; a legacy name is a prefix of it.
    """
    if run.endswith(";") and run in html5:
        return html5[run]
    for size in range(min(len(run), _LONGEST_LEGACY), 1, -1):
        name = run[:size]
        if name in _LEGACY:
            after = run[size] if size < len(run) else text[end : end + 1]
            if after == "=" or (after.isascii() and after.isalnum()):
                return "&" + run
            return html5[name] + run[size:]
    return "&" + run
