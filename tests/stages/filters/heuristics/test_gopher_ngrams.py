"""The n-gram kernel of gopher_repetition against datatrove's statistics, written out in Python.

``top_reference`` and ``dup_reference`` are datatrove's ``find_top_duplicate`` over
``get_n_grams`` and ``find_all_duplicate``; the kernel must give the same numbers on real
documents and on the cases where a shortcut could go wrong: no n-grams, ties, n-grams that
join to the same string from different words, non-ASCII and odd bytes, a 10 MB document.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from support.data import sample_table

from gristmill.native.ngrams import gram_stats
from gristmill.stages.filters.heuristics.gopher_repetition import GopherRepetition, gram_chars
from gristmill.stages.filters.heuristics.text import words

TOP_NS = (1, 2, 3, 4)
DUP_NS = (1, 2, 3, 5, 6, 7, 8, 9, 10)


def top_reference(tokens: Sequence[str], n: int) -> int:
    """Characters of the most frequent " "-joined n-gram times its count (first seen wins)."""
    grams = Counter(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    if not grams:
        return 0
    gram, count = grams.most_common(1)[0]
    return len(gram) * count


def dup_reference(tokens: Sequence[str], n: int) -> int:
    """Characters of repeated ""-joined n-grams, left to right, skipping past each repeat."""
    seen: set[str] = set()
    repeated = index = 0
    while index < len(tokens) - n + 1:
        gram = "".join(tokens[index : index + n])
        if gram in seen:
            repeated += len(gram)
            index += n
        else:
            seen.add(gram)
            index += 1
    return repeated


def _lists(documents: Sequence[Sequence[str] | None]) -> pl.Series:
    return pl.Series(documents, dtype=pl.List(pl.String))


def _assert_matches(
    documents: Sequence[Sequence[str]],
    lists: pl.Series | None = None,
    top_ns: Sequence[int] = TOP_NS,
    dup_ns: Sequence[int] = DUP_NS,
) -> None:
    top, dup = gram_chars(_lists(documents) if lists is None else lists, top_ns, dup_ns)
    assert top.shape == (len(top_ns), len(documents))
    assert dup.shape == (len(dup_ns), len(documents))
    for d, tokens in enumerate(documents):
        for k, n in enumerate(top_ns):
            assert top[k, d] == top_reference(tokens, n), (tokens[:20], "top", n)
        for k, n in enumerate(dup_ns):
            assert dup[k, d] == dup_reference(tokens, n), (tokens[:20], "dup", n)


def test_no_n_grams_counts_zero():
    # An empty document, fewer words than n, and exactly n words (one n-gram, count 1).
    documents = [[], ["a"], ["a", "b"], ["x"] * 4, ["lone"] * 10]
    _assert_matches(documents)
    top, dup = gram_chars(_lists([[], ["a"]]), [2], [5])
    assert top.tolist() == [[0, 0]] and dup.tolist() == [[0, 0]]


def test_concatenated_n_grams_meet_across_word_boundaries():
    # "ab"+"c" and "a"+"bc" are the same 2-gram for the duplicate rule ("".join), not for the
    # top rule (" ".join: "ab c" against "a bc").
    tokens = ["ab", "c", "a", "bc"]
    top, dup = gram_chars(_lists([tokens]), [2], [2])
    assert dup[0, 0] == dup_reference(tokens, 2) == 3
    assert top[0, 0] == top_reference(tokens, 2) == 4
    # Longer chains of shifted boundaries, and empty words that vanish when joined.
    _assert_matches(
        [
            ["a", "bc", "d", "ab", "cd", "x", "abc", "d"],
            ["x", "", "y", "x", "y", "", "x", "y"],
            ["", "", "", "", ""],
        ]
    )


def test_words_holding_spaces_join_like_python():
    # " ".join(["a b", "c"]) == " ".join(["a", "b c"]): the top rule must count them as one.
    tokens = ["a b", "c", "a", "b c", "a b", "c"]
    top, _ = gram_chars(_lists([tokens]), [2], [])
    assert top[0, 0] == top_reference(tokens, 2) == 15
    _assert_matches([["a b", "c d", "a", "b c", "d", "a b c", "d"], [" ", " ", "", "  "]])


def test_ties_go_to_the_n_gram_seen_first():
    # "b c" and "x yz" are both seen twice; the first seen wins, whatever its length.
    tokens = ["b", "c", "x", "yz", "b", "c", "x", "yz"]
    top, _ = gram_chars(_lists([tokens]), [2], [])
    assert top[0, 0] == top_reference(tokens, 2) == 3 * 2
    tokens = ["x", "yz", "b", "c", "x", "yz", "b", "c"]
    top, _ = gram_chars(_lists([tokens]), [2], [])
    assert top[0, 0] == top_reference(tokens, 2) == 4 * 2
    _assert_matches([["q", "r", "s", "t"] * 3, ["a", "b"] * 5 + ["c", "d"] * 5])


def test_lengths_count_code_points_not_bytes():
    tokens = ["日本", "語", "é", "😀", "日本", "語", "é", "😀"]
    top, dup = gram_chars(_lists([tokens]), [2], [2])
    assert top[0, 0] == len("日本 語") * 2
    assert dup[0, 0] == dup_reference(tokens, 2)
    odd = ["\x00", "a\x00", "\x00a", "\x00", "a\x00", "\x00a", "\ufeff", "\u2028", "\U0010ffff"]
    _assert_matches([tokens, odd, ["Straße", "straße", "Straße", "straße"]])


def test_null_lists_count_as_no_words():
    top, dup = gram_chars(_lists([None, ["a", "b", "a", "b"], None]), [1, 2], [1])
    assert top[:, 0].tolist() == [0, 0] and top[:, 2].tolist() == [0, 0]
    assert top[:, 1].tolist() == [2, 6] and dup[:, 1].tolist() == [2]


def test_random_word_lists_from_a_small_vocabulary():
    rng = random.Random(7)
    vocabulary = ["a", "b", "ab", "ba", "aab", "", " ", "a b", "é", "日本", "\x00", "c"]
    documents = [
        [rng.choice(vocabulary[: rng.randint(1, len(vocabulary))]) for _ in range(size)]
        for size in (rng.choice([0, 1, 3, 8, 30, 200]) for _ in range(600))
    ]
    _assert_matches(documents)


def test_sliced_and_chunked_series_and_plain_arrow_types():
    documents = [["a", "b", "a", "b", "c"], ["x", "y"] * 4, [], ["é", "é", "é"]] * 3
    # A slice (Arrow offsets that do not start at zero) and a series of several chunks.
    whole = _lists(documents)
    _assert_matches(documents[5:], whole.slice(5))
    chunked = pl.concat([_lists(documents[:4]), _lists(documents[4:])], rechunk=False)
    assert chunked.n_chunks() == 2
    _assert_matches(documents, chunked)
    # list<string> with 32-bit offsets, and a sliced child array.
    small = pa.array(documents, pa.list_(pa.string()))
    series = pl.Series(small.slice(2))
    _assert_matches(documents[2:], series)


def test_real_documents_match_datatroves_statistics():
    table = sample_table()
    texts = pl.DataFrame({"text": table.column("text").to_pylist()}).select(
        pl.col("text").fill_null("")
    )
    lists = words(texts["text"])
    documents = lists.to_list()
    assert len(documents) > 3000
    _assert_matches(documents, lists, (2, 3, 4), (5, 6, 7, 8, 9, 10))


def test_a_ten_megabyte_document():
    unit = "the quick brown fox jumps over the lazy dog , and then it rests . "
    tokens = (unit * (10_000_000 // len(unit))).split()
    lists = _lists([tokens, ["tail", "tail"]])
    top, dup = gram_chars(lists, [2], [5, 10])
    assert top[0, 0] == top_reference(tokens, 2)
    assert dup[:, 0].tolist() == [dup_reference(tokens, 5), dup_reference(tokens, 10)]
    assert top[0, 1] == 9 and dup[:, 1].tolist() == [0, 0]


def test_more_distinct_n_grams_than_a_table_starts_with():
    # 150,000 distinct words, then the first 60,000 again: the table doubles mid-pass.
    tokens = [f"w{i}" for i in range(150_000)]
    tokens += tokens[:60_000]
    _assert_matches([tokens], top_ns=(1, 2), dup_ns=(1, 5))


def test_exact_recheck_counts_spacys_words_with_the_kernel():
    # A margin this wide re-checks nearly every document with spaCy's words, which are
    # datatrove's: the verdicts must then be datatrove's own.
    from datatrove.pipeline.filters import GopherRepetitionFilter

    from gristmill.adapters.datatrove_in_gristmill import DatatroveStep

    table = sample_table()
    subset = table.take(list(range(0, table.num_rows, 60)))
    stage = GopherRepetition(exact_margin=1.0)
    stage.setup()
    ours = stage.judge(subset).keep.to_pylist()
    assert stage.stats.counters["exact_rechecks"] > 0.9 * subset.num_rows
    expected = DatatroveStep(GopherRepetitionFilter()).judge(subset).keep.to_pylist()
    assert ours == expected


# -- the kernel on bad input: an exception, never a crash ------------------------------------


def _args() -> dict[str, object]:
    """Valid arguments for two documents: ["ab", "c"] and ["d"]."""
    return {
        "doc_offsets": np.array([0, 2, 3], dtype=np.int64),
        "word_offsets": np.array([0, 2, 3, 4], dtype=np.int64),
        "data": b"abcd",
        "top_ns": [1],
        "dup_ns": [1],
        "top_out": np.zeros(2, dtype=np.int64),
        "dup_out": np.zeros(2, dtype=np.int64),
    }


def test_kernel_fills_the_outputs():
    args = _args()
    gram_stats(**args)
    assert args["top_out"].tolist() == [2, 1]  # type: ignore[attr-defined]
    assert args["dup_out"].tolist() == [0, 0]  # type: ignore[attr-defined]


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
        ("word_offsets", np.array([0, 2, 3, 5], dtype=np.int64), ValueError),
        ("word_offsets", np.array([0, 3, 2, 4], dtype=np.int64), ValueError),
        ("word_offsets", np.array([-1, 2, 3, 4], dtype=np.int64), ValueError),
        ("data", "abcd", TypeError),
        ("data", None, TypeError),
        ("top_ns", [0], ValueError),
        ("dup_ns", [-3], ValueError),
        ("top_ns", ["2"], TypeError),
        ("dup_ns", 5, TypeError),
        ("top_out", np.zeros(3, dtype=np.int64), ValueError),
        ("dup_out", np.zeros(2, dtype=np.float64), TypeError),
        ("top_out", b"\0" * 16, TypeError),
    ],
)
def test_kernel_refuses_bad_input(name: str, value: object, error: type[Exception]):
    args = _args()
    args[name] = value
    with pytest.raises(error):
        gram_stats(**args)


def test_kernel_refuses_read_only_and_shared_outputs():
    args = _args()
    read_only = np.zeros(2, dtype=np.int64)
    read_only.setflags(write=False)
    args["top_out"] = read_only
    with pytest.raises(TypeError):
        gram_stats(**args)
    args = _args()
    args["top_out"] = args["dup_out"]
    with pytest.raises(ValueError):
        gram_stats(**args)
    args = _args()
    shared = np.array([0, 2, 3, 4], dtype=np.int64)
    args["word_offsets"] = shared
    args["dup_out"] = shared[1:3]
    with pytest.raises(ValueError):
        gram_stats(**args)
    assert shared.tolist() == [0, 2, 3, 4]
