/*
 * fastText supervised prediction, reimplemented so that a whole batch runs without the GIL
 * and without recomputing what repeats.
 *
 * fastText spends almost all of its prediction time rebuilding each out-of-vocabulary word
 * from its character n-grams (hashing every n-gram, looking it up in the pruned-row map of
 * a .ftz model, reconstructing its product-quantized row), token after token, although the
 * words of web text repeat within a document and across a batch. This module reads the same
 * model files (.bin and .ftz, format version 12), reconstructs every input row once at load,
 * and keeps the vector of each word it has built in a bounded cache, so a repeated word costs
 * one hash lookup and one vector addition.
 *
 * Everything a prediction depends on follows fastText's own rules: tokens split on the seven
 * ASCII separators, the end-of-sentence token that ends every line, signed-char FNV-1a
 * hashes, subwords of minn..maxn code points with the pruned-row map, word n-gram hashes
 * built with sign extension, and the hierarchical-softmax, softmax and one-vs-all outputs
 * with fastText's float rounding and its log(p + 1e-5) scores. Word vectors are summed in
 * double precision (fastText sums in float, word by word), so probabilities can differ from
 * fastText's in the last bits of a float32; ranks differ only on exact ties.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FASTTEXT_MAGIC 793712314
#define FASTTEXT_VERSION 12
#define LOSS_HS 1
#define LOSS_NS 2
#define LOSS_SOFTMAX 3
#define LOSS_OVA 4
#define MODEL_SUPERVISED 3
#define ENTRY_WORD 0
#define ENTRY_LABEL 1
#define PQ_KSUB 256
#define SIGMOID_TABLE_SIZE 512
#define MAX_SIGMOID 8
/* The word cache takes at most this much memory by default; full, it starts afresh. */
#define CACHE_BYTES ((Py_ssize_t)64 << 20)
/* Longer tokens (URLs, runs of symbols) rarely repeat: they are built, not cached. */
#define CACHE_MAX_WORD_BYTES 64
/* Average bytes of a cached word's text assumed when sizing the cache. */
#define CACHE_TEXT_ESTIMATE 12

static const char EOS[] = "</s>";
static const char LABEL_PREFIX[] = "__label__";

/* -- reading the model file ---------------------------------------------------------------- */

typedef struct {
    FILE *file;
    const char *path;
    int failed;
} Reader;

static int read_bytes(Reader *reader, void *into, size_t size) {
    if (reader->failed) return -1;
    if (size && fread(into, 1, size, reader->file) != size) {
        reader->failed = 1;
        PyErr_Format(PyExc_ValueError, "%s: truncated fastText model file", reader->path);
        return -1;
    }
    return 0;
}

static int32_t read_i32(Reader *r) { int32_t v = 0; read_bytes(r, &v, 4); return v; }
static int64_t read_i64(Reader *r) { int64_t v = 0; read_bytes(r, &v, 8); return v; }
static double read_f64(Reader *r) { double v = 0; read_bytes(r, &v, 8); return v; }
static uint8_t read_u8(Reader *r) { uint8_t v = 0; read_bytes(r, &v, 1); return v; }

/* A matrix as fastText stores it, dense or product-quantized, reconstructed as floats. */
static float *read_matrix(Reader *r, int quantized, int64_t *rows_out, int64_t *cols_out) {
    if (!quantized) {
        int64_t rows = read_i64(r), cols = read_i64(r);
        if (r->failed) return NULL;
        if (rows < 0 || cols <= 0 || cols > 100000 || rows > ((int64_t)1 << 40) / cols) {
            PyErr_Format(PyExc_ValueError, "%s: implausible matrix shape %lld x %lld", r->path,
                         (long long)rows, (long long)cols);
            r->failed = 1;
            return NULL;
        }
        float *data = malloc(sizeof(float) * (size_t)(rows * cols) + 1);
        if (!data) { PyErr_NoMemory(); r->failed = 1; return NULL; }
        if (read_bytes(r, data, sizeof(float) * (size_t)(rows * cols))) { free(data); return NULL; }
        *rows_out = rows;
        *cols_out = cols;
        return data;
    }
    int qnorm = read_u8(r);
    int64_t rows = read_i64(r), cols = read_i64(r);
    int64_t codesize = read_i32(r); /* int32 in the file, unlike the shape */
    if (r->failed) return NULL;
    if (rows < 0 || cols <= 0 || cols > 100000 || codesize < 0 || codesize > ((int64_t)1 << 40)) {
        PyErr_Format(PyExc_ValueError, "%s: implausible quantized matrix", r->path);
        r->failed = 1;
        return NULL;
    }
    uint8_t *codes = malloc((size_t)codesize + 1);
    float *centroids = NULL, *norm_centroids = NULL, *data = NULL;
    uint8_t *norm_codes = NULL;
    if (!codes) { PyErr_NoMemory(); r->failed = 1; return NULL; }
    read_bytes(r, codes, (size_t)codesize);
    int32_t dim = read_i32(r), nsubq = read_i32(r), dsub = read_i32(r), lastdsub = read_i32(r);
    if (r->failed) goto fail;
    if (dim != cols || nsubq <= 0 || dsub <= 0 || lastdsub <= 0 ||
        (int64_t)(nsubq - 1) * dsub + lastdsub != dim || codesize != rows * nsubq) {
        PyErr_Format(PyExc_ValueError, "%s: inconsistent product quantizer", r->path);
        r->failed = 1;
        goto fail;
    }
    centroids = malloc(sizeof(float) * (size_t)dim * PQ_KSUB);
    if (!centroids) { PyErr_NoMemory(); r->failed = 1; goto fail; }
    if (read_bytes(r, centroids, sizeof(float) * (size_t)dim * PQ_KSUB)) goto fail;
    if (qnorm) {
        norm_codes = malloc((size_t)rows + 1);
        if (!norm_codes) { PyErr_NoMemory(); r->failed = 1; goto fail; }
        read_bytes(r, norm_codes, (size_t)rows);
        int32_t ndim = read_i32(r);
        read_i32(r); read_i32(r); read_i32(r);
        if (r->failed) goto fail;
        if (ndim != 1) {
            PyErr_Format(PyExc_ValueError, "%s: inconsistent norm quantizer", r->path);
            r->failed = 1;
            goto fail;
        }
        norm_centroids = malloc(sizeof(float) * PQ_KSUB);
        if (!norm_centroids) { PyErr_NoMemory(); r->failed = 1; goto fail; }
        if (read_bytes(r, norm_centroids, sizeof(float) * PQ_KSUB)) goto fail;
    }
    data = malloc(sizeof(float) * (size_t)(rows * cols) + 1);
    if (!data) { PyErr_NoMemory(); r->failed = 1; goto fail; }
    for (int64_t row = 0; row < rows; row++) {
        /* What fastText adds for this row: norm * centroid, one float product per value. */
        float norm = qnorm ? norm_centroids[norm_codes[row]] : 1.0f;
        const uint8_t *code = codes + nsubq * row;
        for (int32_t m = 0; m < nsubq; m++) {
            const float *c = (m == nsubq - 1)
                                 ? &centroids[(size_t)m * PQ_KSUB * dsub + (size_t)code[m] * lastdsub]
                                 : &centroids[((size_t)m * PQ_KSUB + code[m]) * dsub];
            int32_t d = (m == nsubq - 1) ? lastdsub : dsub;
            for (int32_t n = 0; n < d; n++) data[row * cols + m * dsub + n] = norm * c[n];
        }
    }
    *rows_out = rows;
    *cols_out = cols;
fail:
    free(codes);
    free(centroids);
    free(norm_codes);
    free(norm_centroids);
    if (r->failed) { free(data); return NULL; }
    return data;
}

/* -- small hash tables --------------------------------------------------------------------- */

static uint32_t fnv(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint32_t)(int32_t)(int8_t)s[i]; /* fastText hashes signed chars */
        h *= 16777619u;
    }
    return h;
}

static size_t power_of_two_above(size_t n) {
    size_t size = 16;
    while (size < n) size <<= 1;
    return size;
}

/* The words of the model's vocabulary (words and labels), keyed by their bytes. */
typedef struct {
    char *text;
    int32_t length;
    int8_t type;
    int64_t count;
} Entry;

/* A slot of the word cache's table: the word's hash and its entry (0: empty). Entry ``e``
 * (from 1) has its text at ``cache_text + cache_offsets[e - 1]``, its row count in
 * ``cache_rows`` and the float sum of its rows in ``cache_vectors``. */
typedef struct {
    uint32_t hash;
    uint32_t entry;
} CacheSlot;

typedef struct {
    PyObject_HEAD
    /* arguments */
    int32_t dim, word_ngrams, loss, bucket, minn, maxn;
    /* dictionary */
    int32_t size, nwords, nlabels;
    int64_t pruneidx_size;
    Entry *entries;
    int32_t *vocab; /* open addressing: entry index or -1 */
    size_t vocab_mask;
    int32_t *prune_keys, *prune_values; /* open addressing: bucket -> row, key -1 = empty */
    size_t prune_mask;
    /* matrices */
    float *input;
    int64_t input_rows;
    float *output;
    int64_t output_rows;
    /* every vocabulary word's subword rows, summed once */
    double *vocab_vectors;
    int32_t *vocab_rows;
    /* hierarchical softmax tree (labels are leaves 0..nlabels-1) */
    int32_t *left, *right;
    float sigmoid_table[SIGMOID_TABLE_SIZE + 1];
    /* the word cache */
    CacheSlot *cache;
    size_t cache_mask, cache_words, cache_limit, cache_text_used, cache_text_size;
    uint32_t *cache_offsets;
    uint16_t *cache_lengths;
    int32_t *cache_rows;
    float *cache_vectors;
    char *cache_text;
    double *scratch_word; /* one word's sum while it is built */
    PyThread_type_lock lock; /* one batch at a time: the word cache is shared state */
    PyObject *labels; /* tuple of str */
    PyObject *path;
} Model;

static int32_t vocab_find(const Model *m, const char *s, size_t n, uint32_t h) {
    size_t slot = h & m->vocab_mask;
    while (m->vocab[slot] >= 0) {
        const Entry *e = &m->entries[m->vocab[slot]];
        if ((size_t)e->length == n && memcmp(e->text, s, n) == 0) return m->vocab[slot];
        slot = (slot + 1) & m->vocab_mask;
    }
    return -1;
}

static uint32_t mix32(uint32_t x) {
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    return x;
}

/* The input row of hashed n-gram bucket ``id``, or -1 where pruning dropped it. */
static int64_t ngram_row(const Model *m, int64_t id) {
    if (m->pruneidx_size == 0 || id < 0) return -1;
    if (m->pruneidx_size < 0) return m->nwords + id;
    size_t slot = mix32((uint32_t)id) & m->prune_mask;
    while (m->prune_keys[slot] >= 0) {
        if (m->prune_keys[slot] == id) return m->nwords + m->prune_values[slot];
        slot = (slot + 1) & m->prune_mask;
    }
    return -1;
}

static void add_row(const Model *m, double *into, int64_t row) {
    const float *values = m->input + row * m->dim;
    for (int32_t j = 0; j < m->dim; j++) into[j] += values[j];
}

/* Sum of the rows of the character n-grams of "<word>", as fastText's computeSubwords. */
static int32_t add_subwords(const Model *m, const char *word, size_t n, double *into) {
    if (m->maxn <= 0) return 0;
    char buffer[CACHE_MAX_WORD_BYTES + 2];
    char *w = buffer;
    if (n + 2 > sizeof(buffer)) {
        w = malloc(n + 2);
        if (!w) return -1;
    }
    w[0] = '<';
    memcpy(w + 1, word, n);
    w[n + 1] = '>';
    size_t size = n + 2;
    int32_t rows = 0;
    for (size_t i = 0; i < size; i++) {
        if ((w[i] & 0xC0) == 0x80) continue;
        size_t j = i;
        for (int32_t length = 1; j < size && length <= m->maxn; length++) {
            j++;
            while (j < size && (w[j] & 0xC0) == 0x80) j++;
            if (length >= m->minn && !(length == 1 && (i == 0 || j == size))) {
                int64_t row = ngram_row(m, (int64_t)(fnv(w + i, j - i) % (uint32_t)m->bucket));
                if (row >= 0) {
                    add_row(m, into, row);
                    rows++;
                }
            }
        }
    }
    if (w != buffer) free(w);
    return rows;
}

/* Add a word's rows to ``into``; returns how many rows, -1 on allocation failure. */
/* Build an out-of-vocabulary word's sum into ``scratch_word``, rounded to float: the value
 * the cache keeps, so an answer never depends on whether the word was cached. */
static int32_t build_word(Model *m, const char *s, size_t n) {
    double *sum = m->scratch_word;
    memset(sum, 0, sizeof(double) * m->dim);
    int32_t rows = add_subwords(m, s, n, sum);
    for (int32_t j = 0; j < m->dim; j++) sum[j] = (float)sum[j];
    return rows;
}

/* Add a word's rows to ``into``; returns how many rows, -1 on allocation failure. */
static int32_t add_word(Model *m, const char *s, size_t n, uint32_t h, int32_t wid, double *into) {
    if (wid >= 0) {
        const double *v = m->vocab_vectors + (size_t)wid * m->dim;
        for (int32_t j = 0; j < m->dim; j++) into[j] += v[j];
        return m->vocab_rows[wid];
    }
    if (n == 4 && memcmp(s, EOS, 4) == 0) return 0;
    int cacheable = n <= CACHE_MAX_WORD_BYTES && m->cache_limit > 0;
    size_t slot = cacheable ? mix32(h) & m->cache_mask : 0;
    for (; cacheable && m->cache[slot].entry; slot = (slot + 1) & m->cache_mask) {
        const CacheSlot *c = &m->cache[slot];
        size_t e = c->entry - 1;
        if (c->hash == h && m->cache_lengths[e] == n &&
            memcmp(m->cache_text + m->cache_offsets[e], s, n) == 0) {
            const float *v = m->cache_vectors + e * (size_t)m->dim;
            for (int32_t j = 0; j < m->dim; j++) into[j] += v[j];
            return m->cache_rows[e];
        }
    }
    int32_t rows = build_word(m, s, n);
    if (rows < 0) return -1;
    const double *sum = m->scratch_word;
    for (int32_t j = 0; j < m->dim; j++) into[j] += sum[j];
    if (!cacheable) return rows;
    if (m->cache_words >= m->cache_limit || m->cache_text_used + n > m->cache_text_size) {
        /* Full: start afresh (a crawl's vocabulary has no end). */
        memset(m->cache, 0, sizeof(CacheSlot) * (m->cache_mask + 1));
        m->cache_words = m->cache_text_used = 0;
        slot = mix32(h) & m->cache_mask;
    }
    size_t e = m->cache_words++;
    m->cache[slot].hash = h;
    m->cache[slot].entry = (uint32_t)(e + 1);
    m->cache_offsets[e] = (uint32_t)m->cache_text_used;
    m->cache_lengths[e] = (uint16_t)n;
    memcpy(m->cache_text + m->cache_text_used, s, n);
    m->cache_text_used += n;
    m->cache_rows[e] = rows;
    float *v = m->cache_vectors + e * (size_t)m->dim;
    for (int32_t j = 0; j < m->dim; j++) v[j] = (float)sum[j];
    return rows;
}

/* -- output layers ------------------------------------------------------------------------- */

static float std_log(float x) { return (float)log((double)x + 1e-5); }

typedef struct {
    float score;
    int32_t label;
} Scored;

/* The k best so far, kept sorted best first (k is small: the number of labels at most). */
typedef struct {
    Scored *items;
    int32_t size, k;
} TopK;

/* fastText pushes every candidate that is not worse than the worst kept, then drops the
 * worst when there are more than k; on a tie the one found first stays. */
static void topk_push(TopK *top, float score, int32_t label) {
    int32_t at;
    if (top->size < top->k) {
        at = top->size++;
    } else {
        if (score <= top->items[top->k - 1].score) return;
        at = top->k - 1;
    }
    while (at > 0 && top->items[at - 1].score < score) {
        top->items[at] = top->items[at - 1];
        at--;
    }
    top->items[at].score = score;
    top->items[at].label = label;
}

static float worst(const TopK *top) { return top->items[top->size - 1].score; }

static float dot_output(const Model *m, const float *hidden, int64_t row) {
    const float *w = m->output + row * m->dim;
    float d = 0.0f;
    for (int32_t j = 0; j < m->dim; j++) d += w[j] * hidden[j];
    return d;
}

static void hs_search(const Model *m, TopK *top, float threshold, int32_t node, float score,
                      const float *hidden) {
    if (score < std_log(threshold)) return;
    if (top->size == top->k && score < worst(top)) return;
    if (m->left[node] == -1 && m->right[node] == -1) {
        topk_push(top, score, node);
        return;
    }
    float f = dot_output(m, hidden, node - m->nlabels);
    f = (float)(1. / (1 + expf(-f)));
    hs_search(m, top, threshold, m->left[node], score + std_log((float)(1.0 - f)), hidden);
    hs_search(m, top, threshold, m->right[node], score + std_log(f), hidden);
}

static float table_sigmoid(const Model *m, float x) {
    if (x < -MAX_SIGMOID) return 0.0f;
    if (x > MAX_SIGMOID) return 1.0f;
    int64_t i = (int64_t)((x + MAX_SIGMOID) * SIGMOID_TABLE_SIZE / MAX_SIGMOID / 2);
    return m->sigmoid_table[i];
}

static void flat_scores(const Model *m, TopK *top, float threshold, const float *hidden,
                        float *output) {
    int32_t osz = m->nlabels;
    for (int32_t i = 0; i < osz; i++) output[i] = dot_output(m, hidden, i);
    if (m->loss == LOSS_SOFTMAX) {
        float max = output[0], z = 0.0f;
        for (int32_t i = 0; i < osz; i++) max = output[i] > max ? output[i] : max;
        for (int32_t i = 0; i < osz; i++) {
            output[i] = expf(output[i] - max);
            z += output[i];
        }
        for (int32_t i = 0; i < osz; i++) output[i] /= z;
    } else {
        for (int32_t i = 0; i < osz; i++) output[i] = table_sigmoid(m, output[i]);
    }
    for (int32_t i = 0; i < osz; i++) {
        if (output[i] < threshold) continue;
        float score = std_log(output[i]);
        if (top->size == top->k && score < worst(top)) continue;
        topk_push(top, score, i);
    }
}

/* -- one line ------------------------------------------------------------------------------ */

typedef struct {
    double *sum;
    float *hidden, *output;
    int32_t *hashes;
    size_t hashes_capacity;
} Scratch;

static int is_separator(char c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f' || c == '\0';
}

static int push_hash(Scratch *s, size_t count, int32_t h) {
    if (count >= s->hashes_capacity) {
        size_t capacity = s->hashes_capacity ? s->hashes_capacity * 2 : 1024;
        int32_t *grown = realloc(s->hashes, capacity * sizeof(int32_t));
        if (!grown) return -1;
        s->hashes = grown;
        s->hashes_capacity = capacity;
    }
    s->hashes[count] = h;
    return 0;
}

/* Predict one line, read as fastText reads ``text + "\n"``: up to the first newline, which
 * is the end-of-sentence token (without ``newline_ends_line``, a newline separates words
 * like a space and only the text's end ends the line). Fills ``top``; returns -1 on
 * allocation failure. */
static int predict_line(Model *m, const char *text, size_t length, int32_t k, float threshold,
                        int newline_ends_line, Scratch *s, TopK *top) {
    top->size = 0;
    top->k = k;
    memset(s->sum, 0, sizeof(double) * m->dim);
    int64_t rows = 0;
    size_t nhashes = 0;
    size_t i = 0;
    int done = 0;
    while (!done) {
        const char *token;
        size_t n;
        while (i < length && is_separator(text[i]) && !(newline_ends_line && text[i] == '\n'))
            i++;
        if (i >= length || (newline_ends_line && text[i] == '\n')) {
            token = EOS;
            n = 4;
            done = 1;
        } else {
            size_t start = i;
            while (i < length && !is_separator(text[i])) i++;
            token = text + start;
            n = i - start;
        }
        /* A "</s>" written out in the text ends the line too, as in fastText. */
        if (n == 4 && memcmp(token, EOS, 4) == 0) done = 1;
        uint32_t h = fnv(token, n);
        int32_t wid = vocab_find(m, token, n, h);
        int type = wid >= 0 ? m->entries[wid].type
                            : (n >= 9 && memcmp(token, LABEL_PREFIX, 9) == 0 ? ENTRY_LABEL
                                                                             : ENTRY_WORD);
        if (type != ENTRY_WORD) continue;
        int32_t added = add_word(m, token, n, h, wid, s->sum);
        if (added < 0) return -1;
        rows += added;
        if (m->word_ngrams > 1 && push_hash(s, nhashes++, (int32_t)h)) return -1;
    }
    for (size_t a = 0; m->word_ngrams > 1 && a < nhashes; a++) {
        uint64_t h = (uint64_t)(int64_t)s->hashes[a];
        for (size_t b = a + 1; b < nhashes && b < a + (size_t)m->word_ngrams; b++) {
            h = h * 116049371u + (uint64_t)(int64_t)s->hashes[b];
            int64_t row = ngram_row(m, (int64_t)(h % (uint64_t)m->bucket));
            if (row >= 0) {
                add_row(m, s->sum, row);
                rows++;
            }
        }
    }
    if (rows == 0) return 0; /* fastText predicts nothing for a line without input rows */
    double scale = 1.0 / (double)rows;
    for (int32_t j = 0; j < m->dim; j++) s->hidden[j] = (float)(s->sum[j] * scale);
    if (m->loss == LOSS_HS)
        hs_search(m, top, threshold, 2 * m->nlabels - 2, 0.0f, s->hidden);
    else
        flat_scores(m, top, threshold, s->hidden, s->output);
    return 0;
}

/* -- the Python type ----------------------------------------------------------------------- */

static void model_dealloc(Model *m) {
    if (m->entries) {
        for (int32_t i = 0; i < m->size; i++) free(m->entries[i].text);
    }
    free(m->entries);
    free(m->vocab);
    free(m->prune_keys);
    free(m->prune_values);
    free(m->input);
    free(m->output);
    free(m->vocab_vectors);
    free(m->vocab_rows);
    free(m->left);
    free(m->right);
    free(m->cache);
    free(m->cache_offsets);
    free(m->cache_lengths);
    free(m->cache_rows);
    free(m->cache_vectors);
    free(m->cache_text);
    free(m->scratch_word);
    if (m->lock) PyThread_free_lock(m->lock);
    Py_XDECREF(m->labels);
    Py_XDECREF(m->path);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static int build_tree(Model *m) {
    int32_t osz = m->nlabels, total = 2 * osz - 1;
    int64_t *count = malloc(sizeof(int64_t) * total);
    m->left = malloc(sizeof(int32_t) * total);
    m->right = malloc(sizeof(int32_t) * total);
    if (!count || !m->left || !m->right) { free(count); PyErr_NoMemory(); return -1; }
    for (int32_t i = 0; i < total; i++) {
        m->left[i] = m->right[i] = -1;
        count[i] = (int64_t)1e15;
    }
    for (int32_t i = 0; i < osz; i++) count[i] = m->entries[m->nwords + i].count;
    int32_t leaf = osz - 1, node = osz;
    for (int32_t i = osz; i < total; i++) {
        int32_t pick[2];
        for (int j = 0; j < 2; j++) {
            if (leaf >= 0 && count[leaf] < count[node]) pick[j] = leaf--;
            else pick[j] = node++;
        }
        m->left[i] = pick[0];
        m->right[i] = pick[1];
        count[i] = count[pick[0]] + count[pick[1]];
    }
    free(count);
    return 0;
}

static int read_dictionary(Model *m, Reader *r) {
    m->size = read_i32(r);
    m->nwords = read_i32(r);
    m->nlabels = read_i32(r);
    read_i64(r); /* ntokens */
    m->pruneidx_size = read_i64(r);
    if (r->failed) return -1;
    if (m->size < 0 || m->nwords < 0 || m->nlabels <= 0 || m->nwords + m->nlabels != m->size ||
        m->pruneidx_size > ((int64_t)1 << 31)) {
        PyErr_Format(PyExc_ValueError, "%s: inconsistent fastText dictionary", r->path);
        return -1;
    }
    m->entries = calloc((size_t)m->size + 1, sizeof(Entry));
    if (!m->entries) { PyErr_NoMemory(); return -1; }
    size_t capacity = 32;
    char *word = malloc(capacity);
    if (!word) { PyErr_NoMemory(); return -1; }
    for (int32_t i = 0; i < m->size; i++) {
        size_t n = 0;
        int c;
        while ((c = fgetc(r->file)) != 0) {
            if (c == EOF) {
                free(word);
                PyErr_Format(PyExc_ValueError, "%s: truncated fastText dictionary", r->path);
                return -1;
            }
            if (n + 1 >= capacity) {
                char *grown = realloc(word, capacity *= 2);
                if (!grown) { free(word); PyErr_NoMemory(); return -1; }
                word = grown;
            }
            word[n++] = (char)c;
        }
        Entry *e = &m->entries[i];
        e->text = malloc(n + 1);
        if (!e->text) { free(word); PyErr_NoMemory(); return -1; }
        memcpy(e->text, word, n);
        e->text[n] = 0;
        e->length = (int32_t)n;
        e->count = read_i64(r);
        e->type = (int8_t)read_u8(r);
        if (r->failed) { free(word); return -1; }
        if ((i < m->nwords) != (e->type == ENTRY_WORD)) {
            free(word);
            PyErr_Format(PyExc_ValueError, "%s: words and labels out of order", r->path);
            return -1;
        }
    }
    free(word);
    m->vocab_mask = power_of_two_above((size_t)m->size * 2) - 1;
    m->vocab = malloc(sizeof(int32_t) * (m->vocab_mask + 1));
    if (!m->vocab) { PyErr_NoMemory(); return -1; }
    memset(m->vocab, 0xff, sizeof(int32_t) * (m->vocab_mask + 1));
    for (int32_t i = 0; i < m->size; i++) {
        Entry *e = &m->entries[i];
        uint32_t h = fnv(e->text, (size_t)e->length);
        if (vocab_find(m, e->text, (size_t)e->length, h) >= 0) continue;
        size_t slot = h & m->vocab_mask;
        while (m->vocab[slot] >= 0) slot = (slot + 1) & m->vocab_mask;
        m->vocab[slot] = i;
    }
    if (m->pruneidx_size > 0) {
        m->prune_mask = power_of_two_above((size_t)m->pruneidx_size * 2) - 1;
        m->prune_keys = malloc(sizeof(int32_t) * (m->prune_mask + 1));
        m->prune_values = malloc(sizeof(int32_t) * (m->prune_mask + 1));
        if (!m->prune_keys || !m->prune_values) { PyErr_NoMemory(); return -1; }
        memset(m->prune_keys, 0xff, sizeof(int32_t) * (m->prune_mask + 1));
        for (int64_t i = 0; i < m->pruneidx_size; i++) {
            int32_t key = read_i32(r), value = read_i32(r);
            if (r->failed) return -1;
            if (key < 0 || value < 0) {
                PyErr_Format(PyExc_ValueError, "%s: negative pruned-row entry", r->path);
                return -1;
            }
            size_t slot = mix32((uint32_t)key) & m->prune_mask;
            while (m->prune_keys[slot] >= 0 && m->prune_keys[slot] != key)
                slot = (slot + 1) & m->prune_mask;
            m->prune_keys[slot] = key;
            m->prune_values[slot] = value;
        }
    }
    return 0;
}

static int prepare_vocabulary_vectors(Model *m) {
    size_t words = (size_t)m->nwords ? (size_t)m->nwords : 1;
    m->vocab_vectors = calloc(words * m->dim, sizeof(double));
    m->vocab_rows = calloc(words, sizeof(int32_t));
    if (!m->vocab_vectors || !m->vocab_rows) { PyErr_NoMemory(); return -1; }
    for (int32_t i = 0; i < m->nwords; i++) {
        double *v = m->vocab_vectors + (size_t)i * m->dim;
        const Entry *e = &m->entries[i];
        add_row(m, v, i);
        int32_t rows = 1;
        if (m->maxn > 0 && !(e->length == 4 && memcmp(e->text, EOS, 4) == 0)) {
            int32_t more = add_subwords(m, e->text, (size_t)e->length, v);
            if (more < 0) { PyErr_NoMemory(); return -1; }
            rows += more;
        }
        m->vocab_rows[i] = rows;
    }
    return 0;
}

static int model_load(Model *m, const char *path, Reader *r, Py_ssize_t cache_bytes) {
    if (read_i32(r) != FASTTEXT_MAGIC || r->failed) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s: not a fastText model file", path);
        return -1;
    }
    int32_t version = read_i32(r);
    if (version != FASTTEXT_VERSION) {
        PyErr_Format(PyExc_NotImplementedError, "%s: fastText file format version %d, not %d", path,
                     version, FASTTEXT_VERSION);
        return -1;
    }
    m->dim = read_i32(r);
    read_i32(r); /* ws */
    read_i32(r); /* epoch */
    read_i32(r); /* minCount */
    read_i32(r); /* neg */
    m->word_ngrams = read_i32(r);
    m->loss = read_i32(r);
    int32_t model = read_i32(r);
    m->bucket = read_i32(r);
    m->minn = read_i32(r);
    m->maxn = read_i32(r);
    read_i32(r); /* lrUpdateRate */
    read_f64(r); /* t */
    if (r->failed) return -1;
    if (model != MODEL_SUPERVISED) {
        PyErr_Format(PyExc_NotImplementedError, "%s: not a supervised (classifier) model", path);
        return -1;
    }
    if (m->loss < LOSS_HS || m->loss > LOSS_OVA || m->dim <= 0 || m->dim > 100000 ||
        m->bucket < 0 || (m->bucket == 0 && (m->maxn > 0 || m->word_ngrams > 1))) {
        PyErr_Format(PyExc_ValueError, "%s: unsupported fastText arguments", path);
        return -1;
    }
    if (read_dictionary(m, r)) return -1;
    int quantized_input = read_u8(r);
    int64_t rows = 0, cols = 0;
    m->input = read_matrix(r, quantized_input, &rows, &cols);
    if (!m->input) return -1;
    int64_t expected = m->nwords + (m->pruneidx_size >= 0 ? m->pruneidx_size : m->bucket);
    if (cols != m->dim || rows != expected) {
        PyErr_Format(PyExc_ValueError, "%s: input matrix is %lld x %lld, expected %lld x %d",
                     path, (long long)rows, (long long)cols, (long long)expected, m->dim);
        return -1;
    }
    m->input_rows = rows;
    int quantized_output = read_u8(r);
    m->output = read_matrix(r, quantized_input && quantized_output, &rows, &cols);
    if (!m->output) return -1;
    if (cols != m->dim || rows != m->nlabels) {
        PyErr_Format(PyExc_ValueError, "%s: output matrix does not match the labels", path);
        return -1;
    }
    m->output_rows = rows;
    for (int i = 0; i < SIGMOID_TABLE_SIZE + 1; i++) {
        float x = (float)(i * 2 * MAX_SIGMOID) / SIGMOID_TABLE_SIZE - MAX_SIGMOID;
        m->sigmoid_table[i] = (float)(1.0 / (1.0 + exp(-x)));
    }
    if (m->loss == LOSS_HS && build_tree(m)) return -1;
    if (prepare_vocabulary_vectors(m)) return -1;
    /* Per cached word: its float vector, offset, length, row count, text and two slots. */
    size_t per_word = sizeof(float) * (size_t)m->dim + 4 + 2 + 4 + CACHE_TEXT_ESTIMATE +
                      2 * sizeof(CacheSlot);
    m->cache_limit = (size_t)cache_bytes / per_word;
    m->scratch_word = malloc(sizeof(double) * (size_t)m->dim);
    if (!m->scratch_word) { PyErr_NoMemory(); return -1; }
    if (m->cache_limit) {
        m->cache_mask = power_of_two_above(m->cache_limit * 2) - 1;
        m->cache_text_size = m->cache_limit * CACHE_TEXT_ESTIMATE;
        m->cache = calloc(m->cache_mask + 1, sizeof(CacheSlot));
        m->cache_offsets = malloc(sizeof(uint32_t) * m->cache_limit);
        m->cache_lengths = malloc(sizeof(uint16_t) * m->cache_limit);
        m->cache_rows = malloc(sizeof(int32_t) * m->cache_limit);
        m->cache_vectors = malloc(sizeof(float) * (size_t)m->dim * m->cache_limit);
        m->cache_text = malloc(m->cache_text_size);
        if (!m->cache || !m->cache_offsets || !m->cache_lengths || !m->cache_rows ||
            !m->cache_vectors || !m->cache_text) {
            PyErr_NoMemory();
            return -1;
        }
    }
    m->lock = PyThread_allocate_lock();
    if (!m->lock) { PyErr_NoMemory(); return -1; }
    m->labels = PyTuple_New(m->nlabels);
    if (!m->labels) return -1;
    for (int32_t i = 0; i < m->nlabels; i++) {
        const Entry *e = &m->entries[m->nwords + i];
        PyObject *label = PyUnicode_DecodeUTF8(e->text, e->length, "replace");
        if (!label) return -1;
        PyTuple_SET_ITEM(m->labels, i, label);
    }
    return 0;
}

static int model_init(Model *m, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"path", "cache_bytes", NULL};
    PyObject *path_object = NULL;
    Py_ssize_t cache_bytes = CACHE_BYTES;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|n", keywords, PyUnicode_FSConverter,
                                     &path_object, &cache_bytes))
        return -1;
    if (m->entries || m->labels) {
        PyErr_SetString(PyExc_RuntimeError, "a model is loaded once");
        Py_DECREF(path_object);
        return -1;
    }
    if (cache_bytes < 0) {
        PyErr_SetString(PyExc_ValueError, "cache_bytes must not be negative");
        Py_DECREF(path_object);
        return -1;
    }
    const char *path = PyBytes_AS_STRING(path_object);
    FILE *file = fopen(path, "rb");
    if (!file) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path_object);
        Py_DECREF(path_object);
        return -1;
    }
    Reader reader = {file, path, 0};
    int status = model_load(m, path, &reader, cache_bytes);
    fclose(file);
    m->path = PyUnicode_DecodeFSDefault(path);
    Py_DECREF(path_object);
    return status || !m->path ? -1 : 0;
}

/* Predict every text of a batch without the GIL; the three result buffers as ``bytes``. */
static PyObject *predict_batch(Model *m, const char *const *data, const Py_ssize_t *lengths,
                               Py_ssize_t count, int k, float threshold, int newline_ends_line) {
    if (!m->lock) {
        PyErr_SetString(PyExc_RuntimeError, "the model was not loaded");
        return NULL;
    }
    if (k == -1) k = m->nlabels;
    if (k <= 0) {
        PyErr_SetString(PyExc_ValueError, "k must be positive or -1");
        return NULL;
    }
    if (k > m->nlabels) k = m->nlabels;
    int32_t *counts = PyMem_Malloc(sizeof(int32_t) * (count + 1));
    int32_t *labels = PyMem_Malloc(sizeof(int32_t) * ((size_t)count * k + 1));
    float *probabilities = PyMem_Malloc(sizeof(float) * ((size_t)count * k + 1));
    Scratch scratch = {0};
    scratch.sum = PyMem_RawMalloc(sizeof(double) * m->dim);
    scratch.hidden = PyMem_RawMalloc(sizeof(float) * m->dim);
    scratch.output = PyMem_RawMalloc(sizeof(float) * m->nlabels);
    Scored *top_items = PyMem_RawMalloc(sizeof(Scored) * (k + 1));
    PyObject *result = NULL;
    if (!counts || !labels || !probabilities || !scratch.sum || !scratch.hidden ||
        !scratch.output || !top_items) {
        PyErr_NoMemory();
        goto done;
    }
    size_t written = 0;
    int failed = 0;
    TopK top = {top_items, 0, k};
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(m->lock, WAIT_LOCK);
    for (Py_ssize_t i = 0; i < count; i++) {
        if (predict_line(m, data[i], (size_t)lengths[i], k, threshold, newline_ends_line,
                         &scratch, &top)) {
            failed = 1;
            break;
        }
        counts[i] = top.size;
        for (int32_t j = 0; j < top.size; j++) {
            labels[written] = top.items[j].label;
            probabilities[written] = expf(top.items[j].score);
            written++;
        }
    }
    PyThread_release_lock(m->lock);
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_BuildValue("(y#y#y#)", (const char *)counts, (Py_ssize_t)(count * 4),
                           (const char *)labels, (Py_ssize_t)(written * 4),
                           (const char *)probabilities, (Py_ssize_t)(written * 4));
done:
    PyMem_Free(counts);
    PyMem_Free(labels);
    PyMem_Free(probabilities);
    PyMem_RawFree(scratch.sum);
    PyMem_RawFree(scratch.hidden);
    PyMem_RawFree(scratch.output);
    PyMem_RawFree(top_items);
    free(scratch.hashes);
    return result;
}

PyDoc_STRVAR(predict_doc,
             "predict(texts, k=1, threshold=0.0) -> (counts, labels, probabilities)\n\n"
             "Top ``k`` labels (``k=-1``: every label) of each text, as fastText predicts the\n"
             "line ``text`` up to its first newline (which, as in fastText, is the\n"
             "end-of-sentence token; a text without one gets it at its end). Returns three\n"
             "``bytes``: int32 counts per text, then the int32 label indexes and float32\n"
             "probabilities of all texts, best first.");

static PyObject *model_predict(Model *m, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"texts", "k", "threshold", NULL};
    PyObject *texts;
    int k = 1;
    float threshold = 0.0f;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|if", keywords, &texts, &k, &threshold))
        return NULL;
    PyObject *sequence = PySequence_Fast(texts, "texts must be a sequence of str");
    if (!sequence) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    PyObject **items = PySequence_Fast_ITEMS(sequence);
    const char **data = PyMem_Malloc(sizeof(char *) * (count + 1));
    Py_ssize_t *lengths = PyMem_Malloc(sizeof(Py_ssize_t) * (count + 1));
    PyObject *cleaned = PyList_New(0); /* UTF-8 copies of texts that are not valid UTF-8 */
    PyObject *result = NULL;
    if (!data || !lengths || !cleaned) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!PyUnicode_Check(items[i])) {
            PyErr_Format(PyExc_TypeError, "texts[%zd] is %.100s, not str", i,
                         Py_TYPE(items[i])->tp_name);
            goto done;
        }
        data[i] = PyUnicode_AsUTF8AndSize(items[i], &lengths[i]);
        if (!data[i]) {
            /* Lone surrogates: encode them as "?" like Python's errors="replace". */
            PyErr_Clear();
            PyObject *bytes = PyUnicode_AsEncodedString(items[i], "utf-8", "replace");
            if (!bytes || PyList_Append(cleaned, bytes)) { Py_XDECREF(bytes); goto done; }
            Py_DECREF(bytes);
            data[i] = PyBytes_AS_STRING(bytes);
            lengths[i] = PyBytes_GET_SIZE(bytes);
        }
    }
    result = predict_batch(m, data, lengths, count, k, threshold, 1);
done:
    Py_DECREF(sequence);
    Py_XDECREF(cleaned);
    PyMem_Free(data);
    PyMem_Free(lengths);
    return result;
}

PyDoc_STRVAR(predict_arrow_doc,
             "predict_arrow(offsets, data, k=1, threshold=0.0, offset_bytes=4)\n"
             "    -> (counts, labels, probabilities)\n\n"
             "``predict`` over an Arrow string column's buffers: ``offsets`` (int32, or int64\n"
             "with ``offset_bytes=8``) and UTF-8 ``data``, read in place. Each whole text is\n"
             "one line: newlines separate words like spaces (fastText on the text with its\n"
             "newlines replaced by spaces), and the end-of-sentence token ends it.");

static PyObject *model_predict_arrow(Model *m, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"offsets", "data", "k", "threshold", "offset_bytes", NULL};
    Py_buffer offsets = {0}, data = {0};
    int k = 1, offset_bytes = 4;
    float threshold = 0.0f;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*y*|ifi", keywords, &offsets, &data, &k,
                                     &threshold, &offset_bytes))
        return NULL;
    PyObject *result = NULL;
    const char **starts = NULL;
    Py_ssize_t *lengths = NULL;
    if (offset_bytes != 4 && offset_bytes != 8) {
        PyErr_SetString(PyExc_ValueError, "offset_bytes must be 4 or 8");
        goto done;
    }
    if (offsets.len < offset_bytes || offsets.len % offset_bytes) {
        PyErr_SetString(PyExc_ValueError, "offsets must hold at least one offset");
        goto done;
    }
    Py_ssize_t count = offsets.len / offset_bytes - 1;
    starts = PyMem_Malloc(sizeof(char *) * (count + 1));
    lengths = PyMem_Malloc(sizeof(Py_ssize_t) * (count + 1));
    if (!starts || !lengths) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t begin, end;
        if (offset_bytes == 4) {
            int32_t pair[2];
            memcpy(pair, (const char *)offsets.buf + i * 4, 8);
            begin = pair[0];
            end = pair[1];
        } else {
            int64_t pair[2];
            memcpy(pair, (const char *)offsets.buf + i * 8, 16);
            begin = pair[0];
            end = pair[1];
        }
        if (begin < 0 || end < begin || end > data.len) {
            PyErr_Format(PyExc_ValueError, "offsets[%zd:%zd] = %lld, %lld lie outside the data",
                         i, i + 2, (long long)begin, (long long)end);
            goto done;
        }
        starts[i] = (const char *)data.buf + begin;
        lengths[i] = (Py_ssize_t)(end - begin);
    }
    result = predict_batch(m, starts, lengths, count, k, threshold, 0);
done:
    PyMem_Free(starts);
    PyMem_Free(lengths);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    return result;
}

static PyObject *model_get_labels(Model *m, void *closure) {
    (void)closure;
    Py_INCREF(m->labels);
    return m->labels;
}

static PyObject *model_get_args(Model *m, void *closure) {
    (void)closure;
    static const char *losses[] = {"", "hs", "ns", "softmax", "ova"};
    return Py_BuildValue("{s:i,s:i,s:s,s:i,s:i,s:i,s:i,s:L,s:i}", "dim", m->dim, "word_ngrams",
                         m->word_ngrams, "loss", losses[m->loss], "bucket", m->bucket, "minn",
                         m->minn, "maxn", m->maxn, "nwords", m->nwords, "pruned_rows",
                         (long long)m->pruneidx_size, "nlabels", m->nlabels);
}

static PyMethodDef model_methods[] = {
    {"predict", (PyCFunction)(void (*)(void))model_predict, METH_VARARGS | METH_KEYWORDS,
     predict_doc},
    {"predict_arrow", (PyCFunction)(void (*)(void))model_predict_arrow,
     METH_VARARGS | METH_KEYWORDS, predict_arrow_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef model_getset[] = {
    {"labels", (getter)model_get_labels, NULL, "the labels, in the model's order", NULL},
    {"args", (getter)model_get_args, NULL, "the model's arguments that prediction uses", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "gristmill.native.fasttext_predict.Model",
    .tp_basicsize = sizeof(Model),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = PyDoc_STR("Model(path, cache_bytes=64 MiB): a fastText classifier (.bin or .ftz)\n"
                        "loaded for batched prediction; ``cache_bytes`` bounds the word cache."),
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)model_init,
    .tp_dealloc = (destructor)model_dealloc,
    .tp_methods = model_methods,
    .tp_getset = model_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "fasttext_predict",
    "fastText classifier prediction over whole batches, with a word-vector cache.", -1, NULL,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_fasttext_predict(void) {
    if (PyType_Ready(&ModelType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&ModelType);
    if (PyModule_AddObject(m, "Model", (PyObject *)&ModelType) < 0) {
        Py_DECREF(&ModelType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
