/*
 * The n-gram statistics of Gopher's repetition rules, per document, exactly as datatrove
 * computes them from a document's words:
 *
 *   top n-gram characters: over the n-grams " ".join(words[i:i+n]), the most frequent one
 *   (the first seen wins a tie), its length in code points times its count;
 *
 *   duplicated n-gram characters: datatrove's greedy walk over "".join(words[i:i+n]) (no
 *   separator: equality is on the joined string), adding the length of every n-gram seen
 *   before and jumping n words past it, else remembering it and moving one word on.
 *
 * The words of a batch come as Arrow buffers: word offsets per document (a list array's
 * offsets), byte offsets per word (its string child's offsets) and the UTF-8 bytes. A
 * document's words lie one after another in those bytes, so a concatenated n-gram is a slice
 * of them, and a space-joined one is that slice with a space at each word boundary.
 *
 * Every n-gram gets a polynomial hash of its bytes modulo 2^61 - 1 in O(1), from prefix sums
 * at the word boundaries of both streams (the words concatenated; the words each followed
 * by a space). The hash depends on the bytes only, never on where word boundaries fall, so
 * ["ab", "c"] and ["a", "bc"] meet. An open-addressing table (linear probing) counts or
 * remembers the n-grams; a match of hashes is confirmed by comparing the bytes, so counts are
 * those of string equality, whatever the hashes do.
 *
 * One call reuses its prefix arrays and its table across all its documents (they grow only
 * when a larger document comes, and are freed when the call returns). Per document they take
 * 36 bytes a word, plus a table that grows with the distinct n-grams of one n (8 bytes a
 * slot, at most a quarter of them filled, and 4 bytes a filled one): a 10 MB document of
 * repeated text needs about 80 MB, its prefix arrays and a small table.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "int64_buffer.h"

#define MOD (((uint64_t)1 << 61) - 1)
/* Any base in [257, MOD) works; this one is arbitrary. */
#define BASE ((uint64_t)0x0A3F5C7E91B2D4E7 % MOD)
/* Bytes count as their value + 1 (so NUL bytes still count); the space joining words: */
#define SPACE ((uint64_t)' ' + 1)
/* Powers of the base (and of its inverse) below this come from a table. */
#define POWERS 1024
/* A pass's table starts with at most 4 * INITIAL_SLOTS slots and doubles past 1/4 full. */
#define INITIAL_SLOTS (1u << 16)

static uint64_t base_inverse;
static uint64_t power_table[POWERS];   /* BASE^k */
static uint64_t inverse_table[POWERS]; /* BASE^-k */
/* (byte + 1) * BASE^k for k < 8: eight bytes of a word for one multiplication. */
static uint64_t byte_term[8][256];
/* The low ``count`` bytes of a 64-bit word, and what the cleared bytes above them add. */
static uint64_t chunk_mask[9], chunk_padding[9];

/* -- arithmetic modulo 2^61 - 1 (every value below MOD) ------------------------------------ */

static inline uint64_t reduce(uint64_t x) { /* any x < 2^64 */
    x = (x & MOD) + (x >> 61);
    return x >= MOD ? x - MOD : x;
}

static inline uint64_t mod_mul(uint64_t a, uint64_t b) {
    __uint128_t product = (__uint128_t)a * b;
    uint64_t x = ((uint64_t)product & MOD) + (uint64_t)(product >> 61);
    return x >= MOD ? x - MOD : x;
}

static inline uint64_t mod_add(uint64_t a, uint64_t b) {
    uint64_t x = a + b;
    return x >= MOD ? x - MOD : x;
}

static inline uint64_t mod_sub(uint64_t a, uint64_t b) { return a >= b ? a - b : a + MOD - b; }

static uint64_t mod_pow(uint64_t base, uint64_t exponent) {
    uint64_t result = 1;
    while (exponent) {
        if (exponent & 1) result = mod_mul(result, base);
        base = mod_mul(base, base);
        exponent >>= 1;
    }
    return result;
}

static inline uint64_t power(int64_t exponent) {
    return exponent < POWERS ? power_table[exponent] : mod_pow(BASE, (uint64_t)exponent);
}

static inline uint64_t inverse_power(int64_t exponent) {
    return exponent < POWERS ? inverse_table[exponent]
                             : mod_pow(base_inverse, (uint64_t)exponent);
}

/* The eight bytes at ``bytes`` as a little-endian word, zeros past ``end``. */
static inline uint64_t load8(const uint8_t *bytes, const uint8_t *end) {
    uint64_t word = 0;
    if (__builtin_expect(end - bytes >= 8, 1))
        memcpy(&word, bytes, 8);
    else
        for (int t = 0; bytes + t < end; t++) word |= (uint64_t)bytes[t] << (8 * t);
    return word;
}

/* sum of (byte_t + 1) * BASE^(count - 1 - t) over the low ``count`` <= 8 bytes of ``word``,
 * without a branch: the bytes above are cleared, and what they add then taken off. */
static inline uint64_t chunk_hash(uint64_t word, int64_t count) {
    word &= chunk_mask[count];
    uint64_t sum = 0; /* eight terms below 2^61 */
    for (int t = 0; t < 8; t++) sum += byte_term[(count - 1 - t) & 7][(word >> (8 * t)) & 0xFF];
    return reduce(sum - chunk_padding[count]);
}

/* sum of (bytes[t] + 1) * BASE^(length - 1 - t) over a word (Horner's rule, eight bytes a
 * step); ``end``: where the readable bytes end. */
static inline uint64_t word_hash(const uint8_t *bytes, int64_t length, const uint8_t *end) {
    uint64_t hash = 0;
    int64_t at = 0;
    for (; length - at > 8; at += 8)
        hash = mod_add(mod_mul(hash, power_table[8]), chunk_hash(load8(bytes + at, end), 8));
    int64_t rest = length - at;
    return mod_add(mod_mul(hash, power_table[rest]), chunk_hash(load8(bytes + at, end), rest));
}

/* -- one document -------------------------------------------------------------------------- */

/* A table slot: the n-gram's tag (32 bits of its mixed hash, whose top bits give its home
 * slot) above its first word's index + 1; 0 is an empty slot. */
typedef uint64_t Slot;

typedef struct {
    /* The document: word k is data[offsets[k] .. offsets[k + 1]); bytes readable to end. */
    const uint8_t *data, *end;
    const int64_t *offsets;
    int64_t words;
    /* For each stream, at the word boundaries k = 0 .. words: prefix[k] is the sum of
     * (byte + 1) * BASE^-(p + 1) over the bytes before k (p the byte's position in the
     * stream), and power[k] is BASE^(k's position). The n-gram from boundary i to boundary
     * j then hashes to (prefix[j] - prefix[i]) * power[j]: sum of (byte + 1) * BASE^d, d the
     * bytes after it in the n-gram, wherever it lies. */
    uint64_t *plain, *plain_power;   /* the words concatenated */
    uint64_t *spaced, *spaced_power; /* the words each followed by a space */
    uint32_t *counts; /* per n-gram start: how often the n-gram starting there was seen */
    int64_t capacity; /* boundaries the arrays hold */
    /* The table: all slots empty between passes, since a pass empties the slots it filled
     * (``touched`` lists them), which costs less than clearing the table. */
    Slot *slots;
    uint32_t *touched;
    size_t allocated, size; /* slots allocated; in use by this pass (a power of two) */
    unsigned bits;          /* size == 1 << bits */
} Work;

static void work_free(Work *w) {
    free(w->plain);
    free(w->plain_power);
    free(w->spaced);
    free(w->spaced_power);
    free(w->counts);
    free(w->slots);
    free(w->touched);
}

/* Makes w->field hold ``count`` items (returning -1 when memory runs out). */
#define RESERVE(field, count)                                                                  \
    do {                                                                                       \
        void *grown_ = realloc(w->field, (count) * sizeof *w->field);                          \
        if (!grown_) return -1;                                                                \
        w->field = grown_;                                                                     \
    } while (0)

/* The prefix sums of a document's words; -1 when memory runs out. */
static int prepare(Work *w, const uint8_t *data, const int64_t *offsets, int64_t words) {
    if (words + 1 > w->capacity) {
        int64_t capacity = words + 1 > 2 * w->capacity ? words + 1 : 2 * w->capacity;
        RESERVE(plain, (size_t)capacity);
        RESERVE(plain_power, (size_t)capacity);
        RESERVE(spaced, (size_t)capacity);
        RESERVE(spaced_power, (size_t)capacity);
        RESERVE(counts, (size_t)capacity);
        w->capacity = capacity;
    }
    w->data = data;
    w->offsets = offsets;
    w->words = words;
    uint64_t *restrict plain = w->plain, *restrict plain_power = w->plain_power;
    uint64_t *restrict spaced = w->spaced, *restrict spaced_power = w->spaced_power;
    uint64_t plain_sum = 0, plain_at = 1, plain_inverse = 1;
    uint64_t spaced_sum = 0, spaced_at = 1, spaced_inverse = 1;
    plain[0] = spaced[0] = 0;
    plain_power[0] = spaced_power[0] = 1;
    for (int64_t k = 0; k < words; k++) {
        int64_t length = offsets[k + 1] - offsets[k];
        uint64_t hash = word_hash(data + offsets[k], length, w->end);
        /* The word ends at the next boundary: its bytes weigh BASE^-(that position) * hash. */
        plain_at = mod_mul(plain_at, power(length));
        plain_inverse = mod_mul(plain_inverse, inverse_power(length));
        plain_sum = mod_add(plain_sum, mod_mul(hash, plain_inverse));
        plain[k + 1] = plain_sum;
        plain_power[k + 1] = plain_at;
        uint64_t spaced_hash = mod_add(mod_mul(hash, BASE), SPACE);
        spaced_at = mod_mul(spaced_at, power(length + 1));
        spaced_inverse = mod_mul(spaced_inverse, inverse_power(length + 1));
        spaced_sum = mod_add(spaced_sum, mod_mul(spaced_hash, spaced_inverse));
        spaced[k + 1] = spaced_sum;
        spaced_power[k + 1] = spaced_at;
    }
    return 0;
}

static inline int64_t span(const Work *w, int64_t i, int64_t n) {
    return w->offsets[i + n] - w->offsets[i];
}

static inline int same_bytes(const uint8_t *a, const uint8_t *b, int64_t length) {
    for (; length >= 8; a += 8, b += 8, length -= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) return 0;
    }
    for (; length > 0; length--)
        if (*a++ != *b++) return 0;
    return 1;
}

/* Whether "".join(words[a:a+n]) == "".join(words[b:b+n]). */
static inline int plain_equal(const Work *w, int64_t a, int64_t b, int64_t n) {
    int64_t length = span(w, a, n);
    return length == span(w, b, n) &&
           same_bytes(w->data + w->offsets[a], w->data + w->offsets[b], length);
}

/* One byte after another of " ".join(words[first:first+n]). */
typedef struct {
    const Work *w;
    int64_t word; /* the current word */
    int64_t at;   /* the next byte's offset in data; the word's end: the space after it */
} Cursor;

static inline uint8_t next_byte(Cursor *c) {
    if (c->at == c->w->offsets[c->word + 1]) {
        c->word++;
        c->at = c->w->offsets[c->word];
        return ' ';
    }
    return c->w->data[c->at++];
}

/* Whether " ".join(words[a:a+n]) == " ".join(words[b:b+n]). */
static inline int spaced_equal(const Work *w, int64_t a, int64_t b, int64_t n) {
    int64_t length = span(w, a, n); /* the spaces add n - 1 to both */
    if (length != span(w, b, n)) return 0;
    int aligned = 1;
    for (int64_t k = 0; k < n && aligned; k++) aligned = span(w, a + k, 1) == span(w, b + k, 1);
    if (aligned) /* the spaces fall at the same places: the words themselves decide */
        return same_bytes(w->data + w->offsets[a], w->data + w->offsets[b], length);
    /* Words of other lengths can still join to the same string when they hold spaces. */
    Cursor x = {w, a, w->offsets[a]}, y = {w, b, w->offsets[b]};
    for (int64_t t = 0; t < length + n - 1; t++)
        if (next_byte(&x) != next_byte(&y)) return 0;
    return 1;
}

/* Code points of data[begin .. end): the bytes that do not continue a UTF-8 sequence. */
static int64_t code_points(const uint8_t *data, int64_t begin, int64_t end) {
    int64_t count = 0;
    for (int64_t t = begin; t < end; t++) count += (data[t] & 0xC0) != 0x80;
    return count;
}

static inline uint32_t tag_of(uint64_t hash) {
    return (uint32_t)((hash * 0x9E3779B97F4A7C15ull) >> 32);
}

/* Fresh empty slots, and room to list a quarter of them as filled (-1: no memory). */
static int table_allocate(Work *w, size_t size) {
    Slot *slots = calloc(size, sizeof(Slot));
    uint32_t *touched = slots ? realloc(w->touched, (size / 4 + 1) * sizeof(uint32_t)) : NULL;
    if (!touched) {
        free(slots);
        return -1;
    }
    free(w->slots);
    w->slots = slots;
    w->touched = touched;
    w->allocated = size;
    return 0;
}

/* The table for a pass over ``grams`` n-grams: four slots an n-gram, up to a limit. */
static int table_start(Work *w, int64_t grams) {
    unsigned bits = 4;
    while (((size_t)1 << bits) < 4 * (size_t)grams && ((size_t)1 << bits) < 4 * INITIAL_SLOTS)
        bits++;
    size_t size = (size_t)1 << bits;
    if (size > w->allocated && table_allocate(w, size)) return -1;
    w->size = size;
    w->bits = bits;
    return 0;
}

/* Doubles the table, with ``used`` slots filled: their tags say where each goes. */
static int table_grow(Work *w, size_t used) {
    if (w->bits >= 32) return -1;
    Slot *old = w->slots;
    w->slots = NULL; /* kept from table_allocate's free */
    if (table_allocate(w, 2 * w->size)) {
        w->slots = old;
        return -1;
    }
    w->size *= 2;
    w->bits += 1;
    for (size_t k = 0; k < used; k++) {
        Slot slot = old[w->touched[k]];
        size_t t = (size_t)(slot >> 32) >> (32 - w->bits);
        while (w->slots[t]) t = (t + 1) & (w->size - 1);
        w->slots[t] = slot;
        w->touched[k] = (uint32_t)t;
    }
    free(old);
    return 0;
}

/* A pass's table in locals, which no slot store can change (so they stay in registers). */
#define TABLE_LOCALS(w)                                                                        \
    Slot *restrict slots = (w)->slots;                                                         \
    uint32_t *restrict touched = (w)->touched;                                                 \
    size_t mask = (w)->size - 1, used = 0, limit = (w)->size / 4;                             \
    unsigned shift = 32 - (w)->bits
/* Fills slot ``s``: past a quarter full, the table doubles and the locals follow. */
#define TABLE_FILL(w, s, value)                                                                \
    slots[s] = (value);                                                                        \
    touched[used] = (uint32_t)(s);                                                             \
    if (++used > limit) {                                                                      \
        if (table_grow(w, used)) return -1;                                                    \
        slots = (w)->slots;                                                                    \
        touched = (w)->touched;                                                                \
        mask = (w)->size - 1;                                                                  \
        limit = (w)->size / 4;                                                                 \
        shift = 32 - (w)->bits;                                                                \
    }
/* Empties the slots the pass filled. */
#define TABLE_EMPTY()                                                                          \
    for (size_t k = 0; k < used; k++) slots[touched[k]] = 0

/* The most frequent space-joined n-gram's code points times its count; -1: no memory. */
static int64_t top_chars(Work *w, int64_t n) {
    int64_t grams = w->words - n + 1;
    if (grams <= 0) return 0;
    if (table_start(w, grams)) return -1;
    TABLE_LOCALS(w);
    const uint64_t *restrict spaced = w->spaced, *restrict spaced_power = w->spaced_power;
    uint32_t *restrict counts = w->counts;
    int64_t best_start = 0;
    uint32_t best_count = 1; /* the first n-gram, unless another is seen more often */
    for (int64_t i = 0; i < grams; i++) {
        uint32_t tag = tag_of(mod_mul(mod_sub(spaced[i + n], spaced[i]), spaced_power[i + n]));
        for (size_t s = tag >> shift;; s = (s + 1) & mask) {
            Slot slot = slots[s];
            if (!slot) {
                counts[i] = 1;
                TABLE_FILL(w, s, ((uint64_t)tag << 32) | (uint64_t)(i + 1));
                break;
            }
            int64_t seen = (int64_t)(uint32_t)slot - 1;
            if ((uint32_t)(slot >> 32) == tag && spaced_equal(w, seen, i, n)) {
                uint32_t count = ++counts[seen];
                if (count > best_count || (count == best_count && seen < best_start)) {
                    best_count = count;
                    best_start = seen;
                }
                break;
            }
        }
    }
    TABLE_EMPTY();
    const int64_t *offsets = w->offsets;
    int64_t chars = code_points(w->data, offsets[best_start], offsets[best_start + n]);
    return (chars + n - 1) * (int64_t)best_count;
}

/* datatrove's greedy count of repeated concatenated n-grams, in code points; -1: no memory. */
static int64_t duplicate_chars(Work *w, int64_t n) {
    int64_t grams = w->words - n + 1;
    if (grams <= 0) return 0;
    if (table_start(w, grams)) return -1;
    TABLE_LOCALS(w);
    const uint64_t *restrict plain = w->plain, *restrict plain_power = w->plain_power;
    int64_t repeated = 0, i = 0;
    while (i < grams) {
        uint32_t tag = tag_of(mod_mul(mod_sub(plain[i + n], plain[i]), plain_power[i + n]));
        for (size_t s = tag >> shift;; s = (s + 1) & mask) {
            Slot slot = slots[s];
            if (__builtin_expect(!slot, 1)) {
                TABLE_FILL(w, s, ((uint64_t)tag << 32) | (uint64_t)(i + 1));
                i += 1;
                break;
            }
            if ((uint32_t)(slot >> 32) == tag &&
                plain_equal(w, (int64_t)(uint32_t)slot - 1, i, n)) {
                repeated += code_points(w->data, w->offsets[i], w->offsets[i + n]);
                i += n;
                break;
            }
        }
    }
    TABLE_EMPTY();
    return repeated;
}

/* -- the Python entry point ---------------------------------------------------------------- */

/* The n of every rule, each at least 1 (NULL with an exception otherwise). */
static int64_t *sizes_of(PyObject *sequence, const char *name, Py_ssize_t *count) {
    PyObject *fast = PySequence_Fast(sequence, "");
    if (!fast) {
        PyErr_Format(PyExc_TypeError, "%s must be a sequence of int", name);
        return NULL;
    }
    *count = PySequence_Fast_GET_SIZE(fast);
    int64_t *sizes = PyMem_Malloc((size_t)(*count ? *count : 1) * sizeof(int64_t));
    if (!sizes) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t k = 0; k < *count; k++) {
        PyObject *index = PyNumber_Index(PySequence_Fast_GET_ITEM(fast, k));
        long long n = index ? PyLong_AsLongLong(index) : -1;
        Py_XDECREF(index);
        if (!index || (n == -1 && PyErr_Occurred()) || n < 1) {
            PyErr_Clear();
            if (!index)
                PyErr_Format(PyExc_TypeError, "%s must hold ints", name);
            else
                PyErr_Format(PyExc_ValueError, "%s must hold ints from 1 to 2**63 - 1", name);
            PyMem_Free(sizes);
            Py_DECREF(fast);
            return NULL;
        }
        sizes[k] = (int64_t)n;
    }
    Py_DECREF(fast);
    return sizes;
}

static int overlaps(const Py_buffer *a, const Py_buffer *b) {
    const char *x = a->buf, *y = b->buf;
    return a->len && b->len && x < y + b->len && y < x + a->len;
}

/* Every offset in bounds and in order, so that nothing reads outside the buffers; 0 if so,
 * else -1 with a ValueError. */
static int check_offsets(const int64_t *doc_offsets, Py_ssize_t docs,
                         const int64_t *word_offsets, Py_ssize_t word_bounds,
                         Py_ssize_t data_length) {
    if (doc_offsets[0] < 0 || doc_offsets[docs] > (int64_t)word_bounds - 1) {
        PyErr_SetString(PyExc_ValueError, "doc_offsets point outside word_offsets");
        return -1;
    }
    for (Py_ssize_t d = 0; d < docs; d++) {
        if (doc_offsets[d + 1] < doc_offsets[d]) {
            PyErr_SetString(PyExc_ValueError, "doc_offsets must not decrease");
            return -1;
        }
        if (doc_offsets[d + 1] - doc_offsets[d] >= (int64_t)UINT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "a document has 2**32 - 1 words or more");
            return -1;
        }
    }
    if (word_offsets[doc_offsets[0]] < 0 || word_offsets[doc_offsets[docs]] > data_length) {
        PyErr_SetString(PyExc_ValueError, "word_offsets point outside data");
        return -1;
    }
    for (int64_t w = doc_offsets[0]; w < doc_offsets[docs]; w++) {
        if (word_offsets[w + 1] < word_offsets[w]) {
            PyErr_SetString(PyExc_ValueError, "word_offsets must not decrease");
            return -1;
        }
    }
    return 0;
}

PyDoc_STRVAR(gram_stats_doc,
"gram_stats(doc_offsets, word_offsets, data, top_ns, dup_ns, top_out, dup_out)\n"
"--\n\n"
"Gopher's n-gram statistics of every document, as datatrove computes them.\n\n"
"Document d's words are words doc_offsets[d] .. doc_offsets[d + 1] - 1; word w is the UTF-8\n"
"data[word_offsets[w] : word_offsets[w + 1]] (Arrow's list and string offsets, as int64).\n"
"Writes top_out[k * docs + d], for n = top_ns[k]: the code points of document d's most\n"
"frequent n-gram \" \".join(words[i:i+n]) (the first seen wins a tie) times its count; and\n"
"dup_out[k * docs + d], for n = dup_ns[k]: datatrove's greedy count of the code points of\n"
"repeated n-grams \"\".join(words[i:i+n]). Both are writable int64 buffers of\n"
"len(ns) * docs items. Releases the GIL while it counts.");

static PyObject *gram_stats(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)self;
    static char *keywords[] = {"doc_offsets", "word_offsets", "data",    "top_ns",
                               "dup_ns",      "top_out",      "dup_out", NULL};
    PyObject *objects[7];
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOO:gram_stats", keywords,
                                     &objects[0], &objects[1], &objects[2], &objects[3],
                                     &objects[4], &objects[5], &objects[6]))
        return NULL;
    Py_buffer docs_view = {0}, words_view = {0}, data_view = {0}, top_view = {0},
              dup_view = {0};
    int64_t *top_ns = NULL, *dup_ns = NULL;
    Py_ssize_t top_count = 0, dup_count = 0;
    PyObject *result = NULL;

    if (int64_buffer(objects[0], "doc_offsets", 0, &docs_view) ||
        int64_buffer(objects[1], "word_offsets", 0, &words_view))
        goto done;
    if (PyObject_GetBuffer(objects[2], &data_view, PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        data_view.obj = NULL;
        PyErr_Format(PyExc_TypeError, "data must be a C-contiguous buffer, not %.100s",
                     Py_TYPE(objects[2])->tp_name);
        goto done;
    }
    if (!(top_ns = sizes_of(objects[3], "top_ns", &top_count)) ||
        !(dup_ns = sizes_of(objects[4], "dup_ns", &dup_count)))
        goto done;
    if (int64_buffer(objects[5], "top_out", 1, &top_view) ||
        int64_buffer(objects[6], "dup_out", 1, &dup_view))
        goto done;

    const int64_t *doc_offsets = docs_view.buf, *word_offsets = words_view.buf;
    const uint8_t *data = data_view.buf;
    Py_ssize_t docs = docs_view.len / 8 - 1;
    if (docs < 0) {
        PyErr_SetString(PyExc_ValueError, "doc_offsets must hold at least one offset");
        goto done;
    }
    if (top_view.len / 8 != top_count * docs || dup_view.len / 8 != dup_count * docs) {
        PyErr_Format(PyExc_ValueError,
                     "top_out and dup_out must hold len(ns) * %zd items, not %zd and %zd",
                     docs, top_view.len / 8, dup_view.len / 8);
        goto done;
    }
    Py_buffer *inputs[] = {&docs_view, &words_view, &data_view, &dup_view};
    for (int k = 0; k < 4; k++) {
        if (overlaps(&top_view, inputs[k]) || (k < 3 && overlaps(&dup_view, inputs[k]))) {
            PyErr_SetString(PyExc_ValueError, "the outputs must not share memory with the "
                                              "inputs or with each other");
            goto done;
        }
    }
    if (check_offsets(doc_offsets, docs, word_offsets, words_view.len / 8, data_view.len))
        goto done;

    int64_t *top_out = top_view.buf, *dup_out = dup_view.buf;
    int out_of_memory = 0;
    Work work = {0};
    work.end = data + data_view.len;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t d = 0; d < docs && !out_of_memory; d++) {
        int64_t first = doc_offsets[d];
        if (prepare(&work, data, word_offsets + first, doc_offsets[d + 1] - first)) {
            out_of_memory = 1;
            break;
        }
        for (Py_ssize_t k = 0; k < top_count && !out_of_memory; k++)
            out_of_memory = (top_out[k * docs + d] = top_chars(&work, top_ns[k])) < 0;
        for (Py_ssize_t k = 0; k < dup_count && !out_of_memory; k++)
            out_of_memory = (dup_out[k * docs + d] = duplicate_chars(&work, dup_ns[k])) < 0;
    }
    work_free(&work);
    Py_END_ALLOW_THREADS
    if (out_of_memory) {
        PyErr_NoMemory();
        goto done;
    }
    Py_INCREF(Py_None);
    result = Py_None;

done:
    PyMem_Free(top_ns);
    PyMem_Free(dup_ns);
    Py_buffer *views[] = {&docs_view, &words_view, &data_view, &top_view, &dup_view};
    for (int k = 0; k < 5; k++)
        if (views[k]->obj) PyBuffer_Release(views[k]);
    return result;
}

static PyMethodDef methods[] = {
    {"gram_stats", (PyCFunction)(void (*)(void))gram_stats, METH_VARARGS | METH_KEYWORDS,
     gram_stats_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ngrams",
    "Gopher's n-gram repetition statistics over Arrow word buffers (see gram_stats).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_ngrams(void) {
    base_inverse = mod_pow(BASE, MOD - 2);
    power_table[0] = inverse_table[0] = 1;
    for (int k = 1; k < POWERS; k++) {
        power_table[k] = mod_mul(power_table[k - 1], BASE);
        inverse_table[k] = mod_mul(inverse_table[k - 1], base_inverse);
    }
    for (int k = 0; k < 8; k++)
        for (int b = 0; b < 256; b++) byte_term[k][b] = mod_mul((uint64_t)b + 1, power_table[k]);
    for (int count = 0; count <= 8; count++) {
        chunk_mask[count] = count == 8 ? ~(uint64_t)0 : ((uint64_t)1 << (8 * count)) - 1;
        chunk_padding[count] = 0; /* exactly what the cleared bytes add to the sum */
        for (int t = count; t < 8; t++) chunk_padding[count] += byte_term[(count - 1 - t) & 7][0];
    }
    return PyModule_Create(&module);
}
