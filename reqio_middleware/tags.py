"""The one table of tag names the rewriter's tokenizer and tree model act on.

Both scanners are driven from here: the pure-Python one reads these sets, and
``tools/gen_tags.py`` writes them into ``_tags.h`` for the C one (a test fails when the header
is stale). Names are lowercase ASCII, as the tokenizer lowercases tag names.
"""

from __future__ import annotations

#: Start tags that switch the tokenizer in HTML content (WHATWG 13.2.6.4.7 and 13.2.6.4.4).
RAWTEXT = frozenset({b"style", b"xmp", b"iframe", b"noembed", b"noframes", b"noscript"})
RCDATA = frozenset({b"textarea", b"title"})
SCRIPT = b"script"
PLAINTEXT = b"plaintext"
SWITCHING = RAWTEXT | RCDATA | {SCRIPT, PLAINTEXT}

#: Start tags in HTML content after which the tree builder, not the tokenizer, decides what
#: the following bytes are: the C scanner stops at them and Python follows the tree.
SVG = b"svg"
MATH = b"math"
SELECT = b"select"
FRAMESET = b"frameset"
FOREIGN_OPENERS = frozenset({SVG, MATH})
TREE_STOPS = FOREIGN_OPENERS | {SELECT, FRAMESET}

#: Start tags the scanner must see in HTML content although they switch nothing more: a
#: ``<noscript>`` (raw text with scripting on; markup with it off, which must reach the same
#: end tag) and ``<base>`` (after it, a scheme-relative src takes the base's scheme).
NOSCRIPT = b"noscript"
BASE = b"base"
NOTED = frozenset({NOSCRIPT, BASE})

#: Every start tag the data-state scanners stop at in HTML content.
HTML_STOPS = SWITCHING | TREE_STOPS | NOTED

#: Start tags that end foreign content (13.2.6.5); ``font`` only with one of FONT_ATTRS.
BREAKOUTS = frozenset(
    b"b big blockquote body br center code dd div dl dt em embed h1 h2 h3 h4 h5 h6 head hr i "
    b"img li listing menu meta nobr ol p pre ruby s small span strong strike sub sup table tt "
    b"u ul var".split()
)
FONT = b"font"
FONT_ATTRS = frozenset({b"color", b"face", b"size"})
#: End tags in foreign content that browsers and the standard's versions treat differently.
UNSURE_FOREIGN_END = frozenset({b"p", b"br"})

#: HTML integration points (13.2.6.5): SVG elements, and MathML annotation-xml with one of
#: ANNOTATION_HTML_ENCODINGS; MathML text integration points, where start tags other than
#: MATHML_TEXT_FOREIGN follow HTML rules.
SVG_HTML_POINTS = frozenset({b"foreignobject", b"desc", b"title"})
ANNOTATION_XML = b"annotation-xml"
ANNOTATION_HTML_ENCODINGS = frozenset({"text/html", "application/xhtml+xml"})
MATHML_TEXT_POINTS = frozenset({b"mi", b"mo", b"mn", b"ms", b"mtext"})
MATHML_TEXT_FOREIGN = frozenset({b"mglyph", b"malignmark"})

#: Inside an integration point, HTML start tags that do not open an element on the stack...
HTML_VOID = frozenset(
    b"area base basefont bgsound br col embed frame hr image img input keygen link meta param "
    b"source track wbr html head body".split()
)
#: ... and those whose handling reaches past it (table modes clear the stack to a table
#: context; template switches the insertion mode): the model gives up on them there.
HTML_TABLE_AND_TEMPLATE = frozenset(
    b"caption col colgroup table tbody td tfoot th thead tr template".split()
)

#: Inside a ``<select>``, start tags whose handling differs between the old and the new
#: (customizable select) parsing. Tags that leave a select in one of them (``input``) leave
#: the model inside it, which only makes it stricter.
SELECT_UNSURE = SWITCHING | FOREIGN_OPENERS | {b"template", FRAMESET}

#: Start tags at which the runs over foreign content (tokenizer ``_scan_foreign``) hand over
#: to the tree model tag by tag: breakouts, ``font`` (a breakout with some attributes),
#: ``script`` (reported where it is not stamped), ``base`` (noted) and ``annotation-xml``
#: (whose encoding decides what it is). SWITCHING names stop them too once the model is
#: ambiguous (see :mod:`.foreign`).
FOREIGN_RUN_STOPS = BREAKOUTS | {FONT, SCRIPT, BASE, ANNOTATION_XML}
#: Start tags at which the runs over ``<select>`` content (``_scan_select``) hand over.
SELECT_RUN_STOPS = SELECT_UNSURE | {SELECT, BASE}
#: Start tags at which the runs over HTML inside an integration point (``_scan_point``) hand
#: over: script data (reported where it is not stamped), plaintext and noscript (read twice),
#: those that open foreign content or a select, reach past the point (tables, template,
#: frameset), are noted (``base``), or are foreign at a MathML text integration point
#: (``mglyph``, ``malignmark``). The runs pass over POINT_RAW elements up to their end tag
#: (the tree model sees neither end: no element opens); every other start tag opens an HTML
#: element there (HTML_VOID ones open none).
POINT_RUN_STOPS = (
    frozenset({SCRIPT, PLAINTEXT, NOSCRIPT, BASE})
    | TREE_STOPS
    | HTML_TABLE_AND_TEMPLATE
    | MATHML_TEXT_FOREIGN
)
POINT_RAW = (RAWTEXT | RCDATA) - {NOSCRIPT}


# --- the C scanner's copy -----------------------------------------------------------------


def c_header() -> str:
    """``_speedups.c``'s view of this table, as the C header ``_tags.h``.

    Regenerate with ``python -m reqio_middleware.tags > reqio_middleware/_tags.h``; a test
    fails when the committed header differs from this.
    """
    stops = [PLAINTEXT, *sorted(TREE_STOPS | NOTED)]
    names = [SCRIPT, *stops, *sorted((RAWTEXT | RCDATA) - NOTED)]
    by_first = [
        sum(1 << i for i, name in enumerate(names) if name[0] == letter)
        for letter in range(ord("a"), ord("z") + 1)
    ]
    lines = [
        "/* Generated from reqio_middleware/tags.py by `python -m reqio_middleware.tags`:",
        " * do not edit. The start tags the data-state scan acts on in HTML content: SPECIAL[0]",
        " * is script (passed over whole unless it may be the widget), SPECIAL[1..N_STOPS-1]",
        " * stop the scan (plaintext, where the tree builder decides what follows, noscript",
        " * and base, which Python checks), the",
        " * rest are raw text and RCDATA elements, passed over up to their end tag. */",
        "#define SPECIAL_NAMES \\",
        *(f'    NAME("{name.decode()}"), \\' for name in names),
        "",
        f"#define N_STOPS {len(stops) + 1}",
        "/* For each first letter a-z, the bits of the SPECIAL names that start with it. */",
        "#define SPECIAL_BY_FIRST {" + ", ".join(f"{bits:#x}" for bits in by_first) + "}",
        "",
        "/* The runs over foreign content, <select> content and HTML inside integration points",
        " * (scan_foreign, scan_select, scan_point). */",
        *_name_list("FOREIGN_RUN_STOPS", FOREIGN_RUN_STOPS),
        *_name_list("FOREIGN_SWITCHING", SWITCHING),
        *_name_list("SVG_HTML_POINTS", SVG_HTML_POINTS),
        *_name_list("MATHML_TEXT_POINTS", MATHML_TEXT_POINTS),
        *_name_list("UNSURE_FOREIGN_END", UNSURE_FOREIGN_END),
        *_name_list("SELECT_RUN_STOPS", SELECT_RUN_STOPS),
        *_name_list("POINT_RUN_STOPS", POINT_RUN_STOPS),
        *_name_list("POINT_RAW_TEXT", POINT_RAW),
        *_name_list("HTML_VOID_NAMES", HTML_VOID),
    ]
    return "\n".join(lines) + "\n"


def _name_list(macro: str, names: frozenset[bytes]) -> list[str]:
    return [f"#define {macro} \\", *(f'    NAME("{n.decode()}"), \\' for n in sorted(names)), ""]


if __name__ == "__main__":
    print(c_header(), end="")
