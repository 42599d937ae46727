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
