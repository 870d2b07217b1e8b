/*
 * Token counts of a BERT-style uncased WordPiece tokenizer, without tokenizing.
 *
 * Counting tokens is what budgets, mixtures and MeCo's cooldown share are measured in, and the
 * Rust ``tokenizers`` pipeline spends most of its time on bookkeeping a count never needs
 * (alignments per character, offsets, token strings). For ASCII text the whole pipeline is
 * small enough to run by hand, and this file does exactly what ``BertNormalizer(lowercase,
 * clean_text)`` + ``BertPreTokenizer`` + ``WordPiece`` do to it:
 *
 *   - NUL and the ASCII control characters other than tab, LF and CR are removed (they join
 *     the characters on either side, they do not separate them);
 *   - space, tab, LF and CR separate words;
 *   - every other non-alphanumeric printable ASCII character is a word of its own;
 *   - letters are lowercased; a word longer than ``max_word_chars`` is one unknown token;
 *   - a word is split greedily, longest vocabulary entry first, the pieces after the first
 *     looked up among the continuations (the entries that start with ``##``, prefix removed);
 *     a word with a part no entry matches is one unknown token.
 *
 * Text that is not ASCII needs Unicode normalisation, accent stripping and CJK splitting, which
 * stay with the real tokenizer: a chunk (a run between ASCII whitespace characters) holding any
 * non-ASCII code point is not counted here but reported back, as (text index, start, end) in
 * code points, for the caller to count with ``tokenizers``. That is exact because those four
 * whitespace characters end every pre-tokenizer word and join nothing. Texts that spell out
 * one of the tokenizer's added tokens ("[SEP]") are the caller's to route around this file.
 * ``tests/stages/taggers/test_token_counting.py`` compares every count with ``tokenizers``.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* -- a set of ASCII strings ------------------------------------------------------------------ */

typedef struct {
    char *arena;       /* every entry's bytes, back to back */
    uint32_t *offsets; /* per slot: offset of the entry in arena, or UINT32_MAX when empty */
    uint32_t *lengths; /* per slot: the entry's length */
    size_t mask;       /* slots - 1 (slots is a power of two) */
    Py_ssize_t longest;
} StringSet;

static inline uint64_t fnv1a(const char *s, Py_ssize_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (Py_ssize_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ULL;
    return h;
}

static int set_contains(const StringSet *set, const char *s, Py_ssize_t n) {
    if (!set->offsets || n > set->longest) return 0;
    for (size_t slot = fnv1a(s, n) & set->mask;; slot = (slot + 1) & set->mask) {
        uint32_t offset = set->offsets[slot];
        if (offset == UINT32_MAX) return 0;
        if (set->lengths[slot] == (uint32_t)n && memcmp(set->arena + offset, s, n) == 0) return 1;
    }
}

static void set_free(StringSet *set) {
    free(set->arena);
    free(set->offsets);
    free(set->lengths);
    memset(set, 0, sizeof(*set));
}

/* The ASCII strings of ``entries`` (a list of str; others are skipped: no ASCII word can
 * match them). Returns -1 with an exception set. */
static int set_build(StringSet *set, PyObject *entries) {
    if (!PyList_Check(entries)) {
        PyErr_SetString(PyExc_TypeError, "vocabulary entries must be a list of str");
        return -1;
    }
    Py_ssize_t count = PyList_GET_SIZE(entries), bytes = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(entries, i);
        if (!PyUnicode_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "vocabulary entries must be a list of str");
            return -1;
        }
        if (PyUnicode_IS_ASCII(item)) bytes += PyUnicode_GET_LENGTH(item);
    }
    if (bytes >= UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "vocabulary too large");
        return -1;
    }
    size_t slots = 16;
    while (slots < 2 * (size_t)count + 1) slots <<= 1;
    set->arena = malloc(bytes + 1);
    set->offsets = malloc(slots * sizeof(uint32_t));
    set->lengths = malloc(slots * sizeof(uint32_t));
    if (!set->arena || !set->offsets || !set->lengths) {
        set_free(set);
        PyErr_NoMemory();
        return -1;
    }
    memset(set->offsets, 0xff, slots * sizeof(uint32_t));
    set->mask = slots - 1;
    set->longest = 0;
    size_t used = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(entries, i);
        if (!PyUnicode_IS_ASCII(item)) continue;
        Py_ssize_t n = PyUnicode_GET_LENGTH(item);
        const char *s = (const char *)PyUnicode_DATA(item);
        if (set_contains(set, s, n)) continue;
        size_t slot = fnv1a(s, n) & set->mask;
        while (set->offsets[slot] != UINT32_MAX) slot = (slot + 1) & set->mask;
        memcpy(set->arena + used, s, n);
        set->offsets[slot] = (uint32_t)used;
        set->lengths[slot] = (uint32_t)n;
        used += n;
        if (n > set->longest) set->longest = n;
    }
    return 0;
}

/* -- the Python type ------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD StringSet words; /* entries that may start a word */
    StringSet continuations;       /* entries that continue one, without their prefix */
    Py_ssize_t max_word_chars;
} Vocab;

static void vocab_dealloc(Vocab *v) {
    set_free(&v->words);
    set_free(&v->continuations);
    Py_TYPE(v)->tp_free((PyObject *)v);
}

static int vocab_init(Vocab *v, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"words", "continuations", "max_word_chars", NULL};
    PyObject *words, *continuations;
    Py_ssize_t max_word_chars;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOn", keywords, &words, &continuations,
                                     &max_word_chars))
        return -1;
    if (max_word_chars < 1) {
        PyErr_SetString(PyExc_ValueError, "max_word_chars must be at least 1");
        return -1;
    }
    set_free(&v->words);
    set_free(&v->continuations);
    v->max_word_chars = max_word_chars;
    if (set_build(&v->words, words) < 0 || set_build(&v->continuations, continuations) < 0)
        return -1;
    return 0;
}

/* Tokens of one lowercased ASCII word of at most max_word_chars characters. */
static Py_ssize_t word_tokens(const Vocab *v, const char *word, Py_ssize_t length) {
    Py_ssize_t tokens = 0;
    for (Py_ssize_t start = 0; start < length; tokens++) {
        const StringSet *set = start == 0 ? &v->words : &v->continuations;
        Py_ssize_t end = length - start > set->longest ? start + set->longest : length;
        while (end > start && !set_contains(set, word + start, end - start)) end--;
        if (end == start) return 1; /* a part no entry matches: the whole word is unknown */
        start = end;
    }
    return tokens;
}

static inline int is_separator(Py_UCS4 c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static inline int is_alnum(Py_UCS4 c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Counts one text; appends its non-ASCII chunks to ``foreign``. ``word`` holds the word being
 * read, lowercased (max_word_chars + 1 bytes, the caller's: no state is kept between calls, so
 * threads may share a Vocab). Returns -1 on error. */
static Py_ssize_t count_text(const Vocab *v, PyObject *text, Py_ssize_t index, PyObject *foreign,
                             char *word) {
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    Py_ssize_t tokens = 0, word_length = 0, chunk_start = 0, tokens_before_chunk = 0;
#define FLUSH_WORD()                                                                           \
    do {                                                                                       \
        if (word_length > v->max_word_chars) tokens += 1;                                      \
        else if (word_length > 0) tokens += word_tokens(v, word, word_length);              \
        word_length = 0;                                                                       \
    } while (0)
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 128 && is_alnum(c)) {
            if (word_length < v->max_word_chars + 1)
                word[word_length] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            if (word_length <= v->max_word_chars) word_length++;
        } else if (is_separator(c)) {
            FLUSH_WORD();
            chunk_start = i + 1;
            tokens_before_chunk = tokens;
        } else if (c >= 128) {
            Py_ssize_t end = i;
            while (end < length && !is_separator(PyUnicode_READ(kind, data, end))) end++;
            PyObject *span = Py_BuildValue("(nnn)", index, chunk_start, end);
            if (!span || PyList_Append(foreign, span) < 0) {
                Py_XDECREF(span);
                return -1;
            }
            Py_DECREF(span);
            tokens = tokens_before_chunk;
            word_length = 0;
            i = end - 1; /* the separator (or the end) comes next */
        } else if (c < 32 || c == 127) {
            /* removed: a control character joins what stands on either side */
        } else {
            FLUSH_WORD();
            tokens += 1; /* punctuation: a word of one character, known or unknown */
        }
    }
    FLUSH_WORD();
#undef FLUSH_WORD
    return tokens;
}

static PyObject *vocab_count(Vocab *v, PyObject *texts) {
    if (!PyList_Check(texts)) {
        PyErr_SetString(PyExc_TypeError, "count() takes a list of str or None");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(texts);
    PyObject *counts = PyList_New(n), *foreign = PyList_New(0);
    char *word = malloc(v->max_word_chars + 1);
    if (!word) PyErr_NoMemory();
    if (!counts || !foreign || !word) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *text = PyList_GET_ITEM(texts, i);
        Py_ssize_t tokens = 0;
        if (PyUnicode_Check(text)) {
            tokens = count_text(v, text, i, foreign, word);
            if (tokens < 0) goto fail;
        } else if (text != Py_None) {
            PyErr_Format(PyExc_TypeError, "count() takes str or None, not %s",
                         Py_TYPE(text)->tp_name);
            goto fail;
        }
        PyObject *value = PyLong_FromSsize_t(tokens);
        if (!value) goto fail;
        PyList_SET_ITEM(counts, i, value);
    }
    free(word);
    return Py_BuildValue("(NN)", counts, foreign);
fail:
    free(word);
    Py_XDECREF(counts);
    Py_XDECREF(foreign);
    return NULL;
}

static PyMethodDef vocab_methods[] = {
    {"count", (PyCFunction)vocab_count, METH_O,
     "count(texts) -> (counts, foreign): tokens of each text (0 for None) outside its chunks "
     "that hold non-ASCII code points, and those chunks as (text index, start, end)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject VocabType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "gristmill.native.wordpiece.Vocab",
    .tp_basicsize = sizeof(Vocab),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = PyDoc_STR("Vocab(words, continuations, max_word_chars): an uncased WordPiece "
                        "vocabulary (continuations without their ## prefix) that counts "
                        "the tokens of ASCII text."),
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)vocab_init,
    .tp_dealloc = (destructor)vocab_dealloc,
    .tp_methods = vocab_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "wordpiece",
    "Token counts of uncased WordPiece tokenizers on ASCII text.", -1, NULL,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_wordpiece(void) {
    if (PyType_Ready(&VocabType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&VocabType);
    if (PyModule_AddObject(m, "Vocab", (PyObject *)&VocabType) < 0) {
        Py_DECREF(&VocabType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
