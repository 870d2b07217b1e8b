"""Export round trip: decoding a document's tokens gives back its prefix and its text, and the
masked positions are exactly BOS and the prefix; packing keeps document boundaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import typer
from support.data import sample_table
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from typer.testing import CliRunner

from gristmill.cli.export import register as register_export
from gristmill.cli.meco import register as register_meco
from gristmill.export import ExportOptions, export_corpus
from gristmill.export.writer import read_token_files
from gristmill.stages.taggers.meco import MecoConditioner
from gristmill.stages.taggers.meco_plan import MecoPlan


@pytest.fixture(scope="module")
def byte_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A byte-level BPE trained here on sample text: it decodes back to the exact bytes."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    texts = [t for t in sample_table().column("text").to_pylist()[:800] if t]
    tokenizer.train_from_iterator(texts, trainer)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tokenizer.save(str(path))
    return path


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A curated output: real documents with MeCo prefixes, a rejects folder beside them."""
    rows = sample_table()
    rows = rows.filter(pc.is_valid(rows.column("url"))).slice(0, 150)
    tagged = MecoConditioner(cooldown_fraction=0.3).process(rows)
    root = tmp_path_factory.mktemp("curated")
    pq.write_table(tagged, root / "part-000.parquet")
    (root / "_rejects").mkdir()
    pq.write_table(tagged.slice(0, 5), root / "_rejects" / "part-000.parquet")
    return root


def test_decoded_tokens_give_back_prefix_and_text(
    curated: Path, byte_tokenizer: Path, tmp_path: Path
) -> None:
    summary = export_corpus([str(curated)], tmp_path, ExportOptions(tokenizer=str(byte_tokenizer)))
    source = pq.read_table(curated / "part-000.parquet")
    assert summary.documents == source.num_rows  # _rejects is not exported
    tokenizer = Tokenizer.from_file(str(byte_tokenizer))
    bos, eos = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
    tokens, mask, offsets, meta = read_token_files(tmp_path)
    assert meta["dtype"] == "uint16" and (meta["bos_id"], meta["eos_id"]) == (bos, eos)
    table = pq.read_table(tmp_path / "sequences.parquet")
    with_prefix = 0
    for i, row in enumerate(source.to_pylist()):
        ids = np.asarray(tokens[offsets[i] : offsets[i + 1]], dtype=np.int64)
        doc_mask = np.asarray(mask[offsets[i] : offsets[i + 1]])
        assert ids[0] == bos and ids[-1] == eos
        masked = int((doc_mask == 0).sum())
        assert (doc_mask[:masked] == 0).all() and (doc_mask[masked:] == 1).all()
        prefix = tokenizer.decode(ids[1:masked].tolist(), skip_special_tokens=False)
        text = tokenizer.decode(ids[masked:-1].tolist(), skip_special_tokens=False)
        assert prefix == (row["meco_prefix"] or "")
        assert text == row["text"]
        with_prefix += row["meco_prefix"] is not None
        parquet_row = table.slice(i, 1).to_pylist()[0]
        assert parquet_row["doc_id"] == row["id"] and parquet_row["prefix_len"] == masked - 1
        assert parquet_row["input_ids"] == ids.tolist()
    assert 0 < with_prefix < source.num_rows  # conditioning and cooldown rows both seen


def test_prefix_and_text_are_tokenised_apart(curated: Path, byte_tokenizer: Path) -> None:
    """The text's tokens are the same with and without a prefix (cooldown == conditioning)."""
    tokenizer = Tokenizer.from_file(str(byte_tokenizer))
    text = "Hello world, this is a document."
    together = tokenizer.encode("URL: example.com\n\n" + text).ids
    apart = tokenizer.encode("URL: example.com\n\n").ids + tokenizer.encode(text).ids
    assert tokenizer.decode(apart) == "URL: example.com\n\n" + text
    assert len(apart) >= len(together)


def test_packing_keeps_boundaries_and_masks(
    curated: Path, byte_tokenizer: Path, tmp_path: Path
) -> None:
    unpacked = tmp_path / "docs"
    packed = tmp_path / "packed"
    options = ExportOptions(tokenizer=str(byte_tokenizer))
    docs = export_corpus([str(curated)], unpacked, options)
    summary = export_corpus(
        [str(curated)], packed, ExportOptions(tokenizer=str(byte_tokenizer), seq_len=1024)
    )
    assert summary.tokens + summary.tokens_discarded == docs.tokens
    rows = pq.read_table(packed / "sequences.parquet").to_pylist()
    doc_tokens, doc_mask, doc_offsets, _ = read_token_files(unpacked)
    ids_of = {
        row["doc_id"]: i
        for i, row in enumerate(
            pq.read_table(unpacked / "sequences.parquet").select(["doc_id"]).to_pylist()
        )
    }
    for row in rows[:-1]:
        assert row["length"] == 1024
    for row in rows:
        assert row["indices"][0][0] == 0 and row["indices"][-1][1] == row["length"]
        for (start, end), doc_id in zip(row["indices"], row["doc_ids"], strict=True):
            i = ids_of[doc_id]
            expected = doc_tokens[doc_offsets[i] : doc_offsets[i] + (end - start)]
            assert row["input_ids"][start:end] == expected.tolist()
            assert (
                row["loss_mask"][start:end]
                == doc_mask[doc_offsets[i] : doc_offsets[i] + (end - start)].tolist()
            )


def test_cli_plan_then_export_one_phase(
    curated: Path, byte_tokenizer: Path, tmp_path: Path
) -> None:
    app = typer.Typer()
    register_export(app)
    register_meco(app)
    runner = CliRunner()
    plan_file = tmp_path / "plan.json"
    result = runner.invoke(app, ["meco", "plan", str(curated), "-o", str(plan_file)])
    assert result.exit_code == 0, result.output
    plan = MecoPlan.load(plan_file)
    assert plan.docs_total == 150 and plan.host_counts
    result = runner.invoke(
        app,
        [
            "export",
            str(curated),
            "-o",
            str(tmp_path / "cool"),
            "--tokenizer",
            str(byte_tokenizer),
            "--phase",
            "cooldown",
        ],
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(tmp_path / "cool" / "sequences.parquet")
    assert set(table.column("phase").to_pylist()) == {"cooldown"}
    assert set(table.column("prefix_len").to_pylist()) == {0}
    missing = runner.invoke(app, ["export", str(tmp_path / "nothing"), "-o", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "matches no file" in " ".join(missing.output.split())
    no_bos = runner.invoke(
        app,
        [
            "export",
            str(curated),
            "-o",
            str(tmp_path / "y"),
            "--tokenizer",
            str(byte_tokenizer),
            "--bos-token",
            "<nope>",
        ],
    )
    assert no_bos.exit_code == 2 and "BOS" in no_bos.output


def test_null_text_exports_as_empty_document(byte_tokenizer: Path, tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    pq.write_table(
        pa.table({"id": ["a", "b"], "text": [None, ""], "meco_prefix": ["URL: a.com\n\n", None]}),
        root / "p.parquet",
    )
    summary = export_corpus(
        [str(root)], tmp_path / "out", ExportOptions(tokenizer=str(byte_tokenizer))
    )
    assert summary.documents == 2
    table = pq.read_table(tmp_path / "out" / "sequences.parquet")
    assert table.column("length").to_pylist()[1] == 2  # BOS + EOS
