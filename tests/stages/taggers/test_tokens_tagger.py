"""Token counts with encode_batch on real documents; other tokenizers; bad input."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from support.data import sample_table

from gristmill.errors import ConfigError
from gristmill.stages.taggers.tokens import TokensTagger, default_tokenizer_path, load_tokenizer


def test_counts_match_the_tokenizer_one_by_one() -> None:
    rows = sample_table().slice(0, 300)
    out = TokensTagger().process(rows)
    tokenizer = load_tokenizer(None)
    for text, count in zip(
        rows.column("text").to_pylist()[:40],
        out.column("token_count").to_pylist()[:40],
        strict=True,
    ):
        assert count == len(tokenizer.encode(text, add_special_tokens=False).ids)
    assert min(out.column("token_count").to_pylist()) >= 0


def test_long_documents_are_not_truncated() -> None:
    # the bundled tokenizer.json says truncate at 128; counting must ignore that
    long = " ".join(["word"] * 5000)
    out = TokensTagger().process(pa.table({"id": ["a"], "text": [long]}))
    assert out.column("token_count")[0].as_py() == 5000


def test_null_empty_and_huge_text() -> None:
    table = pa.table({"id": ["a", "b", "c"], "text": [None, "", "ab " * 200_000]})
    counts = TokensTagger().process(table).column("token_count").to_pylist()
    assert counts[:2] == [None, 0] and counts[2] == 200_000


def test_own_tokenizer_file_and_folder(tmp_path: Path) -> None:
    folder = default_tokenizer_path().parent
    rows = pa.table({"id": ["a"], "text": ["Hello world"]})
    by_folder = TokensTagger(tokenizer=str(folder)).process(rows)
    assert by_folder.column("token_count")[0].as_py() == 2
    broken = tmp_path / "tokenizer.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match=r"tokenizer\.json"):
        TokensTagger(tokenizer=str(broken)).setup()
