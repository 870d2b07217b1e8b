"""The export's default tokenizer is one made for language modelling, and it is reproducible.

``gristmill/models/bpe_8k`` is a byte-level BPE trained on ``data_samples/`` by
``scripts/train_export_tokenizer.py``: every text comes back exactly (case, accents, any
script, emoji), BOS and EOS are its own ``<|begin_of_text|>`` and ``<|end_of_text|>``, and
training it again gives the committed file byte for byte. A BERT-style tokenizer (MiniLM's
lowercasing WordPiece, the old default) is no longer taken silently: it has no BOS or EOS.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from support.data import sample_table
from tokenizers import Tokenizer

from gristmill.errors import ConfigError
from gristmill.export import ExportOptions, export_corpus
from gristmill.export.writer import read_token_files
from gristmill.models import EXPORT_TOKENIZER
from gristmill.stages.taggers.tokens import default_tokenizer_path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "train_export_tokenizer.py"
TEXTS = [
    "The Quick Brown Fox: MIXED case, Ünïcödé, naïve café, 3.14159 and x**2 + {y}.",
    "数据处理流水线在中央处理器上运行。 Привет, мир! مرحبا بالعالم 👩‍👩‍👧‍👦 \t\n  spaces ",
    "def f(x):\n    return x  # code keeps its indentation\n",
]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_file(str(EXPORT_TOKENIZER))


def test_it_is_a_byte_level_bpe_that_gives_back_every_text(tokenizer: Tokenizer) -> None:
    assert tokenizer.normalizer is None  # nothing lowercased, nothing stripped
    assert tokenizer.get_vocab_size() == 8192
    texts = [*TEXTS, *[t for t in sample_table().column("text").to_pylist()[::50] if t]]
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        assert tokenizer.decode(ids, skip_special_tokens=False) == text
    assert tokenizer.token_to_id("[UNK]") is None and tokenizer.token_to_id("[CLS]") is None
    table = sample_table()
    english = " ".join(table.filter(pc.equal(table["source"], "c4"))["text"].to_pylist())
    ratio = len(english) / len(tokenizer.encode(english, add_special_tokens=False).ids)
    assert ratio > 3.2, f"{ratio:.2f} characters per token on C4"  # measured 3.56


def test_its_bos_and_eos_are_named_beside_it(tokenizer: Tokenizer) -> None:
    config = json.loads((EXPORT_TOKENIZER.parent / "tokenizer_config.json").read_text())
    assert (config["bos_token"], config["eos_token"]) == ("<|begin_of_text|>", "<|end_of_text|>")
    assert tokenizer.token_to_id(config["bos_token"]) == 0
    assert tokenizer.token_to_id(config["eos_token"]) == 1


def test_the_default_export_uses_it_and_keeps_the_text_as_it_is(
    tokenizer: Tokenizer, tmp_path: Path
) -> None:
    rows = sample_table()
    rows = rows.filter(pc.is_valid(rows.column("url"))).slice(0, 40)
    curated = tmp_path / "curated"
    curated.mkdir()
    pq.write_table(rows, curated / "part-000.parquet")
    export_corpus([str(curated)], tmp_path / "export", ExportOptions())
    tokens, _mask, offsets, meta = read_token_files(tmp_path / "export")
    assert (meta["bos_id"], meta["eos_id"]) == (0, 1)
    assert meta["tokenizer"] == str(EXPORT_TOKENIZER)
    for i, text in enumerate(rows.column("text").to_pylist()):
        ids = np.asarray(tokens[offsets[i] : offsets[i + 1]], dtype=np.int64)
        assert ids[0] == 0 and ids[-1] == 1
        assert tokenizer.decode(ids[1:-1].tolist(), skip_special_tokens=False) == text


def test_a_wordpiece_tokenizer_needs_its_special_tokens_said(tmp_path: Path) -> None:
    curated = tmp_path / "curated"
    curated.mkdir()
    pq.write_table(sample_table().slice(0, 5), curated / "part-000.parquet")
    minilm = str(default_tokenizer_path())
    with pytest.raises(ConfigError, match="no BOS token"):
        export_corpus([str(curated)], tmp_path / "a", ExportOptions(tokenizer=minilm))
    said = ExportOptions(tokenizer=minilm, bos_token="[CLS]", eos_token="[SEP]")
    assert export_corpus([str(curated)], tmp_path / "b", said).documents == 5


def test_training_it_again_gives_the_committed_file(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("train_export_tokenizer", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--out", str(tmp_path)]) == 0
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / name).read_bytes() == (EXPORT_TOKENIZER.parent / name).read_bytes()
