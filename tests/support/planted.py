"""Real documents with planted duplicates: exact copies and near copies at known edit rates.

A near copy is a real document after ``edits`` word-level edits, each one of: two adjacent
words swapped, a word inserted (taken from another document), a word deleted; a quarter of
the copies also get their boilerplate changed (a line of site chrome added or replaced).
The truth of a pair is the Jaccard similarity of the two documents' shingle sets, computed
here independently of gristmill: datatrove's ``simplify_text``, whitespace words, 5-word
shingles hashed with the ``xxhash`` package.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from datatrove.utils.text import simplify_text

from support.data import sample_table

BOILERPLATE = (
    "Share this article on Facebook Twitter and LinkedIn",
    "Cookies help us deliver our services. By using them you agree to our use of cookies.",
    "Subscribe to our newsletter for the latest updates",
    "All rights reserved. Terms of use and privacy policy apply.",
)
SOURCES = ("c4", "ccnet", "html", "books", "reference", "technical")


def shingles(text: str, n: int = 5) -> set[int]:
    words = simplify_text(text).split()
    return {xxhash.xxh64_intdigest(" ".join(words[i : i + n])) for i in range(len(words) - n + 1)}


def jaccard(one: str, other: str) -> float:
    a, b = shingles(one), shingles(other)
    return len(a & b) / len(a | b) if a | b else 0.0


def originals(count: int, min_words: int = 120) -> pa.Table:
    """Real documents of enough words, from the English-language sources, in a stable order."""
    table = sample_table()
    words = pc.list_value_length(pc.utf8_split_whitespace(table.column("text")))
    source = table.column("source")
    english = pc.is_in(
        source,
        value_set=pa.array(
            [s for s in source.unique().to_pylist() if any(k in s for k in SOURCES)]
        ),
    )
    chosen = table.filter(pc.and_(pc.greater_equal(words, min_words), english))
    return chosen.slice(0, count).select(["id", "text", "source"])


def mutate(text: str, edits: int, rng: random.Random, vocabulary: list[str]) -> str:
    words = text.split(" ")
    for _ in range(edits):
        if len(words) < 3:
            break
        kind = rng.choice(("swap", "insert", "delete"))
        at = rng.randrange(len(words) - 1)
        if kind == "swap":
            words[at], words[at + 1] = words[at + 1], words[at]
        elif kind == "insert":
            words.insert(at, rng.choice(vocabulary))
        else:
            del words[at]
    mutated = " ".join(words)
    if rng.random() < 0.25:
        mutated = f"{rng.choice(BOILERPLATE)}\n{mutated}"
    return mutated


@dataclass
class Planted:
    """The corpus (originals, then copies) and the planted pairs with their true Jaccard."""

    table: pa.Table
    pairs: list[tuple[str, str, float]]


def planted_corpus(count: int, rates: tuple[float, ...], seed: int = 0) -> Planted:
    """``count`` originals; one copy each, with an edit rate cycling through ``rates`` (0 is
    an exact copy). Ids sort in corpus order: originals first, then their copies."""
    rng = random.Random(seed)
    base = originals(count)
    texts = base.column("text").to_pylist()
    vocabulary = [w for t in texts[: max(1, count // 4)] for w in t.split()[:50]]
    ids = [f"doc-{i:05d}" for i in range(len(texts))]
    copy_ids, copy_texts, pairs = [], [], []
    for i, text in enumerate(texts):
        rate = rates[i % len(rates)]
        edits = round(rate * len(text.split(" ")))
        copy = text if rate == 0 else mutate(text, edits, rng, vocabulary)
        copy_id = f"doc-{len(texts) + i:05d}"
        copy_ids.append(copy_id)
        copy_texts.append(copy)
        pairs.append((ids[i], copy_id, jaccard(text, copy)))
    table = pa.table(
        {
            "id": ids + copy_ids,
            "text": texts + copy_texts,
            "source": base.column("source").to_pylist() * 2,
        }
    )
    return Planted(table, pairs)
