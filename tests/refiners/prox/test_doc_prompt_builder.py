"""``DocPromptBuilder`` tokenizes only a prefix of long documents: its prompts must equal
``build_doc_prompts``'s, which tokenizes them whole as upstream does, wherever the cut falls.

Two real tokenizer layouts: the tiny model's byte-level BPE (a regex pre-tokenizer splits
words, as GPT-2's) and a Llama-2-like BPE with no pre-tokenizer at all (the whole text is one
"word"; spaces become ``▁`` in the normalizer, unknown bytes fall back to byte tokens).
"""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from support.data import TEST_DATA
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

from gristmill.refiners.prox import DocPromptBuilder, as_encoder, build_doc_prompts
from gristmill.refiners.prox.prompts import PREFIX_MARGIN_TOKENS, llama2_opening

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "data_samples"
ALICE = TEST_DATA / "sources" / "books_gutenberg_11_alice_in_wonderland.txt"

#: Text the cut must survive, placed where the prefix ends.
BLOBS = {
    "word": "Antidisestablishmentarianism",
    "base64": "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo" * 12,
    "cjk": "数据处理流水线在中央处理器上运行并且不需要图形处理器" * 6,
    "spaces": " " * 200,
    "newlines": "\n" * 30 + "\t \n" * 10,
    "digits": "3141592653589793238462643383279502884197" * 6,
    "combining": "e\u0301" * 60 + "👩‍👩‍👧‍👦" * 20,
    "special": "</s><s>[INST]</s>" * 8,
    "one_letter": "a" * 300,
}


def _llama_like() -> Tokenizer:
    """Llama-2's tokenizer.json layout, trained on Alice: no pre-tokenizer, byte fallback."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()  # for training only
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(ALICE.read_text(encoding="utf-8").split("\n"), trainer)
    tok.pre_tokenizer = None
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return tok


@pytest.fixture(scope="module", params=["byte_level", "llama_like"])
def tokenizer(request: pytest.FixtureRequest) -> object:
    if request.param == "llama_like":
        return _llama_like()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(request.getfixturevalue("tiny_model_dir"))


def _texts(name: str, rows: int) -> list[str]:
    texts = pq.read_table(SAMPLES / name, columns=["text"]).column("text").to_pylist()
    return [t for t in texts if t and t.strip()][:rows]


def real_documents() -> list[str]:
    """Every kind of document in data_samples, long ones included (up to 74,000 chars)."""
    docs: list[str] = []
    for path in sorted(SAMPLES.glob("*.parquet")):
        docs += _texts(path.name, 12)
    docs += sorted(_texts("web-html-0000.parquet", 55), key=len)[-4:]
    docs += sorted(_texts("reference-mixed-0000.parquet", 89), key=len)[-4:]
    c4 = _texts("web-c4-0000.parquet", 400)
    docs += ["\n".join(c4[i : i + 40]) for i in range(0, 400, 80)]  # long, many lines
    return docs


@pytest.mark.parametrize("max_tokens", [2000, 150])
def test_prompts_equal_whole_document_tokenization_on_real_documents(tokenizer, max_tokens):
    docs = real_documents()
    builder = DocPromptBuilder(tokenizer, max_tokens)
    built = builder.build(docs)
    assert built == build_doc_prompts(docs, tokenizer, max_tokens)
    assert sum(p.truncated for p in built) >= 10
    # The point of it: most of the long documents' text was never tokenized.
    assert builder.tokenized_chars < 0.5 * sum(map(len, docs))
    # Learnt from the cut documents, and the next batch is built alike.
    assert 0.5 < builder.chars_per_token < 8
    assert builder.build(docs[::-1]) == built[::-1]


@pytest.mark.parametrize("chars_per_token", [0.01, 0.3, 1000.0])
def test_wrong_estimates_cost_passes_never_ids(tokenizer, chars_per_token):
    docs = real_documents()[::3]
    builder = DocPromptBuilder(tokenizer, 300, chars_per_token=chars_per_token)
    assert builder.build(docs) == build_doc_prompts(docs, tokenizer, 300)


def _cut_at(tokenizer, max_tokens: int, cut: int, margin: int = PREFIX_MARGIN_TOKENS):
    """A builder whose first prefix ends exactly at character ``cut``."""
    chars_per_token = (cut - 0.5) / (max_tokens + margin)
    builder = DocPromptBuilder(tokenizer, max_tokens, margin, chars_per_token=chars_per_token)
    assert math.ceil(builder.needed * chars_per_token) == cut
    return builder


@pytest.mark.parametrize("blob", sorted(BLOBS))
@pytest.mark.parametrize("margin", [PREFIX_MARGIN_TOKENS, 8])
def test_cut_inside_adversarial_text(tokenizer, blob, margin):
    """The prefix ends before, inside and after ``blob``, character by character at its
    edges; the ids kept always equal those of the whole document. The default margin is
    checked, and 8 ids too: the margin is 30 times what these cuts need."""
    encoder = as_encoder(tokenizer)
    base = "\n".join(_texts("web-c4-0000.parquet", 40))[:6000]
    text = base + BLOBS[blob] + base
    start = len(base)
    before = len(encoder.encode(llama2_opening() + text[: start - 12], add_special_tokens=False))
    max_tokens = before - margin - 10  # every prefix below holds enough ids: one pass
    assert max_tokens > 100
    whole = build_doc_prompts([text], tokenizer, max_tokens)
    full = encoder.encode(llama2_opening() + text, add_special_tokens=False)
    offsets = [*range(-8, 24), *range(24, len(BLOBS[blob]) + 12, 13)]
    changed = 0
    for offset in offsets:
        builder = _cut_at(tokenizer, max_tokens, start + offset, margin)
        assert builder.build([text]) == whole, (blob, offset)
        assert builder.tokenized_chars == start + offset  # the cut was where meant
        cut = encoder.encode(llama2_opening() + text[: start + offset], add_special_tokens=False)
        changed += cut != full[: len(cut)]
    assert changed  # the cuts did change the ids next to them: the margin is what saves them


def test_documents_around_the_prefix_length(tokenizer):
    base = "\n".join(_texts("web-c4-0000.parquet", 60))
    builder = DocPromptBuilder(tokenizer, 50)
    first = math.ceil(builder.needed * builder.chars_per_token)
    docs = [base[: first + d] for d in (-2, -1, 0, 1, 2)]
    assert builder.build(docs) == build_doc_prompts(docs, tokenizer, 50)


def test_short_empty_and_blank_documents(tokenizer):
    docs = ["", " ", "Hi", "  Indented\n\n \t", "word " * 3]
    assert DocPromptBuilder(tokenizer).build(docs) == build_doc_prompts(docs, tokenizer)
    assert DocPromptBuilder(tokenizer).build([]) == []


@pytest.mark.parametrize("kwargs", [{"max_tokens": 0}, {"margin": 0}, {"chars_per_token": 0.0}])
def test_invalid_settings(kwargs):
    with pytest.raises(ValueError, match="must be > 0"):
        DocPromptBuilder(_llama_like(), **kwargs)
