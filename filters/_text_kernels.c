/* Compiled kernels for the per-token hot paths (filters/kernels.py is the Python side).

   Segmenting text into words with the `regex` module costs MinHash 60-68% of its time and the
   heuristic filters about 2.5 passes of the same regex. These functions walk a whole batch of
   lower-cased strings in C, with the exact rules of filters/segmentation.py's _WORD_ONLY and
   _CHAR_OR_WORD_ONLY (a state machine over a code-point class table that Python builds from the
   same `regex` properties, so the two cannot disagree on what a letter or a script is), hash each
   word with xxh3_64 of its UTF-8 bytes (what curation/dedup/minhash.py's word hashes are), and, for
   MinHash, combine word n-grams, pre-mix and permute them without leaving C.

   No numpy C API: results are bytes objects the caller views with np.frombuffer, so the build
   needs only a C compiler and Python's headers. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define XXH_INLINE_ALL
#include "_vendor/xxhash.h"

/* class bits, set by set_classes() from filters/kernels.py */
#define C_L 1u
#define C_M 2u
#define C_N 4u
#define C_UND 8u
#define C_UNSPACED 16u
#define C_SPACE 32u  /* regex's \s */
#define C_SYMBOL 64u /* filters/gopher_quality.py's SYMBOL_CHARS */
#define C_PYSPACE 128u /* str.isspace() (re's \s) */
#define C_W (C_L | C_M | C_N | C_UND)
#define C_A (C_L | C_N)
#define N_CODEPOINTS 0x110000

static const uint8_t *classes = NULL;
static PyObject *classes_ref = NULL;
/* the script of each letter, as an index into filters/kernels.py's SCRIPTS (0: another one) */
#define N_SCRIPTS 16
static const uint8_t *scripts = NULL;
static PyObject *scripts_ref = NULL;
/* str.lower() of each Latin-1 character is one Latin-1 character: strings of one byte per character are
   lower-cased through this table instead of a call to lower() (which builds a new string) */
static uint8_t lower1[256];

static inline unsigned cls(Py_UCS4 c) { return c < N_CODEPOINTS ? classes[c] : 0u; }
static inline int is_word_sep(Py_UCS4 c) { return c == '\'' || c == 0x2019 || c == '-'; }
static inline int is_digit_sep(Py_UCS4 c) { return c == '.' || c == ',' || c == ':' || c == '/'; }

typedef struct {
    char *buf;
    size_t cap;
} scratch_t;

static int scratch_reserve(scratch_t *s, size_t need) {
    if (need <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < need) cap *= 2;
    char *p = PyMem_Realloc(s->buf, cap);
    if (!p) return -1;
    s->buf = p;
    s->cap = cap;
    return 0;
}

/* xxh3_64 of the UTF-8 bytes of text[start:end] (lone surrogates as 3 bytes, as "surrogatepass"). */
static int hash_span(int kind, const void *data, Py_ssize_t start, Py_ssize_t end, scratch_t *s, uint64_t *out) {
    if (scratch_reserve(s, (size_t)(end - start) * 4)) return -1;
    char *p = s->buf;
    for (Py_ssize_t i = start; i < end; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 0x80) {
            *p++ = (char)c;
        } else if (c < 0x800) {
            *p++ = (char)(0xC0 | (c >> 6));
            *p++ = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            *p++ = (char)(0xE0 | (c >> 12));
            *p++ = (char)(0x80 | ((c >> 6) & 0x3F));
            *p++ = (char)(0x80 | (c & 0x3F));
        } else {
            *p++ = (char)(0xF0 | (c >> 18));
            *p++ = (char)(0x80 | ((c >> 12) & 0x3F));
            *p++ = (char)(0x80 | ((c >> 6) & 0x3F));
            *p++ = (char)(0x80 | (c & 0x3F));
        }
    }
    *out = XXH3_64bits(s->buf, (size_t)(p - s->buf));
    return 0;
}

typedef struct {
    uint64_t *v;
    Py_ssize_t n, cap;
} u64vec;

static int push(u64vec *v, uint64_t x) {
    if (v->n == v->cap) {
        Py_ssize_t cap = v->cap ? v->cap * 2 : 1024;
        uint64_t *p = PyMem_Realloc(v->v, (size_t)cap * sizeof(uint64_t));
        if (!p) return -1;
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return 0;
}

/* Append the word hashes of one lower-cased string to `out`: mode 0 is _WORD_ONLY (words of the
   languages written with spaces), mode 1 _CHAR_OR_WORD_ONLY (runs of digits, one token per character
   of the scripts written without spaces, words of the others). */
static int segment(int kind, const void *data, Py_ssize_t len, int mode, u64vec *out, scratch_t *s) {
    Py_ssize_t i = 0;
    /* in mode 1, the letters of the unspaced scripts are not part of words */
    unsigned wmask = C_W, amask = C_A, exclude = mode ? C_UNSPACED : 0u;
#define READ(k) PyUnicode_READ(kind, data, (k))
#define IS_W(c) ((cls(c) & wmask) && !(cls(c) & exclude))
    while (i < len) {
        Py_UCS4 c = READ(i);
        unsigned k = cls(c);
        Py_ssize_t j;
        if (mode) {
            if (k & C_N) { /* \p{N}+(?:[.,:/]\p{N}+)* */
                j = i + 1;
                while (j < len && (cls(READ(j)) & C_N)) j++;
                while (j + 1 < len && is_digit_sep(READ(j)) && (cls(READ(j + 1)) & C_N)) {
                    j += 2;
                    while (j < len && (cls(READ(j)) & C_N)) j++;
                }
                goto emit;
            }
            if (k & C_UNSPACED) { /* one character of the script, with its marks */
                j = i + 1;
                while (j < len && (cls(READ(j)) & C_M)) j++;
                goto emit;
            }
        }
        if (!IS_W(c)) {
            i++;
            continue;
        }
        { /* W* A W* (?:['’-] W+)* : a run of word characters with a letter or digit in it */
            int has_a = 0;
            j = i;
            while (j < len) {
                Py_UCS4 d = READ(j);
                if (!IS_W(d)) break;
                has_a |= (cls(d) & amask) != 0;
                j++;
            }
            if (!has_a) { /* no match starts anywhere in this run */
                i = j;
                continue;
            }
            while (j + 1 < len && is_word_sep(READ(j)) && IS_W(READ(j + 1))) {
                j += 2;
                while (j < len && IS_W(READ(j))) j++;
            }
        }
    emit: {
        uint64_t h;
        if (hash_span(kind, data, i, j, s, &h) || push(out, h)) return -1;
        i = j;
    }
    }
#undef READ
#undef IS_W
    return 0;
}

static PyObject *set_classes(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *arg;
    Py_buffer low;
    if (!PyArg_ParseTuple(args, "Sy*", &arg, &low)) return NULL;
    if (PyBytes_GET_SIZE(arg) != N_CODEPOINTS || low.len != 256) {
        PyBuffer_Release(&low);
        PyErr_SetString(PyExc_ValueError, "class table: bytes of length 0x110000; Latin-1 lower-casing: 256");
        return NULL;
    }
    memcpy(lower1, low.buf, 256);
    PyBuffer_Release(&low);
    Py_INCREF(arg);
    Py_XDECREF(classes_ref);
    classes_ref = arg;
    classes = (const uint8_t *)PyBytes_AS_STRING(arg);
    Py_RETURN_NONE;
}

/* Lower-case texts[i] and segment it; modes is a bytes of 0/1 per text. */
static int segment_all(PyObject *texts, const char *modes, Py_ssize_t n, u64vec *hashes, Py_ssize_t *offsets) {
    scratch_t s = {NULL, 0}, low1 = {NULL, 0};
    offsets[0] = 0;
    for (Py_ssize_t d = 0; d < n; d++) {
        PyObject *t = PyList_GET_ITEM(texts, d);
        if (t != Py_None) {
            if (!PyUnicode_Check(t)) {
                PyErr_Format(PyExc_TypeError, "text %zd is %s, not str", d, Py_TYPE(t)->tp_name);
                goto fail;
            }
            Py_ssize_t len = PyUnicode_GET_LENGTH(t);
            int rc;
            if (PyUnicode_KIND(t) == PyUnicode_1BYTE_KIND) {
                if (scratch_reserve(&low1, (size_t)len + 1)) goto fail;
                const uint8_t *src = PyUnicode_1BYTE_DATA(t);
                uint8_t *dst = (uint8_t *)low1.buf;
                for (Py_ssize_t i = 0; i < len; i++) dst[i] = lower1[src[i]];
                rc = segment(PyUnicode_1BYTE_KIND, dst, len, modes[d] != 0, hashes, &s);
            } else {
                PyObject *low = PyObject_CallMethod(t, "lower", NULL);
                if (!low) goto fail;
                rc = segment(PyUnicode_KIND(low), PyUnicode_DATA(low), PyUnicode_GET_LENGTH(low), modes[d] != 0,
                             hashes, &s);
                Py_DECREF(low);
            }
            if (rc) goto fail;
        }
        offsets[d + 1] = hashes->n;
    }
    PyMem_Free(s.buf);
    PyMem_Free(low1.buf);
    return 0;
fail:
    PyMem_Free(s.buf);
    PyMem_Free(low1.buf);
    if (!PyErr_Occurred()) PyErr_NoMemory();
    return -1;
}

static int check_args(PyObject *texts, Py_buffer *modes) {
    if (!classes) {
        PyErr_SetString(PyExc_RuntimeError, "set_classes() was not called");
        return -1;
    }
    if (!PyList_Check(texts)) {
        PyErr_SetString(PyExc_TypeError, "texts must be a list");
        return -1;
    }
    if (modes->len != PyList_GET_SIZE(texts)) {
        PyErr_SetString(PyExc_ValueError, "one mode per text");
        return -1;
    }
    return 0;
}

/* word_hashes(texts, modes) -> (hashes: bytes of uint64, offsets: bytes of int64, len(texts) + 1) */
static PyObject *word_hashes(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *texts, *result = NULL;
    Py_buffer modes;
    if (!PyArg_ParseTuple(args, "Oy*", &texts, &modes)) return NULL;
    if (check_args(texts, &modes)) goto done;
    Py_ssize_t n = PyList_GET_SIZE(texts);
    u64vec hashes = {NULL, 0, 0};
    Py_ssize_t *offsets = PyMem_Malloc((size_t)(n + 1) * sizeof(Py_ssize_t));
    if (!offsets) {
        PyErr_NoMemory();
        goto done;
    }
    if (segment_all(texts, (const char *)modes.buf, n, &hashes, offsets) == 0) {
        result = Py_BuildValue("(y#y#)", hashes.v ? (const char *)hashes.v : "", (Py_ssize_t)(hashes.n * sizeof(uint64_t)),
                               (const char *)offsets, (Py_ssize_t)((n + 1) * sizeof(Py_ssize_t)));
    }
    PyMem_Free(hashes.v);
    PyMem_Free(offsets);
done:
    PyBuffer_Release(&modes);
    return result;
}

static inline uint32_t fmix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    return h ^ (h >> 16);
}

#define POLY 0x9E3779B97F4A7C15ull

/* The permutation loop is most of MinHash once segmentation is compiled: built twice where the compiler
   can (AVX2 and the baseline, chosen at load time by the CPU), since the baseline x86-64 has no 32-bit
   vector multiply. */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define MULTIVERSION __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef MULTIVERSION
#define MULTIVERSION
#endif

MULTIVERSION
static void signature_row(const uint64_t *w, Py_ssize_t L, int ngram, const uint32_t *restrict a,
                          const uint32_t *restrict b, Py_ssize_t P, uint32_t *restrict row) {
    for (Py_ssize_t p = 0; p < P; p++) row[p] = 0xFFFFFFFFu;
    if (L == 0) return;
    Py_ssize_t m = L < ngram ? L : ngram, k = L - m + 1;
    for (Py_ssize_t s = 0; s < k; s++) {
        uint64_t h = 0;
        for (Py_ssize_t j = 0; j < m; j++) h = h * POLY + w[s + j];
        uint32_t hv = fmix32((uint32_t)(h >> 32) ^ (uint32_t)h);
        for (Py_ssize_t p = 0; p < P; p++) {
            uint32_t v = a[p] * hv + b[p];
            row[p] = v < row[p] ? v : row[p];
        }
    }
}

/* minhash(texts, modes, ngram, a, b) -> bytes of uint32, len(texts) x num_perm: per document the min over
   its shingles of a * fmix32(shingle) + b (mod 2^32), shingles being the word n-grams' 32-bit hashes
   (one shingle of all words when there are fewer than n); all 0xFFFFFFFF for a document without words. */
static PyObject *minhash(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *texts, *result = NULL;
    Py_buffer modes, abuf, bbuf;
    int ngram;
    if (!PyArg_ParseTuple(args, "Oy*iy*y*", &texts, &modes, &ngram, &abuf, &bbuf)) return NULL;
    u64vec hashes = {NULL, 0, 0};
    Py_ssize_t *offsets = NULL;
    if (check_args(texts, &modes)) goto done;
    if (ngram < 1 || abuf.len != bbuf.len || abuf.len % 4 || abuf.len == 0) {
        PyErr_SetString(PyExc_ValueError, "ngram >= 1 and a, b: the same number of uint32");
        goto done;
    }
    Py_ssize_t n = PyList_GET_SIZE(texts), P = abuf.len / 4;
    const uint32_t *a = (const uint32_t *)abuf.buf, *b = (const uint32_t *)bbuf.buf;
    offsets = PyMem_Malloc((size_t)(n + 1) * sizeof(Py_ssize_t));
    if (!offsets) {
        PyErr_NoMemory();
        goto done;
    }
    if (segment_all(texts, (const char *)modes.buf, n, &hashes, offsets)) goto done;
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * P * sizeof(uint32_t)));
    if (!result) goto done;
    uint32_t *sig = (uint32_t *)PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t d = 0; d < n; d++)
        signature_row(hashes.v + offsets[d], offsets[d + 1] - offsets[d], ngram, a, b, P, sig + d * P);
    Py_END_ALLOW_THREADS
done:
    PyMem_Free(hashes.v);
    PyMem_Free(offsets);
    PyBuffer_Release(&modes);
    PyBuffer_Release(&abuf);
    PyBuffer_Release(&bbuf);
    return result;
}

/* ---- tokens with punctuation: filters/segmentation.py's tokenize (_WORD_OR_SYMBOL, _CHAR_OR_WORD) ---- */

#define T_SYMBOL 1u /* every character in SYMBOL_CHARS: not a word for Gopher */
#define T_LETTER 2u /* has a \p{L} */

typedef struct {
    uint64_t *hash;
    uint32_t *len;
    uint8_t *flags;
    Py_ssize_t n, cap;
} tokvec;

static int tok_push(tokvec *v, uint64_t h, uint32_t len, uint8_t flags) {
    if (v->n == v->cap) {
        Py_ssize_t cap = v->cap ? v->cap * 2 : 4096;
        uint64_t *a = PyMem_Realloc(v->hash, (size_t)cap * sizeof(uint64_t));
        if (!a) return -1;
        v->hash = a;
        uint32_t *b = PyMem_Realloc(v->len, (size_t)cap * sizeof(uint32_t));
        if (!b) return -1;
        v->len = b;
        uint8_t *c = PyMem_Realloc(v->flags, (size_t)cap);
        if (!c) return -1;
        v->flags = c;
        v->cap = cap;
    }
    v->hash[v->n] = h;
    v->len[v->n] = len;
    v->flags[v->n] = flags;
    v->n++;
    return 0;
}

/* mode 0: _WORD_OR_SYMBOL; mode 1: _CHAR_OR_WORD. Tokens keep their case. */
static int tokenize_one(int kind, const void *data, Py_ssize_t len, int mode, tokvec *out, scratch_t *s) {
    Py_ssize_t i = 0;
    unsigned exclude = mode ? C_UNSPACED : 0u;
#define READ(k) PyUnicode_READ(kind, data, (k))
#define IS_W(c) ((cls(c) & C_W) && !(cls(c) & exclude))
    while (i < len) {
        Py_UCS4 c = READ(i);
        unsigned k = cls(c);
        Py_ssize_t j;
        if (mode && (k & C_N)) {
            j = i + 1;
            while (j < len && (cls(READ(j)) & C_N)) j++;
            while (j + 1 < len && is_digit_sep(READ(j)) && (cls(READ(j + 1)) & C_N)) {
                j += 2;
                while (j < len && (cls(READ(j)) & C_N)) j++;
            }
        } else if (mode && (k & C_UNSPACED)) {
            j = i + 1;
            while (j < len && (cls(READ(j)) & C_M)) j++;
        } else if (IS_W(c)) { /* W+ (?:['’-] W+)* */
            j = i + 1;
            while (j < len && IS_W(READ(j))) j++;
            while (j + 1 < len && is_word_sep(READ(j)) && IS_W(READ(j + 1))) {
                j += 2;
                while (j < len && IS_W(READ(j))) j++;
            }
        } else if (!(k & C_SPACE)) {
            j = i + 1; /* any other character that is not a space: a token of its own */
        } else {
            i++;
            continue;
        }
        unsigned all_symbol = C_SYMBOL, letter = 0;
        for (Py_ssize_t q = i; q < j; q++) {
            unsigned kq = cls(READ(q));
            all_symbol &= kq;
            letter |= kq & C_L;
        }
        uint64_t h;
        if (hash_span(kind, data, i, j, s, &h)) return -1;
        if (tok_push(out, h, (uint32_t)(j - i), (uint8_t)((all_symbol ? T_SYMBOL : 0u) | (letter ? T_LETTER : 0u))))
            return -1;
        i = j;
    }
#undef READ
#undef IS_W
    return 0;
}

/* tokens(texts, modes) -> (hashes uint64, lengths uint32, flags uint8, offsets int64 n+1): every token of
   every text (None: none), xxh3_64 of its UTF-8 bytes as written, its length in code points, T_* flags. */
static PyObject *tokens(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *texts, *result = NULL;
    Py_buffer modes;
    if (!PyArg_ParseTuple(args, "Oy*", &texts, &modes)) return NULL;
    tokvec v = {NULL, NULL, NULL, 0, 0};
    scratch_t s = {NULL, 0};
    Py_ssize_t *offsets = NULL;
    if (check_args(texts, &modes)) goto done;
    Py_ssize_t n = PyList_GET_SIZE(texts);
    offsets = PyMem_Malloc((size_t)(n + 1) * sizeof(Py_ssize_t));
    if (!offsets) {
        PyErr_NoMemory();
        goto done;
    }
    offsets[0] = 0;
    for (Py_ssize_t d = 0; d < n; d++) {
        PyObject *t = PyList_GET_ITEM(texts, d);
        if (t != Py_None) {
            if (!PyUnicode_Check(t)) {
                PyErr_Format(PyExc_TypeError, "text %zd is %s, not str", d, Py_TYPE(t)->tp_name);
                goto done;
            }
            if (tokenize_one(PyUnicode_KIND(t), PyUnicode_DATA(t), PyUnicode_GET_LENGTH(t),
                             ((const char *)modes.buf)[d] != 0, &v, &s)) {
                if (!PyErr_Occurred()) PyErr_NoMemory();
                goto done;
            }
        }
        offsets[d + 1] = v.n;
    }
    result = Py_BuildValue("(y#y#y#y#)", v.hash ? (const char *)v.hash : "", (Py_ssize_t)(v.n * sizeof(uint64_t)),
                           v.len ? (const char *)v.len : "", (Py_ssize_t)(v.n * sizeof(uint32_t)),
                           v.flags ? (const char *)v.flags : "", v.n, (const char *)offsets,
                           (Py_ssize_t)((n + 1) * sizeof(Py_ssize_t)));
done:
    PyMem_Free(v.hash);
    PyMem_Free(v.len);
    PyMem_Free(v.flags);
    PyMem_Free(s.buf);
    PyMem_Free(offsets);
    PyBuffer_Release(&modes);
    return result;
}

/* ---- Gopher repetition over token n-grams (filters/gopher_repetition.py's _RepeatIndex, _top_chars,
   _repeated_chars): the same pruning (an (n+1)-gram can repeat only where its n-gram does) with n-grams
   keyed by a 64-bit hash of their token hashes instead of nested tuples ---- */

static inline uint64_t fmix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 33);
}

typedef struct {
    uint64_t key;
    int32_t count, first;
    uint32_t stamp; /* the entry is in use when stamp == the table's */
    int32_t seen;
} slot_t;

typedef struct {
    slot_t *slots;
    size_t mask;
    uint32_t stamp;
} table_t;

static int table_reset(table_t *t, Py_ssize_t need) {
    size_t size = 64;
    while (size < (size_t)need * 2) size *= 2;
    if (size - 1 > t->mask || !t->slots) {
        PyMem_Free(t->slots);
        t->slots = PyMem_Calloc(size, sizeof(slot_t));
        if (!t->slots) return -1;
        t->mask = size - 1;
        t->stamp = 0;
    }
    if (++t->stamp == 0) { /* wrapped: clear for real */
        memset(t->slots, 0, (t->mask + 1) * sizeof(slot_t));
        t->stamp = 1;
    }
    return 0;
}

static inline slot_t *table_get(table_t *t, uint64_t key) {
    size_t i = (size_t)fmix64(key) & t->mask;
    for (;;) {
        slot_t *e = &t->slots[i];
        if (e->stamp != t->stamp) {
            e->stamp = t->stamp;
            e->key = key;
            e->count = 0;
            e->first = -1;
            e->seen = 0;
            return e;
        }
        if (e->key == key) return e;
        i = (i + 1) & t->mask;
    }
}

typedef struct {
    const uint64_t *tok;
    Py_ssize_t T;
    int32_t *pos, *pos2;
    uint64_t *key, *key2;
    Py_ssize_t m, npos; /* current n and how many positions it keeps */
    table_t table;      /* counts of the current n's keys */
} ngrams_t;

static int ngrams_count(ngrams_t *g) {
    if (table_reset(&g->table, g->npos)) return -1;
    for (Py_ssize_t j = 0; j < g->npos; j++) {
        slot_t *e = table_get(&g->table, g->key[j]);
        if (e->count++ == 0) e->first = g->pos[j];
    }
    return 0;
}

static int ngrams_reset(ngrams_t *g) {
    g->m = 1;
    g->npos = g->T;
    for (Py_ssize_t j = 0; j < g->T; j++) {
        g->pos[j] = (int32_t)j;
        g->key[j] = g->tok[j];
    }
    return ngrams_count(g);
}

/* Advance to n: keep the positions whose current n-gram repeats and that have room for one more token. */
static int ngrams_at(ngrams_t *g, Py_ssize_t n) {
    if (n < g->m && ngrams_reset(g)) return -1;
    while (g->m < n) {
        Py_ssize_t k = 0, m = g->m;
        for (Py_ssize_t j = 0; j < g->npos; j++) {
            if (g->pos[j] + m >= g->T) break; /* positions ascend: none after this has room */
            if (table_get(&g->table, g->key[j])->count > 1) {
                g->pos2[k] = g->pos[j];
                g->key2[k] = fmix64(g->key[j] * 0x9E3779B97F4A7C15ull + g->tok[g->pos[j] + m]);
                k++;
            }
        }
        int32_t *tp = g->pos;
        g->pos = g->pos2;
        g->pos2 = tp;
        uint64_t *tk = g->key;
        g->key = g->key2;
        g->key2 = tk;
        g->npos = k;
        g->m = m + 1;
        if (ngrams_count(g)) return -1;
    }
    return 0;
}

/* repetition(hashes, lengths, offsets, n_chars, top, dup, dup_ascending) -> bytes of int16 per document:
   -1 passes, i < len(top) fails top[i], else fails dup[i - len(top)]. top and dup: sequences of (n, frac). */
static PyObject *repetition(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer hb, lb, ob, cb;
    PyObject *top, *dup, *result = NULL;
    int ascending;
    if (!PyArg_ParseTuple(args, "y*y*y*y*OOp", &hb, &lb, &ob, &cb, &top, &dup, &ascending)) return NULL;
    ngrams_t g = {0};
    Py_ssize_t *tn = NULL, *dn = NULL;
    double *tf = NULL, *df = NULL;
    uint64_t *offs = NULL;
    Py_ssize_t n_docs = ob.len / (Py_ssize_t)sizeof(int64_t) - 1;
    const uint64_t *tok = hb.buf;
    const uint32_t *lens = lb.buf;
    const int64_t *off = ob.buf, *n_chars = cb.buf;
    PyObject *tseq = PySequence_Fast(top, "top: a sequence of (n, frac)"), *dseq = NULL;
    if (!tseq) goto done;
    dseq = PySequence_Fast(dup, "dup: a sequence of (n, frac)");
    if (!dseq) goto done;
    Py_ssize_t nt = PySequence_Fast_GET_SIZE(tseq), nd = PySequence_Fast_GET_SIZE(dseq);
    if (n_docs < 0 || cb.len != n_docs * (Py_ssize_t)sizeof(int64_t) || hb.len / 8 != lb.len / 4) {
        PyErr_SetString(PyExc_ValueError, "hashes, lengths, offsets and n_chars do not fit together");
        goto done;
    }
    tn = PyMem_Malloc((size_t)(nt + nd + 1) * sizeof(Py_ssize_t));
    tf = PyMem_Malloc((size_t)(nt + nd + 1) * sizeof(double));
    if (!tn || !tf) {
        PyErr_NoMemory();
        goto done;
    }
    dn = tn + nt;
    df = tf + nt;
    for (Py_ssize_t r = 0; r < nt + nd; r++) {
        PyObject *item = r < nt ? PySequence_Fast_GET_ITEM(tseq, r) : PySequence_Fast_GET_ITEM(dseq, r - nt);
        if (!PyArg_ParseTuple(item, "nd", &tn[r], &tf[r])) goto done;
        if (tn[r] < 1) {
            PyErr_SetString(PyExc_ValueError, "n-gram sizes must be >= 1");
            goto done;
        }
    }
    Py_ssize_t longest = 0;
    for (Py_ssize_t d = 0; d < n_docs; d++) longest = off[d + 1] - off[d] > longest ? off[d + 1] - off[d] : longest;
    g.pos = PyMem_Malloc((size_t)(longest + 1) * sizeof(int32_t));
    g.pos2 = PyMem_Malloc((size_t)(longest + 1) * sizeof(int32_t));
    g.key = PyMem_Malloc((size_t)(longest + 1) * sizeof(uint64_t));
    g.key2 = PyMem_Malloc((size_t)(longest + 1) * sizeof(uint64_t));
    offs = PyMem_Malloc((size_t)(longest + 1) * sizeof(uint64_t));
    result = PyBytes_FromStringAndSize(NULL, n_docs * (Py_ssize_t)sizeof(int16_t));
    if (!g.pos || !g.pos2 || !g.key || !g.key2 || !offs || !result) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        Py_CLEAR(result);
        goto done;
    }
    int16_t *out = (int16_t *)PyBytes_AS_STRING(result);
    for (Py_ssize_t d = 0; d < n_docs; d++) {
        out[d] = -1;
        Py_ssize_t T = off[d + 1] - off[d];
        if (T == 0) continue;
        double chars = (double)n_chars[d];
        g.tok = tok + off[d];
        g.T = T;
        offs[0] = 0;
        for (Py_ssize_t j = 0; j < T; j++) offs[j + 1] = offs[j] + lens[off[d] + j];
        if (ngrams_reset(&g)) goto fail;
        int failed = 0;
        for (Py_ssize_t r = 0; r < nt && !failed; r++) {
            Py_ssize_t n = tn[r];
            if (T < n) continue;
            if (ngrams_at(&g, n)) goto fail;
            /* the most frequent n-gram, ties to the one seen first; all distinct: the first n-gram */
            int32_t best = 1, start = 0;
            for (Py_ssize_t j = 0; j < g.npos; j++) {
                slot_t *e = table_get(&g.table, g.key[j]);
                if (e->count > best || (e->count == best && best > 1 && e->first < start)) {
                    best = e->count;
                    start = e->first;
                }
            }
            double top_chars = (double)((int64_t)(offs[start + n] - offs[start]) + n - 1) * best;
            if (top_chars / chars > tf[r]) {
                out[d] = (int16_t)r;
                failed = 1;
            }
        }
        for (Py_ssize_t r = 0; r < nd && !failed; r++) {
            Py_ssize_t n = dn[r];
            if (ngrams_at(&g, n)) goto fail;
            int any = 0;
            for (Py_ssize_t j = 0; j < g.npos && !any; j++) any = table_get(&g.table, g.key[j])->count > 1;
            if (!any) {
                if (ascending) break;
                continue;
            }
            int64_t repeated = 0, next_free = 0;
            for (Py_ssize_t j = 0; j < g.npos; j++) table_get(&g.table, g.key[j])->seen = 0; /* n may repeat */
            for (Py_ssize_t j = 0; j < g.npos; j++) {
                slot_t *e = table_get(&g.table, g.key[j]);
                int32_t p = g.pos[j];
                if (e->count < 2 || p < next_free) continue;
                if (e->seen) {
                    repeated += (int64_t)(offs[p + n] - offs[p]);
                    if ((double)repeated / chars > df[r]) break;
                    next_free = p + n;
                } else {
                    e->seen = 1;
                }
            }
            if ((double)repeated / chars > df[r]) {
                out[d] = (int16_t)(nt + r);
                failed = 1;
            }
        }
    }
    goto done;
fail:
    Py_CLEAR(result);
    if (!PyErr_Occurred()) PyErr_NoMemory();
done:
    Py_XDECREF(tseq);
    Py_XDECREF(dseq);
    PyMem_Free(tn);
    PyMem_Free(tf);
    PyMem_Free(g.pos);
    PyMem_Free(g.pos2);
    PyMem_Free(g.key);
    PyMem_Free(g.key2);
    PyMem_Free(g.table.slots);
    PyMem_Free(offs);
    PyBuffer_Release(&hb);
    PyBuffer_Release(&lb);
    PyBuffer_Release(&ob);
    PyBuffer_Release(&cb);
    return result;
}

/* ---- Gopher quality's line rules ---- */

/* str.splitlines()'s line boundaries (\r\n is one) */
static inline int is_line_break(Py_UCS4 c) {
    return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x85 ||
           c == 0x2028 || c == 0x2029;
}

/* gopher_lines(texts) -> bytes of int64, len(texts) x 3: per text the lines of str.splitlines(), those whose
   first character after leading whitespace is a bullet (• or -), and those ending, whitespace aside, in an
   ellipsis ("..." or "…"). */
static PyObject *gopher_lines(PyObject *Py_UNUSED(self), PyObject *texts) {
    if (!classes) {
        PyErr_SetString(PyExc_RuntimeError, "set_classes() was not called");
        return NULL;
    }
    if (!PyList_Check(texts)) {
        PyErr_SetString(PyExc_TypeError, "texts must be a list");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(texts);
    PyObject *result = PyBytes_FromStringAndSize(NULL, n * 3 * (Py_ssize_t)sizeof(int64_t));
    if (!result) return NULL;
    int64_t *out = (int64_t *)PyBytes_AS_STRING(result);
    memset(out, 0, (size_t)n * 3 * sizeof(int64_t));
    for (Py_ssize_t d = 0; d < n; d++) {
        PyObject *t = PyList_GET_ITEM(texts, d);
        if (t == Py_None) continue;
        if (!PyUnicode_Check(t)) {
            Py_DECREF(result);
            PyErr_Format(PyExc_TypeError, "text %zd is %s, not str", d, Py_TYPE(t)->tp_name);
            return NULL;
        }
        int kind = PyUnicode_KIND(t);
        const void *data = PyUnicode_DATA(t);
        Py_ssize_t len = PyUnicode_GET_LENGTH(t), start = 0;
        int64_t lines = 0, bullets = 0, ellipses = 0;
        while (start < len) {
            Py_ssize_t end = start;
            while (end < len && !is_line_break(PyUnicode_READ(kind, data, end))) end++;
            lines++;
            Py_ssize_t a = start, b = end;
            while (a < b && (cls(PyUnicode_READ(kind, data, a)) & C_PYSPACE)) a++;
            if (a < b) {
                Py_UCS4 first = PyUnicode_READ(kind, data, a);
                bullets += first == 0x2022 || first == '-';
                while (b > a && (cls(PyUnicode_READ(kind, data, b - 1)) & C_PYSPACE)) b--;
                Py_UCS4 last = PyUnicode_READ(kind, data, b - 1);
                ellipses += last == 0x2026 || (last == '.' && b - a >= 3 && PyUnicode_READ(kind, data, b - 2) == '.' &&
                                               PyUnicode_READ(kind, data, b - 3) == '.');
            }
            if (end < len && PyUnicode_READ(kind, data, end) == '\r' && end + 1 < len &&
                PyUnicode_READ(kind, data, end + 1) == '\n')
                end++;
            start = end + 1;
        }
        out[d * 3] = lines;
        out[d * 3 + 1] = bullets;
        out[d * 3 + 2] = ellipses;
    }
    return result;
}

/* ---- Gopher repetition's paragraph and line rules ---- */

/* Count pieces, repeats (occurrences after a piece's first) and the characters in repeats. */
typedef struct {
    int64_t pieces, repeats, repeat_chars;
} dups_t;

static int add_piece(table_t *t, int kind, const void *data, Py_ssize_t a, Py_ssize_t b, scratch_t *s, dups_t *d) {
    uint64_t h;
    if (hash_span(kind, data, a, b, s, &h)) return -1;
    slot_t *e = table_get(t, h ^ ((uint64_t)(b - a) * 0x9E3779B97F4A7C15ull));
    d->pieces++;
    if (e->count++) {
        d->repeats++;
        d->repeat_chars += b - a;
    }
    return 0;
}

/* repetition_lines(texts) -> bytes of int64, len(texts) x 6: for the paragraphs (text.strip() split at runs of
   two or more newlines) and then the lines (text split at runs of newlines): how many, how many repeat an
   earlier one, and the characters of those repeats. */
static PyObject *repetition_lines(PyObject *Py_UNUSED(self), PyObject *texts) {
    if (!classes) {
        PyErr_SetString(PyExc_RuntimeError, "set_classes() was not called");
        return NULL;
    }
    if (!PyList_Check(texts)) {
        PyErr_SetString(PyExc_TypeError, "texts must be a list");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(texts);
    PyObject *result = PyBytes_FromStringAndSize(NULL, n * 6 * (Py_ssize_t)sizeof(int64_t));
    if (!result) return NULL;
    int64_t *out = (int64_t *)PyBytes_AS_STRING(result);
    memset(out, 0, (size_t)n * 6 * sizeof(int64_t));
    table_t table = {NULL, 0, 0};
    scratch_t s = {NULL, 0};
    for (Py_ssize_t d = 0; d < n; d++) {
        PyObject *t = PyList_GET_ITEM(texts, d);
        if (t == Py_None) continue;
        if (!PyUnicode_Check(t)) {
            PyErr_Format(PyExc_TypeError, "text %zd is %s, not str", d, Py_TYPE(t)->tp_name);
            goto fail;
        }
        int kind = PyUnicode_KIND(t);
        const void *data = PyUnicode_DATA(t);
        Py_ssize_t len = PyUnicode_GET_LENGTH(t), newlines = 0;
        for (Py_ssize_t i = 0; i < len; i++) newlines += PyUnicode_READ(kind, data, i) == '\n';
        /* paragraphs of text.strip() */
        Py_ssize_t lo = 0, hi = len;
        while (lo < hi && (cls(PyUnicode_READ(kind, data, lo)) & C_PYSPACE)) lo++;
        while (hi > lo && (cls(PyUnicode_READ(kind, data, hi - 1)) & C_PYSPACE)) hi--;
        dups_t para = {0, 0, 0}, line = {0, 0, 0};
        if (table_reset(&table, newlines + 2)) goto fail;
        Py_ssize_t start = lo, i = lo;
        while (i < hi) {
            if (PyUnicode_READ(kind, data, i) == '\n' && i + 1 < hi && PyUnicode_READ(kind, data, i + 1) == '\n') {
                Py_ssize_t j = i;
                while (j < hi && PyUnicode_READ(kind, data, j) == '\n') j++;
                if (add_piece(&table, kind, data, start, i, &s, &para)) goto fail;
                start = i = j;
            } else {
                i++;
            }
        }
        if (add_piece(&table, kind, data, start, hi, &s, &para)) goto fail;
        /* lines of the whole text */
        if (table_reset(&table, newlines + 2)) goto fail;
        start = i = 0;
        while (i < len) {
            if (PyUnicode_READ(kind, data, i) == '\n') {
                Py_ssize_t j = i;
                while (j < len && PyUnicode_READ(kind, data, j) == '\n') j++;
                if (add_piece(&table, kind, data, start, i, &s, &line)) goto fail;
                start = i = j;
            } else {
                i++;
            }
        }
        if (add_piece(&table, kind, data, start, len, &s, &line)) goto fail;
        int64_t *row = out + d * 6;
        row[0] = para.pieces;
        row[1] = para.repeats;
        row[2] = para.repeat_chars;
        row[3] = line.pieces;
        row[4] = line.repeats;
        row[5] = line.repeat_chars;
    }
    PyMem_Free(table.slots);
    PyMem_Free(s.buf);
    return result;
fail:
    PyMem_Free(table.slots);
    PyMem_Free(s.buf);
    Py_DECREF(result);
    if (!PyErr_Occurred()) PyErr_NoMemory();
    return NULL;
}

/* ---- C4's line rules for English (filters/c4.py's C4Quality.check with split_paragraph and English
   punctuation; other languages keep the Python path) ---- */

static inline int is_c4_closer(Py_UCS4 c) { return c == '"' || c == '\'' || c == 0x201D || c == 0x2019 || c == ')' || c == ']'; }
static inline int is_cjk_stop(Py_UCS4 c) { return c == 0x3002 || c == 0xFF01 || c == 0xFF1F; }
static inline int is_cjk_closer(Py_UCS4 c) {
    return c == 0x300D || c == 0x300F || c == 0x201D || c == 0x2019 || c == ')' || c == 0xFF09;
}

/* count_sentences(line) for English: matches of [.!?]+["'”’)\]]*(?=\s|$)|[。！？]+[」』”’)）]*, plus the
   tail after the last one unless blank; at least 1 */
static int64_t c4_sentences(int kind, const void *data, Py_ssize_t a, Py_ssize_t b) {
    int64_t n = 0;
    Py_ssize_t i = a, last = a;
    while (i < b) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == '.' || c == '!' || c == '?') {
            Py_ssize_t j = i;
            while (j < b) {
                Py_UCS4 d = PyUnicode_READ(kind, data, j);
                if (d != '.' && d != '!' && d != '?') break;
                j++;
            }
            while (j < b && is_c4_closer(PyUnicode_READ(kind, data, j))) j++;
            if (j == b || (cls(PyUnicode_READ(kind, data, j)) & C_PYSPACE)) {
                n++;
                i = last = j;
            } else {
                i++; /* no match starts here (a shorter one would be followed by punctuation) */
            }
        } else if (is_cjk_stop(c)) {
            Py_ssize_t j = i;
            while (j < b && is_cjk_stop(PyUnicode_READ(kind, data, j))) j++;
            while (j < b && is_cjk_closer(PyUnicode_READ(kind, data, j))) j++;
            n++;
            i = last = j;
        } else {
            i++;
        }
    }
    Py_ssize_t t = last;
    while (t < b && (cls(PyUnicode_READ(kind, data, t)) & C_PYSPACE)) t++;
    if (t < b) n++;
    return n < 1 ? 1 : n;
}

static int contains(PyObject *hay, PyObject *needle) {
    Py_ssize_t r = PyUnicode_Find(hay, needle, 0, PyUnicode_GET_LENGTH(hay), 1);
    return r == -2 ? -1 : r >= 0;
}

/* c4_english(texts, options, citation, needles) -> list of (code, text): code 0 keeps the page rewritten to
   its kept lines, 1 lorem ipsum, 2 curly bracket, 3 too few sentences (text unchanged).
   options: (max_word_length, remove_citations, no_terminal, min_words, lorem, javascript, curly, policy,
   min_sentences); citation: the compiled citation regex; needles: ("lorem ipsum", "javascript", "{",
   policy phrases...). */
static PyObject *c4_english(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *texts, *citation, *needles;
    Py_ssize_t max_word, min_words, min_sentences;
    int remove_citations, no_terminal, lorem, javascript, curly, policy;
    if (!PyArg_ParseTuple(args, "O(nppnppppn)OO", &texts, &max_word, &remove_citations, &no_terminal, &min_words,
                          &lorem, &javascript, &curly, &policy, &min_sentences, &citation, &needles))
        return NULL;
    if (!classes) {
        PyErr_SetString(PyExc_RuntimeError, "set_classes() was not called");
        return NULL;
    }
    if (!PyList_Check(texts) || !PyTuple_Check(needles) || PyTuple_GET_SIZE(needles) < 3) {
        PyErr_SetString(PyExc_TypeError, "texts: a list; needles: a tuple of at least 3 str");
        return NULL;
    }
    PyObject *lorem_s = PyTuple_GET_ITEM(needles, 0), *js_s = PyTuple_GET_ITEM(needles, 1),
             *curly_s = PyTuple_GET_ITEM(needles, 2);
    Py_ssize_t n = PyList_GET_SIZE(texts), n_policy = PyTuple_GET_SIZE(needles) - 3;
    PyObject *out = PyList_New(n), *nl = PyUnicode_FromString("\n"), *empty = PyUnicode_FromString("");
    PyObject *bracket = PyUnicode_FromString("[");
    if (!out || !nl || !empty || !bracket) goto fail;
    for (Py_ssize_t d = 0; d < n; d++) {
        PyObject *text = PyList_GET_ITEM(texts, d);
        if (!PyUnicode_Check(text)) {
            PyErr_Format(PyExc_TypeError, "text %zd is %s, not str", d, Py_TYPE(text)->tp_name);
            goto fail;
        }
        PyObject *lines = PyUnicode_Splitlines(text, 0), *kept = PyList_New(0);
        if (!lines || !kept) {
            Py_XDECREF(lines);
            Py_XDECREF(kept);
            goto fail;
        }
        int code = 0;
        int64_t sentences = 0;
        for (Py_ssize_t li = 0; li < PyList_GET_SIZE(lines) && !code; li++) {
            PyObject *raw = PyList_GET_ITEM(lines, li);
            int kind = PyUnicode_KIND(raw);
            const void *data = PyUnicode_DATA(raw);
            Py_ssize_t a = 0, b = PyUnicode_GET_LENGTH(raw);
            while (a < b && (cls(PyUnicode_READ(kind, data, a)) & C_PYSPACE)) a++;
            while (b > a && (cls(PyUnicode_READ(kind, data, b - 1)) & C_PYSPACE)) b--;
            /* words of the stripped line: runs of non-space; the longest */
            Py_ssize_t words = 0, longest = 0, run = 0;
            for (Py_ssize_t i = a; i < b; i++) {
                if (cls(PyUnicode_READ(kind, data, i)) & C_PYSPACE) {
                    run = 0;
                } else {
                    if (run++ == 0) words++;
                    if (run > longest) longest = run;
                }
            }
            if (max_word != -1 && b - a > max_word && longest > max_word) continue;
            PyObject *line = PyUnicode_Substring(raw, a, b);
            if (!line) goto fail_doc;
            if (remove_citations) {
                int has = contains(line, bracket);
                if (has < 0) {
                    Py_DECREF(line);
                    goto fail_doc;
                }
                if (has) {
                    PyObject *sub = PyObject_CallMethod(citation, "sub", "OO", empty, line);
                    Py_DECREF(line);
                    if (!sub) goto fail_doc;
                    line = sub;
                }
            }
            int lk = PyUnicode_KIND(line);
            const void *ld = PyUnicode_DATA(line);
            Py_ssize_t ll = PyUnicode_GET_LENGTH(line);
            if (no_terminal) {
                Py_UCS4 last = ll ? PyUnicode_READ(lk, ld, ll - 1) : 0;
                int ends = ll && (last == '.' || last == '?' || last == '!' || last == '"' || last == '\'');
                int dots = ll >= 3 && last == '.' && PyUnicode_READ(lk, ld, ll - 2) == '.' &&
                           PyUnicode_READ(lk, ld, ll - 3) == '.';
                if (!ends || dots) {
                    Py_DECREF(line);
                    continue;
                }
            }
            if (min_words > 0 && words < min_words) {
                Py_DECREF(line);
                continue;
            }
            PyObject *low = PyObject_CallMethod(line, "lower", NULL);
            if (!low) {
                Py_DECREF(line);
                goto fail_doc;
            }
            int hit = 0, drop = 0;
            if (lorem && (hit = contains(low, lorem_s)) != 0) {
                if (hit > 0) code = 1;
            } else if (javascript && (hit = contains(low, js_s)) != 0) {
                drop = hit > 0;
            } else if (curly && (hit = contains(line, curly_s)) != 0) {
                if (hit > 0) code = 2;
            } else if (policy) {
                for (Py_ssize_t q = 0; q < n_policy && !drop && hit >= 0; q++) {
                    hit = contains(low, PyTuple_GET_ITEM(needles, 3 + q));
                    drop = hit > 0;
                }
            }
            Py_DECREF(low);
            if (hit < 0) {
                Py_DECREF(line);
                goto fail_doc;
            }
            if (code || drop) {
                Py_DECREF(line);
                continue;
            }
            if (min_sentences != -1) sentences += c4_sentences(lk, ld, 0, ll);
            int rc = PyList_Append(kept, line);
            Py_DECREF(line);
            if (rc) goto fail_doc;
        }
        PyObject *item;
        if (!code && sentences < min_sentences) code = 3;
        if (code) {
            item = Py_BuildValue("(iO)", code, text);
        } else {
            PyObject *joined = PyUnicode_Join(nl, kept), *stripped = NULL;
            if (joined) stripped = PyObject_CallMethod(joined, "strip", NULL);
            Py_XDECREF(joined);
            item = stripped ? Py_BuildValue("(iN)", 0, stripped) : NULL;
        }
        Py_DECREF(lines);
        Py_DECREF(kept);
        if (!item) goto fail;
        PyList_SET_ITEM(out, d, item);
        continue;
    fail_doc:
        Py_DECREF(lines);
        Py_DECREF(kept);
        goto fail;
    }
    Py_DECREF(nl);
    Py_DECREF(empty);
    Py_DECREF(bracket);
    return out;
fail:
    Py_XDECREF(out);
    Py_XDECREF(nl);
    Py_XDECREF(empty);
    Py_XDECREF(bracket);
    return NULL;
}

static PyObject *set_scripts(PyObject *Py_UNUSED(self), PyObject *arg) {
    if (!PyBytes_Check(arg) || PyBytes_GET_SIZE(arg) != N_CODEPOINTS) {
        PyErr_SetString(PyExc_ValueError, "script table: bytes of length 0x110000");
        return NULL;
    }
    Py_INCREF(arg);
    Py_XDECREF(scripts_ref);
    scripts_ref = arg;
    scripts = (const uint8_t *)PyBytes_AS_STRING(arg);
    Py_RETURN_NONE;
}

/* letter_scripts(texts) -> bytes of uint32, len(texts) x 16: how many letters (\p{L}) of each script each
   text has (column 0: scripts not in the table); None counts nothing. */
static PyObject *letter_scripts(PyObject *Py_UNUSED(self), PyObject *texts) {
    if (!classes || !scripts) {
        PyErr_SetString(PyExc_RuntimeError, "set_classes() and set_scripts() were not called");
        return NULL;
    }
    if (!PyList_Check(texts)) {
        PyErr_SetString(PyExc_TypeError, "texts must be a list");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(texts);
    PyObject *result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * N_SCRIPTS * sizeof(uint32_t)));
    if (!result) return NULL;
    uint32_t *out = (uint32_t *)PyBytes_AS_STRING(result);
    memset(out, 0, (size_t)n * N_SCRIPTS * sizeof(uint32_t));
    for (Py_ssize_t d = 0; d < n; d++) {
        PyObject *t = PyList_GET_ITEM(texts, d);
        if (t == Py_None) continue;
        if (!PyUnicode_Check(t)) {
            Py_DECREF(result);
            PyErr_Format(PyExc_TypeError, "text %zd is %s, not str", d, Py_TYPE(t)->tp_name);
            return NULL;
        }
        int kind = PyUnicode_KIND(t);
        const void *data = PyUnicode_DATA(t);
        Py_ssize_t len = PyUnicode_GET_LENGTH(t);
        uint32_t *row = out + d * N_SCRIPTS;
        for (Py_ssize_t i = 0; i < len; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (cls(c) & C_L) row[scripts[c] % N_SCRIPTS]++;
        }
    }
    return result;
}

static PyMethodDef methods[] = {
    {"set_scripts", set_scripts, METH_O, "set_scripts(script table: bytes 0x110000)"},
    {"repetition_lines", repetition_lines, METH_O, "repetition_lines(texts) -> int64 paragraph and line repeats"},
    {"c4_english", c4_english, METH_VARARGS, "c4_english(texts, options, citation, needles) -> [(code, text)]"},
    {"gopher_lines", gopher_lines, METH_O, "gopher_lines(texts) -> int64 lines, bullet lines, ellipsis lines"},
    {"repetition", repetition, METH_VARARGS, "repetition(hashes, lengths, offsets, n_chars, top, dup, ascending)"},
    {"tokens", tokens, METH_VARARGS, "tokens(texts, modes) -> (uint64 hashes, uint32 lengths, uint8 flags, offsets)"},
    {"letter_scripts", letter_scripts, METH_O, "letter_scripts(texts) -> uint32 letters per script, n x 16"},
    {"set_classes", set_classes, METH_VARARGS, "set_classes(class table: bytes 0x110000, Latin-1 lower: bytes 256)"},
    {"word_hashes", word_hashes, METH_VARARGS, "word_hashes(texts, modes) -> (uint64 hashes, int64 offsets)"},
    {"minhash", minhash, METH_VARARGS, "minhash(texts, modes, ngram, a, b) -> uint32 signatures"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_text_kernels", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__text_kernels(void) { return PyModule_Create(&module); }
