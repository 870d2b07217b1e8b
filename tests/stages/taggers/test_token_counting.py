"""The counter that skips tokenizing gives the tokenizer's own counts, text by text.

The reference is always ``tokenizers`` itself (``encode`` without special tokens). The texts
are every sample document (fifteen languages, web pages, books, code) and the corners of the
BERT normaliser and pre-tokenizer the compiled counter re-implements: control characters that
join words, separators Python splits on but BERT removes, added tokens spelled out, words
past the length limit, unknown pieces, accents and combining marks, CJK, final sigma.
"""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.data import sample_table
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

from gristmill.models import EXPORT_TOKENIZER
from gristmill.stages.taggers import token_counting
from gristmill.stages.taggers.token_counting import TokenCounter
from gristmill.stages.taggers.tokens import load_tokenizer

CORNERS = [
    "",
    " \t\r\n ",
    "Plain ASCII, with punctuation!!! And (brackets) [1] {2} <3> ~tilde~ `tick` a/b\\c",
    "join\x01ed, null\x00led, del\x7fed, vertical\x0btab, form\x0cfeed, unit\x1fsep",
    "next\x85line, no\u00a0break, thin\u2009space, ideographic\u3000space, zero\u200bwidth",
    "[SEP] [CLS]word x[MASK]y [sep] [Unk] [PAD]",
    "a" * 100 + " " + "b" * 101 + " " + "abc" * 40,
    "unaffable xyzzyplugh qwxzv zzzzzzzz 1234567890123 3.14159 e=mc^2",
    "café naïve Ångström façade résumé e\u0301 \u0301leading combining",
    "ΣΊΣΥΦΟΣ ΟΔΥΣΣΕΥΣ σοφός",
    "日本語のテキストと English mixed 中文字符",
    "emoji 🙂🙂 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and \ufffd replacement",
    "curly “quotes” and ‘apostrophes’ — dashes – ellipsis…",
    "\ttabbed\r\nwindows\rlines\n\n\nand   runs   of   spaces   ",
    "mixed chunk: ascii-then-é and é-then-ascii-long-" + "x" * 120,
    "ſtreet long-s and İstanbul dotted capital I",
    "\x00\x01\x02",
    "###hash ##prefix ## #",
]


@pytest.fixture(scope="module")
def minilm() -> Tokenizer:
    return load_tokenizer(None)


def reference(tokenizer: Tokenizer, texts: list[str | None]) -> list[int]:
    return [
        len(tokenizer.encode(text, add_special_tokens=False).ids) if text is not None else 0
        for text in texts
    ]


def test_the_default_tokenizer_is_counted_natively_and_exactly_on_every_sample(
    minilm: Tokenizer,
) -> None:
    counter = TokenCounter(minilm)
    assert counter.counts_ascii_natively
    texts = sample_table().column("text").to_pylist()
    counted = []
    for start in range(0, len(texts), 500):  # batches, as a stage sees them
        counted += counter.count(texts[start : start + 500])
    assert counted == reference(minilm, texts)


def test_corners_of_the_normaliser_and_pre_tokenizer(minilm: Tokenizer) -> None:
    texts: list[str | None] = [*CORNERS, None]
    assert TokenCounter(minilm).count(texts) == reference(minilm, texts)


def test_random_text_over_an_alphabet_of_corners(minilm: Tokenizer) -> None:
    rng = random.Random(7)
    alphabet = [*"abcXYZ019 .,-'#[]", "\t", "\n", "\r", "\x00", "\x0b", "\x1c", "\x85", "\x7f"]
    alphabet += ["é", "\u0301", "\u00a0", "日", "Σ", "🙂", "—", "SEP", "[SEP]", "ing", "##"]
    texts = ["".join(rng.choices(alphabet, k=rng.randint(0, 60))) for _ in range(3000)]
    assert TokenCounter(minilm).count(texts) == reference(minilm, texts)


def test_a_small_vocabulary_with_its_own_prefix_and_length_limit() -> None:
    vocab = {"[UNK]": 0, "un": 1, "aff": 2, "@@aff": 3, "@@able": 4, "a": 5, "@@b": 6, ".": 7}
    tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=8))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.model.continuing_subword_prefix = "@@"
    counter = TokenCounter(tokenizer)
    assert counter.counts_ascii_natively
    texts = ["UnAffable.", "unaffableX", "abbbbbbb abbbbbbbb", "aff@@aff a@@b", "un un. q"]
    assert counter.count(texts) == reference(tokenizer, texts)


def test_other_tokenizers_are_counted_by_the_tokenizer(minilm: Tokenizer) -> None:
    cased = json.loads(minilm.to_str())
    cased["normalizer"]["lowercase"] = False
    byte_level = Tokenizer.from_file(str(EXPORT_TOKENIZER))
    for tokenizer in (byte_level, Tokenizer.from_str(json.dumps(cased))):
        counter = TokenCounter(tokenizer)
        assert not counter.counts_ascii_natively
        texts = [*CORNERS, *sample_table().column("text").to_pylist()[:200]]
        assert counter.count(texts) == reference(tokenizer, texts)


def test_what_it_remembers_is_bounded_and_forgetting_changes_no_count(
    minilm: Tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(token_counting, "MAX_REMEMBERED_CHUNKS", 50)
    counter = TokenCounter(minilm)
    texts = sample_table().column("text").to_pylist()[:400]
    counted = []
    for start in range(0, len(texts), 4):
        counted += counter.count(texts[start : start + 4])
        assert len(counter._chunk_counts) <= 50
    assert counted == reference(minilm, texts)
    assert counter._chunk_counts  # it did remember some between batches
    assert max(map(len, counter._chunk_counts)) <= token_counting.MAX_REMEMBERED_CHUNK_CHARS


def test_megabyte_documents(minilm: Tokenizer) -> None:
    texts = ["Ascii words, and more words. " * 20_000, "naïve café " * 50_000, "日本語" * 150_000]
    assert TokenCounter(minilm).count(texts) == reference(minilm, texts)


def test_threads_sharing_one_counter_get_the_same_counts(
    minilm: Tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(token_counting, "MAX_REMEMBERED_CHUNKS", 20)  # forget often
    counter = TokenCounter(minilm)
    texts = sample_table().column("text").to_pylist()[:600]
    batches = [texts[start : start + 10] for start in range(0, len(texts), 10)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        counted = [n for batch in pool.map(counter.count, batches) for n in batch]
    assert counted == reference(minilm, texts)
