/*
 * The rewriter's data-state scanner in C: rewriter._BULK's language, and more of the data state.
 *
 * Why: exact tokenizing costs a chain of regular-expression steps per tag, which caps the
 * pure-Python scanner near 150 MB/s on tag-dense HTML. A widget tag usually sits just before
 * </body>, so every page that carries one is tokenized almost whole. This loop does the same
 * work at memchr speed between tags. rewriter.py falls back to _BULK when this module is not
 * built; tests/test_speedups.py checks that both give the same rewritten bytes, and that the C
 * scanner never stops before the pattern does.
 *
 * scan_data(buf, pos) -> the end of the longest run, from pos, of: text; a '<' that starts
 * nothing; complete start tags of ordinary elements and complete end tags (attribute states
 * of the WHATWG tokenizer); '</>'; bogus comments and doctypes ('<!' not followed by '--',
 * '<?', '</' + non-letter) up to their '>'; complete comments; and raw-text and RCDATA elements
 * (style, textarea, title, xmp, iframe, noembed, noframes, noscript) up to their end tag; and,
 * given the widget's path, whole <script> elements whose start tag cannot be the widget's (see
 * may_be_widget), with their script data and its escaped states. It stops at '<plaintext', at
 * a '<script' the rewriter must look at, and at anything the end of the buffer cuts short.
 * Every position it returns is in the data state, as every position the pattern returns is; it
 * only goes further.
 * scan_known(buf, pos, path, known, stamped) is the same run, also passing over the <script>
 * elements whose start tag is the one the rewriter stamped already (`known`), and giving back
 * the bytes it passed over with those tags stamped.
 *
 * script_states(buf, pos, sub) -> the script data states from one of them, resumable: the
 * rewriter's reading of a <script> element's text, which the run above shares.
 *
 * scan_foreign(...), scan_point(...) and scan_select(buf, pos, end): the runs over SVG/MathML,
 * HTML inside their integration points and <select> content (treeruns._scan_foreign_pattern,
 * _scan_point_pattern, _scan_select_pattern say what they take).
 *
 * last_candidate(buf, hi, path) -> the start of the last '<script' before hi whose complete
 * start tag may be the widget's, or -1: the whole-document fast path, so a page without the
 * widget is read once at SIMD speed and never tokenized.
 */
#define PY_SSIZE_T_CLEAN
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* memmem; the value pyconfig.h gives it, so it is no redefinition */
#endif
#include <Python.h>
#include <string.h>
/* SSE2 intrinsics exist on every x86-64 compiler (GCC and clang say __SSE2__, MSVC _M_X64).
 * REQIO_PORTABLE keeps them but turns off the GCC/glibc-only helpers (__builtin_clz, memmem),
 * so the tests can build and check the branches other compilers take. */
#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define USE_SSE2 1
#endif

/* The index of the highest (lowest) set bit of a non-zero mask. */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(REQIO_PORTABLE)
#define HIGHEST_BIT(mask) (31 - __builtin_clz(mask))
#define LOWEST_BIT(mask) __builtin_ctz(mask)
#else
static inline int highest_bit(unsigned int mask) {
    int bit = 0;
    while (mask >>= 1) {
        bit++;
    }
    return bit;
}
#define HIGHEST_BIT(mask) highest_bit(mask)
static inline int lowest_bit(unsigned int mask) {
    int bit = 0;
    while (!(mask & 1u)) {
        mask >>= 1;
        bit++;
    }
    return bit;
}
#define LOWEST_BIT(mask) lowest_bit(mask)
#endif

/* memchr, with the next 16 bytes tried inline first: most gaps between tags and most quoted
 * values on real pages are shorter than that, and there a call to memchr costs more than its
 * search. */
static inline const unsigned char *find_byte(const unsigned char *s, unsigned char c,
                                             size_t len) {
#if defined(USE_SSE2)
    if (len >= 16) {
        __m128i chunk = _mm_loadu_si128((const __m128i *)s);
        __m128i hits = _mm_cmpeq_epi8(chunk, _mm_set1_epi8((char)c));
        unsigned int mask = (unsigned int)_mm_movemask_epi8(hits);
        if (mask != 0) {
            return s + LOWEST_BIT(mask);
        }
        return memchr(s + 16, c, len - 16);
    }
#endif
    return memchr(s, c, len);
}

/* Byte classes, so that each step of the name and value states is one table lookup. */
enum { WS = 1, SLASH = 2, GT = 4, EQ = 8 };
static const unsigned char CLASS[256] = {
    ['\t'] = WS, ['\n'] = WS, ['\f'] = WS, ['\r'] = WS, [' '] = WS,
    ['/'] = SLASH, ['>'] = GT, ['='] = EQ,
};
#define ENDS_TAG_NAME (WS | SLASH | GT)            /* tag name state */
#define ENDS_ATTR_NAME (WS | SLASH | GT | EQ)      /* attribute name state */
#define ENDS_UNQUOTED (WS | GT)                    /* attribute value (unquoted) state */

static inline int is_ws(unsigned char c) { return CLASS[c] & WS; }

static inline int is_alpha(unsigned char c) {
    c |= 0x20;
    return c >= 'a' && c <= 'z';
}

/* Whether the tag name `name` (lowercase, any case in b) and a delimiter (whitespace, '/' or
 * '>') are at b[s]: 1 yes, 0 no, -1 when the buffer ends before that is known. */
static int name_at(const unsigned char *b, Py_ssize_t s, Py_ssize_t n, const char *name,
                   Py_ssize_t len) {
    for (Py_ssize_t k = 0; k < len; k++) {
        if (s + k >= n) {
            return -1;
        }
        if ((unsigned char)(b[s + k] | 0x20) != (unsigned char)name[k]) {
            return 0;
        }
    }
    if (s + len >= n) {
        return -1;
    }
    return (CLASS[b[s + len]] & (WS | SLASH | GT)) != 0;
}

typedef struct {
    const char *name;
    Py_ssize_t len;
} Name;
#define NAME(literal) {literal, sizeof(literal) - 1}

static const Name SCRIPT = NAME("script");
/* SPECIAL_NAMES, N_STOPS and SPECIAL_BY_FIRST come from the one table of tag names. */
#include "_tags.h"
static const Name SPECIAL[] = {SPECIAL_NAMES};
#define N_SPECIAL (sizeof(SPECIAL) / sizeof(SPECIAL[0]))
static const unsigned int BY_FIRST[26] = SPECIAL_BY_FIRST;

/* Which tokenizer-switching tag name is at s (just after '<'), followed by whitespace, '/' or
 * '>': its index in SPECIAL, or -1 (also when the buffer ends too soon to tell). Only the
 * names with the tag's first letter are tried: most tags are told apart by that alone. */
static int special_at(const unsigned char *s, Py_ssize_t left) {
    unsigned char first = (unsigned char)(s[0] | 0x20);
    if (first < 'a' || first > 'z') {
        return -1;
    }
    for (unsigned int bits = BY_FIRST[first - 'a']; bits != 0; bits &= bits - 1) {
        int i = LOWEST_BIT(bits);
        if (name_at(s, 0, left, SPECIAL[i].name, SPECIAL[i].len) == 1) {
            return i;
        }
    }
    return -1;
}

/* After a tag name: the attribute states up to and including '>'. The position after '>',
 * or -1 when the buffer ends first (an unterminated quote included). */
static Py_ssize_t tag_rest(const unsigned char *b, Py_ssize_t p, Py_ssize_t n) {
    for (;;) {
        if (p >= n) {
            return -1;
        }
        unsigned char c = b[p];
        if (CLASS[c] & (WS | SLASH)) { /* before attribute name, self-closing start tag */
            p++;
            continue;
        }
        if (c == '>') {
            return p + 1;
        }
        /* attribute name: its first character may be '=', later ones end it */
        p++;
        while (p < n && !(CLASS[b[p]] & ENDS_ATTR_NAME)) {
            p++;
        }
        Py_ssize_t q = p; /* after attribute name */
        while (q < n && is_ws(b[q])) {
            q++;
        }
        if (q >= n) {
            return -1;
        }
        if (b[q] != '=') {
            continue; /* a name without a value; the whitespace is read again above */
        }
        q++; /* before attribute value */
        while (q < n && is_ws(b[q])) {
            q++;
        }
        if (q >= n) {
            return -1;
        }
        c = b[q];
        if (c == '"' || c == '\'') {
            const unsigned char *close = find_byte(b + q + 1, c, (size_t)(n - q - 1));
            if (close == NULL) {
                return -1;
            }
            p = (close - b) + 1;
        } else { /* unquoted, possibly empty when '>' follows */
            while (q < n && !(CLASS[b[q]] & ENDS_UNQUOTED)) {
                q++;
            }
            p = q;
        }
    }
}

/* The tag states one at a time, resumable: for a tag cut by a chunk boundary, each chunk is
 * read once. The states are rewriter._TagDrain's (tag name, before/after attribute name,
 * attribute name, before attribute value, double/single-quoted and unquoted value, after a
 * quoted value, self-closing). Returns the position after '>', or -1 with *state updated. */
enum { S_TAGNAME, S_BAN, S_AN, S_AAN, S_BAV, S_DQ, S_SQ, S_UQ, S_AAVQ, S_SC, N_TAG_STATES };

/* A run of bytes that none of `ends` classes stops, from p. */
static Py_ssize_t run_until(const unsigned char *b, Py_ssize_t p, Py_ssize_t n, int ends) {
    while (p < n && !(CLASS[b[p]] & ends)) {
        p++;
    }
    return p;
}

static Py_ssize_t tag_states(const unsigned char *b, Py_ssize_t p, Py_ssize_t n, int *state) {
    int st = *state;
    while (p < n) {
        if (st == S_DQ || st == S_SQ) {
            unsigned char quote = st == S_DQ ? '"' : '\'';
            const unsigned char *close = find_byte(b + p, quote, (size_t)(n - p));
            if (close == NULL) {
                break;
            }
            p = (close - b) + 1;
            st = S_AAVQ;
            continue;
        }
        if (st == S_TAGNAME || st == S_AN || st == S_UQ) {
            int ends = st == S_TAGNAME ? ENDS_TAG_NAME : st == S_AN ? ENDS_ATTR_NAME : ENDS_UNQUOTED;
            p = run_until(b, p, n, ends);
            if (p == n) {
                break;
            }
            st = st == S_AN ? S_AAN : S_BAN; /* the delimiter is read again below */
            continue;
        }
        unsigned char c = b[p];
        if (c == '>') { /* ends the tag in every remaining state */
            *state = st;
            return p + 1;
        }
        if (st == S_BAV) {
            if (is_ws(c)) {
                p++;
            } else if (c == '"' || c == '\'') {
                p++;
                st = c == '"' ? S_DQ : S_SQ;
            } else {
                st = S_UQ;
            }
        } else if (st == S_SC) {
            st = S_BAN; /* '/' not followed by '>': read again as before attribute name */
        } else if (is_ws(c)) {
            p++;
            st = st == S_AAVQ ? S_BAN : st;
        } else if (c == '/') {
            p++;
            st = S_SC;
        } else if (c == '=' && (st == S_AN || st == S_AAN)) {
            p++;
            st = S_BAV;
        } else { /* a name character (a '=' here starts a name) */
            p++;
            st = S_AN;
        }
    }
    *state = st;
    return -1;
}

static Py_ssize_t up_to_gt(const unsigned char *b, Py_ssize_t from, Py_ssize_t n) {
    if (from >= n) {
        return -1;
    }
    const unsigned char *gt = find_byte(b + from, '>', (size_t)(n - from));
    return gt == NULL ? -1 : (gt - b) + 1;
}

/* A comment opened by '<!--' at p: the position after it ends ('<!-->', '<!--->', or the first
 * '-->' / '--!>'), or -1 when the buffer ends first. */
static Py_ssize_t comment_end(const unsigned char *b, Py_ssize_t p, Py_ssize_t n) {
    Py_ssize_t q = p + 4;
    if (q + 1 >= n) {
        return -1; /* '<!-->' or '<!--->' cannot be told yet */
    }
    if (b[q] == '>') {
        return q + 1;
    }
    if (b[q] == '-' && b[q + 1] == '>') {
        return q + 2;
    }
    while (q + 2 < n) {
        const unsigned char *dash = memchr(b + q, '-', (size_t)(n - q - 2));
        if (dash == NULL) {
            return -1;
        }
        q = dash - b;
        if (b[q + 1] == '-') {
            if (b[q + 2] == '>') {
                return q + 3;
            }
            if (b[q + 2] == '!' && q + 3 < n && b[q + 3] == '>') {
                return q + 4;
            }
        }
        q++;
    }
    return -1;
}

/* Raw text or RCDATA after a start tag: where its end tag '</name' + delimiter begins, or -1. */
static Py_ssize_t raw_text_end(const unsigned char *b, Py_ssize_t q, Py_ssize_t n, Name name) {
    while (q < n) {
        const unsigned char *lt = find_byte(b + q, '<', (size_t)(n - q));
        if (lt == NULL) {
            return -1;
        }
        q = lt - b;
        if (q + 1 >= n) {
            return -1;
        }
        if (b[q + 1] == '/') {
            int at = name_at(b, q + 2, n, name.name, name.len);
            if (at != 0) {
                return at < 0 ? -1 : q;
            }
        }
        q++;
    }
    return -1;
}

/* Script data after a <script> start tag and its escaped and double-escaped states (WHATWG
 * 13.2.5.4, .15-.31), as tokenizer._script_states_pattern reads them, from the sub-state *sub at
 * q: where the '</script' that ends the element begins, or -1 when the buffer ends first (or too
 * soon to tell). Then *sub and *resume are the sub-state and position after the last change of
 * sub-state, where reading goes on once more bytes are there: no match found later starts
 * before it, and none that the buffer cuts short starts before its last 9 bytes. */
enum { SCRIPT_NORMAL, SCRIPT_ESCAPED, SCRIPT_DOUBLE };
static Py_ssize_t script_states(const unsigned char *b, Py_ssize_t q, Py_ssize_t n, int *sub,
                                Py_ssize_t *resume) {
    int st = *sub;
    *resume = q;
    while (q < n) {
        if (st == SCRIPT_NORMAL) { /* only '<!--' and '</script' mean anything here */
            const unsigned char *lt = find_byte(b + q, '<', (size_t)(n - q));
            if (lt == NULL) {
                break;
            }
            q = lt - b;
            if (q + 3 >= n) {
                break;
            }
            if (b[q + 1] == '!' && b[q + 2] == '-' && b[q + 3] == '-') {
                st = SCRIPT_ESCAPED; /* its dashes already count towards '-->' */
                q += 2;
                *resume = q;
                continue;
            }
            if (b[q + 1] == '/') {
                int at = name_at(b, q + 2, n, SCRIPT.name, SCRIPT.len);
                if (at < 0) {
                    break;
                }
                if (at) {
                    *sub = st;
                    return q;
                }
            }
            q++;
            continue;
        }
        while (q < n && b[q] != '-' && b[q] != '<') {
            q++;
        }
        if (q + 2 >= n) {
            break;
        }
        if (b[q] == '-') {
            if (b[q + 1] == '-' && b[q + 2] == '>') {
                st = SCRIPT_NORMAL;
                q += 3;
                *resume = q;
            } else {
                q++;
            }
            continue;
        }
        if (b[q + 1] == '/') {
            int at = name_at(b, q + 2, n, SCRIPT.name, SCRIPT.len);
            if (at < 0) {
                break;
            }
            if (at && st == SCRIPT_ESCAPED) {
                *sub = st;
                return q; /* the end tag */
            }
            if (at) {
                st = SCRIPT_ESCAPED;
                q += 9; /* past '</script' and its delimiter */
                *resume = q;
                continue;
            }
        } else if (st == SCRIPT_ESCAPED) {
            int at = name_at(b, q + 1, n, SCRIPT.name, SCRIPT.len);
            if (at < 0) {
                break;
            }
            if (at) {
                st = SCRIPT_DOUBLE;
                q += 8; /* past '<script' and its delimiter */
                *resume = q;
                continue;
            }
        }
        q++;
    }
    *sub = st;
    return -1;
}

/* The script data of a whole <script> element from just after its start tag: where its end
 * tag begins, or -1. */
static Py_ssize_t script_data_end(const unsigned char *b, Py_ssize_t q, Py_ssize_t n) {
    int sub = SCRIPT_NORMAL;
    Py_ssize_t resume;
    return script_states(b, q, n, &sub, &resume);
}

/* Whether needle (non-empty) occurs in hay: memmem where the C library has it (glibc, the BSDs,
 * macOS), a memchr loop elsewhere (MSVC) and under REQIO_PORTABLE, which the tests build. */
static int contains(const unsigned char *hay, Py_ssize_t hay_len, const unsigned char *needle,
                    Py_ssize_t needle_len) {
#if (defined(__GLIBC__) || defined(__APPLE__) || defined(__FreeBSD__)) && !defined(REQIO_PORTABLE)
    return memmem(hay, (size_t)hay_len, needle, (size_t)needle_len) != NULL;
#else
    Py_ssize_t last = hay_len - needle_len;
    for (Py_ssize_t i = 0; i <= last; i++) {
        const unsigned char *at = memchr(hay + i, needle[0], (size_t)(last - i + 1));
        if (at == NULL) {
            return 0;
        }
        i = at - hay;
        if (memcmp(at, needle, (size_t)needle_len) == 0) {
            return 1;
        }
    }
    return 0;
#endif
}

/* rewriter._Matcher.maybe: the start tag b[start:end] may be the widget's when the widget's
 * path is in it literally, or when it holds what could spell the path otherwise (a character
 * reference, or a tab or newline, which URL parsing drops). An empty path means "every tag
 * may be": the rewriter then sees every <script>. */
static int may_be_widget(const unsigned char *b, Py_ssize_t start, Py_ssize_t end,
                         const unsigned char *path, Py_ssize_t path_len) {
    if (path_len == 0) {
        return 1;
    }
    if (contains(b + start, end - start, path, path_len)) {
        return 1;
    }
    for (Py_ssize_t i = start; i < end; i++) {
        unsigned char c = b[i];
        if (c == '&' || c == '\t' || c == '\n' || c == '\r') {
            return 1;
        }
    }
    return 0;
}

/* Where the copies of the known tag that scan_known passed over start, in a buffer that grows
 * as needed (the raw allocator, which needs no GIL). */
typedef struct {
    Py_ssize_t *at;
    Py_ssize_t len, cap;
} Starts;

static int push_start(Starts *starts, Py_ssize_t p) {
    if (starts->len == starts->cap) {
        Py_ssize_t cap = starts->cap ? 2 * starts->cap : 256;
        Py_ssize_t *grown = PyMem_RawRealloc(starts->at, (size_t)cap * sizeof(Py_ssize_t));
        if (grown == NULL) {
            return -1;
        }
        starts->at = grown;
        starts->cap = cap;
    }
    starts->at[starts->len++] = p;
    return 0;
}

/* The tag that may be the widget's: which the data-state run stops at, unless its bytes are
 * the known (already stamped) tag's and its element ends in the buffer; then its start goes to
 * starts and the run passes over it. Without a known tag (known_len 0) every such tag stops it.
 * Where starts cannot grow, the run stops at the tag: the rewriter then reads it itself. */
typedef struct {
    const unsigned char *path, *known;
    Py_ssize_t path_len, known_len;
    Starts *starts;
} Widget;

static Py_ssize_t scan(const unsigned char *b, Py_ssize_t p, Py_ssize_t n, const Widget *w) {
    while (p < n) {
        const unsigned char *lt = find_byte(b + p, '<', (size_t)(n - p));
        if (lt == NULL) {
            return n;
        }
        p = lt - b;
        if (p + 1 >= n) {
            return p; /* '<' at the end: wait for what follows */
        }
        unsigned char c = b[p + 1];
        Py_ssize_t end;
        if (is_alpha(c)) {
            int special = special_at(b + p + 1, n - p - 1);
            if (special == 0) { /* <script>: passed over whole, unless it may be the widget and
                                 * is no copy of the known tag */
                end = tag_rest(b, p + 7, n);
                if (end < 0) {
                    return p;
                }
                int known = may_be_widget(b, p, end, w->path, w->path_len);
                if (known && (end - p != w->known_len ||
                              memcmp(b + p, w->known, (size_t)(end - p)) != 0)) {
                    return p;
                }
                end = script_data_end(b, end, n);
                if (end < 0 || (known && push_start(w->starts, p) < 0)) {
                    return p;
                }
                p = end; /* its end tag is read as a tag next */
                continue;
            }
            if (special >= 1 && special < N_STOPS) {
                return p;
            }
            Py_ssize_t q = p + 2;
            while (q < n && !(CLASS[b[q]] & ENDS_TAG_NAME)) {
                q++;
            }
            end = tag_rest(b, q, n);
            if (special >= 0 && end >= 0) { /* raw text up to its end tag, read as a tag next */
                end = raw_text_end(b, end, n, SPECIAL[special]);
            }
        } else if (c == '/') {
            if (p + 2 >= n) {
                return p;
            }
            unsigned char d = b[p + 2];
            if (is_alpha(d)) {
                Py_ssize_t q = p + 3;
                while (q < n && !(CLASS[b[q]] & ENDS_TAG_NAME)) {
                    q++;
                }
                end = tag_rest(b, q, n);
            } else if (d == '>') {
                end = p + 3;
            } else {
                end = up_to_gt(b, p + 2, n);
            }
        } else if (c == '!') {
            if (p + 3 < n && b[p + 2] == '-' && b[p + 3] == '-') {
                end = comment_end(b, p, n);
            } else {
                end = up_to_gt(b, p + 2, n);
            }
        } else if (c == '?') {
            end = up_to_gt(b, p + 2, n);
        } else {
            end = p + 1; /* '<' followed by anything else is text */
        }
        if (end < 0) {
            return p;
        }
        p = end;
    }
    return p;
}

/* Bytes are immutable, so a long scan can let other threads run meanwhile; a short one
 * would spend more on the GIL hand-over than on the scan. */
#define BIG 65536
#define WITHOUT_GIL_IF(cond, statement) \
    do {                                 \
        if (cond) {                      \
            Py_BEGIN_ALLOW_THREADS       \
            statement;                   \
            Py_END_ALLOW_THREADS         \
        } else {                         \
            statement;                   \
        }                                \
    } while (0)

/* (buf: bytes, pos: int[, path: bytes]) with 0 <= pos <= len(buf), at least `least` of them;
 * 0, or -1 with an exception set. Without path_len, no path is accepted; a path not given is
 * empty. */
static int parse_args(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t least,
                      const char *usage, const unsigned char **b, Py_ssize_t *pos, Py_ssize_t *n,
                      const unsigned char **path, Py_ssize_t *path_len) {
    Py_ssize_t most = path_len == NULL ? 2 : 3;
    if (nargs < least || nargs > most || !PyBytes_Check(args[0]) ||
        (nargs == 3 && !PyBytes_Check(args[2]))) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    *pos = PyLong_AsSsize_t(args[1]);
    if (*pos == -1 && PyErr_Occurred()) {
        return -1;
    }
    *n = PyBytes_GET_SIZE(args[0]);
    if (*pos < 0 || *pos > *n) {
        PyErr_SetString(PyExc_ValueError, "pos out of range");
        return -1;
    }
    *b = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    if (path_len != NULL) {
        *path = nargs == 3 ? (const unsigned char *)PyBytes_AS_STRING(args[2]) : NULL;
        *path_len = nargs == 3 ? PyBytes_GET_SIZE(args[2]) : 0;
    }
    return 0;
}

static PyObject *scan_data(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    const unsigned char *b, *path;
    Py_ssize_t pos, n, path_len, end;
    if (parse_args(args, nargs, 2, "scan_data(buf: bytes, pos: int, path: bytes = b'')", &b, &pos,
                   &n, &path, &path_len) < 0) {
        return NULL;
    }
    Widget w = {path, NULL, path_len, 0, NULL};
    WITHOUT_GIL_IF(n - pos > BIG, end = scan(b, pos, n, &w));
    return PyLong_FromSsize_t(end);
}

/* buf[pos:stop] with each copy of the known tag (at starts) replaced by its stamped bytes. */
static PyObject *stamped_copies(const unsigned char *b, Py_ssize_t pos, Py_ssize_t stop,
                                const Widget *w, PyObject *stamped) {
    const char *with = PyBytes_AS_STRING(stamped);
    Py_ssize_t with_len = PyBytes_GET_SIZE(stamped), count = w->starts->len;
    Py_ssize_t size = stop - pos + count * (with_len - w->known_len);
    PyObject *text = PyBytes_FromStringAndSize(NULL, size);
    if (text == NULL) {
        return NULL;
    }
    char *out = PyBytes_AS_STRING(text);
    Py_ssize_t at = pos;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t start = w->starts->at[i];
        memcpy(out, b + at, (size_t)(start - at));
        out += start - at;
        memcpy(out, with, (size_t)with_len);
        out += with_len;
        at = start + w->known_len;
    }
    memcpy(out, b + at, (size_t)(stop - at));
    return text;
}

/* scan_known(buf, pos, path, known, stamped) -> (stop, count, text): scan_data's run, which
 * also passes over the count <script> elements whose start tag is `known` byte for byte; text
 * is buf[pos:stop] with those tags replaced by `stamped` (b'' when count is 0). */
static PyObject *scan_known(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    static const char usage[] =
        "scan_known(buf: bytes, pos: int, path: bytes, known: bytes, stamped: bytes)";
    const unsigned char *b, *path;
    Py_ssize_t pos, n, path_len, stop;
    if (nargs != 5 || !PyBytes_Check(args[3]) || !PyBytes_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, usage);
        return NULL;
    }
    if (parse_args(args, 3, 3, usage, &b, &pos, &n, &path, &path_len) < 0) {
        return NULL;
    }
    Starts starts = {NULL, 0, 0};
    Widget w = {path, (const unsigned char *)PyBytes_AS_STRING(args[3]), path_len,
                PyBytes_GET_SIZE(args[3]), &starts};
    WITHOUT_GIL_IF(n - pos > BIG, stop = scan(b, pos, n, &w));
    PyObject *text = starts.len ? stamped_copies(b, pos, stop, &w, args[4])
                                : PyBytes_FromStringAndSize(NULL, 0);
    PyMem_RawFree(starts.at);
    if (text == NULL) {
        return NULL;
    }
    return Py_BuildValue("(nnN)", stop, starts.len, text);
}

/* script_states(buf, pos, sub) -> (pos, sub): the script data states from sub-state sub at pos
 * (0 script data, 1 escaped, 2 double-escaped). sub -1: the end tag begins at pos. Otherwise
 * the buffer ended first: pos and sub are where reading resumes and in which sub-state. */
static PyObject *script_states_py(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    static const char usage[] = "script_states(buf: bytes, pos: int, sub: int)";
    const unsigned char *b;
    Py_ssize_t pos, n, end, resume;
    if (nargs != 3 || parse_args(args, 2, 2, usage, &b, &pos, &n, NULL, NULL) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, usage);
        }
        return NULL;
    }
    long state = PyLong_AsLong(args[2]);
    if (state == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (state < SCRIPT_NORMAL || state > SCRIPT_DOUBLE) {
        PyErr_SetString(PyExc_ValueError, "sub out of range");
        return NULL;
    }
    int sub = (int)state;
    WITHOUT_GIL_IF(n - pos > BIG, end = script_states(b, pos, n, &sub, &resume));
    return end >= 0 ? Py_BuildValue("(ni)", end, -1) : Py_BuildValue("(ni)", resume, sub);
}

static PyObject *tag_end(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    const unsigned char *b;
    Py_ssize_t pos, n, limit;
    if (parse_args(args, nargs < 3 ? nargs : 2, 2, "tag_end(buf: bytes, pos: int, limit: int = len)",
                   &b, &pos, &n, NULL, NULL) < 0) {
        return NULL;
    }
    limit = n;
    if (nargs == 3) {
        limit = PyLong_AsSsize_t(args[2]);
        if (limit == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (limit < pos || limit > n) {
            PyErr_SetString(PyExc_ValueError, "limit out of range");
            return NULL;
        }
    } else if (nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "tag_end(buf: bytes, pos: int, limit: int = len)");
        return NULL;
    }
    return PyLong_FromSsize_t(tag_rest(b, pos, limit));
}

/* tag_states(buf, pos, state) -> the position after '>' (>= 0), or -1 - the state to resume
 * in when buf ends first. */
static PyObject *tag_states_py(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    const unsigned char *b;
    Py_ssize_t pos, n;
    if (nargs != 3 || parse_args(args, 2, 2, "tag_states(buf: bytes, pos: int, state: int)", &b,
                                 &pos, &n, NULL, NULL) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "tag_states(buf: bytes, pos: int, state: int)");
        }
        return NULL;
    }
    long state = PyLong_AsLong(args[2]);
    if (state == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (state < 0 || state >= N_TAG_STATES) {
        PyErr_SetString(PyExc_ValueError, "state out of range");
        return NULL;
    }
    int st = (int)state;
    Py_ssize_t end;
    WITHOUT_GIL_IF(n - pos > BIG, end = tag_states(b, pos, n, &st));
    return PyLong_FromSsize_t(end >= 0 ? end : -1 - st);
}

/* What the '<script' at p is for the backward search (p + 7 < n): NOT_SCRIPT; PASSED (a start
 * tag that ends before limit and cannot be the widget's); CANDIDATE (it may be, or it does not
 * end before limit, so only the tokenizer can tell). Bounding each tag's scan by the previous
 * '<script' looked at keeps the search linear in the input. */
enum { NOT_SCRIPT, PASSED, CANDIDATE };
static int candidate_at(const unsigned char *b, Py_ssize_t p, Py_ssize_t n, Py_ssize_t limit,
                        const unsigned char *path, Py_ssize_t path_len) {
    if (b[p] != '<' || name_at(b, p + 1, n, SCRIPT.name, SCRIPT.len) != 1) {
        return NOT_SCRIPT;
    }
    Py_ssize_t end = tag_rest(b, p + 7, limit);
    return end < 0 || may_be_widget(b, p, end, path, path_len) ? CANDIDATE : PASSED;
}

/* The last candidate starting before hi, searched backwards: a widget tag usually sits near
 * the end of a page. With SSE2, sixteen positions at a time are filtered on three of the
 * seven bytes of '<script' ('<', 's', 't', in any case) before any is looked at one by one. */
static Py_ssize_t last_candidate_in(const unsigned char *b, Py_ssize_t hi, Py_ssize_t n,
                                    const unsigned char *path, Py_ssize_t path_len) {
    Py_ssize_t top = hi < n - 7 ? hi : n - 7; /* a candidate needs its delimiter in buf */
    Py_ssize_t limit = hi;
    int what;
#if defined(USE_SSE2)
    const __m128i lt = _mm_set1_epi8('<'), s = _mm_set1_epi8('s'), t = _mm_set1_epi8('t');
    const __m128i fold = _mm_set1_epi8(0x20);
    while (top >= 16) {
        Py_ssize_t at = top - 16; /* loads reach at + 6 + 16 <= top + 6 < n */
        __m128i v0 = _mm_loadu_si128((const __m128i *)(b + at));
        __m128i v1 = _mm_or_si128(_mm_loadu_si128((const __m128i *)(b + at + 1)), fold);
        __m128i v6 = _mm_or_si128(_mm_loadu_si128((const __m128i *)(b + at + 6)), fold);
        unsigned int mask = (unsigned int)_mm_movemask_epi8(_mm_and_si128(
            _mm_cmpeq_epi8(v0, lt), _mm_and_si128(_mm_cmpeq_epi8(v1, s), _mm_cmpeq_epi8(v6, t))));
        while (mask != 0) {
            int bit = HIGHEST_BIT(mask);
            what = candidate_at(b, at + bit, n, limit, path, path_len);
            if (what == CANDIDATE) {
                return at + bit;
            }
            if (what == PASSED) {
                limit = at + bit;
            }
            mask &= ~(1u << bit);
        }
        top = at;
    }
#endif
    for (Py_ssize_t p = top - 1; p >= 0; p--) {
        if (b[p] != '<') {
            continue;
        }
        what = candidate_at(b, p, n, limit, path, path_len);
        if (what == CANDIDATE) {
            return p;
        }
        if (what == PASSED) {
            limit = p;
        }
    }
    return -1;
}

static PyObject *last_candidate(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    const unsigned char *b, *path;
    Py_ssize_t hi, n, path_len, found;
    if (parse_args(args, nargs, 3, "last_candidate(buf: bytes, hi: int, path: bytes)", &b, &hi, &n,
                   &path, &path_len) < 0) {
        return NULL;
    }
    WITHOUT_GIL_IF(hi > BIG, found = last_candidate_in(b, hi, n, path, path_len));
    return PyLong_FromSsize_t(found);
}

/* ---- Foreign content (SVG, MathML) and <select> content --------------------------------
 *
 * Inside <svg>/<math> and <select> the tree builder decides what a tag does, so the rewriter
 * walks them with its tree model (foreign.py), tag by tag. These runs take the tags whose
 * effect on that model is simple enough to carry here: ordinary foreign elements (a stack of
 * names), SVG HTML integration points and MathML text integration points holding only text
 * (whose closing makes the model "ambiguous" and remembers the closed names), text, comments,
 * bogus comments and CDATA sections. They stop at whatever else the model must see, and
 * report how its stack and flags changed, which the caller applies. */

static const Name FOREIGN_STOPS[] = {FOREIGN_RUN_STOPS};
static const Name SWITCHING_NAMES[] = {FOREIGN_SWITCHING};
static const Name SVG_POINTS[] = {SVG_HTML_POINTS};
static const Name MATH_POINTS[] = {MATHML_TEXT_POINTS};
static const Name UNSURE_END[] = {UNSURE_FOREIGN_END};
static const Name SELECT_STOPS[] = {SELECT_RUN_STOPS};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Element names longer than this are left to the tree model (which gives up on end tags
 * longer than that); the stack and the closed names hold at most RUN_CAP entries. */
#define RUN_NAME_MAX 64
#define RUN_CAP 128
enum { F_MATH = 1, F_AMBIGUOUS = 2, F_WHOLE = 4 };
enum { TOP_PLAIN, TOP_POINT, TOP_TOUCHED };

static inline unsigned char ascii_lower(unsigned char c) {
    return (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

static int in_names(const unsigned char *s, Py_ssize_t len, const Name *names, size_t count) {
    for (size_t i = 0; i < count; i++) {
        if (names[i].len == len && memcmp(names[i].name, s, (size_t)len) == 0) {
            return 1;
        }
    }
    return 0;
}

typedef struct {
    const unsigned char *s;
    Py_ssize_t len;
} Str;

static int same(Str a, const unsigned char *s, Py_ssize_t len) {
    return a.len == len && memcmp(a.s, s, (size_t)len) == 0;
}

/* The tag name from b[s] (the first byte is a letter), lowercased into name: its end, or
 * -1 when the buffer ends first or it is longer than RUN_NAME_MAX. */
static Py_ssize_t run_name(unsigned char *name, const unsigned char *b, Py_ssize_t s,
                           Py_ssize_t n, Py_ssize_t *len) {
    Py_ssize_t q = run_until(b, s, n, ENDS_TAG_NAME);
    if (q >= n || q - s > RUN_NAME_MAX) {
        return -1;
    }
    *len = q - s;
    for (Py_ssize_t k = 0; k < *len; k++) {
        name[k] = ascii_lower(b[s + k]);
    }
    return q;
}

/* The runs over HTML inside an integration point (SVG foreignObject/desc/title, MathML
 * annotation-xml with an HTML encoding, mi/mo/mn/ms/mtext) or an HTML element opened there:
 * HTML rules, so a start tag opens an HTML element (HTML_VOID ones none; POINT_RAW ones are
 * passed over up to their end tag, which closes them as the text insertion mode does) and an
 * end tag must close the current one. They stop at whatever else the tree model must see:
 * POINT_STOPS, an end tag naming another element (or, while the model is ambiguous, one it
 * does not remember already), an end tag at the element the run started in, CDATA. They
 * report the elements left open and which of them saw a start tag (foreign.py's "touched"). */
static const Name POINT_STOPS[] = {POINT_RUN_STOPS};
static const Name VOID_NAMES[] = {HTML_VOID_NAMES};
static const Name POINT_RAW[] = {POINT_RAW_TEXT};
#define POINT_CAP 64
enum { P_TEXT = 1, P_AMBIGUOUS = 2 };

typedef struct {
    Str stack[POINT_CAP];
    unsigned char arena[POINT_CAP][RUN_NAME_MAX];
    unsigned long long touched; /* bit i: stack[i] saw a start tag */
    int depth, max_depth, base, text_touches, ambiguous, n_closed;
    const Str *closed; /* the names the model remembers (while it is ambiguous) */
    unsigned char name[RUN_NAME_MAX];
} Point;

/* A start tag or (where it is an integration point) text at the current node touches it. */
static inline void point_touch(Point *r) {
    if (r->depth == 0) {
        r->base = 1;
    } else {
        r->touched |= 1ULL << (r->depth - 1);
    }
}

/* Which of the open elements saw a start tag, as a Python int (bit i: stack[i]). */
static PyObject *point_touched(const Point *r) {
    return PyLong_FromUnsignedLongLong(r->depth == 0 ? 0 : r->touched & (~0ULL >> (64 - r->depth)));
}

static Py_ssize_t point_start(Point *r, const unsigned char *b, Py_ssize_t p, Py_ssize_t n) {
    Py_ssize_t len;
    Py_ssize_t q = run_name(r->name, b, p + 1, n, &len);
    if (q < 0 || in_names(r->name, len, POINT_STOPS, COUNT(POINT_STOPS))) {
        return -1;
    }
    Py_ssize_t end = tag_rest(b, q, n);
    if (end >= 0 && in_names(r->name, len, POINT_RAW, COUNT(POINT_RAW))) {
        Name raw = {(const char *)r->name, len};
        Py_ssize_t lt = raw_text_end(b, end, n, raw);
        end = lt < 0 ? -1 : tag_rest(b, lt + 2 + len, n);
        if (end >= 0) {
            point_touch(r);
        }
        return end;
    }
    int opens = !in_names(r->name, len, VOID_NAMES, COUNT(VOID_NAMES));
    if (end < 0 || (opens && r->depth >= r->max_depth)) {
        return -1;
    }
    point_touch(r);
    if (opens) {
        memcpy(r->arena[r->depth], r->name, (size_t)len);
        r->stack[r->depth].s = r->arena[r->depth];
        r->stack[r->depth].len = len;
        r->touched &= ~(1ULL << r->depth);
        r->depth++;
    }
    return end;
}

static Py_ssize_t point_end(Point *r, const unsigned char *b, Py_ssize_t p, Py_ssize_t n) {
    Py_ssize_t len;
    Py_ssize_t q = run_name(r->name, b, p + 2, n, &len);
    if (q < 0 || r->depth == 0 || !same(r->stack[r->depth - 1], r->name, len)) {
        return -1;
    }
    if (r->ambiguous) { /* the model remembers every name it pops: only known ones here */
        int known = 0;
        for (int k = 0; k < r->n_closed && !known; k++) {
            known = same(r->closed[k], r->name, len);
        }
        if (!known) {
            return -1;
        }
    }
    Py_ssize_t end = tag_rest(b, q, n);
    if (end >= 0) {
        r->depth--;
    }
    return end;
}

/* '<!' at b[p]: a comment or a bogus comment; after it, or -1 (CDATA is the model's). */
static Py_ssize_t point_bang(const unsigned char *b, Py_ssize_t p, Py_ssize_t n) {
    if (n - p < 9) {
        return -1; /* '<!--' or '<![CDATA[' cannot be told yet */
    }
    if (b[p + 2] == '-' && b[p + 3] == '-') {
        return comment_end(b, p, n);
    }
    return memcmp(b + p + 2, "[CDATA[", 7) == 0 ? -1 : up_to_gt(b, p + 2, n);
}

static Py_ssize_t point_run(Point *r, const unsigned char *b, Py_ssize_t p, Py_ssize_t n) {
    while (p < n) {
        const unsigned char *lt = memchr(b + p, '<', (size_t)(n - p));
        Py_ssize_t at = lt == NULL ? n : lt - b;
        if (at > p) {
            r->base |= r->depth == 0 && r->text_touches;
            p = at;
            if (p >= n) {
                return p;
            }
        }
        if (p + 1 >= n) {
            return p;
        }
        unsigned char c = b[p + 1];
        Py_ssize_t end;
        if (is_alpha(c)) {
            end = point_start(r, b, p, n);
        } else if (c == '/') {
            end = p + 2 >= n           ? -1
                  : b[p + 2] == '>'    ? p + 3
                  : is_alpha(b[p + 2]) ? point_end(r, b, p, n)
                                       : up_to_gt(b, p + 2, n);
        } else if (c == '!') {
            end = point_bang(b, p, n);
        } else if (c == '?') {
            end = up_to_gt(b, p + 2, n);
        } else { /* a '<' that starts nothing is text */
            r->base |= r->depth == 0 && r->text_touches;
            end = p + 1;
        }
        if (end < 0) {
            return p;
        }
        p = end;
    }
    return p;
}

typedef struct {
    Str stack[RUN_CAP]; /* stack[0:n_open] starts as the caller's open elements */
    int depth, n_open, kept, max_depth, top, ambiguous, math, whole;
    Str closed[RUN_CAP];
    int n_closed, n_closed0, max_closed;
    unsigned char arena[RUN_CAP][RUN_NAME_MAX]; /* the lowercase names pushed here */
    unsigned char closed_arena[RUN_CAP][RUN_NAME_MAX]; /* copies: arena slots are reused */
    unsigned char name[RUN_NAME_MAX];           /* the tag name being read, lowercase */
    Point point; /* HTML content at an integration point the run opened */
} Run;

/* The attribute states for the common form: each attribute after whitespace, its value
 * quoted or absent, then '>' or '/>' (sets *closing). After it, or -1 for any other form. */
static Py_ssize_t common_attrs(const unsigned char *b, Py_ssize_t q, Py_ssize_t n, int *closing) {
    for (;;) {
        Py_ssize_t s = q;
        while (q < n && is_ws(b[q])) {
            q++;
        }
        if (q >= n) {
            return -1;
        }
        if (b[q] == '>' || b[q] == '/') {
            *closing = b[q] == '/';
            return !*closing ? q + 1 : q + 1 < n && b[q + 1] == '>' ? q + 2 : -1;
        }
        Py_ssize_t a = q;
        while (q < n && !(CLASS[b[q]] & ENDS_ATTR_NAME) && b[q] != '"' && b[q] != '\'' &&
               b[q] != '<' && b[q] != '`') {
            q++;
        }
        if (q == s || q == a || q >= n) {
            return -1;
        }
        if (b[q] == '=') {
            q++;
            if (q >= n || (b[q] != '"' && b[q] != '\'')) {
                return -1;
            }
            const unsigned char *close = memchr(b + q + 1, b[q], (size_t)(n - q - 1));
            if (close == NULL) {
                return -1;
            }
            q = (close - b) + 1;
        }
    }
}

/* A tokenizer-switching start tag where the model is ambiguous leaves the tokenizer in raw
 * text that must hold no '<' before its end tag (foreign.STRICT): after that end tag, or -1
 * (its text holds markup, which the model gives up on, or the buffer ends first). */
static Py_ssize_t strict_text_end(Run *r, const unsigned char *b, Py_ssize_t q, Py_ssize_t n,
                                  Py_ssize_t len) {
    if (len == 9 && memcmp(r->name, "plaintext", 9) == 0) {
        return -1;
    }
    const unsigned char *lt = memchr(b + q, '<', (size_t)(n - q));
    if (lt == NULL) {
        return -1;
    }
    q = lt - b;
    if (q + 1 >= n || b[q + 1] != '/' ||
        name_at(b, q + 2, n, (const char *)r->name, len) != 1) {
        return -1;
    }
    return tag_rest(b, q + 2 + len, n);
}

/* HTML content at the integration point on top (which the run opened): the point run from
 * p, with the model's room and remembered names. Where it stopped, or -1 at once; the run
 * ends there when it left HTML elements open (r->point.depth > 0). */
static Py_ssize_t run_point(Run *r, const unsigned char *b, Py_ssize_t p, Py_ssize_t n) {
    Point *pt = &r->point;
    pt->depth = pt->base = 0;
    pt->touched = 0;
    pt->max_depth = r->max_depth - r->depth < POINT_CAP ? r->max_depth - r->depth : POINT_CAP;
    pt->text_touches = 1;
    pt->ambiguous = r->ambiguous;
    pt->closed = r->closed;
    pt->n_closed = r->n_closed;
    Py_ssize_t stop = point_run(pt, b, p, n);
    if (pt->base) {
        r->top = TOP_TOUCHED;
    }
    return stop == p ? -1 : stop;
}

/* A start tag at b[p] ('<' and a letter): the position after it, or -1 to stop. At depth 0
 * (HTML content) only the <svg> or <math> that opens foreign content is taken. */
static Py_ssize_t run_start(Run *r, const unsigned char *b, Py_ssize_t p, Py_ssize_t n) {
    Py_ssize_t len, closing_at;
    if (r->top != TOP_PLAIN) {
        return run_point(r, b, p, n);
    }
    Py_ssize_t q = run_name(r->name, b, p + 1, n, &len);
    if (q < 0) {
        return -1;
    }
    int root = r->depth == 0;
    if (root ? !((len == 3 && memcmp(r->name, "svg", 3) == 0) ||
                 (len == 4 && memcmp(r->name, "math", 4) == 0))
             : in_names(r->name, len, FOREIGN_STOPS, COUNT(FOREIGN_STOPS))) {
        return -1;
    }
    int closing = 0;
    closing_at = common_attrs(b, q, n, &closing);
    if (!root && r->ambiguous && in_names(r->name, len, SWITCHING_NAMES, COUNT(SWITCHING_NAMES))) {
        return closing_at < 0 ? -1 : strict_text_end(r, b, closing_at, n, len);
    }
    if (closing_at < 0 || closing) {
        return closing_at;
    }
    if (r->depth >= r->max_depth) {
        return -1;
    }
    if (root) {
        r->math = len == 4;
    }
    int point = !root && (r->math ? in_names(r->name, len, MATH_POINTS, COUNT(MATH_POINTS))
                                  : in_names(r->name, len, SVG_POINTS, COUNT(SVG_POINTS)));
    memcpy(r->arena[r->depth], r->name, (size_t)len);
    r->stack[r->depth].s = r->arena[r->depth];
    r->stack[r->depth].len = len;
    r->depth++;
    r->top = point ? TOP_POINT : TOP_PLAIN;
    return closing_at;
}

static int is_closed(const Run *r, Str name, int upto) {
    for (int k = 0; k < upto; k++) {
        if (same(r->closed[k], name.s, name.len)) {
            return 1;
        }
    }
    return 0;
}

/* Pop the stack down to `to`; names are remembered while the model is ambiguous, as long as
 * they fit (0 and nothing done when they would not). */
static int run_pop(Run *r, int to, int ambiguous) {
    if (ambiguous) {
        int added = 0;
        for (int k = r->depth - 1; k >= to; k--) {
            int seen = is_closed(r, r->stack[k], r->n_closed);
            for (int j = r->depth - 1; j > k && !seen; j--) {
                seen = same(r->stack[j], r->stack[k].s, r->stack[k].len);
            }
            added += !seen;
        }
        if (r->n_closed + added > r->max_closed) {
            return 0;
        }
        for (int k = r->depth - 1; k >= to; k--) {
            Str name = r->stack[k];
            if (!is_closed(r, name, r->n_closed)) {
                if (name.len <= RUN_NAME_MAX) { /* longer ones are the caller's, which stay */
                    memcpy(r->closed_arena[r->n_closed], name.s, (size_t)name.len);
                    name.s = r->closed_arena[r->n_closed];
                }
                r->closed[r->n_closed++] = name;
            }
        }
    }
    r->ambiguous = ambiguous;
    r->depth = to;
    r->kept = to < r->kept ? to : r->kept;
    r->top = TOP_PLAIN;
    return 1;
}

/* An end tag at b[p] ('</' and a letter): after it, or -1 to stop. */
static Py_ssize_t run_end(Run *r, const unsigned char *b, Py_ssize_t p, Py_ssize_t n) {
    Py_ssize_t len;
    Py_ssize_t q = run_name(r->name, b, p + 2, n, &len);
    if (q < 0 || in_names(r->name, len, UNSURE_END, COUNT(UNSURE_END))) {
        return -1;
    }
    Py_ssize_t end = tag_rest(b, q, n);
    if (end < 0) {
        return -1;
    }
    int i = r->depth - 1;
    if (r->top == TOP_TOUCHED) { /* text was read under HTML rules: it must close itself */
        if (!same(r->stack[i], r->name, len)) {
            return -1;
        }
    } else {
        while (i >= 0 && !same(r->stack[i], r->name, len)) {
            i--;
        }
        if (i < 0) {
            return -1;
        }
    }
    return run_pop(r, i, r->ambiguous || r->top == TOP_TOUCHED) ? end : -1;
}

/* '<!' at b[p]: a comment, a CDATA section (in an ordinary element only) or a bogus comment;
 * after it, or -1. */
static Py_ssize_t run_bang(const Run *r, const unsigned char *b, Py_ssize_t p, Py_ssize_t n) {
    if (n - p < 9 || memcmp(b + p + 2, "[CDATA[", 7) != 0) {
        return point_bang(b, p, n);
    }
    if (r->top != TOP_PLAIN || r->ambiguous) {
        return -1;
    }
    for (Py_ssize_t q = p + 9; q + 2 < n; q++) {
        const unsigned char *close = memchr(b + q, ']', (size_t)(n - q - 2));
        if (close == NULL) {
            return -1;
        }
        q = close - b;
        if (b[q + 1] == ']' && b[q + 2] == '>') {
            return q + 3;
        }
    }
    return -1;
}

static inline void run_text(Run *r) {
    if (r->top == TOP_POINT) {
        r->top = TOP_TOUCHED;
    }
}

/* The run from p: where it stops. Once the stack is empty it stops, or (F_WHOLE: it held the
 * model's whole stack) goes on over HTML content as the data state's run does (stopping at
 * every <script>), and into the next <svg> or <math>. */
static Py_ssize_t foreign_run(Run *r, const unsigned char *b, Py_ssize_t p, Py_ssize_t n) {
    while (p < n) {
        const unsigned char *lt = memchr(b + p, '<', (size_t)(n - p));
        Py_ssize_t at = lt == NULL ? n : lt - b;
        if (at > p) {
            if (r->depth == 0) {
                return p;
            }
            run_text(r);
            p = at;
            if (p >= n) {
                return p;
            }
        }
        if (p + 1 >= n) {
            return p;
        }
        unsigned char c = b[p + 1];
        Py_ssize_t end;
        if (is_alpha(c)) {
            end = run_start(r, b, p, n);
        } else if (r->depth == 0) {
            return p;
        } else if (c == '/') {
            end = p + 2 >= n           ? -1
                  : b[p + 2] == '>'    ? p + 3
                  : is_alpha(b[p + 2]) ? run_end(r, b, p, n)
                                       : up_to_gt(b, p + 2, n);
        } else if (c == '!') {
            end = run_bang(r, b, p, n);
        } else if (c == '?') {
            end = up_to_gt(b, p + 2, n);
        } else {
            run_text(r); /* a '<' that starts nothing is text */
            end = p + 1;
        }
        if (end < 0) {
            return p;
        }
        p = end;
        if (r->point.depth > 0) {
            return p;
        }
        if (r->depth == 0 && !r->whole) {
            return p;
        }
        if (r->depth == 0) { /* HTML content again, as far as the data state runs */
            static const Widget EVERY_SCRIPT = {NULL, NULL, 0, 0, NULL};
            r->ambiguous = 0;
            p = scan(b, p, n, &EVERY_SCRIPT);
        }
    }
    return p;
}

/* A tuple of bytes as names (not copied: the tuple outlives the call), at most `most`. */
static int names_arg(PyObject *tuple, Str *out, int most, const char *what) {
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) > most) {
        PyErr_Format(PyExc_ValueError, "%s: a tuple of at most %d names", what, most);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        if (!PyBytes_Check(item)) {
            PyErr_Format(PyExc_TypeError, "%s: names are bytes", what);
            return -1;
        }
        out[i].s = (const unsigned char *)PyBytes_AS_STRING(item);
        out[i].len = PyBytes_GET_SIZE(item);
    }
    return (int)PyTuple_GET_SIZE(tuple);
}

static PyObject *names_tuple(const Str *names, int from, int to) {
    PyObject *tuple = PyTuple_New(to - from);
    for (int i = from; tuple != NULL && i < to; i++) {
        PyObject *item = PyBytes_FromStringAndSize((const char *)names[i].s, names[i].len);
        if (item == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, i - from, item);
    }
    return tuple;
}

#define SCAN_FOREIGN_USAGE                                                                    \
    "scan_foreign(buf: bytes, pos: int, end: int, open: tuple[bytes, ...], flags: int, "      \
    "room: int, closed: tuple[bytes, ...], closed_room: int)"

/* scan_foreign(...) -> (pos, kept, pushed, top, ambiguous, added, html, html_touched):
 * see treeruns.py. */
static PyObject *scan_foreign(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    const unsigned char *b;
    Py_ssize_t pos, n, end, room, closed_room;
    long flags;
    if (nargs != 8 || parse_args(args, 2, 2, SCAN_FOREIGN_USAGE, &b, &pos, &n, NULL, NULL) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, SCAN_FOREIGN_USAGE);
        }
        return NULL;
    }
    end = PyLong_AsSsize_t(args[2]);
    flags = PyLong_AsLong(args[4]);
    room = PyLong_AsSsize_t(args[5]);
    closed_room = PyLong_AsSsize_t(args[7]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (end < pos || end > n || room < 0 || closed_room < 0 || flags < 0 || flags > 7) {
        PyErr_SetString(PyExc_ValueError, "end, room, closed_room or flags out of range");
        return NULL;
    }
    Run *r = PyMem_Malloc(sizeof(Run));
    if (r == NULL) {
        return PyErr_NoMemory();
    }
    r->n_open = names_arg(args[3], r->stack, RUN_CAP / 2, "open");
    r->n_closed0 = r->n_open < 0 ? -1 : names_arg(args[6], r->closed, RUN_CAP / 2, "closed");
    if (r->n_closed0 < 0) {
        PyMem_Free(r);
        return NULL;
    }
    r->depth = r->kept = r->n_open;
    r->max_depth = r->n_open + (int)(room < RUN_CAP / 2 ? room : RUN_CAP / 2);
    r->n_closed = r->n_closed0;
    r->max_closed = r->n_closed0 + (int)(closed_room < RUN_CAP / 2 ? closed_room : RUN_CAP / 2);
    r->top = TOP_PLAIN;
    r->ambiguous = (flags & F_AMBIGUOUS) != 0;
    r->math = (flags & F_MATH) != 0;
    r->whole = (flags & F_WHOLE) != 0;
    r->point.depth = 0;
    Py_ssize_t stop = foreign_run(r, b, pos, end);
    PyObject *pushed = names_tuple(r->stack, r->kept, r->depth);
    PyObject *added = names_tuple(r->closed, r->n_closed0, r->n_closed);
    PyObject *html = names_tuple(r->point.stack, 0, r->point.depth);
    PyObject *result = pushed == NULL || added == NULL || html == NULL
                           ? NULL
                           : Py_BuildValue("(niOiNOON)", stop, r->kept, pushed,
                                           r->depth > r->kept ? r->top : TOP_PLAIN,
                                           PyBool_FromLong(r->ambiguous), added, html,
                                           point_touched(&r->point));
    Py_XDECREF(pushed);
    Py_XDECREF(added);
    Py_XDECREF(html);
    PyMem_Free(r);
    return result;
}

#define SCAN_POINT_USAGE                                                                      \
    "scan_point(buf: bytes, pos: int, end: int, room: int, flags: int, closed: tuple[bytes, ...])"

/* scan_point(...) -> (pos, pushed, touched, base): see treeruns.py. */
static PyObject *scan_point(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    const unsigned char *b;
    Py_ssize_t pos, n, end, room;
    long flags;
    if (nargs != 6 || parse_args(args, 2, 2, SCAN_POINT_USAGE, &b, &pos, &n, NULL, NULL) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, SCAN_POINT_USAGE);
        }
        return NULL;
    }
    end = PyLong_AsSsize_t(args[2]);
    room = PyLong_AsSsize_t(args[3]);
    flags = PyLong_AsLong(args[4]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (end < pos || end > n || room < 0 || flags < 0 || flags > 3) {
        PyErr_SetString(PyExc_ValueError, "end, room or flags out of range");
        return NULL;
    }
    Point *r = PyMem_Malloc(sizeof(Point));
    if (r == NULL) {
        return PyErr_NoMemory();
    }
    Str closed[RUN_CAP / 2];
    r->closed = closed;
    r->n_closed = names_arg(args[5], closed, RUN_CAP / 2, "closed");
    if (r->n_closed < 0) {
        PyMem_Free(r);
        return NULL;
    }
    r->depth = r->base = 0;
    r->touched = 0;
    r->max_depth = (int)(room < POINT_CAP ? room : POINT_CAP);
    r->text_touches = (flags & P_TEXT) != 0;
    r->ambiguous = (flags & P_AMBIGUOUS) != 0;
    Py_ssize_t stop = point_run(r, b, pos, end);
    PyObject *pushed = names_tuple(r->stack, 0, r->depth);
    PyObject *result =
        pushed == NULL
            ? NULL
            : Py_BuildValue("(nONN)", stop, pushed, point_touched(r), PyBool_FromLong(r->base));
    Py_XDECREF(pushed);
    PyMem_Free(r);
    return result;
}

/* _BULK_SELECT's language: text, '<' that starts nothing, start tags but SELECT_STOPS,
 * end tags but </select>, '</>', comments, bogus comments and doctypes. Where the run from p
 * ends. */
static Py_ssize_t select_run(const unsigned char *b, Py_ssize_t p, Py_ssize_t n) {
    static const Name SELECT = NAME("select");
    while (p < n) {
        const unsigned char *lt = memchr(b + p, '<', (size_t)(n - p));
        if (lt == NULL) {
            return n;
        }
        p = lt - b;
        if (p + 1 >= n) {
            return p;
        }
        unsigned char c = b[p + 1];
        Py_ssize_t end;
        if (is_alpha(c)) {
            for (size_t i = 0; i < COUNT(SELECT_STOPS); i++) {
                if (name_at(b, p + 1, n, SELECT_STOPS[i].name, SELECT_STOPS[i].len) == 1) {
                    return p;
                }
            }
            end = tag_rest(b, run_until(b, p + 2, n, ENDS_TAG_NAME), n);
        } else if (c == '/') {
            if (p + 2 >= n) {
                return p;
            }
            unsigned char d = b[p + 2];
            if (is_alpha(d)) {
                if (name_at(b, p + 2, n, SELECT.name, SELECT.len) == 1) {
                    return p;
                }
                end = tag_rest(b, run_until(b, p + 3, n, ENDS_TAG_NAME), n);
            } else {
                end = d == '>' ? p + 3 : up_to_gt(b, p + 2, n);
            }
        } else if (c == '!') {
            int comment = p + 3 < n && b[p + 2] == '-' && b[p + 3] == '-';
            end = comment ? comment_end(b, p, n) : up_to_gt(b, p + 2, n);
        } else if (c == '?') {
            end = up_to_gt(b, p + 2, n);
        } else {
            end = p + 1;
        }
        if (end < 0) {
            return p;
        }
        p = end;
    }
    return p;
}

static PyObject *scan_select(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    const unsigned char *b;
    Py_ssize_t pos, n, end;
    if (nargs != 3 ||
        parse_args(args, 2, 2, "scan_select(buf: bytes, pos: int, end: int)", &b, &pos, &n, NULL,
                   NULL) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "scan_select(buf: bytes, pos: int, end: int)");
        }
        return NULL;
    }
    end = PyLong_AsSsize_t(args[2]);
    if (end == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (end < pos || end > n) {
        PyErr_SetString(PyExc_ValueError, "end out of range");
        return NULL;
    }
    return PyLong_FromSsize_t(select_run(b, pos, end));
}

static PyMethodDef methods[] = {
    {"scan_data", (PyCFunction)(void (*)(void))scan_data, METH_FASTCALL,
     "scan_data(buf, pos, path=b'') -> int: where the data-state run from pos ends."},
    {"scan_known", (PyCFunction)(void (*)(void))scan_known, METH_FASTCALL,
     "scan_known(buf, pos, path, known, stamped) -> (int, int, bytes): scan_data, stamping "
     "copies of known."},
    {"script_states", (PyCFunction)(void (*)(void))script_states_py, METH_FASTCALL,
     "script_states(buf, pos, sub) -> (int, int): the script data states, resumable."},
    {"tag_end", (PyCFunction)(void (*)(void))tag_end, METH_FASTCALL,
     "tag_end(buf, pos) -> int: after the '>' ending the tag whose name ends at pos, or -1."},
    {"tag_states", (PyCFunction)(void (*)(void))tag_states_py, METH_FASTCALL,
     "tag_states(buf, pos, state) -> int: after '>' (>= 0), or -1 - the state to resume in."},
    {"last_candidate", (PyCFunction)(void (*)(void))last_candidate, METH_FASTCALL,
     "last_candidate(buf, hi, path) -> int: the last '<script' before hi that may be the widget."},
    {"scan_point", (PyCFunction)(void (*)(void))scan_point, METH_FASTCALL,
     "scan_point(buf, pos, end, room, flags, closed) -> the run over HTML inside an "
     "integration point (see treeruns._scan_point_pattern)."},
    {"scan_foreign", (PyCFunction)(void (*)(void))scan_foreign, METH_FASTCALL,
     "scan_foreign(buf, pos, end, open, flags, room, closed, closed_room) -> the run over "
     "foreign content from pos: (pos, kept, pushed, top, ambiguous, added)."},
    {"scan_select", (PyCFunction)(void (*)(void))scan_select, METH_FASTCALL,
     "scan_select(buf, pos, end) -> int: where the run over <select> content from pos ends."},
    {NULL, NULL, 0, NULL},
};

/* Multi-phase initialisation, so the module can say it is safe without the GIL where the
 * Python supports free threading: it keeps no state, and every function only reads its
 * arguments (bytes are immutable). */
static PyModuleDef_Slot slots[] = {
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "reqio_middleware._speedups",
    "The rewriter's data-state scanner, in C.",
    0,
    methods,
    slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModuleDef_Init(&module); }
