"""The word-statistics kernel of gopher_quality (``word_stats`` in ``gristmill/native/words.c``)
against the polars code it replaces.

``polars_reference`` is ``GopherQuality._word_stats`` as it was before the kernel, verbatim:
the kernel must give exactly its numbers on every document of the samples (and of the
benchmark's file, built here, in the slices it is read in), on the cases where a
shortcut could go wrong (empty and null lists, words of symbols only, non-ASCII letters and
symbols, words around the 8- and 12-byte boundaries, repeated and custom stop words, a 10 MB
document), and on random words drawn from the characters the rules treat differently; the
filter's decisions must not change. Bad input raises instead of crashing.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from support.data import benchmark_documents

from gristmill.native.words import word_stats
from gristmill.stages.filters.heuristics import gopher_quality
from gristmill.stages.filters.heuristics.gopher_quality import (
    STOP_WORDS,
    WORD_STATS,
    GopherQuality,
    word_counts,
)
from gristmill.stages.filters.heuristics.text import (
    SYMBOL_CLASS,
    SYMBOLS,
    word_views,
    words,
)

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples"


def polars_reference(words: pl.Series, stop_words: Sequence[str]) -> dict[str, np.ndarray]:
    """``GopherQuality._word_stats`` before the kernel (its ``self.params.stop_words`` made
    an argument)."""
    sizes = words.list.len().to_numpy().astype(np.int64)
    rows = len(sizes)
    flat = words.explode().drop_nulls()
    doc = np.repeat(np.arange(rows), sizes)
    alpha = flat.str.contains(r"\p{L}").to_numpy()
    # No symbol is a letter, so a word with a letter has content: only the others (digits,
    # punctuation) need the symbol test.
    content = alpha.copy()
    others = np.flatnonzero(~alpha)
    content[others] = flat.gather(others).str.contains(f"[^{SYMBOL_CLASS}]").to_numpy()
    chars = flat.str.len_chars().to_numpy()
    stop = flat.is_in(stop_words).to_numpy()
    pairs = pl.DataFrame({"doc": doc[stop], "word": flat.filter(pl.Series(stop))}).unique()
    return {
        "n_words": sizes.astype(np.float64),
        "n_content": np.bincount(doc, weights=content, minlength=rows),
        "content_chars": np.bincount(doc, weights=content * chars, minlength=rows),
        "n_alpha": np.bincount(doc, weights=alpha, minlength=rows),
        "n_stop": np.bincount(pairs["doc"].to_numpy(), minlength=rows).astype(np.float64),
    }


def _lists(documents: Sequence[Sequence[str] | None]) -> pl.Series:
    return pl.Series(documents, dtype=pl.List(pl.String))


def _assert_matches(lists: pl.Series, stop_words: Sequence[str] = STOP_WORDS) -> None:
    counts = word_counts(lists, stop_words)
    # The reference counts a null list's words as none too, but its list.len() is null.
    expected = polars_reference(lists.fill_null([]), list(stop_words))
    assert counts.shape == (len(WORD_STATS), len(lists))
    for k, name in enumerate(WORD_STATS):
        differ = np.flatnonzero(counts[k] != expected[name])
        if len(differ):
            row = int(differ[0])
            pytest.fail(f"{name} of list {row}: {counts[k, row]} != {expected[name][row]}: "
                        f"{lists[row].to_list()[:50]}")  # fmt: skip


def _documents(paths: Sequence[Path]) -> pl.Series:
    frames = [pl.read_parquet(p, columns=["text"]) for p in paths]
    return pl.concat(frames)["text"]


# -- real documents -----------------------------------------------------------------------


def test_every_sample_document():
    texts = _documents(sorted(SAMPLES.glob("*.parquet")))
    assert len(texts) > 3000
    lists = words(texts)
    _assert_matches(lists)
    _assert_matches(lists, ["The", "and", "of", "the", "und", "der", "и", "в", "de", "la"])


def test_every_benchmark_document(tmp_path: Path):
    """The benchmark's file (the samples repeated), in the 4096-row slices it runs on."""
    texts = _documents([benchmark_documents(tmp_path / "bench.parquet", 9000)])
    for start in range(0, len(texts), 4096):
        _assert_matches(words(texts.slice(start, 4096)))


def test_decisions_do_not_change():
    texts = _documents(sorted(SAMPLES.glob("*.parquet")))
    frame = pl.DataFrame({"text": texts})
    stage = GopherQuality()
    ours = stage.decide(frame)

    class Reference(GopherQuality):
        def _word_stats(self, words: pl.Series) -> dict[str, np.ndarray]:
            return polars_reference(words, self.params.stop_words)

    assert list(ours) == list(Reference().decide(frame))


# -- written cases ------------------------------------------------------------------------


def test_empty_documents_and_null_lists():
    _assert_matches(_lists([[], None, ["the"], [], None]))
    _assert_matches(_lists([]))
    _assert_matches(_lists([None]))
    _assert_matches(_lists([[""], ["", "the", ""]]), ["", "the"])


def test_words_of_symbols_only():
    symbols = sorted(SYMBOLS)
    documents = [[c] for c in symbols]
    documents.append(["".join(symbols)])
    documents.append(["...", "…", "!!", "#", "--", "\x00", "\x7f\x85", "“”", "。", "x."])
    _assert_matches(_lists(documents))


def test_non_ascii_letters_digits_marks_and_symbols():
    documents = [
        ["café", "naïve", "straße", "Ελλάδα", "Москва", "東京", "ქართული", "עברית"],
        ["٣٤", "१२", "¹²", "½", "ⅷ", "\u0301", "e\u0301", "\u200b", "\ufeff", "🙂"],
        ["“the”", "—", "«", "»", "％", "１", "ｔｈｅ", "ǅ", "ʰ", "ª", "µ"],
        ["\U00010400", "𝒜", "\U0001f600x", "x\U0001f600", "\u00a0", "a\u00a0b"],
    ]
    _assert_matches(_lists(documents))


def test_lengths_around_the_inline_and_word_sizes():
    # Views hold up to 12 bytes inline; the kernel reads 8 bytes at a time.
    documents = []
    for fill in ("a", ".", "1", "é", "“", "-", "\t"):
        documents.append([fill * n for n in range(0, 30)])
        documents.append(["." * n + fill for n in range(0, 20)])
        documents.append([fill + "." * n for n in range(0, 20)])
    _assert_matches(_lists(documents))


def test_stop_words_counted_once_per_document_and_case_sensitively():
    documents = [
        ["the", "the", "The", "THE", "and", "and", "of"],
        ["the"],
        ["theatre", "them", "th", "t", "he"],
        ["with", "with", "have", "that", "be", "to", "of", "and", "the"],
    ]
    _assert_matches(_lists(documents))


def test_custom_stop_word_lists():
    documents = [
        ["the", "und", "der", "und", "l'", "и", "и", "société", "Österreich", "a" * 9],
        ["internationalisation", "internationalisation", "x" * 40, "a" * 8, "b" * 12],
        ["", "", "the", "\x00", "a\x00", "a"],
    ]
    lists = _lists(documents)
    for stop_words in (
        [],
        ["und", "und", "der"],  # a repeated stop word still counts once
        ["и", "société", "Österreich", "l'"],
        ["internationalisation", "x" * 40, "a" * 8, "a" * 9, "b" * 12],
        ["", "\x00", "a\x00", "a"],
        ["The", "THE"],
    ):
        _assert_matches(lists, stop_words)


def test_many_stop_words():
    # More than a perfect hash takes, and short and long ones together.
    vocabulary = [f"w{i}" for i in range(6000)] + [f"longer-word-{i}" for i in range(300)]
    rng = random.Random(3)
    documents = [
        rng.choices([*vocabulary, "the", "zz"], k=rng.randrange(0, 300)) for _ in range(50)
    ]
    _assert_matches(_lists(documents), vocabulary[::2])
    _assert_matches(_lists(documents), vocabulary[:40])


def test_random_words_of_the_characters_that_matter():
    rng = random.Random(11)
    pool = (
        "aZé中ქ" + "09٣" + ".,;!?#…—“”％。" + "\x00\x01\x7f\x85" + " \t" + "\u0301\u200b🙂"
        + "".join(sorted(SYMBOLS))[:40]
    )  # fmt: skip
    stop_words = ["a", "aZ", ".", "é", "…", "the"]
    documents = []
    for _ in range(400):
        documents.append(
            [
                "".join(rng.choices(pool, k=rng.choice((1, 1, 2, 3, 5, 8, 9, 12, 13, 20))))
                for _ in range(rng.randrange(0, 40))
            ]
            + rng.choices(stop_words, k=rng.randrange(0, 4))
        )
    _assert_matches(_lists(documents), stop_words)


def test_a_ten_megabyte_document():
    unit = "The quick brown fox jumps over the lazy dog , and then it rests … 42 times . "
    tokens = (unit * (10_000_000 // len(unit))).split()
    lists = _lists([tokens, ["tail", "of", "the", "batch"]])
    counts = word_counts(lists, STOP_WORDS)
    content = [t for t in tokens if not SYMBOLS.issuperset(t)]
    assert counts[:, 0].tolist() == [
        len(tokens),
        len(content),
        sum(map(len, content)),
        sum(1 for t in tokens if t.isalpha()),
        2,  # "the" and "and" ("The" is not a stop word)
    ]
    assert counts[:, 1].tolist() == [4, 4, 14, 4, 2]
    _assert_matches(lists)


def test_sliced_chunked_and_other_arrow_types():
    documents = [["a", "the"], ["x" * 20, "…", "of"], [], ["é", "and", "and"], ["."]]
    _assert_matches(_lists(documents).slice(1, 3))
    chunked = pl.concat([_lists(documents[:2]), _lists(documents[2:])], rechunk=False)
    assert chunked.n_chunks() == 2
    _assert_matches(chunked)
    for arrow_type in (
        pa.list_(pa.string()),
        pa.large_list(pa.large_string()),
        pa.large_list(pa.string_view()),
    ):
        with_null = [*documents, None]
        array = pa.array(with_null, arrow_type)
        for sliced in (array, array.slice(2), array.slice(1, 3)):
            expected = _lists(with_null[sliced.offset : sliced.offset + len(sliced)])
            counts = word_counts(pl.Series(sliced), STOP_WORDS)
            assert np.array_equal(counts, word_counts(expected, STOP_WORDS))
    _assert_matches(_lists(documents))


def test_exact_recheck_twin_agrees_on_plain_words():
    # The pure-Python twin used for spaCy's words counts what the kernel counts (for words
    # whose letters both Python and the regex crate call letters).
    documents = [["The", "cat", "…", "sat", "on", "the", "mat", ".", "42", "café", "#"]]
    counts = word_counts(_lists(documents), STOP_WORDS)
    twin = gopher_quality._word_stats(documents[0], frozenset(STOP_WORDS))
    assert counts[:, 0].tolist() == list(twin)


# -- the kernel on bad input: an exception, never a crash ----------------------------------


def _args(texts: Sequence[str] = ("ab", "c" * 20, "d")) -> dict[str, object]:
    """Valid arguments for two documents: ["ab", "ccc…"] and ["d"]."""
    array = pa.array(list(texts), pa.string_view())
    buffers = array.buffers()
    return {
        "doc_offsets": np.array([0, 2, 3], dtype=np.int64),
        "views": np.frombuffer(buffers[1], dtype=np.uint8).copy(),
        "buffers": [buffers[2]],
        "symbols": "".join(sorted(SYMBOLS)),
        "stop_words": ["ab", "d"],
        "out": np.zeros(10, dtype=np.int64),
    }


def test_kernel_fills_the_output():
    args = _args()
    word_stats(**args)
    assert args["out"].reshape(5, 2).tolist() == [  # type: ignore[attr-defined]
        [2, 1],
        [2, 1],
        [22, 1],
        [2, 1],
        [1, 1],
    ]


def _view(length: int, index: int = 0, offset: int = 0) -> np.ndarray:
    view = np.zeros(16, dtype=np.uint8)
    view[0:4] = np.frombuffer(np.int32(length).tobytes(), dtype=np.uint8)
    view[8:12] = np.frombuffer(np.int32(index).tobytes(), dtype=np.uint8)
    view[12:16] = np.frombuffer(np.int32(offset).tobytes(), dtype=np.uint8)
    return view


def _with_view(view: np.ndarray) -> np.ndarray:
    views = _args()["views"].copy()  # type: ignore[attr-defined]
    views[16:32] = view
    return views


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("doc_offsets", np.array([0.0, 2.0, 3.0]), TypeError),
        ("doc_offsets", np.array([0, 2, 3], dtype=np.int32), TypeError),
        ("doc_offsets", [0, 2, 3], TypeError),
        ("doc_offsets", np.arange(6, dtype=np.int64)[::2], TypeError),
        ("doc_offsets", np.array([], dtype=np.int64), ValueError),
        ("doc_offsets", np.array([0, 3, 2], dtype=np.int64), ValueError),
        ("doc_offsets", np.array([-1, 2, 3], dtype=np.int64), ValueError),
        ("doc_offsets", np.array([0, 2, 4], dtype=np.int64), ValueError),
        ("views", np.zeros(40, dtype=np.uint8), ValueError),
        ("views", "views", TypeError),
        ("views", _with_view(_view(-1)), ValueError),
        ("views", _with_view(_view(20, index=1)), ValueError),
        ("views", _with_view(_view(20, index=-1)), ValueError),
        ("views", _with_view(_view(20, offset=-4)), ValueError),
        ("views", _with_view(_view(21)), ValueError),
        ("views", _with_view(_view(2**31 - 1, offset=2**31 - 1)), ValueError),
        ("buffers", None, TypeError),
        ("buffers", [], ValueError),
        ("buffers", ["text"], TypeError),
        ("buffers", [b"short"], ValueError),
        ("symbols", None, TypeError),
        ("symbols", [".", ","], TypeError),
        ("stop_words", "the", TypeError),
        ("stop_words", b"the", TypeError),
        ("stop_words", 5, TypeError),
        ("stop_words", ["the", 5], TypeError),
        ("stop_words", ["\ud800"], ValueError),
        ("out", np.zeros(9, dtype=np.int64), ValueError),
        ("out", np.zeros(10, dtype=np.float64), TypeError),
        ("out", b"\0" * 80, TypeError),
    ],
)
def test_kernel_refuses_bad_input(name: str, value: object, error: type[Exception]):
    args = _args()
    args[name] = value
    with pytest.raises(error):
        word_stats(**args)


def test_kernel_refuses_invalid_utf8():
    for bad in (b"\xff", b"a\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"):
        inline = _args()
        inline["views"][16:20] = np.frombuffer(  # type: ignore[index]
            np.int32(len(bad)).tobytes(), dtype=np.uint8
        )
        inline["views"][20 : 20 + len(bad)] = np.frombuffer(bad, dtype=np.uint8)  # type: ignore[index]
        with pytest.raises(ValueError, match="UTF-8"):
            word_stats(**inline)
        long = _args()
        data = bytearray(b"c" * 20)
        data[5 : 5 + len(bad)] = bad
        long["buffers"] = [bytes(data)]
        with pytest.raises(ValueError, match="UTF-8"):
            word_stats(**long)


def test_kernel_refuses_read_only_and_shared_outputs():
    args = _args()
    read_only = np.zeros(10, dtype=np.int64)
    read_only.setflags(write=False)
    args["out"] = read_only
    with pytest.raises(TypeError):
        word_stats(**args)
    args = _args()
    shared = np.zeros(16, dtype=np.int64)
    shared[:3] = [0, 2, 3]
    args["doc_offsets"] = shared[:3]
    args["out"] = shared[2:12]
    with pytest.raises(ValueError):
        word_stats(**args)
    assert shared[:3].tolist() == [0, 2, 3]


def test_word_views_hand_over_polars_memory_without_copies():
    texts = ["The cat sat on the mat, twice.", None, "", "internationalisation état d'âme"]
    lists = words(pl.Series(texts))
    sizes = lists.list.len().to_list()
    doc_offsets, views, buffers = word_views(lists)
    assert doc_offsets.tolist() == [0, *np.cumsum(sizes).tolist()]
    assert len(views) == 16 * sum(sizes)
    assert buffers  # "internationalisation" is too long to be held in its view
    # The data buffers are polars' own: converting again gives the same addresses.
    _, _, again = word_views(lists)
    assert [b.address for b in buffers] == [b.address for b in again]
