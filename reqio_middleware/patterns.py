"""The regular-expression building blocks of the tokenizer's states (WHATWG 13.2.5).

The data state's bulk run, the tag states from a tag name to its '>', and the small pieces
that the runs over tree-builder content (:mod:`.treeruns`) and the other states
(:mod:`.tokenizer`) share. The patterns are written so that a string can be split into their
pieces in one way only (see the note above ``_VALUE``).
"""

from __future__ import annotations

import re
import sys

from . import tags

#: The names the data-state run stops at: tokenizer switches and tree-builder stops.
_STOP_NAMES = tuple(sorted(tags.HTML_STOPS))
#: Letters no stop name starts with: tags beginning with one skip the name check.
_PLAIN_FIRST = bytes(
    c for c in range(ord("a"), ord("z") + 1) if all(name[0] != c for name in _STOP_NAMES)
)


def _pattern(template: bytes, **parts: bytes) -> bytes:
    """Fill ``{NAME}`` slots. ``WS`` is HTML whitespace: tab, LF, FF, CR, space (no VT)."""
    out = template.replace(b"WS", b"\t\n\f\r ")
    for key, value in parts.items():
        out = out.replace(b"{" + key.encode() + b"}", value)
    return out


# The patterns are written so that a string can be split into their pieces in one way only:
# every run ends with a lookahead that the next byte cannot continue it. That is what keeps
# a failing match (an incomplete tag) linear without possessive quantifiers or atomic groups,
# which Python 3.10's ``re`` does not have.
#
# Attribute value: quoted (quote states) or unquoted (which cannot start with a quote); empty
# only when '>' (or the end of the tag's span) follows, as before-attribute-value reads it.
_VALUE = _pattern(rb"""(?:"[^"]*"|'[^']*'|[^WS>"'][^WS>]*(?![^WS>])|(?![^>]))""")
# Attribute name state; a leading '=' is a (parse-error) name character, later ones end it.
_NAME = _pattern(rb"[^WS/>][^WS/>=]*(?![^WS/>=])")
# After the tag name up to and including '>': before/after attribute name, the attribute
# value states, self-closing. A name followed by '=' must have a value, so an unterminated
# quote makes the whole pattern fail, which is how "tag incomplete" shows.
_TAG_REST_EXACT = _pattern(
    rb"(?:[WS/]+(?![WS/])|{NAME}(?:[WS]*=[WS]*{VALUE}|(?![WS]*=)))*>", NAME=_NAME, VALUE=_VALUE
)
# The same states for the tags real pages are made of (name="v" name='v' name=v name),
# tried first because it is several times cheaper; any tag it does not fit goes to the
# exact form above, so both give the same end.
_TAG_REST_COMMON = _pattern(
    rb"""(?:[WS]+[^WS/>="'<`]+(?![^WS/>="'<`])"""
    rb"""(?:="[^"]*"|='[^']*'|=[^WS>"'=<`]+(?![^WS>"'=<`]))?)*[WS]*/?>"""
)
_TAG_REST = b"(?:" + _TAG_REST_COMMON + b"|" + _TAG_REST_EXACT + b")"
_TAG_NAME = _pattern(rb"[^WS/>]*(?![^WS/>])")
_SPECIAL = b"(?i:" + b"|".join(_STOP_NAMES) + _pattern(rb")(?=[WS/>])")


# Data state, consumed in bulk by one C-level match: text, end tags (which may carry
# attributes), bogus comments and doctypes, start tags of ordinary elements, a lone '<'. It
# stops at comments, at start tags that switch the tokenizer (raw text, script, plaintext)
# and at anything the end of the buffer cuts short. Start tags whose first letter cannot
# begin a raw-text name skip the (costly) name check.
def _compile(pattern: bytes) -> re.Pattern[bytes]:
    """Compile a pattern, making each quantifier after a class or group possessive where the
    ``re`` module has them (3.11+). The patterns split a string one way only, so possessive
    and plain quantifiers match the same; possessive ones skip the bookkeeping for
    backtracking, which makes long runs of the data state several times faster."""
    if sys.version_info >= (3, 11):
        pattern = _QUANTIFIER.sub(rb"\1+", pattern)
    return re.compile(pattern)


# A '*', '+' or '?' right after a class or group, not already possessive or lazy.
_QUANTIFIER = re.compile(rb"(?<=[\])])([*+?])(?![+?])")

_BULK = _compile(
    _pattern(
        rb"(?:[^<]+"
        rb"|<+(?=[^a-zA-Z!/?])"
        rb"|<[{PLAIN_FIRST}]{TAG_NAME}{REST}"
        rb"|</[a-zA-Z]{TAG_NAME}{REST}"
        rb"|<(?!{SPECIAL})[a-zA-Z]{TAG_NAME}{REST}"
        rb"|<(?=[^a-zA-Z!/?])"
        rb"|</>"
        rb"|</(?=[^a-zA-Z>])[^>]*>"
        rb"|<!(?!--)[^>]*>"
        rb"|<\?[^>]*>"
        rb")*",
        TAG_NAME=_TAG_NAME,
        REST=_TAG_REST,
        SPECIAL=_SPECIAL,
        PLAIN_FIRST=_PLAIN_FIRST + _PLAIN_FIRST.upper(),
    )
)


#: After a tag name: the attribute states up to and including '>'.
_TAG_END = _compile(_TAG_REST)
_COMMENT_END = re.compile(rb"--!?>")
_RUN_TAG_NAME = re.compile(_TAG_NAME)
_RAW_END = {
    name: re.compile(_pattern(rb"</{NAME}[WS/>]", NAME=name), re.IGNORECASE)
    for name in sorted(tags.RAWTEXT | tags.RCDATA | {tags.SCRIPT})
}


def _is_alpha(c: int) -> bool:
    return 0x61 <= (c | 0x20) <= 0x7A


def _comment_after(buf: bytes, pos: int, end: int) -> int:
    """After the comment that '<!--' at ``pos`` opens ('<!-->' and '<!--->' end at once), or -1
    when ``buf[:end]`` ends first (``end - pos`` is at least 9)."""
    after = buf[pos + 4 : pos + 6]
    if after[:1] == b">":
        return pos + 5
    if after == b"->":
        return pos + 6
    m = _COMMENT_END.search(buf, pos + 4, end)
    return -1 if m is None else m.end()


def _after_gt(buf: bytes, pos: int, end: int) -> int:
    gt = buf.find(b">", pos, end)
    return -1 if gt == -1 else gt + 1
