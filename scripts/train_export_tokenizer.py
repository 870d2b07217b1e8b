"""Train the byte-level BPE that ``gristmill export`` uses when no ``--tokenizer`` is given.

A tokenizer made for language modelling, as GPT-2's and Llama-3's are: byte-level (every
string, in any script, encodes and decodes back exactly; nothing is lowercased or mapped to
an unknown token), no normaliser, a GPT-2-style pre-tokenizer, and two special tokens,
``<|begin_of_text|>`` (BOS, id 0) and ``<|end_of_text|>`` (EOS, id 1), which ``export``
puts around each document. It is trained on every document of ``data_samples/`` (the
repository's own text, 3,548 real documents in 20 sources and several languages), so it is
small (8,192 tokens) and fits small models trained from scratch on gristmill's output; a
model with its own tokenizer is exported with ``--tokenizer PATH`` instead.

Deterministic: the same samples give the same file byte for byte (a test trains it again and
compares). Run from the repository root::

    python scripts/train_export_tokenizer.py [--out gristmill/models/bpe_8k]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT / "data_samples"
DEFAULT_OUT = REPO_ROOT / "gristmill" / "models" / "bpe_8k"
VOCAB_SIZE = 8192
BOS = "<|begin_of_text|>"
EOS = "<|end_of_text|>"


def sample_texts(samples: Path = SAMPLES) -> list[str]:
    """Every sample document's text, in id order (the order the trainer sees them in)."""
    table = pa.concat_tables(
        pq.read_table(path, columns=["id", "text"]) for path in sorted(samples.glob("*.parquet"))
    ).sort_by("id")
    return [text for text in table.column("text").to_pylist() if text]


def train(texts: list[str]) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=[BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer, length=len(texts))
    return tokenizer


def write(tokenizer: Tokenizer, out: Path) -> None:
    """``tokenizer.json`` and a ``tokenizer_config.json`` naming BOS and EOS (for export and for
    ``transformers.AutoTokenizer``)."""
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1_000_000_000,
        "gristmill": {
            "trained_by": "scripts/train_export_tokenizer.py",
            "trained_on": "every document of data_samples/ (see data_samples/SOURCES.md)",
            "vocab_size": VOCAB_SIZE,
        },
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    texts = sample_texts()
    tokenizer = train(texts)
    write(tokenizer, args.out)
    size = (args.out / "tokenizer.json").stat().st_size
    tokens = tokenizer.get_vocab_size()
    print(f"{args.out}: {tokens} tokens from {len(texts)} documents, {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
