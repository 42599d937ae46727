"""Character references in attribute values: html5lib-tests' tokenizer data, html5lib's own
tokenizer on generated values, and every class of code point a numeric reference can name."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reqio_middleware.charrefs import decode_attribute

TOKENIZER_TESTS = Path(__file__).parent / "data" / "html5lib-tests" / "tokenizer"


def _tests(name: str) -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = json.loads((TOKENIZER_TESTS / name).read_text("utf-8"))["tests"]
    return tests


# --- html5lib-tests --------------------------------------------------------------------------

_LONE_REFERENCE = re.compile(r"&[#A-Za-z0-9]+;?")


@pytest.mark.parametrize("name", ["namedEntities.test", "numericEntities.test"])
def test_every_reference_of_the_tokenizer_data(name: str) -> None:
    """Each input is one reference at the end of the input. In an attribute value it would be
    followed by the closing quote, which is neither ``=`` nor alphanumeric, so the expected
    text is the attribute value's too."""
    tests = _tests(name)
    for test in tests:
        assert _LONE_REFERENCE.fullmatch(test["input"]), test  # the premise above
        expected = "".join(token[1] for token in test["output"])
        assert decode_attribute(test["input"]) == expected, test["description"]
    assert len(tests) > 300


# A start tag with plain attributes, and one of them: values as written, before decoding.
_START_TAG = re.compile(
    r"""<[a-z]+((?:[\t\n\f ]+[a-z]+=(?:"[^"]*"|'[^']*'|[^\t\n\f >"'=<`]+))+)[\t\n\f ]*>"""
)
_ATTRIBUTE = re.compile(r"""[\t\n\f ]+([a-z]+)=(?:"([^"]*)"|'([^']*)'|([^\t\n\f >"'=<`]+))""")


def _attribute_cases() -> list[tuple[str, str, str]]:
    """(test description, raw value, expected value) for every attribute of the tokenizer
    tests whose input starts with a start tag simple enough to cut into attributes here."""
    cases = []
    for name in ["entities.test", "test1.test", "test2.test", "test3.test", "test4.test"]:
        for test in _tests(name):
            # The input stream's preprocessing (newlines) comes before the tokenizer.
            start = _START_TAG.match(test["input"].replace("\r\n", "\n").replace("\r", "\n"))
            if test.get("doubleEscaped") or test.get("initialStates") or start is None:
                continue
            raw = {m[1]: m[2] or m[3] or m[4] or "" for m in _ATTRIBUTE.finditer(start[1])}
            expected = test["output"][0][2]
            if len(raw) != len(_ATTRIBUTE.findall(start[1])):
                continue  # a repeated name: the tokenizer keeps the first, the dict the last
            cases += [(test["description"], raw[key], expected[key]) for key in raw]
    return cases


def test_attribute_values_of_the_tokenizer_data() -> None:
    cases = _attribute_cases()
    for description, raw, expected in cases:
        assert decode_attribute(raw) == expected, description
    assert len(cases) > 150
    assert sum("&" in raw for _, raw, _ in cases) >= 20


# --- html5lib's tokenizer as an oracle ------------------------------------------------------


def _html5lib_attribute(value: str) -> str:
    from html5lib._tokenizer import HTMLTokenizer

    for token in HTMLTokenizer(f'<a x="{value}">'):
        if token.get("name") == "a":
            result: str = token["data"]["x"]
            return result
    raise AssertionError("no start tag")


_NAMES = ["amp", "not", "notin", "lt", "copy", "AMP", "CounterClockwiseContourIntegral"]
_PIECES = st.one_of(
    st.sampled_from(["&", "#", "x", "X", ";", "=", "0", "9", "a", "f", "g", "\0", " ", "/"]),
    st.sampled_from(_NAMES).map(lambda name: "&" + name),
    st.integers(0, 0x11FFFF).map(lambda n: f"&#x{n:x}"),
    st.integers(0, 0x11FFFF).map(lambda n: f"&#{n}"),
    # Any other character; not '"' (it would end the value), not CR (html5lib's input stream
    # turns CR and CRLF into LF before tokenizing, as the standard's preprocessing says: a
    # step of the input stream, not of reference decoding), no lone surrogates (not text).
    st.characters(blacklist_characters='"\r', blacklist_categories=("Cs",)),
)


@example("&#x1;&#xb;&#x7f;&#xfdd0;&#x0;&#x80;&#x81;&#xd800;&#x110000;&#13;")
@example("&notit;&not=&noti&amp&AMP;&lang=&#;&#x;&#xg")
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_agrees_with_html5lib_on_attribute_values(value: str) -> None:
    # html5lib 1.1 follows the standard on every reference class checked here; none excluded.
    assert decode_attribute(value) == _html5lib_attribute(value)


# --- every class of code point --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("&#0;", "\ufffd"),
        ("&#x0;", "\ufffd"),
        ("&#x110000;", "\ufffd"),
        ("&#1114112;", "\ufffd"),
        ("&#x" + "f" * 40 + ";", "\ufffd"),
        ("&#" + "9" * 5000 + ";", "\ufffd"),  # past Python's limit on int() digits
        ("&#xD800;", "\ufffd"),
        ("&#xDFFF;", "\ufffd"),
        ("&#55296;", "\ufffd"),
        ("&#x80;", "\u20ac"),
        ("&#x9F;", "\u0178"),
        ("&#150;", "\u2013"),
        ("&#x81;", "\x81"),  # undefined in windows-1252: kept
        ("&#x8D;&#x8F;&#x90;&#x9D;", "\x8d\x8f\x90\x9d"),
        ("&#x1;", "\x01"),
        ("&#xB;", "\x0b"),
        ("&#x7F;", "\x7f"),
        ("&#13;", "\r"),
        ("&#x9;&#xA;&#xC;&#x20;", "\t\n\x0c "),
        ("&#xFDD0;", "\ufdd0"),
        ("&#xFFFE;&#xFFFF;&#x10FFFF;", "\ufffe\uffff\U0010ffff"),
        ("&#x1F600;", "\U0001f600"),
        ("&#x0000041;", "A"),
        ("&#65", "A"),
        ("&#x41g", "Ag"),
        ("&#", "&#"),
        ("&#;", "&#;"),
        ("&#x", "&#x"),
        ("&#xg;", "&#xg;"),
        ("&#X;", "&#X;"),
        ("a\0b\0", "a\ufffdb\ufffd"),
        ("&\0;", "&\ufffd;"),
        ("&", "&"),
        ("& amp;", "& amp;"),
        ("&amp;", "&"),
        ("&amp", "&"),
        ("&ampx", "&ampx"),
        ("&amp=", "&amp="),
        ("&amp;=", "&="),
        ("&ampé", "&\u00e9"),
        ("?a=1&copy=2&not3", "?a=1&copy=2&not3"),
        ("&notin;&notit;&notin", "\u2209&notit;&notin"),
        ("&nbsp;&nbsp", "\u00a0\u00a0"),
        ("&NotEqualTilde;", "\u2242\u0338"),
        ("&unknown;", "&unknown;"),
        ("plain", "plain"),
    ],
)
def test_explicit_cases(value: str, expected: str) -> None:
    assert decode_attribute(value) == expected


def test_html_unescape_drops_what_a_browser_keeps() -> None:
    """Why this module exists: the standard library's decoder drops these code points."""
    for value in ["&#x1;", "&#xB;", "&#x7F;", "&#xFDD0;"]:
        assert decode_attribute(value) != html.unescape(value)


def test_a_value_without_references_is_returned_as_is() -> None:
    value = "https://reqio.app/widget.js"
    assert decode_attribute(value) is value
