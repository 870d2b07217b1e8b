"""Each ProX level's prompt ids equal the released code's, whatever tokenizer flag is loaded.

The released code encoded doc prompts with the slow Llama-2 tokenizer (``legacy: false``: no
``▁`` before the ``[`` that follows ``<s>``) and let vLLM encode chunk prompts with
transformers 4.39's fast tokenizer (``▁[`` after ``<s>``, plus the engine's BOS). The
fixture builds a Llama-2-style tokenizer (SentencePiece-style BPE with byte fallback, trained
here on real web text) twice, with ``legacy`` false and true, through the installed
``transformers``' own ``LlamaTokenizer``; the official ids of each level come from the
tokenizer with that level's flag, encoded as the official code encodes. The stages get the
*other* flag too, and must still produce the official ids.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from support.data import TEST_DATA

from gristmill.errors import ConfigError
from gristmill.refiners.prox import build_chunk_prompts_batch, llama2_prompt
from gristmill.refiners.prox.llama import with_prefix_rule
from gristmill.refiners.prox.stages import ProxChunk, ProxDoc

transformers = pytest.importorskip("transformers")
if int(transformers.__version__.split(".")[0]) < 5:  # pragma: no cover - 4.x layout differs
    pytest.skip(
        "the fixture builds LlamaTokenizer from a vocabulary (transformers 5)",
        allow_module_level=True,
    )


def _web_docs() -> list[str]:
    with gzip.open(TEST_DATA / "web/dolma_provided_documents_000.json.gz", "rt") as f:
        return [json.loads(line)["text"] for line in f]


DOCS = _web_docs()


@pytest.fixture(scope="module")
def vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A Llama-like BPE vocabulary: Metaspace words, byte fallback, <unk> <s> </s> first."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=3000,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=["▁", "["],
        show_progress=False,
    )
    lines = [line for doc in DOCS for line in doc.split("\n")]
    tok.train_from_iterator([*lines, "[INST] <<SYS>>", "<</SYS>>", "[/INST] [doc] [/doc]"], trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return model["vocab"], merges  # type: ignore[return-value]


def llama(vocab: Any, legacy: bool) -> Any:
    """The installed transformers' Llama tokenizer with the given ``legacy`` flag."""
    return transformers.LlamaTokenizer(
        vocab=vocab[0], merges=vocab[1], legacy=legacy, add_bos_token=True
    )


def official_doc_ids(text: str, slow_like: Any) -> list[int]:
    """Upstream stage 1: the rendered prompt, no special tokens added, first 2000 ids."""
    return slow_like.encode(llama2_prompt(text), add_special_tokens=False)[:2000]


def official_chunk_ids(prompt: str, fast_439_like: Any) -> list[int]:
    """Upstream stage 2: the prompt text, encoded by the engine with its BOS added."""
    return fast_439_like.encode(prompt, add_special_tokens=True)


@pytest.mark.parametrize("loaded_legacy", [False, True])
def test_doc_prompt_ids_equal_the_slow_non_legacy_tokenizer(
    vocab: Any, loaded_legacy: bool
) -> None:
    official = llama(vocab, legacy=False)
    stage = ProxDoc(generator={"backend": "transformers", "model": "unused"})
    stage.tokenizer = with_prefix_rule(llama(vocab, loaded_legacy), stage.params.tokenizer_legacy)
    docs = [d for d in DOCS if d.split()]
    built = stage._builder().build(docs)
    assert [list(p.token_ids) for p in built] == [official_doc_ids(d, official) for d in docs]
    bracket = official.convert_tokens_to_ids("[")
    assert all(p.token_ids[:2] == (1, bracket) for p in built)


@pytest.mark.parametrize("loaded_legacy", [False, True])
def test_chunk_prompt_ids_equal_the_legacy_fast_tokenizer(vocab: Any, loaded_legacy: bool) -> None:
    official = llama(vocab, legacy=True)
    stage = ProxChunk(generator={"backend": "transformers", "model": "unused"})
    tokenizer = with_prefix_rule(llama(vocab, loaded_legacy), stage.params.tokenizer_legacy)
    docs = [d for d in DOCS if d.split()]
    chunks = [c for cs in build_chunk_prompts_batch(docs, tokenizer) for c in cs]
    assert len(chunks) > len(docs)  # long pages are split
    assert [list(c.token_ids) for c in chunks] == [
        official_chunk_ids(c.prompt, official) for c in chunks
    ]
    # The line costs that decide the packing come from the same tokenizer (BOS counted).
    for c in chunks[:50]:
        lines = c.body.split("\n")
        assert c.n_tokens == sum(len(official.encode(line)) for line in lines)
    third = {official.convert_ids_to_tokens(c.token_ids[2]) for c in chunks}
    assert all(c.token_ids[:2] == (1, 1) for c in chunks)
    assert all(t.startswith("▁[") for t in third), third


def test_the_two_levels_really_differ(vocab: Any) -> None:
    """The fixture shows the upstream difference: one prompt, two different id sequences."""
    prompt = llama2_prompt(DOCS[0])
    doc = llama(vocab, legacy=False).encode(prompt, add_special_tokens=False)
    chunk = llama(vocab, legacy=True).encode(prompt, add_special_tokens=False)
    assert doc[0] == chunk[0] == 1
    assert doc[1] != chunk[1]


def test_non_sentencepiece_tokenizers_are_left_alone(tiny_model_dir: Any) -> None:
    """A byte-level BPE has no prefix rule: the tokenizer is used as loaded."""
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model_dir)
    assert with_prefix_rule(tok, True) is tok
    assert with_prefix_rule(tok, False) is tok


def test_a_slow_tokenizer_with_the_wrong_rule_is_refused(vocab: Any) -> None:
    """Without a Rust backend the rule cannot be set: a mismatch fails at set-up."""

    class Slow:
        """A slow-tokenizer stand-in delegating to a real Llama tokenizer without its backend."""

        def __init__(self, legacy: bool) -> None:
            self._tok = llama(vocab, legacy)
            self.unk_token_id = 0

        def convert_tokens_to_ids(self, token: str) -> int:
            return int(self._tok.convert_tokens_to_ids(token))

        def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
            return list(self._tok.encode(text, add_special_tokens=add_special_tokens))

    assert with_prefix_rule(Slow(False), False) is not None
    with pytest.raises(ConfigError, match="legacy=True"):
        with_prefix_rule(Slow(False), True)
