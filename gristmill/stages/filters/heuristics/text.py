"""Text primitives shared by the heuristic filters, as polars expressions over a whole batch.

The heuristic rules (Gopher, C4, FineWeb) are defined on Python's string semantics and on
datatrove's English word splitting, which is spaCy's rule-based English tokenizer. Running
spaCy on every document is what makes per-document pipelines slow, so words here come from
fixed rules (a C kernel, ``gristmill/native/words.c``) that follow spaCy's affix rules closely
enough for the statistics the filters take (on the samples, 99.9% of documents get the same
decisions). Where exact
agreement matters more than speed, a filter's ``exact_margin`` re-checks the documents whose
statistics sit that close to a threshold with spaCy itself (``exact_words``).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from gristmill.native.words import batch as _split_batch

#: Characters that Python's ``str.isspace`` accepts: ``strip``/``split`` use these. Every one
#: lies in the Basic Multilingual Plane (the highest is U+3000), so scanning the BMP finds them
#: all in a twentieth of the time of every code point, which each worker paid at import.
PY_WHITESPACE = "".join(chr(c) for c in range(0x10000) if chr(c).isspace())
#: Line boundaries of ``str.splitlines`` other than ``\n`` (``\r\n`` counts as one).
PY_LINE_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
#: Whitespace inside one line (what ``lstrip``/``rstrip`` of a split line can meet).
INLINE_WHITESPACE = "".join(c for c in PY_WHITESPACE if c not in PY_LINE_BREAKS + "\n")

#: Characters datatrove counts as symbols: a word made only of these is not a word for
#: Gopher's length and word-count rules. ASCII punctuation, common CJK/full-width marks and
#: the C0/C1 control characters, plus every sentence terminator below.
_SYMBOLS = (
    "!/—”:％１〈&(、━\\【#%「」，】；+^]~“《„';’{|∶´[=-`*．（–？！：$～«〉,><》)?）。…@_.\"}►»"
    + "".join(chr(c) for c in (*range(0, 9), *range(11, 32), *range(127, 160)))
)
#: Sentence-terminating punctuation across scripts (the Unicode Sentence_Terminal set of the
#: rules' reference implementation); FineWeb's "line ends in punctuation" uses it.
TERMINAL_PUNCTUATION = frozenset(
    chr(c)
    for c in (
        0x21, 0x2E, 0x3F, 0x589, 0x61D, 0x61E, 0x61F, 0x6D4, 0x700, 0x701, 0x702, 0x7F9,
        0x837, 0x839, 0x83D, 0x83E, 0x964, 0x965, 0x104A, 0x104B, 0x1362, 0x1367, 0x1368,
        0x166E, 0x1735, 0x1736, 0x17D4, 0x17D5, 0x17D6, 0x17D9, 0x17DA, 0x1803, 0x1809,
        0x1944, 0x1945, 0x1AA8, 0x1AA9, 0x1AAA, 0x1AAB, 0x1B5A, 0x1B5B, 0x1B5E, 0x1B5F,
        0x1B7D, 0x1B7E, 0x1C3B, 0x1C3C, 0x1C7E, 0x1C7F, 0x203C, 0x203D, 0x2047, 0x2048,
        0x2049, 0x2E2E, 0x2E3C, 0x2E53, 0x2E54, 0x3002, 0xA4FF, 0xA60E, 0xA60F, 0xA6F3,
        0xA6F7, 0xA876, 0xA877, 0xA8CE, 0xA8CF, 0xA92F, 0xA9C8, 0xA9C9, 0xAA5D, 0xAA5E,
        0xAA5F, 0xAAF0, 0xAAF1, 0xABEB, 0xFE52, 0xFE56, 0xFE57, 0xFF01, 0xFF0E, 0xFF1F,
        0xFF61, 0x10A56, 0x10A57, 0x10F55, 0x10F56, 0x10F57, 0x10F58, 0x10F59, 0x10F86,
        0x10F87, 0x10F88, 0x10F89, 0x11047, 0x11048, 0x110BE, 0x110BF, 0x110C0, 0x110C1,
        0x11141, 0x11142, 0x11143, 0x111C5, 0x111C6, 0x111CD, 0x111DE, 0x111DF, 0x11238,
        0x11239, 0x1123B, 0x1123C, 0x112A9, 0x1144B, 0x1144C, 0x115C2, 0x115C3, 0x115C9,
        0x115CA, 0x115CB, 0x115CC, 0x115CD, 0x115CE, 0x115CF, 0x115D0, 0x115D1, 0x115D2,
        0x115D3, 0x115D4, 0x115D5, 0x115D6, 0x115D7, 0x11641, 0x11642, 0x1173C, 0x1173D,
        0x1173E, 0x11944, 0x11946, 0x11A42, 0x11A43, 0x11A9B, 0x11A9C, 0x11C41, 0x11C42,
        0x11EF7, 0x11EF8, 0x11F43, 0x11F44, 0x16A6E, 0x16A6F, 0x16AF5, 0x16B37, 0x16B38,
        0x16B44, 0x16E98, 0x1BC9F, 0x1DA88,
    )
)  # fmt: skip
SYMBOLS = frozenset(_SYMBOLS) | TERMINAL_PUNCTUATION


def char_class(chars: str | set[str] | frozenset[str]) -> str:
    """A regex character class (without brackets) matching exactly these characters."""
    return "".join(re.escape(c) if c not in "\x00" else "\\x00" for c in sorted(set(chars)))


WS = char_class(PY_WHITESPACE)
INLINE_WS = char_class(INLINE_WHITESPACE)
SYMBOL_CLASS = char_class(SYMBOLS)
TERMINAL_CLASS = char_class(TERMINAL_PUNCTUATION)

# -- lines -------------------------------------------------------------------------------


def normalise_line_breaks(text: pl.Expr) -> pl.Expr:
    """Every boundary ``str.splitlines`` knows, as a single ``\\n``."""
    return text.str.replace_all("\r\n", "\n", literal=True).str.replace_all(
        f"[{char_class(PY_LINE_BREAKS)}]", "\n"
    )


def splitlines(text: pl.Expr) -> pl.Expr:
    """``str.splitlines()``: no line after a final break, no line at all for ``""``."""
    normalised = normalise_line_breaks(text)
    lines = normalised.str.strip_suffix("\n").str.split("\n")
    return pl.when(normalised != "").then(lines).otherwise(pl.lit([], pl.List(pl.String)))


# -- words -------------------------------------------------------------------------------


def words(texts: pl.Series) -> pl.Series:
    """The words of each text, as datatrove's English ``split_into_words`` gives them.

    spaCy's English tokenizer approximated by fixed rules (its clitics, infixes, affixes,
    abbreviations and URLs), run by the C kernel ``gristmill/native/words.c``, whose header
    lists the rules. A null text has no words.
    """
    array = texts.to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type not in (pa.string(), pa.large_string()):
        array = array.cast(pa.large_string())
    validity, offsets, data = array.buffers()
    list_offsets, value_offsets, chars, count = _split_batch(
        len(array),
        array.offset,
        validity,
        offsets,
        data if data is not None else b"",
        array.type == pa.large_string(),
    )
    values = pa.LargeStringArray.from_buffers(
        count, pa.py_buffer(value_offsets), pa.py_buffer(chars)
    )
    lists = pa.LargeListArray.from_buffers(
        pa.large_list(pa.large_string()),
        len(array),
        [None, pa.py_buffer(list_offsets)],
        children=[values],
    )
    return pl.Series(texts.name, lists, dtype=pl.List(pl.String))


def word_list_array(lists: pl.Series, value_type: pa.DataType) -> pa.LargeListArray:
    """Word lists as one Arrow ``large_list`` of ``value_type``, a null list as no words.

    polars holds words as string views, so ``pa.string_view()`` copies nothing; the C
    kernels that read plain strings get ``pa.large_string()`` (one copy of the words).
    """
    array = lists.to_arrow(compat_level=pl.CompatLevel.newest())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.large_list(value_type))
    if array.null_count:
        array = array.fill_null(pa.scalar([], array.type))
    return array


def word_views(lists: pl.Series) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """The Arrow buffers of word lists, for the C kernels, without copying what polars holds:
    ``(doc_offsets, views, buffers)``. List ``d``'s words are words ``doc_offsets[d]`` to
    ``doc_offsets[d + 1] - 1`` (int64) of a ``string_view`` array: ``views`` its 16-byte
    views (uint8, from its first word on), ``buffers`` its data buffers. A null list has no
    words.
    """
    array = word_list_array(lists, pa.string_view())
    values = array.values  # all of the child array; the list offsets index into it
    buffers = values.buffers()
    views = (
        np.frombuffer(buffers[1], dtype=np.uint8)[
            16 * values.offset : 16 * (values.offset + len(values))
        ]
        if buffers[1] is not None
        else np.zeros(0, dtype=np.uint8)
    )
    data = [b"" if buffer is None else buffer for buffer in buffers[2:]]
    return array.offsets.to_numpy(), views, data


#: The words of the last batch split, found again by text hash: consecutive heuristic
#: filters see the same documents (less the ones dropped in between), so the next one takes
#: its words from here instead of splitting again. One tuple, replaced whole, so a thread
#: never pairs one batch's hashes with another's words.
_last: tuple[np.ndarray, np.ndarray, pl.Series] | None = None


def _known_rows(
    last: tuple[np.ndarray, np.ndarray, pl.Series] | None, hashes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(found, where): which hashes the last batch holds, and their rows in its words."""
    if last is None or not len(last[0]) or not len(hashes):
        return np.zeros(len(hashes), dtype=bool), np.zeros(len(hashes), dtype=np.int64)
    known, order, _ = last
    where = order[np.minimum(np.searchsorted(known, hashes, sorter=order), len(known) - 1)]
    return known[where] == hashes, where


def batch_words(texts: pl.Series) -> pl.Series:
    """``words`` of every text, reusing the previous batch's for the texts found in it.

    A filter that rewrites texts (C4 keeps only the good lines) leaves the ones it did not
    change for the next filter to find; only the changed ones are split again.
    """
    global _last
    hashes = texts.hash(seed=11).to_numpy()
    last = _last  # read once: its hashes and its words must come from the same batch
    found, where = _known_rows(last, hashes)
    if last is not None and found.all() and len(hashes):
        return last[2].gather(where)
    missing = np.flatnonzero(~found)
    split = words(texts.gather(missing))
    if last is None or not found.any():
        lists = split
    else:
        # Reused lists first, then the fresh ones; one gather puts them back in row order.
        present = np.flatnonzero(found)
        combined = last[2].gather(where[present]).append(split)
        position = np.empty(len(hashes), dtype=np.int64)
        position[present] = np.arange(len(present))
        position[missing] = len(present) + np.arange(len(missing))
        lists = combined.gather(position)
    _last = (hashes, np.argsort(hashes, kind="stable"), lists)
    return lists


#: The marks after which spaCy's sentencizer may start a sentence: the terminal
#: punctuation above less the marks of scripts added to Unicode after its list was made.
SENTENCE_PUNCTUATION = TERMINAL_PUNCTUATION - frozenset(
    chr(c)
    for c in (
        0x61D, 0x61E, 0x837, 0x839, 0x83D, 0x83E, 0x17D4, 0x17D5, 0x17D6, 0x17D9, 0x17DA,
        0x1B7D, 0x1B7E, 0x2E53, 0x2E54, 0x10F55, 0x10F56, 0x10F57, 0x10F58, 0x10F59,
        0x10F86, 0x10F87, 0x10F88, 0x10F89, 0x11944, 0x11946, 0x11EF7, 0x11EF8, 0x11F43,
        0x11F44, 0x16E98,
    )
)  # fmt: skip


def sentence_counts(lines: pl.Series) -> np.ndarray:
    """Sentences per line as spaCy's sentencizer counts them, on our words.

    A sentence starts at a word that is not punctuation when a sentence-final mark was
    seen since the last such word; so each run of punctuation holding a final mark, followed
    by a word, is one boundary.
    """
    tokens = words(lines)
    sizes = tokens.list.len().to_numpy()
    flat = tokens.explode().drop_nulls()
    final = flat.is_in(list(SENTENCE_PUNCTUATION)).to_numpy()
    punct = flat.str.contains(r"^\p{P}+$").to_numpy() | final
    line = np.repeat(np.arange(len(sizes)), sizes)
    # Group = a word and the punctuation after it (the line's first group may be all marks).
    group = np.cumsum(~punct) + line * (len(flat) + 1)
    _, index, inverse = np.unique(group, return_index=True, return_inverse=True)
    has_final = np.bincount(inverse, weights=final) > 0
    group_line = line[index]
    followed = np.append(group_line[1:] == group_line[:-1], False)
    boundaries = np.bincount(group_line[has_final & followed], minlength=len(sizes))
    return 1 + boundaries


# -- the exact path ----------------------------------------------------------------------


#: spaCy keeps every string it has seen in its vocabulary; past this many it starts afresh,
#: so a long run does not grow without bound (datatrove frees them after every call, which
#: makes each call rebuild its words' entries: several times slower).
MAX_VOCABULARY = 500_000


@cache
def _spacy_english() -> Any:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def _english(text: str) -> Any:
    nlp = _spacy_english()
    if len(nlp.vocab) > MAX_VOCABULARY:
        _spacy_english.cache_clear()
        nlp = _spacy_english()
    nlp.max_length = len(text) + 10
    return nlp


def spacy_available() -> bool:
    try:
        _spacy_english()
    except ImportError:
        return False
    return True


def exact_words(text: str) -> list[str]:
    """datatrove's English words: spaCy's tokens, whitespace tokens dropped."""
    tokens = (token.text.strip() for token in _english(text).make_doc(text))
    return [token for token in tokens if token]


def exact_sentence_count(text: str) -> int:
    """How many sentences datatrove's English sentence splitter finds in ``text``."""
    return sum(1 for _ in _english(text)(text).sents)
