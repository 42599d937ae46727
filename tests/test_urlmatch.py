"""The widget-URL rule: explicit spellings, the URL standard's own test data, and two oracles on
generated spellings: Node's URL parser (ada, a maintained WHATWG implementation) and Chromium
itself (its tokenizer and URL parser, every request intercepted)."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI, require_tool
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from reqio_middleware import urlmatch
from reqio_middleware.charrefs import decode_attribute
from reqio_middleware.urlmatch import DEFAULT_WIDGET_SRC, Resolved, WidgetSource, resolve

WPT_DATA = Path(__file__).parent / "data" / "wpt" / "urltestdata.json"
WIDGET = WidgetSource()

# Spellings Chromium loads from the real widget.
LOADED_FROM_THE_WIDGET = [
    "https://reqio.app/widget.js",
    "https://reqio%2eapp/widget.js",
    "https://reqio%2Eapp/widget.js",
    "https://%72eqio.app/widget.js",
    "https://reqio.app:0443/widget.js",
    "https://reqio.app:443/widget.js",
    "https://reqio.app:/widget.js",
    "https://reqio.app/./widget.js",
    "https://reqio.app/%2e/widget.js",
    "https://reqio.app/x/../widget.js",
    "https://reqio.app/x/%2E%2e/widget.js",
    "https://reqio.app/x/.%2e/widget.js",
    "https:///reqio.app/widget.js",
    "https:/\\/reqio.app/widget.js",
    "HTTPS://REQIO.APP/widget.js",
    "hTtPs://ReQiO.aPp/widget.js",
    "https:\\\\reqio.app\\widget.js",
    "//reqio.app/widget.js",
    "\\\\reqio.app/widget.js",
    "/\\reqio.app/widget.js",
    "//reqio.app:443/widget.js",
    "https://reqio.app/widget.js?v=1#x",
    "https://reqio.app/widget.js#x",
    "https://reqio.app/widget.js?/../x",
    " https://reqio.app/widget.js\n",
    "\x01\x1f https://reqio.app/widget.js \x1f",
    "https://reqio.app/wid&#x67;et.js",
    "https://reqio.app/wid&#103;et.js",
    "https&colon;//reqio.app/widget.js",
    "https:&sol;&sol;reqio&period;app/widget.js",
    "https://reqio.app/wid\tget.js",
    "ht\ntps://reqio.app/widget.js",
    "https://reqio.app/widget.js?&#x1;é",
]

# Spellings that go elsewhere, depend on the page's base URL, that a browser refuses, or that
# are documented misses (hosts needing IDNA, such as the ideographic full stop below).
NOT_THE_WIDGET = [
    "https&#x1;://reqio.app/widget.js",
    "https&#x7f;://reqio.app/widget.js",
    "https&#xb;://reqio.app/widget.js",
    "https&#xFDD0;://reqio.app/widget.js",
    "https:/reqio.app/widget.js",
    "https:reqio.app/widget.js",
    "https:\\reqio.app/widget.js",
    "http://reqio.app/widget.js",
    "wss://reqio.app/widget.js",
    "ftp://reqio.app/widget.js",
    "file://reqio.app/widget.js",
    "https://reqio.app@evil.example/widget.js",
    "https://user:pass@reqio.app/widget.js",
    "https://@reqio.app/widget.js",
    "https://evil.example\\@reqio.app/widget.js",
    "https://evil.example&#x5c;@reqio.app/widget.js",
    "https://reqio.app.evil.example/widget.js",
    "https://reqio.app%2eevil.example/widget.js",
    "https://reqio.app%2fwidget.js",
    "https://reqio.app%00/widget.js",
    "https://reqio.app%/widget.js",
    "https://reqio.app:444/widget.js",
    "https://reqio.app:80/widget.js",
    "https://reqio.app:443:443/widget.js",
    "https://reqio.app:65979/widget.js",
    "https://reqio.app:4a3/widget.js",
    "https://[::1]/widget.js",
    "https://reqio.app/widget.jsx",
    "https://reqio.app/widget.js/",
    "https://reqio.app/widget.js/.",
    "https://reqio.app/Widget.js",
    "https://reqio.app/widget%2ejs",
    "https://reqio.app/%77idget.js",
    "https://reqio.app/x/widget.js",
    "https://reqio.app//widget.js",
    "https://reqio.app/widget.js&#0;",
    "https://reqio.app/wid get.js",
    "https://reqio.app/widget.js\x7f",
    "https://reqio.app/widget.js\x00",  # U+FFFD in an attribute value, not a control
    "/widget.js",
    "widget.js",
    "./widget.js",
    "javascript:alert(1)",
    "data:text/javascript,1",
    "https://reqio.app./widget.js",
    "https://xn--reqio-1ta.app/widget.js",
    "https://reqio。app/widget.js",
    "https://réqio.app/widget.js",
    "https://reqio.app\u00a0/widget.js",
    "",
    "https://",
]


@pytest.mark.parametrize("spelling", LOADED_FROM_THE_WIDGET)
def test_spellings_a_browser_loads_from_the_widget_match(spelling: str) -> None:
    raw = spelling.encode()
    assert WIDGET.why_not(raw) is None
    assert WIDGET.matches(raw)


@pytest.mark.parametrize("spelling", NOT_THE_WIDGET)
def test_other_spellings_do_not_match(spelling: str) -> None:
    raw = spelling.encode()
    assert not WIDGET.matches(raw)
    reason = WIDGET.why_not(raw)
    assert reason is not None
    assert reason.strip()


@pytest.mark.parametrize(
    ("spelling", "reason"),
    [
        ("http://reqio.app/widget.js", urlmatch.HTTP),
        ("http:widget.js", urlmatch.HTTP),
        ("https://reqio.app@evil.example/widget.js", urlmatch.USERINFO),
        ("/widget.js", urlmatch.RELATIVE),
        ("https:/reqio.app/widget.js", urlmatch.RELATIVE),
        ("https://reqio.app.evil.example/widget.js", urlmatch.LOOK_ALIKE),
        ("https://reqio.app/Widget.js", urlmatch.LOOK_ALIKE),
        ("https://réqio.app/widget.js", urlmatch.NON_ASCII_HOST),
        ("https://xn--rqio-bpa.app/widget.js", urlmatch.PUNYCODE_HOST),
        ("https://0x7f.1/widget.js", urlmatch.IP_HOST),
        ("https://reqio.app:444/widget.js", urlmatch.OTHER_PORT),
        ("https://reqio.app:99999/widget.js", urlmatch.INVALID),
        ("https://cdn.example/lib.js", urlmatch.OTHER),
        ("javascript:alert(1)", urlmatch.OTHER_SCHEME),
    ],
)
def test_reasons_say_why(spelling: str, reason: str) -> None:
    assert WIDGET.why_not(spelling.encode()) == reason


def test_non_ascii_bytes_before_the_query_are_a_miss_and_after_it_do_not_matter() -> None:
    # In Shift_JIS, 0x81 0x5C is one character, not a byte and a backslash.
    assert WIDGET.why_not("https://reqio.app/wid\u00e9get.js".encode()) == urlmatch.NON_ASCII_BYTES
    assert WIDGET.why_not(b"https://reqio.app/widget.js\x81\\") == urlmatch.NON_ASCII_BYTES
    assert WIDGET.why_not(b"\xef\xbb\xbfhttps://reqio.app/widget.js") is not None
    assert WIDGET.matches(b"https://reqio.app/widget.js?\x81\\x#\xff")
    # Still decided on what comes first: a look-alike is said to be one.
    assert WIDGET.why_not(b"http://reqio.app/\xff") == urlmatch.HTTP


def test_the_widget_source_is_parsed_like_any_source() -> None:
    w = WidgetSource("HTTPS://Reqio.App:0443/a/./b/../widget.js?v=2")
    assert (w.host, w.port, w.authority, w.path) == ("reqio.app", None, "reqio.app", "/a/widget.js")
    assert w.matches(b"https://reqio.app/a/widget.js")
    assert w.needle == b"widget.js"
    local = WidgetSource("//127.0.0.1:8000/w/widget.js")
    assert (local.host, local.port, local.authority) == ("127.0.0.1", 8000, "127.0.0.1:8000")
    assert local.matches(b"https://127.0.0.1:08000/w/widget.js")
    assert local.matches(b"//127.0.0.1:8000/w/widget.js")
    assert not local.matches(b"//127.0.0.1/w/widget.js")
    assert not local.matches(b"https://127.0.0.1:443/w/widget.js")
    assert repr(local) == "WidgetSource('//127.0.0.1:8000/w/widget.js')"
    assert WidgetSource().src == DEFAULT_WIDGET_SRC


def test_a_path_with_a_reference_needs_the_parser() -> None:
    w = WidgetSource("https://reqio.app/a&b/w%20x.js")
    assert w.path == "/a&b/w%20x.js"
    assert w.needle == b"x.js"
    assert w.matches(b"https://reqio.app/a&amp;b/w x.js")
    assert not w.matches(b"https://reqio.app/a&amp;amp;b/w%20x.js")
    assert not w.matches(b"https://reqio.app/a&b/w%20x.jsx")


@pytest.mark.parametrize(
    "bad",
    [
        "http://reqio.app/widget.js",
        "reqio.app/widget.js",
        "/widget.js",
        "https://",
        "https://x.y/",
        "https:///widget.js",
        "https://user@reqio.app/widget.js",
        "https://réqio.app/widget.js",
        "https://reqio.app:99999/widget.js",
        "javascript:alert(1)",
    ],
)
def test_a_bad_widget_src_is_refused_with_the_reason(bad: str) -> None:
    with pytest.raises(ValueError, match=r"widget_src must be .* \(.+\)"):
        WidgetSource(bad)


# --- generated spellings ------------------------------------------------------------------


def _respelled(text: str, *, percent: bool) -> st.SearchStrategy[str]:
    """``text`` with some characters written as character references or (``percent``) in the
    other case or percent-encoded, and tabs or newlines slipped in; mostly as it is."""

    def one(c: str) -> list[str]:
        options = [c] * 8 + [f"&#x{ord(c):x};", f"&#{ord(c)};", f"&#X{ord(c):04X}"]
        if percent and c not in "/\\":  # in a host: case and percent-encoding do not matter
            options += [c.swapcase(), f"%{ord(c):02x}", f"%{ord(c):02X}"]
        return options + [c + junk for junk in ("\t", "\n", "\r", "&#9;", "&#x0A;")]

    return st.tuples(*(st.sampled_from(one(c)) for c in text)).map("".join)


def _dotted(path: str) -> st.SearchStrategy[str]:
    segment = st.sampled_from([".", "%2e", "%2E", "x/..", "x/.%2e", "x/%2E%2E", "a/b/../.."])
    dots = st.lists(segment, max_size=2).map(lambda found: "".join(f"/{d}" for d in found))
    return st.tuples(dots, _respelled(path, percent=False)).map("".join)


_EDGE = st.sampled_from(
    ["", "", "", "", " ", "\x01", "\x1f", "\t\n", "&#x1;", "&#32;", "\x0b", "&#xb;"]
)
_SCHEME = st.sampled_from(
    ["https:"] * 4
    + ["HTTPS:", "hTTps:", "http:", "wss:", "ftp:", "", "", "https&#x1;:"]
    + ["https&colon;", "https&#58;", "htt\tps:", "javascript:", "h ttps:", "https :"]
)
_SLASHES = st.one_of(
    st.sampled_from(["//", "//", "\\\\", "/\\", "///"]),
    st.lists(st.sampled_from(["/", "/", "\\", "&sol;", "&#x5c;"]), max_size=4).map("".join),
)
_USERINFO = st.sampled_from(["", "user@", "reqio.app@", ":@", "a:b@", "@"])
_HOST = st.one_of(
    _respelled("reqio.app", percent=True),
    _respelled("reqio.app", percent=True),
    _respelled("reqio.app", percent=True),
    st.sampled_from(["reqio.app.", "reqio.app.evil.example", "evil.example", "reqio.app\\@x"]),
    st.sampled_from(["reqio.app%2e", "reqio%2eapp%00", "[::1]", "127.0.0.1", "xn--reqio.app"]),
)
_PORT = st.sampled_from([""] * 6 + [":", ":443", ":0443", ":00443", ":444", ":80", ":4a3", ":0"])
_WIDGET_PATH = st.one_of(
    _dotted("/widget.js"),
    _dotted("\\widget.js"),
    _respelled("/widget.js", percent=False),
)
_PATH = st.one_of(
    _WIDGET_PATH,
    st.sampled_from(["/Widget.js", "/widget.jsx", "/widget%2ejs", "/x/widget.js", "/", ""]),
)
_TAIL = st.sampled_from(["", "", "?v=1", "#x", "?a#b", "&amp;x", "?&#x1;", "#é", "?/../x"])


@st.composite
def spellings(draw: st.DrawFn) -> str:
    """Attribute values (as written in a page) that are, or look like, the widget's URL: half
    of them spelled from the parts a browser still loads from the widget, half from any."""
    if draw(st.booleans()):
        scheme = draw(st.sampled_from(["https:", "HTTPS:", "hTTps:", "https&colon;", ""]))
        slashes = draw(st.sampled_from(["//", "\\\\", "/\\", "///", "&sol;/", "/&#x5c;"]))
        host = draw(_respelled("reqio.app", percent=True))
        port = draw(st.sampled_from(["", ":", ":443", ":0443"]))
        parts = [scheme, slashes, host, port, draw(_WIDGET_PATH)]
        return draw(_EDGE) + "".join(parts) + draw(_TAIL) + draw(_EDGE)
    parts = [_EDGE, _SCHEME, _SLASHES, _USERINFO, _HOST, _PORT, _PATH, _TAIL, _EDGE]
    return "".join(draw(part) for part in parts)


_NODE_ORACLE = r"""
const readline = require("readline");
const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const { input, bases } = JSON.parse(line);
  const out = bases.map((base) => {
    try {
      const u = new URL(input, base);
      return { protocol: u.protocol, hostname: u.hostname, port: u.port, pathname: u.pathname };
    } catch (e) {
      return null;
    }
  });
  process.stdout.write(JSON.stringify(out) + "\n");
});
"""

BASES = ["https://example.com/dir/page", "http://example.com/", "https://evil.example/"]


class NodeURL:
    """One node process for the whole test run: a JSON line in, a JSON line back."""

    def __init__(self, node: str) -> None:
        self.process = subprocess.Popen(
            [node, "-e", _NODE_ORACLE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.counts: Counter[str] = Counter()

    def parse(self, url: str) -> list[dict[str, str] | None]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"input": url, "bases": BASES}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, "node exited"
        result: list[dict[str, str] | None] = json.loads(line)
        return result

    def close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.process.stdout.close()  # else it is closed by the garbage collector, with a warning


@pytest.fixture(scope="module")
def node_url() -> Iterator[NodeURL]:
    oracle = NodeURL(require_tool("node"))
    yield oracle
    oracle.close()
    print(f"\nnode oracle: {dict(oracle.counts)}")


def _loads_the_widget(result: dict[str, str] | None, absolute: bool) -> bool:
    if result is None or (result["hostname"], result["pathname"]) != ("reqio.app", "/widget.js"):
        return False
    if absolute:
        return (result["protocol"], result["port"]) == ("https:", "")
    return result["port"] in ("", "443")


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(spellings())
def test_a_match_is_what_node_loads_from_the_widget_on_every_base(
    node_url: NodeURL, spelling: str
) -> None:
    url = decode_attribute(spelling)
    results = node_url.parse(url)
    parsed = resolve(url)
    absolute = isinstance(parsed, Resolved) and parsed.scheme is not None
    everywhere = all(_loads_the_widget(r, absolute=True) for r in results)
    if WIDGET.matches(spelling.encode()):
        node_url.counts["matched"] += 1
        assert all(_loads_the_widget(r, absolute) for r in results), (url, results)
    elif everywhere:
        node_url.counts["documented miss"] += 1
    else:
        node_url.counts["no match, node agrees"] += 1
    if isinstance(parsed, Resolved):
        _agrees_with(parsed, results)


def _agrees_with(parsed: Resolved, results: list[dict[str, str] | None]) -> None:
    """Where the parser claims a result, node gives the same on every base it applies to."""
    for base, result in zip(BASES, results, strict=True):
        scheme = parsed.scheme or base.partition(":")[0]
        assert result is not None, (parsed, base)
        expected = (scheme + ":", parsed.host, _port_text(scheme, parsed.port), parsed.path)
        path = _node20_path(result["pathname"], parsed.path)
        assert (result["protocol"], result["hostname"], result["port"], path) == (expected), (
            base,
            parsed,
        )


def _node20_path(node: str, ours: str) -> str:
    """Node 20's parser keeps a single-dot segment that follows one starting with a dot
    (``https://a//.b/./`` gives ``//.b/./``); the standard, Chromium and ours remove every
    single-dot segment. Only that difference is forgiven."""
    forgiven = node.replace("/./", "/")
    return ours if forgiven == ours and "/." in ours else node


# Every printable ASCII character but ``^`` (Node 20's parser predates the standard's choice to
# percent-encode it in paths), a few controls and non-ASCII characters, and the pieces that
# steer the parser.
_URL_ALPHABET = st.sampled_from(
    [chr(c) for c in range(0x20, 0x7F) if chr(c) != "^"]
    + ["\x01", "\x7f", "\u00e9", "\u3002", "%2e", "%2E", "%41", "%00", "%25", ".."]
    + ["reqio", ".app", ":443", ":0", "//", "\\", "/./", "/../", "@", "[::1]", "0x7f.1"]
)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["https://", "HTTPS:\\\\", "//", "\\/", "http://", "wss:///"]),
    st.lists(_URL_ALPHABET, max_size=16).map("".join),
)
def test_the_parser_agrees_with_node_on_any_url(node_url: NodeURL, prefix: str, rest: str) -> None:
    url = prefix + rest
    parsed = resolve(url)
    results = node_url.parse(url)
    if isinstance(parsed, Resolved):
        _agrees_with(parsed, results)
    elif parsed == urlmatch.INVALID:
        assert results == [None, None, None], url


def _port_text(scheme: str, port: int | None) -> str:
    return "" if port is None or port == urlmatch._DEFAULT_PORTS[scheme] else str(port)


_QUICK_SHAPED = st.tuples(
    st.sampled_from(["https://", "//", "HTTPS://", "https:\\\\"]),
    st.sampled_from(["reqio.app", "Reqio.app", "reqio.app.evil"]),
    st.sampled_from(["", ":443", ":0443", ":", ":444"]),
    st.sampled_from(["/widget.js", "/widget.jsx", "/./widget.js"]),
    st.binary(max_size=12),
).map(lambda t: "".join(t[:4]).encode() + t[4])


@settings(max_examples=300)
@given(st.one_of(spellings().map(str.encode), _QUICK_SHAPED))
def test_the_quick_path_agrees_with_the_parser_and_the_needle_is_there(raw: bytes) -> None:
    if WIDGET._quick is not None and WIDGET._quick.match(raw) is not None:
        assert WIDGET._parsed_why_not(raw) is None
    if WIDGET.matches(raw) and not any(c in raw for c in b"&\t\n\r"):
        assert WIDGET.needle in raw


@given(st.binary(max_size=64))
def test_any_bytes_get_a_verdict_and_no_exception(raw: bytes) -> None:
    assert WIDGET.matches(raw) == (WIDGET.why_not(raw) is None)


# --- the URL standard's own test data -----------------------------------------------------

_SPECIAL_BASES = ("http:", "https:", "ws:", "wss:", "ftp:", "file:")


def _wpt_entries() -> list[dict[str, Any]]:
    entries = [e for e in json.loads(WPT_DATA.read_text("utf-8")) if isinstance(e, dict)]
    return [e for e in entries if e["base"] is None or e["base"].startswith(_SPECIAL_BASES)]


def _usv(text: str) -> str:
    """``text`` as a JavaScript ``USVString``: lone surrogates become U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _wpt_verdict(entry: dict[str, Any]) -> str:
    """``"claimed"``, ``"refused"`` or ``"unused"`` for one entry; raises AssertionError when
    the parser disagrees with the expected result."""
    parsed = resolve(_usv(entry["input"]))
    base_scheme = (entry["base"] or "").partition(":")[0]
    if isinstance(parsed, str):
        if parsed == urlmatch.INVALID and base_scheme != "file":
            assert entry.get("failure"), f"said invalid, but the standard parses it: {entry}"
        return "refused"
    scheme = parsed.scheme or base_scheme
    if scheme not in urlmatch._DEFAULT_PORTS:
        return "unused"  # scheme-relative on no base or a file: base
    assert not entry.get("failure"), f"claimed a URL the standard refuses: {entry}"
    got = (scheme + ":", parsed.host, _port_text(scheme, parsed.port), parsed.path)
    expected = (entry["protocol"], entry["hostname"], entry["port"], entry["pathname"])
    assert got == expected, entry
    return "claimed"


def test_the_parser_agrees_with_the_url_standard_test_data() -> None:
    entries = _wpt_entries()
    verdicts = Counter(_wpt_verdict(e) for e in entries)
    print(f"\nurltestdata.json: {len(entries)} entries with a null or special base: {verdicts}")
    # Guards against the test silently covering nothing (say, after a data refresh).
    assert verdicts["claimed"] >= 100
    assert verdicts["refused"] >= 100


# --- Chromium: its own tokenizer and URL parser, every request intercepted ----------------

_PAGES = [
    ("https://example.com/dir/page", ""),
    ("http://example.com/", ""),
    ("https://example.com/dir/page", '<base href="https://evil.example/">'),
]

_RESOLVED_SCRIPTS = """() => Array.from(document.scripts, (s) => {
  let url = null;
  try { url = new URL(s.src); } catch (e) {}
  return {
    attr: s.getAttribute("src"),
    url: url && {protocol: url.protocol, hostname: url.hostname, port: url.port,
                 pathname: url.pathname},
  };
})"""


class ChromiumURL:
    """Loads pages of ``<script src>`` tags in Chromium; every request is answered locally
    (the page itself, or an empty script) and recorded, so nothing reaches the network."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context()
        self.counts: Counter[str] = Counter()
        self.misses: list[bytes] = []

    def load(self, values: list[bytes], page_url: str, head: str) -> tuple[list[Any], set[str]]:
        """What Chromium makes of each value: its decoded attribute and the resolved URL; and
        every URL it requested."""
        tags = b"".join(b'<script src="' + v + b'"></script>\n' for v in values)
        html = b"<!doctype html><meta charset=utf-8>" + head.encode() + tags
        requested: set[str] = set()
        page = self.context.new_page()

        def answer(route: Any) -> None:
            url = route.request.url
            if url == page_url:
                route.fulfill(body=html, content_type="text/html; charset=utf-8")
            else:
                requested.add(url)
                route.fulfill(body="", content_type="text/javascript")

        try:
            page.route("**/*", answer)
            page.goto(page_url, wait_until="load")
            scripts = page.evaluate(_RESOLVED_SCRIPTS)
        finally:
            page.close()
        assert len(scripts) == len(values)
        return scripts, requested


@pytest.fixture(scope="module")
def chromium_url(request: pytest.FixtureRequest) -> Iterator[ChromiumURL]:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:  # a test dependency: missing is a skip locally, a failure under CI
        if IN_CI:
            raise
        pytest.skip("playwright is not installed")
    oracle = ChromiumURL(request.getfixturevalue("browser"))
    yield oracle
    oracle.context.close()
    print(f"\nchromium oracle: {dict(oracle.counts)}; misses: {oracle.misses}")


def _chromium_check(chromium: ChromiumURL, spellings_: list[str]) -> None:
    values = [s.encode() for s in spellings_ if '"' not in s]
    loads = [True] * len(values)
    for page_url, head in _PAGES:
        scripts, requested = chromium.load(values, page_url, head)
        for i, (value, script) in enumerate(zip(values, scripts, strict=True)):
            # Chromium's tokenizer decodes the value as charrefs does, after the input
            # stream has turned CR and CRLF into LF.
            text = value.decode().replace("\r\n", "\n").replace("\r", "\n")
            assert script["attr"] == decode_attribute(text), value
            loaded = _loads_the_widget(script["url"], absolute=True)
            if WIDGET.matches(value):
                parsed = resolve(decode_attribute(value.decode()))
                absolute = isinstance(parsed, Resolved) and parsed.scheme is not None
                assert _loads_the_widget(script["url"], absolute), (value, page_url, script)
                fetched = {u.partition("?")[0].partition("#")[0] for u in requested}
                assert any(u.endswith("//reqio.app/widget.js") for u in fetched), value
            loads[i] = loads[i] and loaded
    for value, loaded in zip(values, loads, strict=True):
        if WIDGET.matches(value):
            chromium.counts["matched"] += 1
        elif loaded and WIDGET.why_not(value) == urlmatch.USERINFO:
            chromium.counts["no match, credentials (chromium blocks the request)"] += 1
        elif loaded:
            chromium.counts["documented miss"] += 1
            chromium.counts[f"miss: {WIDGET.why_not(value)}"] += 1
            chromium.misses.append(value)
        else:
            chromium.counts["no match, chromium agrees"] += 1


def test_chromium_blocks_a_script_url_with_credentials(chromium_url: ChromiumURL) -> None:
    """Why a URL with userinfo is no loss: Chromium resolves it but never requests it."""
    values = [b"https://user@reqio.app/widget.js", b"https://reqio.app/widget.js?control"]
    scripts, requested = chromium_url.load(values, "https://example.com/dir/page", "")
    assert scripts[0]["url"]["hostname"] == "reqio.app"
    assert requested == {"https://reqio.app/widget.js?control"}


@pytest.mark.parametrize("group", ["loaded", "not"])
def test_chromium_resolves_the_explicit_spellings_as_we_do(
    chromium_url: ChromiumURL, group: str
) -> None:
    spellings_ = LOADED_FROM_THE_WIDGET if group == "loaded" else NOT_THE_WIDGET
    _chromium_check(chromium_url, spellings_)


# Three page loads per example: shrinking a failure would take minutes, and the assertion
# already names the value, so failures are reported as found.
@settings(
    max_examples=8,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(st.lists(spellings(), min_size=50, max_size=50))
def test_chromium_loads_every_generated_match_from_the_widget(
    chromium_url: ChromiumURL, batch: list[str]
) -> None:
    _chromium_check(chromium_url, batch)


@given(st.text(max_size=40))
def test_any_text_gets_a_result_or_a_reason(text: str) -> None:
    parsed = resolve(text)
    assert isinstance(parsed, (Resolved, str))
    if isinstance(parsed, Resolved):
        assert parsed.path.startswith("/") and parsed.host.isascii()
