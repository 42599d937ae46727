"""Hypothesis strategies for the documents that decide a tokenizer's state in the field.

A document is a sequence of pieces: SVG and MathML elements and their ends, HTML integration
points (``foreignObject``/``desc``/``title``, ``annotation-xml`` with and without an HTML
encoding, ``mi``/``mo``/``mn``/``ms``/``mtext``), breakout tags (including ``font`` with
``color``/``face``/``size``), the elements that are raw text in HTML but not in foreign
content, CDATA sections, comments, ``select``, tables, ``template``, ``frameset``,
``noscript``, widget tags in several spellings and look-alikes. ``attribute_spanning`` opens a
quoted attribute value and closes it several pieces later: the shape where a tokenizer that
misjudges raw text finds a "tag" inside a value.

Left out on purpose: ``</p>`` and ``</br>`` in foreign content, and elements other than
``script``/``template``/``option``/``optgroup`` inside ``select``, where html5lib 1.1 follows
an older version of the standard than browsers do; the Chromium test covers those.
"""

from __future__ import annotations

from hypothesis import strategies as st

#: Spellings whose URL any reading of ``src`` gets right: what they test is the tokenizer.
PLAIN_SPELLINGS = (
    '<script src="https://reqio.app/widget.js" data-probe="{n}"></script>',
    "<SCRIPT src=//reqio.app/widget.js data-probe={n}></SCRIPT>",
    "<script data-probe='{n}' src='https://REQIO.app/widget.js?x=1'>",
)

#: Spellings that test the URL rule too (an SVG script's ``href``, character references).
WIDGET_SPELLINGS = (
    *PLAIN_SPELLINGS,
    '<script src="https://reqio.app/widget.js" data-probe="{n}" href="https://evil.example/x.js">',
    "<script xlink:href=https://evil.example/x.js src=https://reqio.app/widget.js data-probe={n}>",
    "<script src=https&#x1;://reqio.app/widget.js data-probe={n}></script>",
    "<script src=&#x68;ttps://reqio.app/widget.js data-probe={n}></script>",
)

LOOKALIKES = (
    '<script src="https://evil.example/widget.js"></script>',
    '<script src="https://reqio.app.evil.example/widget.js"></script>',
    '<image href="https://reqio.app/widget.js"/>',
)

FOREIGN = (
    "<svg>",
    "<math>",
    "<SVG>",
    "<Math>",
    '<svg viewBox="0 0 1 1">',
    '<svg data-x="a>b">',
    "<svg\n>",
    "<svg\x0c>",
    "<svg/x>",
    "<math\tdisplay=block>",
    "<svg/>",
    "<math/>",
    "</svg>",
    "</math>",
    "</SVG>",
)

INTEGRATION_POINTS = (
    "<foreignObject>",
    "<FOREIGNOBJECT>",
    "<foreignobject>",
    "<foreignObject/>",
    "</foreignObject>",
    "</foreignobject>",
    "<desc>",
    "</desc>",
    "<title>",
    "<title/>",
    "<desc/>",
    "</title>",
    '<annotation-xml encoding="text/html">',
    '<annotation-xml encoding="text/html"/>',
    '<annotation-xml encoding="text&#47;html">',
    '<annotation-xml encoding="text/html ">',
    '<annotation-xml encoding="text/html;charset=utf-8">',
    "<annotation-xml ENCODING=Text/Html>",
    "<annotation-xml encoding='APPLICATION/XHTML+XML'>",
    "<annotation-xml>",
    "<annotation-xml encoding=image/svg+xml>",
    "</annotation-xml>",
    "<mi>",
    "<mo>",
    "<mn>",
    "<ms>",
    "<mtext>",
    "<mi/>",
    "<MTEXT>",
    "</mi>",
    "</mtext>",
    "<mglyph>",
    "<malignmark>",
)

BREAKOUTS = (
    "<b>",
    "<div>",
    "<p>",
    "<br>",
    "<img>",
    "<ul>",
    "<pre>",
    "<table>",
    "<font>",
    "<font color=red>",
    "<font FACE=serif>",
    "<font size='2'>",
    "<font size>",
    "<font COLOR=red>",
    "<font data-color=red>",
    "</font>",
    "</b>",
    "</div>",
)

_RAW_NAMES = ("style", "title", "script", "textarea", "xmp", "iframe", "noembed", "noframes")
RAW_TEXT = (
    *(tag for name in _RAW_NAMES for tag in (f"<{name}>", f"</{name}>")),
    "<noscript>",
    "</noscript>",
    "<plaintext>",
)

STRUCTURE = (
    "<select>",
    "</select>",
    "<option>",
    "<optgroup>",
    "<table>",
    "<tr>",
    "<td>",
    "</table>",
    "<caption>",
    "<colgroup>",
    "<template>",
    "</template>",
    "<frameset>",
    "<head>",
    "<body>",
)

MARKUP = (
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "<!-- c -->",
    "<g>",
    "</g>",
    "<path d='M0 0'/>",
    "<foo/>",
    "<script>",
    "</script>",
    "<",
    ">",
    "'",
    '"',
    "=",
    "/",
)

TEXT = st.sampled_from(["x", " ", "\n", "&amp;", "a<b", "]]", "--", "-->", "</", "text"])


@st.composite
def widget(draw: st.DrawFn, spellings: tuple[str, ...] = WIDGET_SPELLINGS) -> str:
    n = draw(st.integers(0, 99))
    return draw(st.sampled_from(spellings)).format(n=n)


def piece(spellings: tuple[str, ...] = WIDGET_SPELLINGS) -> st.SearchStrategy[str]:
    return st.one_of(
        widget(spellings),
        st.sampled_from(LOOKALIKES),
        st.sampled_from(FOREIGN),
        st.sampled_from(INTEGRATION_POINTS),
        st.sampled_from(BREAKOUTS),
        st.sampled_from(RAW_TEXT),
        st.sampled_from(STRUCTURE),
        st.sampled_from(MARKUP),
        TEXT,
    )


@st.composite
def attribute_spanning(draw: st.DrawFn, spellings: tuple[str, ...] = WIDGET_SPELLINGS) -> str:
    """``<img src='...`` + pieces + ``'>``: a quoted value that holds markup-looking text."""
    opener = draw(
        st.sampled_from(
            [
                "<img src='https://evil.example/i.gif?",
                '<image href="https://evil.example/i.gif?',
                "<a title='",
                "<font color='",
                '<foo bar="',
            ]
        )
    )
    quote = opener[-1] if opener[-1] in "'\"" else "'"
    inner = draw(st.lists(st.one_of(piece(spellings), widget(spellings)), min_size=1, max_size=4))
    return opener + "".join(inner).replace(quote, "") + quote + ">"


@st.composite
def documents(draw: st.DrawFn, spellings: tuple[str, ...] = WIDGET_SPELLINGS) -> str:
    """A document with at least one widget tag, usually inside or after foreign content."""
    parts = st.one_of(piece(spellings), attribute_spanning(spellings))
    pieces = draw(st.lists(parts, min_size=1, max_size=14))
    position = draw(st.integers(0, len(pieces)))
    pieces.insert(position, draw(widget(spellings)))
    return "".join(pieces)
