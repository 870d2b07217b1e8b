/*
 * MinHash signatures of word n-gram shingles, for near-duplicate detection.
 *
 * The documents come as Arrow buffers: int64 byte offsets per document and the UTF-8 bytes
 * of text that is already normalised (lowercased, punctuation removed, whitespace collapsed
 * to single spaces, trimmed), so a document's words are the runs between single spaces and a
 * shingle of n words, " ".join(words[i:i+n]), is a contiguous slice of its bytes: it is
 * hashed in place with xxHash64 (seed 0), with no copy.
 *
 * Each shingle hash h goes through every permutation k of the signature as
 * (h * a[k] + b[k]) mod (2^61 - 1), the product and the sum wrapping modulo 2^64 first, as
 * datatrove computes it with numpy uint64 arithmetic; a document's signature is the minimum
 * over its shingles, per permutation. A document with fewer than n words has no shingle and
 * no signature (its ``has`` flag is 0 and its signature row is left untouched).
 *
 * xxHash64 here follows the published algorithm (Yann Collet's specification); the tests
 * compare it with the ``xxhash`` package on real text.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "int64_buffer.h"

#define MERSENNE_61 (((uint64_t)1 << 61) - 1)

static const uint64_t P1 = 0x9E3779B185EBCA87ULL;
static const uint64_t P2 = 0xC2B2AE3D27D4EB4FULL;
static const uint64_t P3 = 0x165667B19E3779F9ULL;
static const uint64_t P4 = 0x85EBCA77C2B2AE63ULL;
static const uint64_t P5 = 0x27D4EB2F165667C5ULL;

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* x mod (2^61 - 1) for any 64-bit x, without a division (2^61 = 1 modulo the prime). */
static inline uint64_t mod_mersenne61(uint64_t x) {
    x = (x & MERSENNE_61) + (x >> 61);
    return x >= MERSENNE_61 ? x - MERSENNE_61 : x;
}

static inline uint64_t read64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v; /* little-endian hosts only, as every platform gristmill builds on */
}

static inline uint32_t read32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t xxh_round(uint64_t acc, uint64_t input) {
    acc += input * P2;
    acc = rotl64(acc, 31);
    return acc * P1;
}

static inline uint64_t xxh_merge(uint64_t acc, uint64_t value) {
    acc ^= xxh_round(0, value);
    return acc * P1 + P4;
}

static uint64_t xxh64(const uint8_t *p, size_t length, uint64_t seed) {
    const uint8_t *end = p + length;
    uint64_t h;
    if (length >= 32) {
        uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
        const uint8_t *limit = end - 32;
        do {
            v1 = xxh_round(v1, read64(p));
            v2 = xxh_round(v2, read64(p + 8));
            v3 = xxh_round(v3, read64(p + 16));
            v4 = xxh_round(v4, read64(p + 24));
            p += 32;
        } while (p <= limit);
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
        h = xxh_merge(h, v1);
        h = xxh_merge(h, v2);
        h = xxh_merge(h, v3);
        h = xxh_merge(h, v4);
    } else {
        h = seed + P5;
    }
    h += (uint64_t)length;
    while (p + 8 <= end) {
        h ^= xxh_round(0, read64(p));
        h = rotl64(h, 27) * P1 + P4;
        p += 8;
    }
    if (p + 4 <= end) {
        h ^= (uint64_t)read32(p) * P1;
        h = rotl64(h, 23) * P2 + P3;
        p += 4;
    }
    while (p < end) {
        h ^= (uint64_t)(*p) * P5;
        h = rotl64(h, 11) * P1;
        p++;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

static int get_buffer(PyObject *object, const char *name, int writable, Py_ssize_t itemsize,
                      Py_buffer *view) {
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object, view, flags) < 0) {
        PyErr_Clear();
        view->obj = NULL;
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous%s buffer, not %.100s", name,
                     writable ? " writable" : "", Py_TYPE(object)->tp_name);
        return -1;
    }
    if (itemsize && view->len % itemsize) {
        PyErr_Format(PyExc_ValueError, "%s must hold items of %zd bytes", name, itemsize);
        PyBuffer_Release(view);
        view->obj = NULL;
        return -1;
    }
    return 0;
}

/* The words of a normalised text: runs between single spaces, as [starts, ends) offsets
 * (room for length / 2 + 1 of each); returns how many. */
static Py_ssize_t split_words(const uint8_t *text, int64_t length, int64_t *starts,
                              int64_t *ends) {
    Py_ssize_t words = 0;
    int64_t i = 0;
    while (i < length) {
        while (i < length && text[i] == ' ') i++;
        if (i >= length) break;
        starts[words] = i;
        while (i < length && text[i] != ' ') i++;
        ends[words++] = i;
    }
    return words;
}

/* The signature of one document; 0 when it has fewer than n words (nothing written). */
static int sign(const uint8_t *text, int64_t length, Py_ssize_t n, const uint64_t *a,
                const uint64_t *b, Py_ssize_t hashes, uint64_t *signature, int64_t *starts,
                int64_t *ends) {
    Py_ssize_t words = split_words(text, length, starts, ends);
    if (words < n) return 0;
    for (Py_ssize_t k = 0; k < hashes; k++) signature[k] = UINT64_MAX;
    for (Py_ssize_t w = 0; w + n <= words; w++) {
        int64_t from = starts[w], to = ends[w + n - 1];
        uint64_t h = xxh64(text + from, (size_t)(to - from), 0);
        for (Py_ssize_t k = 0; k < hashes; k++) {
            uint64_t value = mod_mersenne61(h * a[k] + b[k]);
            signature[k] = value < signature[k] ? value : signature[k];
        }
    }
    return 1;
}

static PyObject *signatures(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)self;
    static char *keywords[] = {"offsets", "data", "n", "a", "b", "out", "has", NULL};
    PyObject *objects[7];
    Py_ssize_t n = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOnOOOO:signatures", keywords, &objects[0],
                                     &objects[1], &n, &objects[3], &objects[4], &objects[5],
                                     &objects[6]))
        return NULL;
    Py_buffer offsets_view = {0}, data_view = {0}, a_view = {0}, b_view = {0}, out_view = {0},
              has_view = {0};
    PyObject *result = NULL;
    int64_t *starts = NULL, *ends = NULL;
    if (n < 1) {
        PyErr_SetString(PyExc_ValueError, "n must be at least 1");
        return NULL;
    }
    if (int64_buffer(objects[0], "offsets", 0, &offsets_view) ||
        get_buffer(objects[1], "data", 0, 0, &data_view) ||
        get_buffer(objects[3], "a", 0, 8, &a_view) || get_buffer(objects[4], "b", 0, 8, &b_view) ||
        get_buffer(objects[5], "out", 1, 8, &out_view) ||
        get_buffer(objects[6], "has", 1, 1, &has_view))
        goto done;
    Py_ssize_t docs = offsets_view.len / 8 - 1, hashes = a_view.len / 8;
    if (docs < 0 || b_view.len != a_view.len || hashes < 1 ||
        out_view.len / 8 != docs * hashes || has_view.len != docs) {
        PyErr_Format(PyExc_ValueError,
                     "shapes disagree: %zd documents, %zd and %zd permutations, out of %zd "
                     "items, has of %zd",
                     docs, hashes, b_view.len / 8, out_view.len / 8, has_view.len);
        goto done;
    }
    const int64_t *offsets = offsets_view.buf;
    int64_t longest = 0;
    for (Py_ssize_t d = 0; d < docs; d++) {
        int64_t length = offsets[d + 1] - offsets[d];
        if (offsets[d] < 0 || length < 0 || offsets[d + 1] > data_view.len) {
            PyErr_Format(PyExc_ValueError, "offsets out of bounds at document %zd", d);
            goto done;
        }
        if (length > longest) longest = length;
    }
    /* a document has at most (length + 1) / 2 words */
    size_t slots = (size_t)(longest / 2 + 1);
    starts = PyMem_RawMalloc(slots * sizeof(int64_t));
    ends = PyMem_RawMalloc(slots * sizeof(int64_t));
    if (!starts || !ends) {
        PyErr_NoMemory();
        goto done;
    }
    const uint8_t *data = data_view.buf;
    const uint64_t *a = a_view.buf, *b = b_view.buf;
    uint64_t *out = out_view.buf;
    uint8_t *has = has_view.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t d = 0; d < docs; d++) {
        has[d] = (uint8_t)sign(data + offsets[d], offsets[d + 1] - offsets[d], n, a, b, hashes,
                               out + d * hashes, starts, ends);
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyMem_RawFree(starts);
    PyMem_RawFree(ends);
    Py_buffer *views[] = {&offsets_view, &data_view, &a_view, &b_view, &out_view, &has_view};
    for (int k = 0; k < 6; k++)
        if (views[k]->obj) PyBuffer_Release(views[k]);
    return result;
}

static PyObject *hash64(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    unsigned long long seed = 0;
    if (!PyArg_ParseTuple(args, "y*|K:xxh64", &view, &seed)) return NULL;
    uint64_t h = xxh64(view.buf, (size_t)view.len, (uint64_t)seed);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(h);
}

/* The xxHash64 of every word n-gram of one normalised text, as bytes of native uint64. */
static PyObject *shingles(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    Py_ssize_t n = 0;
    if (!PyArg_ParseTuple(args, "y*n:shingles", &view, &n)) return NULL;
    if (n < 1) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "n must be at least 1");
        return NULL;
    }
    const uint8_t *text = view.buf;
    int64_t length = view.len;
    size_t slots = (size_t)(length / 2 + 1);
    int64_t *starts = PyMem_RawMalloc(slots * sizeof(int64_t));
    int64_t *ends = PyMem_RawMalloc(slots * sizeof(int64_t));
    PyObject *result = NULL;
    if (!starts || !ends) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t words = split_words(text, length, starts, ends);
    Py_ssize_t count = words >= n ? words - n + 1 : 0;
    result = PyBytes_FromStringAndSize(NULL, count * 8);
    if (!result) goto done;
    uint64_t *out = (uint64_t *)PyBytes_AS_STRING(result);
    for (Py_ssize_t w = 0; w < count; w++)
        out[w] = xxh64(text + starts[w], (size_t)(ends[w + n - 1] - starts[w]), 0);
done:
    PyMem_RawFree(starts);
    PyMem_RawFree(ends);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"signatures", (PyCFunction)(void (*)(void))signatures, METH_VARARGS | METH_KEYWORDS,
     "signatures(offsets, data, n, a, b, out, has): MinHash signatures of word n-grams of "
     "normalised texts (Arrow int64 offsets and bytes) into out (docs x len(a) uint64) and "
     "has (1 where a document has at least n words)."},
    {"xxh64", hash64, METH_VARARGS, "xxh64(data, seed=0): the xxHash64 of bytes."},
    {"shingles", shingles, METH_VARARGS,
     "shingles(text, n): the xxHash64 of every word n-gram of a normalised UTF-8 text, as "
     "bytes of uint64 (empty below n words)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "minhash",
                                    "MinHash signatures of word n-gram shingles.", -1, methods};

PyMODINIT_FUNC PyInit_minhash(void) { return PyModule_Create(&module); }
