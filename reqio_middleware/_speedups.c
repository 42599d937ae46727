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
 * (style, textarea, title, xmp, iframe, noembed, noframes, noscript) up to their end tag. It
 * stops at '<script' and '<plaintext' start tags, which the rewriter handles itself, and at
 * anything the end of the buffer cuts short. Every position it returns is in the data state,
 * as every position the pattern returns is; it only goes further.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static inline int is_ws(unsigned char c) {
    return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f';
}

static inline int is_alpha(unsigned char c) {
    c |= 0x20;
    return c >= 'a' && c <= 'z';
}

static const char *const SPECIAL[] = {
    "script", "plaintext", /* left to Python: the widget, and the end of all tags */
    "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript",
};
#define N_SPECIAL (sizeof(SPECIAL) / sizeof(SPECIAL[0]))
#define N_PYTHON_ONLY 2

/* Which tokenizer-switching tag name is at s (just after '<'), followed by whitespace, '/' or
 * '>': its index in SPECIAL, or -1. */
static int special_at(const unsigned char *s, Py_ssize_t left) {
    for (size_t i = 0; i < N_SPECIAL; i++) {
        const char *name = SPECIAL[i];
        Py_ssize_t n = (Py_ssize_t)strlen(name);
        if (n >= left) {
            continue; /* no room for the delimiter: not this name (yet) */
        }
        Py_ssize_t k = 0;
        while (k < n && (unsigned char)(s[k] | 0x20) == (unsigned char)name[k]) {
            k++;
        }
        if (k == n && (is_ws(s[n]) || s[n] == '/' || s[n] == '>')) {
            return (int)i;
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
        if (is_ws(c) || c == '/') { /* before attribute name, self-closing start tag */
            p++;
            continue;
        }
        if (c == '>') {
            return p + 1;
        }
        /* attribute name: its first character may be '=', later ones end it */
        p++;
        while (p < n && !is_ws(b[p]) && b[p] != '/' && b[p] != '>' && b[p] != '=') {
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
            const unsigned char *close = memchr(b + q + 1, c, (size_t)(n - q - 1));
            if (close == NULL) {
                return -1;
            }
            p = (close - b) + 1;
        } else { /* unquoted, possibly empty when '>' follows */
            while (q < n && !is_ws(b[q]) && b[q] != '>') {
                q++;
            }
            p = q;
        }
    }
}

static Py_ssize_t up_to_gt(const unsigned char *b, Py_ssize_t from, Py_ssize_t n) {
    if (from >= n) {
        return -1;
    }
    const unsigned char *gt = memchr(b + from, '>', (size_t)(n - from));
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
static Py_ssize_t raw_text_end(const unsigned char *b, Py_ssize_t q, Py_ssize_t n, const char *name) {
    Py_ssize_t len = (Py_ssize_t)strlen(name);
    while (q < n) {
        const unsigned char *lt = memchr(b + q, '<', (size_t)(n - q));
        if (lt == NULL) {
            return -1;
        }
        q = lt - b;
        if (q + 2 + len >= n) {
            return -1; /* too close to the end to tell */
        }
        if (b[q + 1] == '/') {
            Py_ssize_t k = 0;
            while (k < len && (unsigned char)(b[q + 2 + k] | 0x20) == (unsigned char)name[k]) {
                k++;
            }
            unsigned char d = b[q + 2 + len];
            if (k == len && (is_ws(d) || d == '/' || d == '>')) {
                return q;
            }
        }
        q++;
    }
    return -1;
}

static Py_ssize_t scan(const unsigned char *b, Py_ssize_t p, Py_ssize_t n) {
    while (p < n) {
        const unsigned char *lt = memchr(b + p, '<', (size_t)(n - p));
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
            if (special >= 0 && special < (int)N_PYTHON_ONLY) {
                return p;
            }
            Py_ssize_t q = p + 2;
            while (q < n && !is_ws(b[q]) && b[q] != '/' && b[q] != '>') {
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
                while (q < n && !is_ws(b[q]) && b[q] != '/' && b[q] != '>') {
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

/* (buf: bytes, pos: int) with 0 <= pos <= len(buf); 0, or -1 with an exception set. */
static int buffer_and_position(PyObject *const *args, Py_ssize_t nargs, const char *usage,
                               const unsigned char **b, Py_ssize_t *pos, Py_ssize_t *n) {
    if (nargs != 2 || !PyBytes_Check(args[0])) {
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
    return 0;
}

static PyObject *scan_data(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    const unsigned char *b;
    Py_ssize_t pos, n, end;
    if (buffer_and_position(args, nargs, "scan_data(buf: bytes, pos: int)", &b, &pos, &n) < 0) {
        return NULL;
    }
    if (n - pos > 65536) { /* bytes are immutable: let other threads run on big pages */
        Py_BEGIN_ALLOW_THREADS
        end = scan(b, pos, n);
        Py_END_ALLOW_THREADS
    } else {
        end = scan(b, pos, n);
    }
    return PyLong_FromSsize_t(end);
}

static PyObject *tag_end(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    const unsigned char *b;
    Py_ssize_t pos, n;
    if (buffer_and_position(args, nargs, "tag_end(buf: bytes, pos: int)", &b, &pos, &n) < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(tag_rest(b, pos, n));
}

static PyMethodDef methods[] = {
    {"scan_data", (PyCFunction)(void (*)(void))scan_data, METH_FASTCALL,
     "scan_data(buf, pos) -> int: where the data-state run from pos ends."},
    {"tag_end", (PyCFunction)(void (*)(void))tag_end, METH_FASTCALL,
     "tag_end(buf, pos) -> int: after the '>' ending the tag whose name ends at pos, or -1."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "reqio_middleware._speedups",
    "The rewriter's data-state scanner, in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
