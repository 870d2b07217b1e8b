/*
 * English words of a batch of texts, as datatrove's ``split_into_words`` (spaCy's English
 * tokenizer) gives them, approximated by a fixed set of regular-expression rules. This file
 * is those rules run by hand: it gives exactly the words that the polars expression
 *
 *     _spaced(text).str.extract_all(WORD_PATTERN)
 *
 * gave (Rust's regex crate: leftmost-first alternation, non-overlapping matches left to
 * right, greedy repetition with backtracking); ``tests/native/test_words.py`` keeps those
 * regexes as the reference and checks that both agree. A text goes through four steps, each
 * on the code points the step before wrote:
 *
 *   1. clitics (``_CLITIC``): a space between a head and the clitic after it:
 *        (\w)(n't\b)  (\w)('[sS])\b  \b(PRONOUN)('d|'ll|'re|'ve|'m)\b  \b(AUXILIARY)(nt)\b
 *        \b(can)(not)\b  \b(gon|got)(na|ta)\b  \b(1[0-2]|[1-9])([ap]m)\b
 *      (letters case-insensitive but the last, apostrophe ' or U+2019);
 *   2. letter infixes (``_LETTER_INFIX``): a URL is copied with two spaces after it, else
 *        ([\p{L}\d])([-–—~/:<>=])(\p{L}) -> "a - b"   (\p{L})(,)(\p{L}) -> "a , b"
 *        ([\p{Ll}"'”’])(\.)(\p{Lu}) -> "a . B"      (\.\.+|…|ICON) -> " … "
 *      (the letter after an infix is consumed: "a-b-c" gives "a - b-c");
 *   3. digit infixes (``_DIGIT_INFIX``): URLs again, else (\d)([-+*^])(\d) -> "1 - 2";
 *   4. words (``WORD_PATTERN``), the first alternative that matches at each position:
 *        URL: (https?://|www\.)[^WS]*[\w/]     ABBREVIATION: \b(Adm|...|vs)\.
 *        \b(\p{L}\.){2,}    \p{L}\.[^WS]*CORE    \b\p{L}\.    n't    '(s|ll|re|ve|d|m)\b
 *        ……    \.{2,}    \p{Georgian}+\.    START([^WS]*END)?    [^WS]
 *      where CORE is any non-space character that is not an affix (AFFIXES), START also
 *      allows ".", and END also allows "$£€¥§=+".
 *
 * \b is an ASCII word boundary ((?-u:\b)): between two code points, exactly one of them is
 * [0-9A-Za-z_]. Case-insensitive letters follow Rust's simple case folding: "s" also matches
 * U+017F (long s). \w, \d, \p{L}, \p{Ll}, \p{Lu} and \p{Georgian} are the regex crate's own
 * tables (unicode_tables.h, generated from the engine by scripts/gen_unicode_tables.py); WS
 * is Python's str.isspace.
 *
 * ``word_stats`` then counts, per document, what gopher_quality's rules take from its words
 * (words, content words and their code points, words with a letter, distinct stop words),
 * straight from the Arrow string views polars holds them in (see "word statistics").
 *
 * ``batch``'s input: Arrow string or large_string buffers (validity, offsets, UTF-8 data).
 * Output: the buffers of a large_list<large_string>: word offsets per text, byte offsets per
 * word, UTF-8 bytes, as objects exposing the buffer protocol (no copy into Python). A null
 * text gives no words. Invalid UTF-8 or inconsistent buffers raise ValueError. The work runs
 * without the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "int64_buffer.h"
#include "unicode_tables.h"

/* -- character classes ---------------------------------------------------------------------- */

enum {
    F_SPACE = 1 << 0,
    F_WORD = 1 << 1,
    F_DIGIT = 1 << 2,
    F_LETTER = 1 << 3,
    F_LOWER = 1 << 4,
    F_UPPER = 1 << 5,
    F_GEORGIAN = 1 << 6,
    F_AFFIX = 1 << 7,    /* peeled off a chunk's ends (_AFFIXES) */
    F_END_OK = 1 << 8,   /* an affix that may still end a chunk's core: $£€¥§=+ */
    F_ICON = 1 << 9,     /* split off wherever it stands (_ICONS) */
    F_INFIX = 1 << 10,   /* letter infixes: - – — ~ / : < > = */
    F_ASCII_W = 1 << 11, /* [0-9A-Za-z_] */
    /* Where a step's match can start: its first code point, or the one after it. */
    F_CLITIC_FIRST = 1 << 12, /* first letters of the clitic rules' words, and digits */
    F_CLITIC_NEXT = 1 << 13,  /* n N ' ’ */
    F_LETTER_FIRST = 1 << 14, /* h w . … ICONS */
    F_LETTER_NEXT = 1 << 15,  /* INFIXES , . */
    F_DIGIT_FIRST = 1 << 16,  /* h w */
    F_DIGIT_NEXT = 1 << 17,   /* - + * ^ */
    /* What a chunk (a run of non-space code points) must hold for a step to change it. */
    F_APOS = 1 << 18,  /* ' ’: the clitic rules that start at an apostrophe or a pronoun */
    /* A match of step 2 holds … or an icon, or one of INFIXES , . with a code point after
     * it (the URLs too: "://", "www." at a chunk's end changes no word); of step 3 one of
     * - + * ^ . : with a code point after it. */
    F_STEP2_ANY = 1 << 19,   /* … ICONS */
    F_STEP2_INNER = 1 << 20, /* INFIXES , . */
    F_STEP3_INNER = 1 << 21, /* - + * ^ . : */
    F_PLAIN = 1 << 22,       /* above 0x7F and none of the rules looks at it: see fast_chunk */
};

/* ASCII bytes for the fast path (see fast_chunk). */
enum {
    A_SPACE = 1 << 0, /* ASCII whitespace (Python's str.isspace) */
    A_ALNUM = 1 << 1, /* [0-9A-Za-z] */
    A_ALPHA = 1 << 2, /* [A-Za-z] */
    A_LEAD = 1 << 3,  /* affixes that may open a simple chunk: ( [ { " * # ` & */
    A_TRAIL = 1 << 4, /* affixes that may close it: . , ; : ! ? ) ] } " ' % * & */
};
static uint8_t acls[256];

#define MAX_CP 0x110000
static uint32_t *flags; /* one entry per code point */

static inline uint32_t flags_of(uint32_t c) { return flags[c]; }

static const char AFFIXES[] =
    "…,:;!?¿؟¡()[]{}<>_#*&。？！，、；：～·।،۔؛٪'\"”“`‘´’‚„»«「」『』（）〔〕【】《》〈〉⟦⟧"
    "$£€¥฿₽﷼₴₠₡₢₣₤₥₦₧₨₩₪₫₭₮₯₰₱₲₳₵₶₷₸₹₺₻₼₾₿§%=—–+.";
static const char END_OK[] = "$£€¥§=+";
static const char ICONS[] = "°®©™♪♫○●■□▪•→←↑↓★☆✓✔\xEF\xBF\xBC\xEF\xBF\xBD"; /* + U+FFFC/D */
static const char INFIXES[] = "-–—~/:<>=";

static const char *const ABBREVIATIONS[] = {
    "Adm", "Ak", "Ala", "Apr", "Ariz", "Ark", "Aug", "Bros", "Calif", "Co", "Colo", "Conn",
    "Corp", "Dec", "Del", "Dr", "Feb", "Fla", "Ga", "Gen", "Gov", "Ia", "Id", "Ill", "Inc",
    "Ind", "Jan", "Jr", "Jul", "Jun", "Kan", "Kans", "Ky", "La", "Ltd", "Mar", "Mass", "Md",
    "Messrs", "Mich", "Minn", "Miss", "Mo", "Mont", "Mr", "Mrs", "Ms", "Mt", "Neb", "Nebr",
    "Nev", "Nov", "Oct", "Okla", "Ore", "Pa", "Prof", "Rep", "Rev", "Sen", "Sep", "Sept", "St",
    "Tenn", "Va", "Wash", "Wis", "co", "vs", NULL};
#define MAX_ABBREVIATION 6
static const char *const PRONOUNS[] = {
    "i", "you", "he", "she", "it", "we", "they", "that", "there", "these", "this", "those",
    "what", "when", "where", "who", "why", "how", NULL};
static const char *const PRONOUN_CLITICS[] = {"d", "ll", "re", "ve", "m", NULL};
static const char *const AUXILIARIES[] = {
    "ai", "are", "ca", "could", "dare", "did", "does", "do", "had", "has", "have", "is", "may",
    "might", "must", "need", "ought", "sha", "should", "was", "were", "wo", "would", NULL};
static const char *const GON_GOT[] = {"gon", "got", NULL};
static const char *const NA_TA[] = {"na", "ta", NULL};
static const char *const WORD_CLITICS[] = {"s", "ll", "re", "ve", "d", "m", NULL};

/* The next code point of valid UTF-8 (the literals above). */
static uint32_t next_literal(const unsigned char **p) {
    const unsigned char *s = *p;
    uint32_t c;
    if (s[0] < 0x80) {
        c = s[0];
        *p = s + 1;
    } else if (s[0] < 0xE0) {
        c = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        *p = s + 2;
    } else if (s[0] < 0xF0) {
        c = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        *p = s + 3;
    } else {
        c = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
            ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        *p = s + 4;
    }
    return c;
}

static void mark_literals(const char *chars, uint32_t flag) {
    const unsigned char *p = (const unsigned char *)chars;
    while (*p) flags[next_literal(&p)] |= flag;
}

static void mark_ranges(const uint32_t (*ranges)[2], size_t count, uint32_t flag) {
    for (size_t r = 0; r < count; r++)
        for (uint32_t c = ranges[r][0]; c <= ranges[r][1]; c++) flags[c] |= flag;
}

#define MARK(table, flag) mark_ranges(table, sizeof(table) / sizeof(table[0]), flag)

static int build_flags(void) {
    flags = calloc(MAX_CP, sizeof(uint32_t));
    if (!flags) return -1;
    MARK(space_ranges, F_SPACE);
    MARK(word_ranges, F_WORD);
    MARK(digit_ranges, F_DIGIT);
    MARK(letter_ranges, F_LETTER);
    MARK(lower_ranges, F_LOWER);
    MARK(upper_ranges, F_UPPER);
    MARK(georgian_ranges, F_GEORGIAN);
    mark_literals(AFFIXES, F_AFFIX);
    mark_literals(END_OK, F_END_OK);
    mark_literals(ICONS, F_ICON);
    mark_literals(INFIXES, F_INFIX);
    for (uint32_t c = '0'; c <= '9'; c++) flags[c] |= F_ASCII_W;
    for (uint32_t c = 'A'; c <= 'Z'; c++) flags[c] |= F_ASCII_W;
    for (uint32_t c = 'a'; c <= 'z'; c++) flags[c] |= F_ASCII_W;
    flags['_'] |= F_ASCII_W;
    mark_literals("iyhstwacdmnogIYHSTWACDMNOG123456789\xC5\xBF", F_CLITIC_FIRST); /* + long s */
    mark_literals("nN'’", F_CLITIC_NEXT);
    mark_literals("hw.…", F_LETTER_FIRST);
    mark_literals(ICONS, F_LETTER_FIRST);
    mark_literals(INFIXES, F_LETTER_NEXT);
    mark_literals(",.", F_LETTER_NEXT);
    mark_literals("hw", F_DIGIT_FIRST);
    mark_literals("-+*^", F_DIGIT_NEXT);
    mark_literals("'’", F_APOS);
    mark_literals("…", F_STEP2_ANY);
    mark_literals(ICONS, F_STEP2_ANY);
    mark_literals(INFIXES, F_STEP2_INNER);
    mark_literals(",.", F_STEP2_INNER);
    mark_literals("-+*^.:", F_STEP3_INNER);
    const uint32_t looked_at = F_SPACE | F_AFFIX | F_ICON | F_INFIX | F_GEORGIAN | F_CLITIC_FIRST |
                               F_CLITIC_NEXT | F_APOS | F_STEP2_ANY | F_STEP2_INNER |
                               F_STEP3_INNER;
    for (uint32_t c = 0x80; c < MAX_CP; c++)
        if (!(flags[c] & looked_at)) flags[c] |= F_PLAIN;
    for (unsigned c = 0; c < 128; c++) {
        if (flags[c] & F_SPACE) acls[c] |= A_SPACE;
        if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) acls[c] |= A_ALNUM;
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') acls[c] |= A_ALPHA;
        if (strchr("([{\"*#`&", (int)c) && c) acls[c] |= A_LEAD;
        if (strchr(".,;:!?)]}\"'%*&", (int)c) && c) acls[c] |= A_TRAIL;
    }
    return 0;
}

#define HAS(c, f) (flags_of(c) & (f))

/* A text as code points, with a sentinel 0 after its end (0 matches no literal below). */
typedef struct {
    uint32_t *s;
    size_t n, cap;
} Text;

static inline uint32_t at(const Text *t, size_t i) { return i < t->n ? t->s[i] : 0; }

/* (?-u:\b) at position i (0..n): one side an ASCII word character, the other not. */
static inline int boundary(const Text *t, size_t i) {
    int before = i > 0 && HAS(t->s[i - 1], F_ASCII_W);
    int after = i < t->n && HAS(t->s[i], F_ASCII_W);
    return before != after;
}

static inline int is_letter_or_long_s(uint32_t c) {
    return (c < 128 && (c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == 0x17F;
}

static inline int apostrophe(uint32_t c) { return c == '\'' || c == 0x2019; }

/* Code point c against the lowercase ASCII letter p, case-insensitively (Rust's simple case
 * folding: "s" also matches U+017F LATIN SMALL LETTER LONG S, "k" U+212A KELVIN SIGN). */
static inline int fold_eq(uint32_t c, char p) {
    if (c < 128) return c == (uint32_t)p || c == (uint32_t)p - 32;
    return (p == 's' && c == 0x17F) || (p == 'k' && c == 0x212A);
}

/* Length of the case-insensitive literal at i, or 0. */
static size_t fold_at(const Text *t, size_t i, const char *lit) {
    size_t k = 0;
    for (; lit[k]; k++)
        if (!fold_eq(at(t, i + k), lit[k])) return 0;
    return k;
}

static size_t literal_at(const Text *t, size_t i, const char *lit) {
    size_t k = 0;
    for (; lit[k]; k++)
        if (at(t, i + k) != (unsigned char)lit[k]) return 0;
    return k;
}

/* -- growing buffers ------------------------------------------------------------------------ */

static int reserve_text(Text *t, size_t need) {
    if (need <= t->cap) return 0;
    size_t cap = t->cap ? t->cap : 1024;
    while (cap < need) cap *= 2;
    uint32_t *s = realloc(t->s, cap * sizeof(uint32_t));
    if (!s) return -1;
    t->s = s;
    t->cap = cap;
    return 0;
}

typedef struct {
    char *data;
    size_t size, cap;
} Bytes;

static int reserve_bytes(Bytes *b, size_t need) {
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

/* Appends s[from:to] plus up to `extra` code points later: room for all of them. */
#define APPEND(out, src, from, to, extra)                                                    \
    do {                                                                                     \
        if (reserve_text((out), (out)->n + ((to) - (from)) + (extra))) return -1;            \
        memcpy((out)->s + (out)->n, (src)->s + (from), ((to) - (from)) * sizeof(uint32_t));  \
        (out)->n += (to) - (from);                                                           \
    } while (0)
#define PUT(out, c) ((out)->s[(out)->n++] = (c))

/* -- step 1: clitics ------------------------------------------------------------------------ */

/* A clitic match at i: its end, and where the space goes; 0 if none. */
static size_t clitic_at(const Text *t, size_t i, size_t *split) {
    uint32_t c = t->s[i];
    if (HAS(c, F_WORD)) {
        uint32_t c1 = at(t, i + 1);
        /* (\w)((?i:n['’]t)(?-u:\b)) */
        if (fold_eq(c1, 'n') && apostrophe(at(t, i + 2)) && fold_eq(at(t, i + 3), 't') &&
            boundary(t, i + 4)) {
            *split = i + 1;
            return i + 4;
        }
        /* (\w)(['’][sS])(?-u:\b) */
        if (apostrophe(c1) && (at(t, i + 2) == 's' || at(t, i + 2) == 'S') &&
            boundary(t, i + 3)) {
            *split = i + 1;
            return i + 3;
        }
    }
    if (!boundary(t, i)) return 0;
    /* The words below are letters (long s folds to "s"): each match lies in the run of them
     * at i, and a pronoun's apostrophe is the code point right after that run. */
    size_t run = 0;
    while (run < 8 && is_letter_or_long_s(at(t, i + run))) run++;
    char first = run ? (char)(c < 128 ? c | 0x20 : 's') : 0;
    /* \b((?i:PRONOUN))(['’](?i:d|ll|re|ve|m))\b */
    if (run && run <= 5 && apostrophe(at(t, i + run)))
        for (const char *const *p = PRONOUNS; *p; p++) {
            if (**p != first || strlen(*p) != run || !fold_at(t, i, *p)) continue;
            for (const char *const *q = PRONOUN_CLITICS; *q; q++) {
                size_t m = fold_at(t, i + run + 1, *q);
                if (m && boundary(t, i + run + 1 + m)) {
                    *split = i + run;
                    return i + run + 1 + m;
                }
            }
        }
    /* \b((?i:AUXILIARY))((?i:nt))\b: "nt" lies within the first 8 letters ("shouldnt") */
    int nt = 0;
    for (size_t j = 2; j + 1 < run && !nt; j++)
        nt = fold_eq(t->s[i + j], 'n') && fold_eq(t->s[i + j + 1], 't');
    if (nt)
        for (const char *const *p = AUXILIARIES; *p; p++) {
            if (**p != first) continue;
            size_t k = fold_at(t, i, *p);
            if (k && fold_at(t, i + k, "nt") && boundary(t, i + k + 2)) {
                *split = i + k;
                return i + k + 2;
            }
        }
    /* \b((?i:can))((?i:not))\b */
    if (run >= 6 && fold_at(t, i, "can") && fold_at(t, i + 3, "not") && boundary(t, i + 6)) {
        *split = i + 3;
        return i + 6;
    }
    /* \b((?i:gon|got))((?i:na|ta))\b */
    if (run >= 5)
        for (const char *const *p = GON_GOT; *p; p++) {
            if (!fold_at(t, i, *p)) continue;
            for (const char *const *q = NA_TA; *q; q++)
                if (fold_at(t, i + 3, *q) && boundary(t, i + 5)) {
                    *split = i + 3;
                    return i + 5;
                }
        }
    /* \b(1[0-2]|[1-9])([ap]m)\b */
    for (size_t k = 2; k >= 1; k--) {
        int digits = k == 2 ? c == '1' && at(t, i + 1) >= '0' && at(t, i + 1) <= '2'
                            : c >= '1' && c <= '9';
        uint32_t a = at(t, i + k);
        if (digits && (a == 'a' || a == 'p') && at(t, i + k + 1) == 'm' &&
            boundary(t, i + k + 2)) {
            *split = i + k;
            return i + k + 2;
        }
    }
    return 0;
}

/* Whether a word-clitic rule (AUXILIARY+nt, cannot, gonna..., hours) may match at i, where
 * (?-u:\b) holds. Such a match is 3 to 8 letters, digits or long s, and ends before a code
 * point that is not [0-9A-Za-z_]: without a long s in the way, at the end of the run of
 * [0-9A-Za-z] at i, which then ends in nt, ot, na, ta, am or pm (any case). */
static int word_clitic_may_match(const Text *t, size_t i) {
    size_t j = i;
    while (j < t->n && j - i < 9) {
        uint32_t c = t->s[j];
        if (c == 0x17F) return 1;
        if (c >= 128 || !(acls[c] & A_ALNUM)) break;
        j++;
    }
    if (j - i < 3 || j - i > 8) return 0;
    uint32_t x = t->s[j - 2] | 0x20, y = t->s[j - 1] | 0x20;
    return (y == 't' && (x == 'n' || x == 'o')) || (y == 'a' && (x == 'n' || x == 't')) ||
           (y == 'm' && (x == 'a' || x == 'p'));
}

/* Step 1 on a chunk. apostrophes: whether it holds ' or ’ (else no pronoun rule can match).
 * 1: no match (out is not written), 0: out holds the result, -1: out of memory. */
static int clitics(const Text *in, Text *out, int apostrophes) {
    out->n = 0;
    size_t copied = 0;
    for (size_t i = 0; i < in->n;) {
        /* n't and 's start one code point before n/N/apostrophe; the others at \b */
        if (!HAS(at(in, i + 1), F_CLITIC_NEXT) &&
            !(HAS(in->s[i], F_CLITIC_FIRST) && boundary(in, i) &&
              (apostrophes || word_clitic_may_match(in, i)))) {
            i++;
            continue;
        }
        size_t split, end = clitic_at(in, i, &split);
        if (!end) {
            i++;
            continue;
        }
        APPEND(out, in, copied, split, 1);
        PUT(out, ' ');
        APPEND(out, in, split, end, 0);
        copied = i = end;
    }
    if (!copied) return 1;
    APPEND(out, in, copied, in->n, 0);
    return 0;
}

/* -- steps 2 and 3: infixes ----------------------------------------------------------------- */

/* (?:https?://|www\.) at i: its length, or 0. */
static size_t url_prefix(const Text *t, size_t i) {
    size_t k;
    if (!((t->s[i] == 'h' && at(t, i + 1) == 't') || (t->s[i] == 'w' && at(t, i + 1) == 'w')))
        return 0;
    if ((k = literal_at(t, i, "https://")) || (k = literal_at(t, i, "http://")) ||
        (k = literal_at(t, i, "www.")))
        return k;
    return 0;
}

static size_t run_end(const Text *t, size_t i) {
    while (i < t->n && !HAS(t->s[i], F_SPACE)) i++;
    return i;
}

/* letters: 1 for _LETTER_INFIX, 0 for _DIGIT_INFIX. Returns as clitics(). */
static int infixes(const Text *in, Text *out, int letters) {
    out->n = 0;
    size_t copied = 0;
    uint32_t first = letters ? F_LETTER_FIRST : F_DIGIT_FIRST;
    uint32_t next = letters ? F_LETTER_NEXT : F_DIGIT_NEXT;
    for (size_t i = 0; i < in->n;) {
        uint32_t c = in->s[i], c1 = at(in, i + 1);
        if (!HAS(c, first) && !HAS(c1, next)) {
            i++;
            continue;
        }
        uint32_t c2 = at(in, i + 2);
        size_t prefix = url_prefix(in, i);
        if (prefix) { /* ((?:https?://|www\.)[^WS]*) -> itself and two spaces */
            size_t end = run_end(in, i + prefix);
            APPEND(out, in, copied, end, 2);
            PUT(out, ' ');
            PUT(out, ' ');
            copied = i = end;
            continue;
        }
        int infix;
        if (letters)
            infix = (HAS(c, F_LETTER | F_DIGIT) && HAS(c1, F_INFIX) && HAS(c2, F_LETTER)) ||
                    (HAS(c, F_LETTER) && c1 == ',' && HAS(c2, F_LETTER)) ||
                    ((HAS(c, F_LOWER) || c == '"' || c == '\'' || c == 0x201D || c == 0x2019) &&
                     c1 == '.' && HAS(c2, F_UPPER));
        else
            infix = HAS(c, F_DIGIT) && (c1 == '-' || c1 == '+' || c1 == '*' || c1 == '^') &&
                    HAS(c2, F_DIGIT);
        if (infix) { /* (a)(infix)(b) -> "a infix b" */
            APPEND(out, in, copied, i, 5);
            PUT(out, c);
            PUT(out, ' ');
            PUT(out, c1);
            PUT(out, ' ');
            PUT(out, c2);
            copied = i = i + 3;
            continue;
        }
        if (letters) { /* ()(\.\.+|…|[ICONS])() -> " match " */
            size_t end = 0;
            if (c == '.' && c1 == '.') {
                end = i + 2;
                while (end < in->n && in->s[end] == '.') end++;
            } else if (c == 0x2026 || HAS(c, F_ICON))
                end = i + 1;
            if (end) {
                APPEND(out, in, copied, i, 1);
                PUT(out, ' ');
                APPEND(out, in, i, end, 1);
                PUT(out, ' ');
                copied = i = end;
                continue;
            }
        }
        i++;
    }
    if (!copied) return 1;
    APPEND(out, in, copied, in->n, 0);
    return 0;
}

/* -- step 4: words -------------------------------------------------------------------------- */

static inline int core(uint32_t c) { return !HAS(c, F_SPACE | F_AFFIX); }
static inline int start_ok(uint32_t c) { return core(c) || c == '.'; }
static inline int end_ok(uint32_t c) { return core(c) || HAS(c, F_END_OK); }

/* The non-space run being split, and the last position in it of each class a word may end
 * with (SIZE_MAX: none): found once per run, so a long run costs linear time. */
typedef struct {
    size_t end, last_word_slash, last_core, last_end;
} Run;

static void scan_run(const Text *t, size_t i, Run *run) {
    run->end = run_end(t, i);
    run->last_word_slash = run->last_core = run->last_end = SIZE_MAX;
    for (size_t j = run->end; j-- > i;) {
        uint32_t c = t->s[j];
        if (run->last_word_slash == SIZE_MAX && (HAS(c, F_WORD) || c == '/'))
            run->last_word_slash = j;
        if (run->last_core == SIZE_MAX && core(c)) run->last_core = j;
        if (run->last_end == SIZE_MAX && end_ok(c)) run->last_end = j;
        if (run->last_word_slash != SIZE_MAX && run->last_core != SIZE_MAX &&
            run->last_end != SIZE_MAX)
            break;
    }
}

/* last: the run's last position of a class; the match needs it at or after `from`. */
static inline size_t ending(size_t last, size_t from) {
    return last != SIZE_MAX && last >= from ? last + 1 : 0;
}

/* The end of the word that starts at i (a non-space code point). */
static size_t word_at(const Text *t, size_t i, const Run *run) {
    uint32_t c = t->s[i], c1 = at(t, i + 1);
    size_t end;
    /* (?:https?://|www\.)[^WS]*[\w/] */
    size_t prefix = url_prefix(t, i);
    if (prefix && (end = ending(run->last_word_slash, i + prefix))) return end;
    int b = boundary(t, i);
    /* \b(?:ABBREVIATION)\. */
    if (b && c < 128 && ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) {
        size_t k = 0;
        char head[MAX_ABBREVIATION + 1];
        while (k <= MAX_ABBREVIATION) {
            uint32_t d = at(t, i + k);
            if (!(d < 128 && (d | 0x20) >= 'a' && (d | 0x20) <= 'z')) break;
            head[k++] = (char)d;
        }
        if (k <= MAX_ABBREVIATION && at(t, i + k) == '.') {
            head[k] = 0;
            for (const char *const *a = ABBREVIATIONS; *a; a++)
                if (!strcmp(head, *a)) return i + k + 1;
        }
    }
    if (HAS(c, F_LETTER) && c1 == '.') {
        /* \b(?:\p{L}\.){2,} */
        if (b && HAS(at(t, i + 2), F_LETTER) && at(t, i + 3) == '.') {
            end = i + 4;
            while (HAS(at(t, end), F_LETTER) && at(t, end + 1) == '.') end += 2;
            return end;
        }
        /* \p{L}\.[^WS]*CORE */
        if ((end = ending(run->last_core, i + 2))) return end;
        /* \b\p{L}\. */
        if (b) return i + 2;
    }
    /* (?i:n['’]t) */
    if (fold_eq(c, 'n') && apostrophe(c1) && fold_eq(at(t, i + 2), 't')) return i + 3;
    /* ['’](?i:s|ll|re|ve|d|m)(?-u:\b) */
    if (apostrophe(c))
        for (const char *const *q = WORD_CLITICS; *q; q++) {
            size_t m = fold_at(t, i + 1, *q);
            if (m && boundary(t, i + 1 + m)) return i + 1 + m;
        }
    /* …… */
    if (c == 0x2026 && c1 == 0x2026) return i + 2;
    /* \.{2,} */
    if (c == '.' && c1 == '.') {
        end = i + 2;
        while (at(t, end) == '.') end++;
        return end;
    }
    /* \p{Georgian}+\. */
    if (HAS(c, F_GEORGIAN)) {
        end = i + 1;
        while (HAS(at(t, end), F_GEORGIAN)) end++;
        if (at(t, end) == '.') return end + 1;
    }
    /* START(?:[^WS]*END)? */
    if (start_ok(c)) return (end = ending(run->last_end, i + 1)) ? end : i + 1;
    /* [^WS] */
    return i + 1;
}

static inline size_t utf8_put(char *out, uint32_t c) {
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

typedef struct {
    Bytes list_offsets;  /* int64 per text + 1 */
    Bytes value_offsets; /* int64 per word + 1 */
    Bytes data;
    int64_t words;
} Output;

static int push_offset(Bytes *b, int64_t value) {
    if (reserve_bytes(b, b->size + sizeof(int64_t))) return -1;
    memcpy(b->data + b->size, &value, sizeof(int64_t));
    b->size += sizeof(int64_t);
    return 0;
}

/* Room for the words of a text of len bytes: each word is a run of its own code points (the
 * steps only add spaces, which no word holds), so at most len words of len bytes in all. The
 * writers below rely on it and check nothing. */
static int reserve_words(Output *out, size_t len) {
    if (reserve_bytes(&out->data, out->data.size + len)) return -1;
    return reserve_bytes(&out->value_offsets, out->value_offsets.size + len * sizeof(int64_t));
}

/* Ends the word whose bytes were just written. */
static inline void end_word(Output *out) {
    int64_t end = (int64_t)out->data.size;
    memcpy(out->value_offsets.data + out->value_offsets.size, &end, sizeof end);
    out->value_offsets.size += sizeof end;
    out->words++;
}

static inline void put_word(Output *out, const unsigned char *s, size_t n) {
    memcpy(out->data.data + out->data.size, s, n);
    out->data.size += n;
    end_word(out);
}

static void split_words(const Text *t, Output *out) {
    Run run = {0, SIZE_MAX, SIZE_MAX, SIZE_MAX};
    for (size_t i = 0; i < t->n;) {
        if (HAS(t->s[i], F_SPACE)) {
            i++;
            continue;
        }
        if (i >= run.end) scan_run(t, i, &run);
        size_t end = word_at(t, i, &run);
        char *d = out->data.data + out->data.size;
        for (size_t j = i; j < end; j++) d += utf8_put(d, t->s[j]);
        out->data.size = (size_t)(d - out->data.data);
        end_word(out);
        i = end;
    }
}

/* -- one text, chunk by chunk --------------------------------------------------------------- */

/* No match of any step holds a space, and every step reads past a match only to see whether
 * the next code point is a letter, a digit, a period..., which a space is not: a step does to
 * a chunk (a maximal run of non-space code points) what it does to it inside the text. So
 * each chunk goes through the steps alone, and most skip them (below). */

/* The code point of UTF-8 at s[i..len) (s[i] >= 0x80): its length, or 0 if invalid. */
static inline size_t decode_at(const unsigned char *s, size_t len, size_t i, uint32_t *cp) {
    unsigned char b = s[i];
    if (b >= 0xC2 && b < 0xE0) {
        if (i + 1 >= len || (s[i + 1] & 0xC0) != 0x80) return 0;
        *cp = ((uint32_t)(b & 0x1F) << 6) | (s[i + 1] & 0x3F);
        return 2;
    }
    if (b >= 0xE0 && b < 0xF0) {
        if (i + 2 >= len || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80) return 0;
        uint32_t c = ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) |
                     (s[i + 2] & 0x3F);
        if (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF)) return 0;
        *cp = c;
        return 3;
    }
    if (b >= 0xF0 && b < 0xF5) {
        if (i + 3 >= len || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 ||
            (s[i + 3] & 0xC0) != 0x80)
            return 0;
        uint32_t c = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
                     ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
        if (c < 0x10000 || c >= MAX_CP) return 0;
        *cp = c;
        return 4;
    }
    return 0;
}

static int is_abbreviation(const unsigned char *s, size_t n) {
    if (n < 2 || !((s[0] >= 'A' && s[0] <= 'Z') || s[0] == 'c' || s[0] == 'v')) return 0;
    for (const char *const *a = ABBREVIATIONS; *a; a++)
        if ((unsigned char)**a == s[0] && strlen(*a) == n && !memcmp(*a, s, n)) return 1;
    return 0;
}

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* The bytes of x (little-endian) that are not [0-9A-Za-z]: their high bit. Each range test
 * adds to 7-bit values, so no byte carries into the next. */
static inline uint64_t not_alnum8(uint64_t x) {
    const uint64_t ones = 0x0101010101010101ULL, high = ones * 0x80;
    uint64_t y = x & ~high, z = y | (ones * 0x20);
    uint64_t digit = (y + ones * (0x80 - '0')) & ~(y + ones * (0x7F - '9'));
    uint64_t letter = (z + ones * (0x80 - 'a')) & ~(z + ones * (0x7F - 'z'));
    return ~((digit | letter) & ~x) & high;
}
#define SWAR 1
#endif

/* Whether a word clitic rule (AUXILIARY+nt, cannot, gonna..., hours) matches all of the run
 * of [0-9A-Za-z] s[r..b) (3 to 8 long). */
static int word_clitic(const unsigned char *s, size_t r, size_t b) {
    size_t n = b - r;
    char w[9];
    for (size_t k = 0; k < n; k++) w[k] = (char)(s[r + k] | (s[r + k] >= 'A' ? 0x20 : 0));
    w[n] = 0;
    if (n <= 4) { /* (1[0-2]|[1-9])([ap]m), case-sensitive */
        const unsigned char *h = s + b - 2;
        if ((h[0] == 'a' || h[0] == 'p') && h[1] == 'm' &&
            (n == 3 ? s[r] >= '1' && s[r] <= '9' : s[r] == '1' && s[r + 1] >= '0' && s[r + 1] <= '2'))
            return 1;
    }
    if (!strcmp(w, "cannot") || !strcmp(w, "gonna") || !strcmp(w, "gotta") ||
        !strcmp(w, "gonta") || !strcmp(w, "gotna"))
        return 1;
    if (n >= 4 && w[n - 2] == 'n' && w[n - 1] == 't') {
        w[n - 2] = 0;
        for (const char *const *p = AUXILIARIES; *p; p++)
            if (!strcmp(w, *p)) return 1;
    }
    return 0;
}

/* Whether a word clitic rule matches all of the run of [0-9A-Za-z] s[r..b): first whether it
 * is 3 to 8 long and ends in nt ot na ta am pm (any case), as such a match does. Reads
 * s[b - 2] even for a shorter run (then anything in the text before it: b >= 2, else s[0]),
 * to spare a hard-to-predict branch. */
static inline int clitic_like(const unsigned char *s, size_t r, size_t b) {
    size_t last2 = b >= 2 ? b - 2 : 0;
    unsigned ending = ((unsigned)(s[last2] | 0x20) << 8) | (s[last2 + (b >= 2)] | 0x20);
#define ENDS(x, y) (ending == ((unsigned)(x) << 8 | (unsigned)(y)))
    int like = (b - r - 3 <= 5) & (ENDS('n', 't') | ENDS('o', 't') | ENDS('n', 'a') |
                                   ENDS('t', 'a') | ENDS('a', 'm') | ENDS('p', 'm'));
#undef ENDS
    return like && word_clitic(s, r, b);
}

/* The fast path, on the UTF-8 itself: a chunk of the form LEAD* CORE+ TRAIL* or LEAD* TRAIL*,
 * where LEAD and TRAIL are the ASCII affixes above and CORE is [0-9A-Za-z] or a code point
 * above 0x7F that no rule looks at (F_PLAIN: a non-affix, non-space code point, none of
 * ſ ’ … ICONS INFIXES, no Georgian), ended by a space code point or the text's end, and none
 * of the exceptions below. No step changes its words:
 *   1. the clitic rules need an apostrophe before a letter, or (the word rules: letters,
 *      digits, ſ) a \b at both ends, which inside such a chunk only the ends of each run of
 *      [0-9A-Za-z] are: excluded when such a run is 3 to 8 long and ends like one;
 *   2. a URL needs "://" or "www." (excluded: "www" then "."), an infix a letter after it,
 *      and spacing a run of periods off changes no word; … and the icons are not in it;
 *   3. a digit infix needs a digit after it.
 * Step 4 then gives each LEAD byte alone (an affix that cannot start a core: [^WS]), the
 * CORE whole (START up to its last END-ok code point; excluded before ".": an abbreviation,
 * a single code point that is not a digit), and each TRAIL byte alone (a run of 2+ periods
 * together: \.{2,}; a period that starts a word finds no END-ok code point after it).
 * Writes the words and returns the chunk's end, or returns i (not such a chunk; or invalid
 * UTF-8, which the slow path reports). The bytes and word ends are written as the chunk is
 * read, into the room reserved for the text's words (a chunk's words are its own bytes), and
 * only kept if it qualifies. */
static size_t fast_chunk(const unsigned char *s, size_t len, size_t i, Output *out) {
    unsigned char *d = (unsigned char *)out->data.data + out->data.size; /* d[j - i]: s[j] */
    unsigned char *ends = (unsigned char *)out->value_offsets.data + out->value_offsets.size;
    int64_t base = (int64_t)out->data.size - (int64_t)i, end;
    size_t words = 0, j = i;
    int spaced = 0; /* ended by a space code point above 0x7F, at j */
#define WORD_END(at)                                                                         \
    (end = base + (int64_t)(at), memcpy(ends + words++ * sizeof(int64_t), &end, sizeof end))
    while (j < len && (acls[s[j]] & A_LEAD)) {
        d[j - i] = s[j];
        j++;
        WORD_END(j);
    }
    size_t a = j;
    for (;;) {
        size_t r = j; /* a run of [0-9A-Za-z] */
#ifdef SWAR
        for (; j + 8 <= len; j += 8) { /* 8 bytes at a time: the room allows it (above) */
            uint64_t x, m;
            memcpy(&x, s + j, 8);
            memcpy(d + (j - i), &x, 8);
            if ((m = not_alnum8(x))) {
                j += (size_t)__builtin_ctzll(m) >> 3;
                goto run_end;
            }
        }
#endif
        while (j < len && (acls[s[j]] & A_ALNUM)) {
            d[j - i] = s[j];
            j++;
        }
#ifdef SWAR
    run_end:
#endif
        if (clitic_like(s, r, j)) return i;
        if (j == len || s[j] < 0x80) break;
        uint32_t c;
        size_t k = decode_at(s, len, j, &c);
        if (!k) return i;
        if (!(flags_of(c) & F_PLAIN)) {
            if (!(flags_of(c) & F_SPACE)) return i;
            spaced = 1;
            break;
        }
        for (size_t t = 0; t < k; t++) d[j + t - i] = s[j + t];
        j += k;
    }
    size_t b = j, n = b - a;
    if (n) WORD_END(b);
    if (!spaced) {
        while (j < len && (acls[s[j]] & A_TRAIL)) {
            unsigned char c = s[j];
            d[j++ - i] = c;
            if (c == '.')
                while (j < len && s[j] == '.') d[j++ - i] = '.';
            WORD_END(j);
        }
        if (j < len && !(acls[s[j]] & A_SPACE)) {
            uint32_t c;
            if (s[j] < 0x80 || !decode_at(s, len, j, &c) || !(flags_of(c) & F_SPACE)) return i;
        }
    }
#undef WORD_END
    if (n && b < j && s[b] == '.') {
        unsigned c = s[a];
        if (n == 1 ? !(c >= '0' && c <= '9') : c >= 0xC0 && 2u + (c >= 0xE0) + (c >= 0xF0) == n)
            return i;
        if (n >= 3 && s[b - 1] == 'w' && s[b - 2] == 'w' && s[b - 3] == 'w') return i;
        if (n <= MAX_ABBREVIATION && is_abbreviation(s + a, n)) return i;
    }
    out->data.size += j - i;
    out->value_offsets.size += words * sizeof(int64_t);
    out->words += (int64_t)words;
    return j;
}

/* Any other chunk from s[*pos] (or the space code point there, which it skips): decoded, put
 * through the steps that its code points allow to change it, and split. 0, -1 out of memory,
 * -2 invalid UTF-8. */
static int slow_chunk(const unsigned char *s, size_t len, size_t *pos, Text *a, Text *b,
                      Output *out) {
    size_t i = *pos;
    uint32_t any = 0, inner = 0; /* the flags of its code points, of all but the last */
    a->n = 0;
    while (i < len) {
        uint32_t c;
        size_t k = 1;
        if (s[i] < 0x80) c = s[i];
        else if (!(k = decode_at(s, len, i, &c))) return -2;
        uint32_t f = flags_of(c);
        if (f & F_SPACE) {
            if (!a->n) i += k;
            break;
        }
        if (a->n == a->cap && reserve_text(a, a->n + 1)) return -1;
        a->s[a->n++] = c;
        inner = any;
        any |= f;
        i += k;
    }
    *pos = i;
    Text *cur = a, *spare = b, *swap;
    int rc;
#define STEP(call)                                                                           \
    do {                                                                                     \
        if ((rc = (call)) < 0) return rc;                                                    \
        if (!rc) swap = cur, cur = spare, spare = swap;                                      \
    } while (0)
    if (any & (F_CLITIC_FIRST | F_CLITIC_NEXT)) STEP(clitics(cur, spare, (any & F_APOS) != 0));
    if ((any & F_STEP2_ANY) || (inner & F_STEP2_INNER)) STEP(infixes(cur, spare, 1));
    if (inner & F_STEP3_INNER) STEP(infixes(cur, spare, 0));
#undef STEP
    split_words(cur, out);
    return 0;
}

static int split_text(const unsigned char *s, size_t len, Text *a, Text *b, Output *out) {
    if (reserve_words(out, len)) return -1;
    for (size_t i = 0; i < len;) {
        if (s[i] < 0x80) {
            if (acls[s[i]] & A_SPACE) {
                i++;
                continue;
            }
        } else {
            uint32_t c;
            size_t k = decode_at(s, len, i, &c);
            if (k && (flags_of(c) & F_SPACE)) {
                i += k;
                continue;
            }
        }
        size_t end = fast_chunk(s, len, i, out);
        if (end != i) {
            i = end;
            continue;
        }
        int rc = slow_chunk(s, len, &i, a, b, out);
        if (rc) return rc;
    }
    return 0;
}

/* -- one batch ------------------------------------------------------------------------------ */

typedef struct {
    Py_ssize_t length, offset;
    const unsigned char *validity; /* NULL: no nulls */
    const void *offsets;
    int large; /* int64 offsets, else int32 */
    const unsigned char *data;
    Py_ssize_t data_len;
} Input;

static inline int64_t offset_at(const Input *in, Py_ssize_t i) {
    return in->large ? ((const int64_t *)in->offsets)[i] : ((const int32_t *)in->offsets)[i];
}

/* 0, -1 out of memory, -2 invalid UTF-8, -3 bad offsets. */
static int run_batch(const Input *in, Output *out) {
    Text a = {0}, b = {0};
    int rc = push_offset(&out->list_offsets, 0) || push_offset(&out->value_offsets, 0) ? -1 : 0;
    for (Py_ssize_t r = 0; r < in->length && !rc; r++) {
        Py_ssize_t row = in->offset + r;
        if (!in->validity || (in->validity[row >> 3] >> (row & 7)) & 1) {
            int64_t lo = offset_at(in, row), hi = offset_at(in, row + 1);
            if (lo < 0 || hi < lo || hi > in->data_len) {
                rc = -3;
                break;
            }
            rc = split_text(in->data + lo, (size_t)(hi - lo), &a, &b, out);
        }
        if (!rc) rc = push_offset(&out->list_offsets, out->words);
    }
    free(a.s);
    free(b.s);
    return rc;
}

/* -- word statistics ------------------------------------------------------------------------ */

/* Gopher quality's statistics of each document's words (see word_stats below). A word is
 * alphabetic when it holds a letter (\p{L}: F_LETTER), content when it is alphabetic or holds
 * a code point that is not a symbol. ASCII words are read 8 bytes at a time (letters and
 * digits found by SWAR, other bytes by table only while no content byte is found yet), the
 * others code point by code point. Stop words are found by hash: words of up to 8 bytes by
 * their bytes as one integer (a perfect hash when one is found: a single slot to compare,
 * without a branch), longer ones by FNV-1a and memcmp. Each document counts a stop word once:
 * a mark per stop word holds the last document that counted it. */

enum { S_CONTENT = 1, S_ALPHA = 2 };

#define ONES8 0x0101010101010101ULL
#define HIGH8 (ONES8 * 0x80)

typedef struct {
    uint64_t key;    /* a short stop word's bytes, zero-padded, as memcpy puts them */
    uint32_t length; /* its length + 1; 0: an empty slot */
    uint32_t index;  /* which distinct stop word */
} ShortSlot;

typedef struct {
    uint8_t ascii[128];      /* S_CONTENT | S_ALPHA of each ASCII byte */
    uint64_t digit_content;  /* all ones if every digit is content (not a symbol), else 0 */
    uint64_t low_mask[9];    /* the low k bytes of a 64-bit word */
    const uint32_t *symbols; /* the symbols above 0x7F, sorted */
    size_t symbol_count;
    size_t stop_count;       /* distinct stop words: the index of "none" */
    uint64_t long_lengths;   /* bit min(length, 63) of each stop word over 8 bytes */
    ShortSlot *short_table;  /* the stop words of up to 8 bytes */
    uint64_t multiplier;     /* their slot: the top short_bits of (key ^ length << 56) * this */
    unsigned short_bits;
    int perfect;             /* no two short stop words share a slot: no probing */
    const unsigned char **stop; /* the longer ones, as UTF-8 */
    const size_t *stop_length;
    const size_t *stop_id;   /* which distinct stop word each longer one is */
    uint32_t *long_table;    /* open addressing: index into stop + 1, 0 empty */
    size_t long_mask;
    int64_t *seen;           /* per stop word (and "none"): 1 + the last document counting it */
} StatsSetup;

static inline uint64_t word_hash(const unsigned char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

static inline size_t short_slot(uint64_t multiplier, unsigned bits, uint64_t key, size_t n) {
    return (size_t)(((key ^ ((uint64_t)n << 56)) * multiplier) >> (64 - bits));
}

/* The bytes s[0..n) (n <= 8) as one integer, zero-padded. */
static inline uint64_t short_key(const unsigned char *s, size_t n) {
    uint64_t key = 0;
    memcpy(&key, s, n);
    return key;
}

/* High bit of each byte of x (all below 0x80) in [lo, hi]; no carry crosses a byte. */
static inline uint64_t bytes_in(uint64_t x, unsigned lo, unsigned hi) {
    return (x + ONES8 * (0x80 - lo)) & ~(x + ONES8 * (0x7F - hi)) & HIGH8;
}

static int is_symbol(const StatsSetup *st, uint32_t c) {
    size_t lo = 0, hi = st->symbol_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (st->symbols[mid] < c) lo = mid + 1;
        else hi = mid;
    }
    return lo < st->symbol_count && st->symbols[lo] == c;
}

/* The stop word of n <= 8 bytes whose key is `key`: its index, or stop_count. */
static inline size_t short_stop(const StatsSetup *st, uint64_t key, size_t n) {
    size_t mask = ((size_t)1 << st->short_bits) - 1;
    size_t slot = short_slot(st->multiplier, st->short_bits, key, n);
    if (st->perfect) {
        const ShortSlot *e = &st->short_table[slot];
        return e->key == key && e->length == n + 1 ? e->index : st->stop_count;
    }
    for (;; slot = (slot + 1) & mask) {
        const ShortSlot *e = &st->short_table[slot];
        if (!e->length) return st->stop_count;
        if (e->key == key && e->length == n + 1) return e->index;
    }
}

/* The stop word equal to s[0..n), n > 8: its index, or stop_count. */
static inline size_t long_stop(const StatsSetup *st, const unsigned char *s, size_t n) {
    if (!((st->long_lengths >> (n < 63 ? n : 63)) & 1)) return st->stop_count;
    for (size_t slot = (size_t)word_hash(s, n) & st->long_mask;;
         slot = (slot + 1) & st->long_mask) {
        uint32_t k = st->long_table[slot];
        if (!k) return st->stop_count;
        k--;
        if (st->stop_length[k] == n && !memcmp(st->stop[k], s, n)) return st->stop_id[k];
    }
}

static inline size_t stop_index(const StatsSetup *st, const unsigned char *s, size_t n) {
    return n <= 8 ? short_stop(st, short_key(s, n), n) : long_stop(st, s, n);
}

/* An ASCII word's S_ flags, 8 bytes at a time (room: the bytes readable from s, >= n), its
 * first 8 bytes zero-padded in *first; -1 if it has a byte above 0x7F. */
static inline int ascii_flags(const StatsSetup *st, const unsigned char *s, size_t n,
                              size_t room, uint64_t *first) {
#ifndef SWAR /* the masks below take the first bytes in memory for the low ones */
    (void)room;
    *first = n <= 8 ? short_key(s, n) : 0;
    return -1;
#endif
    uint64_t letters = 0, content = 0;
    size_t i = 0;
    do {
        size_t m = n - i < 8 ? n - i : 8;
        uint64_t x = 0;
        if (room - i >= 8) memcpy(&x, s + i, 8);
        else memcpy(&x, s + i, m);
        x &= st->low_mask[m];
        if (!i) *first = x;
        if (x & HIGH8) return -1;
        uint64_t letter = bytes_in(x | ONES8 * 0x20, 'a', 'z');
        uint64_t digit = bytes_in(x, '0', '9') & st->digit_content;
        letters |= letter;
        content |= letter | digit;
        /* Other bytes only while no content byte is known (a word of punctuation). */
        for (uint64_t rest = HIGH8 & st->low_mask[m] & ~letter & ~digit; rest && !content;
             rest &= rest - 1)
            content = st->ascii[(x >> (__builtin_ctzll(rest) & ~7)) & 0x7F] & S_CONTENT;
        i += 8;
    } while (i < n);
    return letters ? S_CONTENT | S_ALPHA : content != 0;
}

/* A word's S_ flags and code points, decoding it; -1 if it is not valid UTF-8. */
static inline int classify(const StatsSetup *st, const unsigned char *s, size_t n,
                           int64_t *count) {
    unsigned seen = 0;
    int64_t chars = 0;
    for (size_t i = 0; i < n; chars++) {
        unsigned char b = s[i];
        if (b < 0x80) {
            seen |= st->ascii[b];
            i++;
            continue;
        }
        uint32_t c;
        size_t k = decode_at(s, n, i, &c);
        if (!k) return -1;
        if (!(seen & S_ALPHA)) {
            if (flags_of(c) & F_LETTER) seen |= S_CONTENT | S_ALPHA;
            else if (!(seen & S_CONTENT) && !is_symbol(st, c)) seen |= S_CONTENT;
        }
        i += k;
    }
    *count = chars;
    return (int)seen;
}

/* The data buffers of Arrow string views. */
typedef struct {
    const unsigned char **data;
    const size_t *length;
    size_t count;
} ViewBuffers;

/* Word w's bytes from its 16-byte Arrow view: its length (int32), then up to 12 bytes inline,
 * or a 4-byte prefix, the index of its data buffer and its offset there (int32 each). Sets
 * *room to the bytes readable from the returned pointer (at least the length). */
static inline const unsigned char *view_word(const unsigned char *view, const ViewBuffers *b,
                                             size_t *length, size_t *room) {
    int32_t n, index, offset;
    memcpy(&n, view, 4);
    *length = (size_t)n;
    if (n <= 12) {
        *room = 12;
        return view + 4;
    }
    memcpy(&index, view + 8, 4);
    memcpy(&offset, view + 12, 4);
    *room = b->length[index] - (size_t)offset;
    return b->data[index] + offset;
}

/* Documents doc_offsets[0..docs] of the words of Arrow views (all checked in bounds);
 * out[k * docs + d]: words, content words, their code points, alphabetic words, distinct stop
 * words. 0, or -2 invalid UTF-8. */
static int run_word_stats(const StatsSetup *st, const int64_t *doc_offsets, Py_ssize_t docs,
                          const unsigned char *views, const ViewBuffers *buffers,
                          int64_t *out) {
    int64_t *seen_marks = st->seen;
    const size_t none = st->stop_count;
    for (Py_ssize_t d = 0; d < docs; d++) {
        int64_t content = 0, chars = 0, alpha = 0, stops = 0, mark = (int64_t)d + 1;
        for (int64_t w = doc_offsets[d]; w < doc_offsets[d + 1]; w++) {
            size_t n, room;
            const unsigned char *s = view_word(views + 16 * w, buffers, &n, &room);
            uint64_t key = 0;
            int64_t count = (int64_t)n;
            int seen = ascii_flags(st, s, n, room, &key);
            if (seen < 0) {
                seen = classify(st, s, n, &count);
                if (seen < 0) return -2;
            }
            size_t k = n <= 8 ? short_stop(st, key, n) : long_stop(st, s, n);
            int64_t is_content = seen & S_CONTENT;
            content += is_content;
            chars += count & -is_content;
            alpha += seen >> 1;
            /* "none" has a mark of its own, so this needs no branch. */
            stops += (k != none) & (seen_marks[k] != mark);
            seen_marks[k] = mark;
        }
        out[d] = doc_offsets[d + 1] - doc_offsets[d];
        out[docs + d] = content;
        out[2 * docs + d] = chars;
        out[3 * docs + d] = alpha;
        out[4 * docs + d] = stops;
    }
    return 0;
}

/* -- Python ---------------------------------------------------------------------------------- */

/* Memory handed to Python through the buffer protocol, freed with the object. */
typedef struct {
    PyObject_HEAD char *data;
    Py_ssize_t size;
} WordBuffer;

static int word_buffer_get(PyObject *self, Py_buffer *view, int flags_) {
    WordBuffer *b = (WordBuffer *)self;
    return PyBuffer_FillInfo(view, self, b->data, b->size, 1, flags_);
}

static void word_buffer_dealloc(PyObject *self) {
    free(((WordBuffer *)self)->data);
    Py_TYPE(self)->tp_free(self);
}

static PyBufferProcs word_buffer_procs = {word_buffer_get, NULL};

static PyTypeObject WordBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "gristmill.native.words.WordBuffer",
    .tp_basicsize = sizeof(WordBuffer),
    .tp_dealloc = word_buffer_dealloc,
    .tp_as_buffer = &word_buffer_procs,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Bytes of split words, readable through the buffer protocol.",
};

/* Takes b's memory (b is left empty). */
static PyObject *word_buffer(Bytes *b) {
    WordBuffer *w = PyObject_New(WordBuffer, &WordBufferType);
    if (!w) return NULL;
    w->data = b->data ? b->data : malloc(1);
    w->size = (Py_ssize_t)b->size;
    b->data = NULL;
    b->size = b->cap = 0;
    if (!w->data) {
        Py_DECREF(w);
        return PyErr_NoMemory();
    }
    return (PyObject *)w;
}

static PyObject *batch(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)self;
    static char *keywords[] = {"length", "offset", "validity", "offsets", "data", "large", NULL};
    Py_ssize_t length, offset;
    PyObject *validity_obj;
    Py_buffer offsets = {0}, data = {0}, validity = {0};
    int large;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "nnOy*y*p", keywords, &length, &offset,
                                     &validity_obj, &offsets, &data, &large))
        return NULL;
    PyObject *result = NULL;
    Output out = {{0}, {0}, {0}, 0};
    size_t width = large ? sizeof(int64_t) : sizeof(int32_t);
    if (validity_obj != Py_None && PyObject_GetBuffer(validity_obj, &validity, PyBUF_SIMPLE))
        goto done;
    if (length < 0 || offset < 0 || length > PY_SSIZE_T_MAX / 2 - offset ||
        (size_t)offsets.len / width < (size_t)(offset + length + 1) ||
        (validity.buf && (size_t)validity.len < (size_t)(offset + length + 7) / 8)) {
        PyErr_SetString(PyExc_ValueError, "buffers too short for the array's length");
        goto done;
    }
    if ((uintptr_t)offsets.buf % width) {
        PyErr_SetString(PyExc_ValueError, "offsets buffer is not aligned");
        goto done;
    }
    Input in = {length, offset, validity.buf, offsets.buf, large, data.buf, data.len};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_batch(&in, &out);
    Py_END_ALLOW_THREADS
    if (rc == -1)
        PyErr_NoMemory();
    else if (rc == -2) PyErr_SetString(PyExc_ValueError, "text is not valid UTF-8");
    else if (rc == -3) PyErr_SetString(PyExc_ValueError, "offsets out of order or range");
    else {
        PyObject *lists = word_buffer(&out.list_offsets);
        PyObject *values = lists ? word_buffer(&out.value_offsets) : NULL;
        PyObject *bytes = values ? word_buffer(&out.data) : NULL;
        if (bytes) result = Py_BuildValue("(NNNL)", lists, values, bytes, (long long)out.words);
        else {
            Py_XDECREF(lists);
            Py_XDECREF(values);
        }
    }
done:
    free(out.list_offsets.data);
    free(out.value_offsets.data);
    free(out.data.data);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    if (validity.obj) PyBuffer_Release(&validity);
    return result;
}

/* -- word statistics: the Python entry point ------------------------------------------------ */

static int buffers_overlap(const Py_buffer *a, const Py_buffer *b) {
    const char *x = a->buf, *y = b->buf;
    return a->len && b->len && x < y + b->len && y < x + a->len;
}

static int compare_code_points(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The symbol classes of st from the str `symbols`: its ASCII table and the sorted code
 * points above 0x7F (in *owned, to free). 0, or -1 with an exception. */
static int setup_symbols(StatsSetup *st, PyObject *symbols, uint32_t **owned) {
    if (!PyUnicode_Check(symbols)) {
        PyErr_Format(PyExc_TypeError, "symbols must be a str, not %.100s",
                     Py_TYPE(symbols)->tp_name);
        return -1;
    }
    Py_ssize_t length = PyUnicode_GET_LENGTH(symbols);
    uint32_t *high = PyMem_Malloc((size_t)(length ? length : 1) * sizeof(uint32_t));
    if (!high) {
        PyErr_NoMemory();
        return -1;
    }
    int kind = PyUnicode_KIND(symbols);
    const void *chars = PyUnicode_DATA(symbols);
    uint8_t ascii_symbol[128] = {0};
    size_t count = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, chars, i);
        if (c < 0x80) ascii_symbol[c] = 1;
        else high[count++] = (uint32_t)c;
    }
    qsort(high, count, sizeof(uint32_t), compare_code_points);
    size_t distinct = 0;
    for (size_t i = 0; i < count; i++)
        if (!distinct || high[distinct - 1] != high[i]) high[distinct++] = high[i];
    /* A letter is content whatever the symbols say (an alphabetic word is a content word). */
    for (unsigned c = 0; c < 128; c++)
        st->ascii[c] = flags_of(c) & F_LETTER ? S_CONTENT | S_ALPHA
                       : ascii_symbol[c]       ? 0
                                               : S_CONTENT;
    st->digit_content = ~(uint64_t)0;
    for (unsigned c = '0'; c <= '9'; c++)
        if (!(st->ascii[c] & S_CONTENT)) st->digit_content = 0;
    for (unsigned k = 0; k < 8; k++) st->low_mask[k] = ((uint64_t)1 << (8 * k)) - 1;
    st->low_mask[8] = ~(uint64_t)0;
    st->symbols = high;
    st->symbol_count = distinct;
    *owned = high;
    return 0;
}

/* The stop words of st from the sequence `fast` (of str, kept alive by the caller while st is
 * used): hash tables of the distinct ones, their marks. Allocations go to memory[0] and
 * memory[1] (to free). 0, or -1 with an exception. */
static int setup_stop_words(StatsSetup *st, PyObject *fast, void **memory) {
    Py_ssize_t count = PySequence_Fast_GET_SIZE(fast);
    if ((size_t)count > UINT32_MAX / 8) {
        PyErr_SetString(PyExc_ValueError, "too many stop words");
        return -1;
    }
    unsigned bits = 4;
    while (((size_t)1 << bits) < 4 * (size_t)count) bits++;
    size_t slots = (size_t)1 << bits, n = (size_t)count;
    /* Every part 8-byte aligned: long pointers, lengths, ids, marks (+ "none"), long slots. */
    size_t sizes[] = {(n ? n : 1) * sizeof(void *), (n ? n : 1) * sizeof(size_t),
                      (n ? n : 1) * sizeof(size_t), (n + 1) * sizeof(int64_t),
                      slots * sizeof(uint32_t)};
    char *block = PyMem_Calloc(1, sizes[0] + sizes[1] + sizes[2] + sizes[3] + sizes[4]);
    ShortSlot *short_table = PyMem_Calloc(slots, sizeof(ShortSlot));
    memory[0] = block;
    memory[1] = short_table;
    if (!block || !short_table) {
        PyErr_NoMemory();
        return -1;
    }
    const unsigned char **stop = (const unsigned char **)block;
    size_t *stop_length = (size_t *)(block += sizes[0]);
    size_t *stop_id = (size_t *)(block += sizes[1]);
    st->seen = (int64_t *)(block += sizes[2]);
    uint32_t *long_table = (uint32_t *)(block += sizes[3]);
    st->stop = stop;
    st->stop_length = stop_length;
    st->stop_id = stop_id;
    st->long_table = long_table;
    st->long_mask = slots - 1;
    st->short_table = short_table;
    st->short_bits = bits;
    st->multiplier = 0x9E3779B97F4A7C15ULL;
    st->perfect = 0;
    st->long_lengths = 0;
    st->stop_count = 0;
    size_t distinct = 0, longer = 0, shorter = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        if (!PyUnicode_Check(item)) {
            PyErr_Format(PyExc_TypeError, "stop_words must hold str, not %.100s",
                         Py_TYPE(item)->tp_name);
            return -1;
        }
        Py_ssize_t size;
        const char *utf8 = PyUnicode_AsUTF8AndSize(item, &size);
        if (!utf8) return -1; /* lone surrogates: UnicodeEncodeError, a ValueError */
        const unsigned char *s = (const unsigned char *)utf8;
        size_t length = (size_t)size;
        st->stop_count = distinct; /* "none" while filling */
        if (stop_index(st, s, length) != distinct) continue; /* a repeat counts once */
        if (length <= 8) {
            uint64_t key = short_key(s, length);
            size_t slot = short_slot(st->multiplier, bits, key, length);
            while (short_table[slot].length) slot = (slot + 1) & (slots - 1);
            short_table[slot] = (ShortSlot){key, (uint32_t)length + 1, (uint32_t)distinct};
            shorter++;
        } else {
            stop[longer] = s;
            stop_length[longer] = length;
            stop_id[longer] = distinct;
            size_t slot = (size_t)word_hash(s, length) & st->long_mask;
            while (long_table[slot]) slot = (slot + 1) & st->long_mask;
            long_table[slot] = (uint32_t)++longer;
            st->long_lengths |= (uint64_t)1 << (length < 63 ? length : 63);
        }
        distinct++;
    }
    st->stop_count = distinct;
    /* A perfect hash of the short ones, when a table of at most 4096 slots has one: the first
     * multiplier (of a fixed sequence) that puts no two in one slot. */
    ShortSlot *filled = PyMem_Malloc(shorter ? shorter * sizeof(ShortSlot) : 1);
    if (!filled) {
        PyErr_NoMemory();
        return -1;
    }
    size_t f = 0;
    for (size_t slot = 0; slot < slots; slot++)
        if (short_table[slot].length) filled[f++] = short_table[slot];
    uint64_t state = 0x243F6A8885A308D3ULL;
    for (unsigned b = 4; b <= 12 && !st->perfect; b++) {
        if (((size_t)1 << b) < 2 * shorter) continue;
        ShortSlot *table = PyMem_Calloc((size_t)1 << b, sizeof(ShortSlot));
        if (!table) {
            PyMem_Free(filled);
            PyErr_NoMemory();
            return -1;
        }
        for (int attempt = 0; attempt < 64 && !st->perfect; attempt++) {
            uint64_t z = (state += 0x9E3779B97F4A7C15ULL); /* splitmix64 */
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
            uint64_t multiplier = (z ^ (z >> 31)) | 1;
            memset(table, 0, ((size_t)1 << b) * sizeof(ShortSlot));
            size_t placed = 0;
            for (; placed < shorter; placed++) {
                const ShortSlot *e = &filled[placed];
                size_t slot = short_slot(multiplier, b, e->key, e->length - 1);
                if (table[slot].length) break;
                table[slot] = *e;
            }
            if (placed == shorter) {
                PyMem_Free(memory[1]);
                memory[1] = st->short_table = table;
                st->short_bits = b;
                st->multiplier = multiplier;
                st->perfect = 1;
            }
        }
        if (!st->perfect) PyMem_Free(table);
    }
    PyMem_Free(filled);
    return 0;
}

PyDoc_STRVAR(word_stats_doc,
"word_stats(doc_offsets, views, buffers, symbols, stop_words, out)\n"
"--\n\n"
"Gopher quality's word statistics of every document, in one pass over Arrow word buffers.\n\n"
"Document d's words are words doc_offsets[d] .. doc_offsets[d + 1] - 1 (a large_list's int64\n"
"offsets) of a string_view array: views holds its 16-byte views from its first word on,\n"
"buffers its data buffers (a sequence of buffers). Writes, into the writable int64 buffer\n"
"out of 5 * docs items, out[k * docs + d] for k = 0: the words; 1: the content words\n"
"(holding a letter or a code point that is not in the str symbols); 2: the code points of\n"
"the content words; 3: the words holding a letter (\\p{L} of Rust's regex crate); 4: how\n"
"many distinct strings of stop_words (a sequence of str, compared exactly) are among the\n"
"words. Invalid UTF-8 or views raise ValueError. Releases the GIL while it counts.");

static PyObject *word_stats(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)self;
    static char *keywords[] = {"doc_offsets", "views", "buffers", "symbols",
                               "stop_words",  "out",   NULL};
    PyObject *objects[6];
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOO:word_stats", keywords, &objects[0],
                                     &objects[1], &objects[2], &objects[3], &objects[4],
                                     &objects[5]))
        return NULL;
    Py_buffer docs_view = {0}, views_view = {0}, out_view = {0};
    Py_buffer *data_views = NULL;
    const unsigned char **data = NULL;
    size_t *data_length = NULL;
    Py_ssize_t buffer_count = 0, acquired = 0;
    PyObject *fast = NULL, *buffer_list = NULL, *result = NULL;
    uint32_t *symbols = NULL;
    void *stop_memory[2] = {NULL, NULL};
    StatsSetup st;
    memset(&st, 0, sizeof st);

    if (int64_buffer(objects[0], "doc_offsets", 0, &docs_view)) goto done;
    if (PyObject_GetBuffer(objects[1], &views_view, PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        views_view.obj = NULL;
        PyErr_Format(PyExc_TypeError, "views must be a C-contiguous buffer, not %.100s",
                     Py_TYPE(objects[1])->tp_name);
        goto done;
    }
    if (!(buffer_list = PySequence_Fast(objects[2], "buffers must be a sequence of buffers")))
        goto done;
    buffer_count = PySequence_Fast_GET_SIZE(buffer_list);
    if (buffer_count > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "too many buffers");
        goto done;
    }
    size_t slots = (size_t)(buffer_count ? buffer_count : 1);
    data_views = PyMem_Calloc(slots, sizeof(Py_buffer));
    data = PyMem_Calloc(slots, sizeof(*data));
    data_length = PyMem_Calloc(slots, sizeof(size_t));
    if (!data_views || !data || !data_length) {
        PyErr_NoMemory();
        goto done;
    }
    for (; acquired < buffer_count; acquired++) {
        PyObject *item = PySequence_Fast_GET_ITEM(buffer_list, acquired);
        if (PyObject_GetBuffer(item, &data_views[acquired], PyBUF_C_CONTIGUOUS) < 0) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "buffers must hold C-contiguous buffers, not %.100s",
                         Py_TYPE(item)->tp_name);
            goto done;
        }
        data[acquired] = data_views[acquired].buf;
        data_length[acquired] = (size_t)data_views[acquired].len;
    }
    if (setup_symbols(&st, objects[3], &symbols)) goto done;
    if (PyUnicode_Check(objects[4]) || PyBytes_Check(objects[4])) {
        PyErr_SetString(PyExc_TypeError, "stop_words must be a sequence of str, not a string");
        goto done;
    }
    if (!(fast = PySequence_Fast(objects[4], "stop_words must be a sequence of str")) ||
        setup_stop_words(&st, fast, stop_memory))
        goto done;
    if (int64_buffer(objects[5], "out", 1, &out_view)) goto done;

    const int64_t *doc_offsets = docs_view.buf;
    const unsigned char *views = views_view.buf;
    Py_ssize_t docs = docs_view.len / 8 - 1;
    if (docs < 0) {
        PyErr_SetString(PyExc_ValueError, "doc_offsets must hold at least one offset");
        goto done;
    }
    if (out_view.len / 8 != 5 * docs) {
        PyErr_Format(PyExc_ValueError, "out must hold 5 * %zd items, not %zd", docs,
                     out_view.len / 8);
        goto done;
    }
    int shared = buffers_overlap(&out_view, &docs_view) || buffers_overlap(&out_view, &views_view);
    for (Py_ssize_t k = 0; k < buffer_count; k++)
        shared |= buffers_overlap(&out_view, &data_views[k]);
    if (shared) {
        PyErr_SetString(PyExc_ValueError, "out must not share memory with the inputs");
        goto done;
    }
    if (doc_offsets[0] < 0 || doc_offsets[docs] > views_view.len / 16) {
        PyErr_SetString(PyExc_ValueError, "doc_offsets point outside views");
        goto done;
    }
    for (Py_ssize_t d = 0; d < docs; d++)
        if (doc_offsets[d + 1] < doc_offsets[d]) {
            PyErr_SetString(PyExc_ValueError, "doc_offsets must not decrease");
            goto done;
        }
    for (int64_t w = doc_offsets[0]; w < doc_offsets[docs]; w++) {
        const unsigned char *view = views + 16 * w;
        int32_t n, index, offset;
        memcpy(&n, view, 4);
        if (n <= 12) {
            if (n >= 0) continue;
            PyErr_SetString(PyExc_ValueError, "a view has a negative length");
            goto done;
        }
        memcpy(&index, view + 8, 4);
        memcpy(&offset, view + 12, 4);
        if (index < 0 || index >= buffer_count || offset < 0 ||
            (size_t)offset + (size_t)n > data_length[index]) {
            PyErr_SetString(PyExc_ValueError, "a view points outside the buffers");
            goto done;
        }
    }

    ViewBuffers view_buffers = {data, data_length, (size_t)buffer_count};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_word_stats(&st, doc_offsets, docs, views, &view_buffers, out_view.buf);
    Py_END_ALLOW_THREADS
    if (rc == -2) {
        PyErr_SetString(PyExc_ValueError, "a word is not valid UTF-8");
        goto done;
    }
    Py_INCREF(Py_None);
    result = Py_None;

done:
    PyMem_Free(symbols);
    PyMem_Free(stop_memory[0]);
    PyMem_Free(stop_memory[1]);
    Py_XDECREF(fast);
    for (Py_ssize_t k = 0; k < acquired; k++) PyBuffer_Release(&data_views[k]);
    PyMem_Free(data_views);
    PyMem_Free(data);
    PyMem_Free(data_length);
    Py_XDECREF(buffer_list);
    Py_buffer *own[] = {&docs_view, &views_view, &out_view};
    for (int k = 0; k < 3; k++)
        if (own[k]->obj) PyBuffer_Release(own[k]);
    return result;
}

static PyMethodDef methods[] = {
    {"batch", (PyCFunction)(void (*)(void))batch, METH_VARARGS | METH_KEYWORDS,
     "batch(length, offset, validity, offsets, data, large) -> (list_offsets, value_offsets, "
     "data, word_count)\n\nThe words of every text of an Arrow (large_)string array, given "
     "its buffers (validity may be None), as large_list<large_string> buffers."},
    {"word_stats", (PyCFunction)(void (*)(void))word_stats, METH_VARARGS | METH_KEYWORDS,
     word_stats_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "words",
    "English words of texts, as the heuristic filters split them, and gopher_quality's "
    "statistics of them (see words.c).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_words(void) {
    if (!flags && build_flags()) return PyErr_NoMemory();
    if (PyType_Ready(&WordBufferType) < 0) return NULL;
    return PyModule_Create(&module);
}
