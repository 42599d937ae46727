"""html5lib as the judge of where a token landed in a rewritten document.

html5lib is a WHATWG tree builder written from the standard. Scripting is on (as in a
browser, which makes ``<noscript>`` raw text), HTML elements carry the XHTML namespace, so an
SVG or MathML ``<script>`` is told apart from an HTML one.

The rule the oracle enforces: every occurrence of the token in the output bytes is the value
of a ``data-identity-token`` attribute of an HTML ``script`` element that a browser loads from
the widget. An occurrence anywhere else (another attribute, another element, a foreign
element, text, a comment, a doctype, or somewhere the parser dropped, such as an end tag) is a
leak.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

import html5lib
from html5lib import treebuilders

from field.urls import loads_widget

XHTML = "{http://www.w3.org/1999/xhtml}"
SCRIPT = XHTML + "script"
TOKEN_ATTR = "data-identity-token"
PROBE_ATTR = "data-probe"

#: JWT-shaped (three base64url parts) and found in no corpus document.
TOKEN = "eyJmaWVsZCI6InRlc3RzIn0.cHJvYmVfdG9rZW5fZmllbGQ.ZmllbGR0ZXN0c19zaWc"

_BUILDER = treebuilders.getTreeBuilder("etree", fullTree=True)


class _RecordingBuilder(_BUILDER):  # type: ignore[misc,valid-type]
    """html5lib's etree builder, remembering every element it ever creates.

    The final tree is not the whole story: a ``<frameset>`` replaces a ``<body>`` the parser
    had already filled (and whose scripts a browser had already run). Judging attributes on
    every element created keeps those; a tag the tree builder ignored creates none.
    """

    elementClass: Any

    def __init__(self, namespaceHTMLElements: bool) -> None:
        super().__init__(namespaceHTMLElements)
        self.created: list[Any] = []
        make = self.elementClass

        def record(name: str, namespace: str | None = None) -> Any:
            element = make(name, namespace)
            self.created.append(element)
            return element

        self.elementClass = record


def parse(text: str, *, scripting: bool = True, namespaced: bool = True) -> Any:
    """The document html5lib builds for ``text`` (an etree with a ``DOCUMENT_ROOT``)."""
    parser = html5lib.HTMLParser(tree=_BUILDER, namespaceHTMLElements=namespaced)
    return parser.parse(text, scripting=scripting)


def parse_recording(text: str) -> tuple[Any, list[Any]]:
    """The document, and every element created on the way (as etree elements)."""
    parser = html5lib.HTMLParser(tree=_RecordingBuilder, namespaceHTMLElements=True)
    document = parser.parse(text, scripting=True)
    return document, [wrapper._element for wrapper in parser.tree.created]


def dump(document: Any) -> str:
    """``document`` in the corpus's ``#document`` notation (html5lib's own serializer)."""
    text: str = _BUILDER(namespaceHTMLElements=False).testSerializer(document)
    return text


@dataclass
class Verdict:
    """What the oracle saw in one rewritten document."""

    #: where the token sits that it must not (one line each)
    leaks: list[str] = field(default_factory=list)
    #: probe ids of widget script elements that carry the token
    stamped: set[str] = field(default_factory=set)
    #: probe ids of widget script elements that do not
    missed: set[str] = field(default_factory=set)


def _where(element: Any) -> str:
    tag = element.tag if isinstance(element.tag, str) else "<!-- comment -->"
    return (
        tag.replace(XHTML, "")
        .replace("{http://www.w3.org/2000/svg}", "svg:")
        .replace("{http://www.w3.org/1998/Math/MathML}", "math:")
    )


def _texts(element: Any) -> Iterator[tuple[str, str]]:
    """(description, text) of every text-like thing owned by ``element``."""
    if element.tag is ElementTree.Comment:
        yield "a comment", element.text or ""
    elif element.text:
        yield f"the text of <{_where(element)}>", element.text
    if element.tail:
        yield f"text after <{_where(element)}>", element.tail


def _is_widget_script(element: Any) -> bool:
    return bool(element.tag == SCRIPT and loads_widget(element.attrib.get("src", "")))


def _check_attributes(element: Any, token: str, verdict: Verdict) -> int:
    """Judge ``element``'s attributes; how many rightful tokens it carries (0 or 1)."""
    rightful = 0
    widget = _is_widget_script(element)
    for name, value in element.attrib.items():
        if token not in name and token not in value:
            continue
        if widget and name == TOKEN_ATTR and value == token:
            rightful += 1
        else:
            verdict.leaks.append(f"attribute {name!r} of <{_where(element)}>")
    if widget and PROBE_ATTR in element.attrib:
        probe = element.attrib[PROBE_ATTR]
        (verdict.stamped if rightful else verdict.missed).add(probe)
    return rightful


def parses(text: str) -> bool:
    """Whether html5lib builds a tree for ``text`` at all. On a few documents its own tree
    builder fails an internal assertion (``<svg><select><foreignObject><table><table>`` is
    one), and then it cannot judge: generated inputs like that are left out."""
    try:
        parse_recording(text)
    except AssertionError:
        return False
    return True


def judge(output: str, token: str = TOKEN) -> Verdict:
    """Where ``token`` landed in ``output`` (the rewritten document, decoded)."""
    verdict = Verdict()
    document, created = parse_recording(output)
    for node in document.iter():
        if node.tag == "<!DOCTYPE>":
            if token in "".join([node.text or "", *node.attrib.values()]):
                verdict.leaks.append("the doctype")
            continue
        for where, text in _texts(node):
            verdict.leaks.extend([where] * text.count(token))
    rightful = sum(_check_attributes(element, token, verdict) for element in created)
    unseen = output.count(token) - rightful - len(verdict.leaks)
    if unseen > 0:
        verdict.leaks.append(f"{unseen} token(s) the parser dropped (on no element it created)")
    return verdict
