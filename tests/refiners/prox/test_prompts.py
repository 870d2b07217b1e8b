"""Prompt building: the Llama-2 layout, doc-level truncation, chunk numbering and packing.

Tokenizers are trained here on real text (Alice in Wonderland) with the ``tokenizers``
library, shaped like Llama's: a BOS added by ``encode`` and ``<s>`` as a special token.
"""

from __future__ import annotations

import gzip
import json

import pytest
from support.data import TEST_DATA
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

from gristmill.refiners.prox import (
    CHUNK_TOKEN_BUDGET,
    SYSTEM_PROMPT,
    Chunk,
    as_encoder,
    build_chunk_prompts,
    build_chunk_prompts_batch,
    build_doc_prompt,
    build_doc_prompts,
    chunk_prompt,
    llama2_prompt,
    number_line,
    pack_lines,
)
from gristmill.refiners.prox.tokens import token_counts

DATA = TEST_DATA
ALICE = (DATA / "sources/books_gutenberg_11_alice_in_wonderland.txt").read_text(encoding="utf-8")
HEAD = "<s>[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant.\n<</SYS>>\n\n"


def _with_bos(tok: Tokenizer) -> Tokenizer:
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", bos)]
    )
    return tok


@pytest.fixture(scope="module")
def bpe() -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(ALICE.split("\n"), trainer)
    return _with_bos(tok)


@pytest.fixture(scope="module")
def wordlevel() -> Tokenizer:
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(ALICE.split("\n"), trainer)
    return _with_bos(tok)


def _web_docs() -> list[str]:
    with gzip.open(DATA / "web/dolma_provided_documents_000.json.gz", "rt") as f:
        return [json.loads(line)["text"] for line in f]


# ---- layout


def test_llama2_layout_is_byte_exact() -> None:
    assert SYSTEM_PROMPT == "You are a helpful, respectful and honest assistant."
    assert llama2_prompt("Hello") == HEAD + "Hello [/INST]"


def test_doc_prompt_keeps_raw_text_and_strips_only_the_end() -> None:
    text = "  Indented first line\n[000] not a line number\n\n \t"
    assert llama2_prompt(text) == HEAD + "  Indented first line\n[000] not a line number [/INST]"


def test_number_line_is_global_zero_padded_without_space() -> None:
    assert number_line(0, "Home") == "[000]Home"
    assert number_line(42, "") == "[042]"
    assert number_line(999, "x") == "[999]x"
    assert number_line(1234, "x") == "[1234]x"


def test_chunk_prompt_for_the_spec_document(bpe: Tokenizer) -> None:
    lines = [
        "Home | News | Sports | Contact",
        "The Quick Guide to Sourdough Bread",
        "(c) 2023 Example Media. All rights reserved.",
    ]
    (chunk,) = build_chunk_prompts("\n".join(lines), bpe)
    assert chunk.prompt == (
        HEAD + "[doc]\n[000]Home | News | Sports | Contact\n"
        "[001]The Quick Guide to Sourdough Bread\n"
        "[002](c) 2023 Example Media. All rights reserved.\n[/doc] [/INST]"
    )
    assert (chunk.first_line, chunk.last_line, chunk.index) == (0, 2, 0)


def test_lines_split_on_newline_only(bpe: Tokenizer) -> None:
    (chunk,) = build_chunk_prompts("a\r\nb\n", bpe)
    assert chunk.body == "[000]a\r\n[001]b\n[002]"
    assert chunk.lines == range(0, 3)


# ---- packing


@pytest.mark.parametrize(
    ("costs", "groups"),
    [
        ([], []),
        ([700, 700, 200], [(0, 1, 1400), (2, 2, 200)]),
        ([750, 750], [(0, 1, 1500)]),
        ([1500], [(0, 0, 1500)]),
        ([1501], [(0, 0, 1501)]),
        ([100, 1600, 100], [(0, 0, 100), (1, 1, 1600), (2, 2, 100)]),
        ([1600, 1600], [(0, 0, 1600), (1, 1, 1600)]),
        ([1000, 501, 499], [(0, 0, 1000), (1, 2, 1000)]),
    ],
)
def test_pack_lines(costs: list[int], groups: list[tuple[int, int, int]]) -> None:
    assert pack_lines(costs, CHUNK_TOKEN_BUDGET) == groups


def _cost(tok: Tokenizer, i: int, line: str) -> int:
    return len(tok.encode(number_line(i, line)).ids)


def _check_chunks(text: str, chunks: list[Chunk], tok: Tokenizer, budget: int) -> None:
    lines = text.split("\n")
    costs = [_cost(tok, i, line) for i, line in enumerate(lines)]
    assert chunks[0].first_line == 0
    assert chunks[-1].last_line == len(lines) - 1
    for k, chunk in enumerate(chunks):
        assert chunk.index == k
        if k:
            assert chunk.first_line == chunks[k - 1].last_line + 1
        assert chunk.n_tokens == sum(costs[chunk.first_line : chunk.last_line + 1])
        assert chunk.oversized == (chunk.n_tokens > budget)
        if chunk.oversized:
            assert chunk.first_line == chunk.last_line
        else:
            assert chunk.n_tokens <= budget
        if k + 1 < len(chunks) and not chunk.oversized:
            # greedy: the next line did not fit
            assert chunk.n_tokens + costs[chunk.last_line + 1] > budget
        numbered = [number_line(i, lines[i]) for i in chunk.lines]
        assert chunk.body == "\n".join(numbered)
        assert chunk.prompt == chunk_prompt(chunk.body)


def test_long_book_is_packed_greedily(bpe: Tokenizer) -> None:
    chunks = build_chunk_prompts(ALICE, bpe)
    assert len(chunks) > 10
    _check_chunks(ALICE, chunks, bpe, CHUNK_TOKEN_BUDGET)
    # numbering is global: the last chunk starts far past 999
    assert chunks[-1].body.startswith(f"[{chunks[-1].first_line}]")
    assert chunks[-1].first_line > 1000


def test_line_cost_counts_the_bos(bpe: Tokenizer) -> None:
    line = number_line(2, "")
    assert len(bpe.encode(line).ids) == len(bpe.encode(line, add_special_tokens=False).ids) + 1
    (chunk,) = build_chunk_prompts("\n\n", bpe)
    assert chunk.n_tokens == sum(_cost(bpe, i, "") for i in range(3))


def test_oversized_line_is_sent_whole(bpe: Tokenizer) -> None:
    paragraph = " ".join(ALICE.split()[:3000])
    text = f"Title line\n{paragraph}\nLast line"
    chunks = build_chunk_prompts(text, bpe)
    assert [(c.first_line, c.last_line, c.oversized) for c in chunks] == [
        (0, 0, False),
        (1, 1, True),
        (2, 2, False),
    ]
    assert chunks[1].body == "[001]" + paragraph


def test_small_budget_and_other_tokenizers(wordlevel: Tokenizer) -> None:
    doc = _web_docs()[5]
    chunks = build_chunk_prompts(doc, wordlevel, budget=60)
    assert len(chunks) > 5
    _check_chunks(doc, chunks, wordlevel, 60)


def test_empty_document_has_no_chunks(bpe: Tokenizer) -> None:
    assert build_chunk_prompts("", bpe) == []


def test_batch_equals_one_by_one(bpe: Tokenizer) -> None:
    docs = [*_web_docs(), "", "one line"]
    assert build_chunk_prompts_batch(docs, bpe) == [build_chunk_prompts(d, bpe) for d in docs]
    assert build_doc_prompts(docs, bpe) == [build_doc_prompt(d, bpe) for d in docs]


# ---- doc level


def test_long_document_is_right_truncated(bpe: Tokenizer) -> None:
    prompt = build_doc_prompt(ALICE, bpe)
    full = bpe.encode(llama2_prompt(ALICE), add_special_tokens=False).ids
    bos = bpe.token_to_id("<s>")
    assert prompt.prompt == llama2_prompt(ALICE)
    assert prompt.truncated
    assert list(prompt.token_ids) == full[:2000]
    assert prompt.token_ids[0] == bos
    assert prompt.token_ids.count(bos) == 1  # the literal <s> is the only BOS
    assert prompt.max_new_tokens() == 48


def test_short_document_keeps_the_closing_tag(bpe: Tokenizer) -> None:
    doc = _web_docs()[8]
    prompt = build_doc_prompt(doc, bpe)
    full = bpe.encode(llama2_prompt(doc), add_special_tokens=False).ids
    assert not prompt.truncated
    assert list(prompt.token_ids) == full
    tail = bpe.encode(" [/INST]", add_special_tokens=False).ids
    assert list(prompt.token_ids[-len(tail) :]) == tail
    assert prompt.max_new_tokens() == 2048 - len(full)
    assert build_doc_prompt("Hi", bpe).max_new_tokens(context=4096) == 2000


def test_custom_doc_budget(bpe: Tokenizer) -> None:
    prompt = build_doc_prompt(_web_docs()[0], bpe, max_tokens=100)
    assert len(prompt.token_ids) == 100
    assert prompt.truncated


# ---- tokenizer adapters


def test_adapter_rejects_non_tokenizers() -> None:
    with pytest.raises(TypeError, match="encode"):
        as_encoder(object())


def test_adapter_is_idempotent(bpe: Tokenizer) -> None:
    encoder = as_encoder(bpe)
    assert as_encoder(encoder) is encoder
    assert encoder.encode("Alice") == bpe.encode("Alice").ids
    assert build_chunk_prompts(ALICE, encoder) == build_chunk_prompts(ALICE, bpe)


def test_transformers_tokenizer(bpe: Tokenizer) -> None:
    transformers = pytest.importorskip("transformers")
    hf = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>")
    assert build_chunk_prompts(ALICE, hf) == build_chunk_prompts(ALICE, bpe)
    assert build_doc_prompt(ALICE, hf) == build_doc_prompt(ALICE, bpe)


def test_token_counts_equal_id_lengths_for_every_adapter(bpe: Tokenizer) -> None:
    transformers = pytest.importorskip("transformers")

    class EncodeOnly:  # any object with ``encode`` is a tokenizer to the prompt builders
        def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
            return bpe.encode(text, add_special_tokens=add_special_tokens).ids

    lines = [number_line(i, line) for i, line in enumerate(_web_docs()[3].split("\n"))]
    lines += ["", " ", "[000]"]
    hf = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>")
    for tokenizer in (bpe, hf, EncodeOnly()):
        encoder = as_encoder(tokenizer)
        for special in (True, False):
            ids = encoder.encode_batch(lines, add_special_tokens=special)
            assert token_counts(encoder, lines, special) == [len(i) for i in ids]
    assert token_counts(as_encoder(bpe), []) == []
