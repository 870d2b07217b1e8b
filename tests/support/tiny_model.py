"""Build a tiny random Llama and its tokenizer, as a Hugging Face model directory.

The ProX stages and every generator backend run on it end to end on a CPU: the weights are
random (outputs are garbage, which is what the error accounting must survive), the shapes
are ones vLLM's CPU attention accepts (head_dim 64), and the byte-level BPE tokenizer is
trained on the fly on real text, with Llama's special tokens and a BOS added on encode.
Nothing is downloaded. Importable by the benchmarks too (they put ``tests/`` on sys.path).
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = REPO / "tests" / "data" / "sources"
TRAINING_FILES = (
    "dj_redpajama-cc-2023-06-refined.jsonl",
    "legal_us_constitution.txt",
    "books_gutenberg_11_alice_in_wonderland.txt",
)
#: WikiText articles come from the sample shards (the rows of source ``wikitext``).
SAMPLES = REPO / "data_samples"
SPECIAL = ("<unk>", "<s>", "</s>")  # ids 0, 1, 2 as in Llama
VOCAB_SIZE = 1536
MAX_LINES = 12_000


def _training_text() -> list[str]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    lines: list[str] = []
    for name in TRAINING_FILES:
        raw = (SOURCES / name).read_text(encoding="utf-8", errors="replace")
        if name.endswith(".jsonl"):
            for row in raw.splitlines():
                try:
                    lines.extend(str(json.loads(row).get("text", "")).split("\n"))
                except ValueError:
                    continue
        else:
            lines.extend(raw.split("\n"))
    for shard in sorted(SAMPLES.glob("*.parquet")):
        table = pq.read_table(shard, columns=["text", "source"])
        wiki = table.filter(pc.equal(table.column("source"), "wikitext"))
        for text in wiki.column("text").to_pylist():
            lines.extend(text.split("\n"))
    lines = lines[: MAX_LINES - 6]  # enough for a usable vocabulary, quick to train
    # ProX prompts are made of these; make sure they are in the vocabulary.
    lines.extend(["[INST] <<SYS>>", "<</SYS>>", "[/INST]", "[doc]", "[/doc]", "[000][001][042]"])
    return lines


def build_tokenizer(directory: Path) -> object:
    """Train a byte-level BPE tokenizer and save it as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_text(), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<unk>",
        add_bos_token=True,
    )
    fast.save_pretrained(directory)
    return fast


def build_tiny_llama(directory: str | Path, seed: int = 0) -> Path:
    """Write a random 2-layer Llama (hidden 128, 2 heads of 64) and its tokenizer."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(directory)
    config = LlamaConfig(
        vocab_size=len(tokenizer),  # type: ignore[arg-type]
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,  # multi-query, like the released 0.3B refiners
        max_position_embeddings=2048,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model.save_pretrained(directory)
    return directory
