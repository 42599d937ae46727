/* Generated from reqio_middleware/tags.py by `python -m reqio_middleware.tags`:
 * do not edit. The start tags the data-state scan acts on in HTML content: SPECIAL[0]
 * is script (passed over whole unless it may be the widget), SPECIAL[1..N_STOPS-1]
 * stop the scan (plaintext, where the tree builder decides what follows, noscript
 * and base, which Python checks), the
 * rest are raw text and RCDATA elements, passed over up to their end tag. */
#define SPECIAL_NAMES \
    NAME("script"), \
    NAME("plaintext"), \
    NAME("base"), \
    NAME("frameset"), \
    NAME("math"), \
    NAME("noscript"), \
    NAME("select"), \
    NAME("svg"), \
    NAME("iframe"), \
    NAME("noembed"), \
    NAME("noframes"), \
    NAME("style"), \
    NAME("textarea"), \
    NAME("title"), \
    NAME("xmp"), \

#define N_STOPS 8
/* For each first letter a-z, the bits of the SPECIAL names that start with it. */
#define SPECIAL_BY_FIRST {0x0, 0x4, 0x0, 0x0, 0x0, 0x8, 0x0, 0x0, 0x100, 0x0, 0x0, 0x0, 0x10, 0x620, 0x0, 0x2, 0x0, 0x0, 0x8c1, 0x3000, 0x0, 0x0, 0x0, 0x4000, 0x0, 0x0}

/* The runs over foreign content, <select> content and HTML inside integration points
 * (scan_foreign, scan_select, scan_point). */
#define FOREIGN_RUN_STOPS \
    NAME("annotation-xml"), \
    NAME("b"), \
    NAME("base"), \
    NAME("big"), \
    NAME("blockquote"), \
    NAME("body"), \
    NAME("br"), \
    NAME("center"), \
    NAME("code"), \
    NAME("dd"), \
    NAME("div"), \
    NAME("dl"), \
    NAME("dt"), \
    NAME("em"), \
    NAME("embed"), \
    NAME("font"), \
    NAME("h1"), \
    NAME("h2"), \
    NAME("h3"), \
    NAME("h4"), \
    NAME("h5"), \
    NAME("h6"), \
    NAME("head"), \
    NAME("hr"), \
    NAME("i"), \
    NAME("img"), \
    NAME("li"), \
    NAME("listing"), \
    NAME("menu"), \
    NAME("meta"), \
    NAME("nobr"), \
    NAME("ol"), \
    NAME("p"), \
    NAME("pre"), \
    NAME("ruby"), \
    NAME("s"), \
    NAME("script"), \
    NAME("small"), \
    NAME("span"), \
    NAME("strike"), \
    NAME("strong"), \
    NAME("sub"), \
    NAME("sup"), \
    NAME("table"), \
    NAME("tt"), \
    NAME("u"), \
    NAME("ul"), \
    NAME("var"), \

#define FOREIGN_SWITCHING \
    NAME("iframe"), \
    NAME("noembed"), \
    NAME("noframes"), \
    NAME("noscript"), \
    NAME("plaintext"), \
    NAME("script"), \
    NAME("style"), \
    NAME("textarea"), \
    NAME("title"), \
    NAME("xmp"), \

#define SVG_HTML_POINTS \
    NAME("desc"), \
    NAME("foreignobject"), \
    NAME("title"), \

#define MATHML_TEXT_POINTS \
    NAME("mi"), \
    NAME("mn"), \
    NAME("mo"), \
    NAME("ms"), \
    NAME("mtext"), \

#define UNSURE_FOREIGN_END \
    NAME("br"), \
    NAME("p"), \

#define SELECT_RUN_STOPS \
    NAME("base"), \
    NAME("frameset"), \
    NAME("iframe"), \
    NAME("math"), \
    NAME("noembed"), \
    NAME("noframes"), \
    NAME("noscript"), \
    NAME("plaintext"), \
    NAME("script"), \
    NAME("select"), \
    NAME("style"), \
    NAME("svg"), \
    NAME("template"), \
    NAME("textarea"), \
    NAME("title"), \
    NAME("xmp"), \

#define POINT_RUN_STOPS \
    NAME("base"), \
    NAME("caption"), \
    NAME("col"), \
    NAME("colgroup"), \
    NAME("frameset"), \
    NAME("malignmark"), \
    NAME("math"), \
    NAME("mglyph"), \
    NAME("noscript"), \
    NAME("plaintext"), \
    NAME("script"), \
    NAME("select"), \
    NAME("svg"), \
    NAME("table"), \
    NAME("tbody"), \
    NAME("td"), \
    NAME("template"), \
    NAME("tfoot"), \
    NAME("th"), \
    NAME("thead"), \
    NAME("tr"), \

#define POINT_RAW_TEXT \
    NAME("iframe"), \
    NAME("noembed"), \
    NAME("noframes"), \
    NAME("style"), \
    NAME("textarea"), \
    NAME("title"), \
    NAME("xmp"), \

#define HTML_VOID_NAMES \
    NAME("area"), \
    NAME("base"), \
    NAME("basefont"), \
    NAME("bgsound"), \
    NAME("body"), \
    NAME("br"), \
    NAME("col"), \
    NAME("embed"), \
    NAME("frame"), \
    NAME("head"), \
    NAME("hr"), \
    NAME("html"), \
    NAME("image"), \
    NAME("img"), \
    NAME("input"), \
    NAME("keygen"), \
    NAME("link"), \
    NAME("meta"), \
    NAME("param"), \
    NAME("source"), \
    NAME("track"), \
    NAME("wbr"), \

