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
/* The first letters of SPECIAL's names: any other tag is told apart at once. */
#define MAYBE_SPECIAL(c) ((c) == 'b' || (c) == 'f' || (c) == 'i' || (c) == 'm' || (c) == 'n' || (c) == 'p' || (c) == 's' || (c) == 't' || (c) == 'x')
