"""Inputs built to make a tag scanner slow, next to a normal page, for the C and Python scanners.

Each is about 1 MB (the 100k widget tags are what 100k tags weigh), rewritten whole and in
64 KiB chunks. A scanner that backtracks, rescans held bytes or restarts at every ``<script``
shows here as a rate far below the normal page's; a linear one stays within a small factor.
"""

from __future__ import annotations

from collections.abc import Callable

from pages import CHUNK, PROJECT_ID, WIDGET_SRC, WIDGET_TAG, chunks, make_page
from report import NOTES, fmt_rate, fmt_size, row, skipped, verdict
from scanners import c_available, scanner
from timing import Timer

SIZE = 1_000_000
#: Targets for the slowest case, whole or streamed.
TARGET = {"C": 100e6, "Python": 10e6}
#: Attribute sizes of the held tag fed one byte at a time: small, since each byte is a call.
ONE_BYTE_SIZES = (4_000, 16_000)


def _fill(head: bytes, unit: bytes, tail: bytes, size: int = SIZE) -> bytes:
    n = max(1, (size - len(head) - len(tail)) // len(unit))
    return head + unit * n + tail


def cases() -> dict[str, bytes]:
    """Name -> document; every one ends with a real widget tag, which must be stamped once."""
    widget = WIDGET_TAG.encode()
    end = b"\n" + widget + b"\n</body></html>"
    return {
        "normal page": make_page(SIZE, "end"),
        "'<script ' in JS string text": _fill(
            b'<script>var s = "', b"<script ", b'";</script>' + end
        ),
        "'<script ' in an attribute": _fill(b'<div title="', b"<script ", b'">x</div>' + end),
        "'<script ' in a comment": _fill(b"<!-- ", b"<script ", b" -->" + end),
        "unclosed comment": _fill(b"<p>x</p><!-- ", b"<p>text <b>bold</b></p>\n", end),
        "unclosed attribute quote": _fill(b'<div title="', b"<p>text <script src=x></p>\n", end),
        "<script><!--<script> nesting": _fill(b"", b"<script><!--<script>", b"</script>" + end),
        "100k widget tags": widget * 100_000,
        **_foreign_cases(end),
    }


#: Inline SVG icons as icon sets write them (one path, or a group, a title, a <use>).
_ICON_PATH = (
    b'<path d="M3 12l2-2m0 0 7-7 7 7M5 10v10a1 1 0 0 0 1 1h3m10-11 2 2m-2-2v10a1 1 0 0 1-1 1h-3'
    b'm-6 0a1 1 0 0 0 1-1v-4a1 1 0 0 1 1-1h2a1 1 0 0 1 1 1v4a1 1 0 0 0 1 1m-6 0h6"/>'
)
_ICON_OPEN = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="24" height="24">'


def _foreign_cases(end: bytes) -> dict[str, bytes]:
    """Foreign content (SVG, MathML) and <select>, where the tree model decides each tag; each
    closes before the widget, which is stamped once."""
    icon = b'<a href="/home">' + _ICON_OPEN + _ICON_PATH + b"</svg> Home</a>\n"
    group = (
        _ICON_OPEN
        + b'<g fill="none" stroke="currentColor"><circle cx="12" cy="12" r="9"/>'
        + _ICON_PATH
        + b'</g><use href="#dot" x="2"/></svg>\n'
    )
    titled = _ICON_OPEN + b"<title>Home</title>" + _ICON_PATH + b"</svg>\n"
    mrow = (
        b"<mrow><mi>x</mi><mo>=</mo><mfrac><mn>1</mn>"
        b"<msup><mi>y</mi><mn>2</mn></msup></mfrac></mrow>\n"
    )
    option = b'<option value="country-042">Country number forty-two</option>\n'
    label = (
        b'<svg viewBox="0 0 120 24" width="120" height="24"><rect width="120" height="24" rx="4"/>'
        b'<foreignObject x="4" y="2" width="112" height="20"><div class="label"><b>Q3</b> revenue'
        b"</div></foreignObject></svg>\n"
    )
    mtext = (
        b"<math><mrow><mi>x</mi><mo>=</mo><mtext>where <b>x</b> is the <i>mean</i></mtext>"
        b"</mrow></math>\n"
    )
    return {
        "inline SVG icons (a path each)": _fill(b"<ul>", b"<li>" + icon + b"</li>", b"</ul>" + end),
        "SVG icons with <g>, <circle/>, <use href>": _fill(b"<div>", group, b"</div>" + end),
        "SVG icons with a <title>": _fill(b"<div>", titled, b"</div>" + end),
        "<svg> holding 1 MB of '<'": _fill(b"<svg>", b"<", b"</svg>" + end),
        "<svg> holding 1 MB of '< a' text": _fill(b"<svg><text>", b"< a ", b"</text></svg>" + end),
        "<math> block": _fill(b'<math display="block">', mrow, b"</math>" + end),
        "<select> with many <option>s": _fill(b'<select name="c">', option, b"</select>" + end),
        # Shapes found by profiling: each makes a tag-by-tag walk of the tree model slow.
        "<select> with a comment per <option>": _fill(
            b"<select>", b"<option>a<!-- c -->", b"</select>" + end
        ),
        "<svg> with many <title>s (raw text once ambiguous)": _fill(
            b"<svg>", b"<title>a</title>", b"</svg>" + end
        ),
        "<svg> with many empty <g></g>": _fill(b"<svg>", b"<g></g>", b"</svg>" + end),
        "<svg> 60 <g> deep": _fill(
            b"<svg>" + b"<g>" * 60, b"<path/>", b"</g>" * 60 + b"</svg>" + end
        ),
        "<foreignObject> holding HTML": _fill(
            b"<svg><foreignObject>", b"<div>x</div>", b"</foreignObject></svg>" + end
        ),
        "<foreignObject> holding HTML, after an SVG <title>": _fill(
            b"<svg><title>t</title><foreignObject>",
            b"<div>x</div>",
            b"</foreignObject></svg>" + end,
        ),
        "<foreignObject> holding <style> blocks": _fill(
            b"<svg><foreignObject>", b"<style>p{}</style>", b"</foreignObject></svg>" + end
        ),
        "SVG chart labels (a <foreignObject> each)": _fill(b"<div>", label, b"</div>" + end),
        "<math> with HTML in <mtext>": _fill(b"<p>", mtext, b"</p>" + end),
    }


def _expected_tokens(name: str) -> int | None:
    """Stamps the output must hold; ``None`` where only C and Python agreeing is checked."""
    # Inside an unclosed comment or quote the final widget is not a tag; after the nesting
    # the tokenizer is in double-escaped script text, where it is not a tag either.
    return {
        "100k widget tags": 100_000,
        "unclosed comment": 0,
        "unclosed attribute quote": 0,
        "<script><!--<script> nesting": None,
    }.get(name, 1)


def bench_adversarial(timer: Timer, token: str) -> None:
    from reqio_middleware.rewriter import HTMLRewriter, rewrite_html

    kinds = ["C", "Python"] if c_available() else ["Python"]
    if "C" not in kinds:
        skipped("adversarial", "C scanner", "the C extension is not built")
    tok = token.encode()
    for name, doc in cases().items():
        parts = chunks(doc, CHUNK)

        def whole(doc: bytes = doc) -> bytes:
            return rewrite_html(doc, token, project_id=PROJECT_ID)

        def streamed(parts: list[bytes] = parts) -> bytes:
            return _stream(HTMLRewriter(token, project_id=PROJECT_ID), parts)

        cells, worst, outputs = [], {}, []
        for kind in kinds:
            with scanner(kind):
                out = whole()
                outputs += [out, streamed()]
                t = timer.compare({"whole": whole, "stream": streamed})
            worst[kind] = len(doc) / max(t.values())
            cells.append(
                f"{kind} whole {fmt_rate(len(doc), t['whole'])}, "
                f"64 KiB {fmt_rate(len(doc), t['stream'])}"
            )
        expected = _expected_tokens(name)
        stamped = outputs[0].count(tok)
        if any(o != outputs[0] for o in outputs) or expected not in (None, stamped):
            NOTES.append(f"WRONG OUTPUT on adversarial {name!r} (scanners or splits disagree)")
        checks = [
            verdict(rate >= TARGET[k], f"{k} ≥ {TARGET[k] / 1e6:.0f} MB/s")
            for k, rate in worst.items()
        ]
        row(
            "adversarial", f"{name}, {fmt_size(len(doc))}", " · ".join(cells), "", "; ".join(checks)
        )
    _one_byte_row(timer, token, kinds)


def _stream(rw: object, parts: list[bytes]) -> bytes:
    feed: Callable[[bytes], bytes] = rw.feed  # type: ignore[attr-defined]
    out = [feed(p) for p in parts]
    out.append(rw.close())  # type: ignore[attr-defined]
    return b"".join(out)


def _one_byte_row(timer: Timer, token: str, kinds: list[str]) -> None:
    """A widget tag with a long attribute, fed one byte at a time, so it is held throughout.

    Two sizes, four times apart: with work linear in the bytes the rate is the same at both;
    a rate four times lower at the larger size means each byte rescans what is held.
    """
    from reqio_middleware.rewriter import HTMLRewriter, rewrite_html

    cells, growth = [], []
    for kind in kinds:
        rates = []
        for size in ONE_BYTE_SIZES:
            pad = b"x" * size
            doc = b'<p>a</p><script src="' + WIDGET_SRC.encode() + b'" data-pad="' + pad + b'">'
            parts = [doc[i : i + 1] for i in range(len(doc))]
            with scanner(kind):
                if _stream(HTMLRewriter(token), parts) != rewrite_html(doc, token):
                    NOTES.append(f"WRONG OUTPUT: 1-byte stream of a held tag ({kind})")
                t = timer(lambda parts=parts: _stream(HTMLRewriter(token), parts))
            rates.append(len(doc) / t)
            cells.append(f"{kind} {fmt_size(len(doc))} {fmt_rate(len(doc), t)}")
        growth.append(f"{kind} {rates[0] / rates[1]:.1f}x slower per byte at 4x the size")
    row(
        "adversarial",
        "held widget tag fed 1 byte at a time (one feed() per byte)",
        " · ".join(cells),
        "",
        "; ".join(growth) + " (1.0x = linear)",
    )
