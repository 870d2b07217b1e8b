"""Export round trip: decoding a document's tokens gives back its prefix and its text, and the
masked positions are exactly BOS and the prefix; packing keeps document boundaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from support.data import meco_curated, sample_table
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from typer.testing import CliRunner

from gristmill.cli.export import register as register_export
from gristmill.cli.meco import register as register_meco
from gristmill.export import ExportOptions, export_corpus
from gristmill.export.pack import Packer
from gristmill.export.sequences import Sequence
from gristmill.export.writer import read_token_files
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
    root = tmp_path_factory.mktemp("curated")
    tagged = meco_curated(root, rows=150, parts=1)
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
    # Training order: the conditioning documents, then the cooldown ones, each in input order.
    rows = source.to_pylist()
    rows = [r for r in rows if r["phase"] != "cooldown"] + [
        r for r in rows if r["phase"] == "cooldown"
    ]
    for i, row in enumerate(rows):
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


@pytest.fixture(scope="module")
def unpacked(curated: Path, byte_tokenizer: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The curated output exported one sequence per document: the reference packing must keep."""
    out = tmp_path_factory.mktemp("unpacked")
    export_corpus([str(curated)], out, ExportOptions(tokenizer=str(byte_tokenizer)))
    return out


def _documents(export: Path) -> list[dict[str, Any]]:
    rows = pq.read_table(export / "sequences.parquet").to_pylist()
    assert len({row["doc_id"] for row in rows}) == len(rows)  # ids identify the documents
    return rows


def _packed_rows_match_token_files(export: Path, seq_len: int) -> list[dict[str, Any]]:
    """The Parquet rows, after checking them against the memmap files and the row lengths."""
    rows = pq.read_table(export / "sequences.parquet").to_pylist()
    tokens, mask, offsets, meta = read_token_files(export)
    assert len(offsets) == len(rows) + 1 and offsets[-1] == len(tokens) == len(mask)
    for r, row in enumerate(rows):
        assert tokens[offsets[r] : offsets[r + 1]].tolist() == row["input_ids"]
        assert mask[offsets[r] : offsets[r + 1]].tolist() == row["loss_mask"]
        assert row["length"] == len(row["input_ids"]) == len(row["loss_mask"])
        spans = [tuple(span) for span in row["indices"]]
        assert [start for start, _ in spans] == [0] + [end for _, end in spans[:-1]]
        assert spans[-1][1] == row["length"] and all(end > start for start, end in spans)
        assert len(spans) == len(row["doc_ids"]) == len(row["doc_starts"])
        assert row["head_lens"] == [0] * len(spans)  # nothing repeated outside repeat_prefix
    # Phases in training order, rows never mixing them: full rows but each phase's last.
    phases = [row["phase"] for row in rows]
    assert phases == sorted(phases, key=["conditioning", "cooldown"].index)
    for phase, (first, end) in meta["phase_rows"].items():
        assert set(phases[first:end]) == {phase}
        assert all(row["length"] == seq_len for row in rows[first : end - 1])
        assert 0 < rows[end - 1]["length"] <= seq_len
    assert meta["padded"] is False and meta["last_row_length"] == rows[-1]["length"]
    assert meta["tokens_written"] == meta["tokens"] == len(tokens)
    return rows


@pytest.mark.parametrize("seq_len", [512, 64])
def test_split_packing_keeps_every_token_in_order(
    unpacked: Path, curated: Path, byte_tokenizer: Path, tmp_path: Path, seq_len: int
) -> None:
    """Each document is rebuilt exactly, ids and mask, from its spans across rows."""
    summary = export_corpus(
        [str(curated)], tmp_path, ExportOptions(tokenizer=str(byte_tokenizer), seq_len=seq_len)
    )
    documents = _documents(unpacked)
    total = sum(len(d["input_ids"]) for d in documents)
    assert (summary.tokens_in, summary.tokens, summary.tokens_dropped) == (total, total, 0)
    rows = _packed_rows_match_token_files(tmp_path, seq_len)
    meta = read_token_files(tmp_path)[3]
    assert (meta["pack_mode"], meta["tokens_in"], meta["tokens_dropped"]) == ("split", total, 0)
    by_phase: dict[str, int] = {}
    for document in documents:
        by_phase[document["phase"]] = by_phase.get(document["phase"], 0) + len(
            document["input_ids"]
        )
    assert len(rows) == sum(-(-n // seq_len) for n in by_phase.values())
    rebuilt: dict[str, tuple[list[int], list[int]]] = {}
    continued_in_prefix = spanning = 0
    for row in rows:
        for (start, end), doc_id, doc_start in zip(
            row["indices"], row["doc_ids"], row["doc_starts"], strict=True
        ):
            ids, mask = rebuilt.setdefault(doc_id, ([], []))
            assert doc_start == len(ids)  # pieces arrive in order, none missing or repeated
            if doc_start > 0:
                assert start == 0  # a continuation opens its row
                continued_in_prefix += row["loss_mask"][0] == 0
            ids += row["input_ids"][start:end]
            mask += row["loss_mask"][start:end]
    for document in documents:
        ids, mask = rebuilt.pop(document["doc_id"])
        assert ids == document["input_ids"] and mask == document["loss_mask"]
        spanning += len(ids) > seq_len
    assert not rebuilt  # no piece of an unknown document
    order = [doc_id for row in rows for doc_id in row["doc_ids"]]
    assert list(dict.fromkeys(order)) == [d["doc_id"] for d in documents]
    assert spanning > 0  # documents longer than a row were exercised
    if seq_len == 64:
        assert continued_in_prefix > 0  # a cut fell inside BOS/prefix and the mask stayed 0


def test_truncate_packing_starts_rows_at_documents_and_counts_the_loss(
    unpacked: Path, curated: Path, byte_tokenizer: Path, tmp_path: Path
) -> None:
    options = ExportOptions(tokenizer=str(byte_tokenizer), seq_len=512, pack_mode="truncate")
    summary = export_corpus([str(curated)], tmp_path, options)
    documents = {d["doc_id"]: d for d in _documents(unpacked)}
    total = sum(len(d["input_ids"]) for d in documents.values())
    assert summary.tokens_in == total and summary.tokens_dropped > 0
    assert summary.tokens + summary.tokens_dropped == total
    meta = read_token_files(tmp_path)[3]
    assert meta["pack_mode"] == "truncate" and meta["tokens_dropped"] == summary.tokens_dropped
    rows = _packed_rows_match_token_files(tmp_path, 512)
    kept = 0
    for row in rows:
        assert set(row["doc_starts"]) == {0}  # no document crosses rows
        for index, ((start, end), doc_id) in enumerate(
            zip(row["indices"], row["doc_ids"], strict=True)
        ):
            document = documents[doc_id]
            assert row["input_ids"][start:end] == document["input_ids"][: end - start]
            assert row["loss_mask"][start:end] == document["loss_mask"][: end - start]
            if index < len(row["indices"]) - 1:
                assert end - start == len(document["input_ids"])  # only a row's last is cut
            kept += end - start
    assert kept == summary.tokens


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=30),
    seq_len=st.integers(1, 16),
    mode=st.sampled_from(["split", "truncate"]),
)
def test_packer_accounts_for_every_token(lengths: list[int], seq_len: int, mode: str) -> None:
    """Edge cases the corpus may not hit: exact fits, seq_len 1, a stream ending on a row end."""
    sequences, first = [], 0
    for n, length in enumerate(lengths):
        mask = np.ones(length, dtype=np.uint8)
        mask[: n % 3] = 0
        ids = np.arange(first, first + length, dtype=np.uint32)
        sequences.append(Sequence(f"d{n}", ids, mask, max(n % 3 - 1, 0)))
        first += length
    packer = Packer(seq_len, mode)  # type: ignore[arg-type]
    rows = [row for s in sequences for row in packer.add(s)] + list(packer.flush())
    assert all(len(row.ids) == seq_len for row in rows[:-1]) and 0 < len(rows[-1].ids) <= seq_len
    assert packer.tokens_in == first
    written = np.concatenate([row.ids for row in rows])
    if mode == "split":
        assert packer.dropped == 0
        assert written.tolist() == list(range(first))
        assert (
            np.concatenate([row.mask for row in rows]).tolist()
            == np.concatenate([s.mask for s in sequences]).tolist()
        )
    else:
        assert packer.dropped == first - len(written)
        assert all(start == 0 for row in rows for start in row.doc_starts)
    for row in rows:
        for (start, end), doc_id, doc_start in zip(
            row.spans, row.doc_ids, row.doc_starts, strict=True
        ):
            source = sequences[int(doc_id[1:])]
            piece = slice(doc_start, doc_start + end - start)
            assert row.ids[start:end].tolist() == source.ids[piece].tolist()
            assert row.mask[start:end].tolist() == source.mask[piece].tolist()


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


def test_cli_pack_mode(curated: Path, byte_tokenizer: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    register_export(app)
    register_meco(app)  # two commands, so typer dispatches on the name "export"
    runner = CliRunner()
    base = ["export", str(curated), "--tokenizer", str(byte_tokenizer), "--seq-len", "256"]
    split = runner.invoke(app, [*base, "-o", str(tmp_path / "split")])
    assert split.exit_code == 0, split.output
    assert "(0 dropped by packing)" in " ".join(split.output.split())
    meta = read_token_files(tmp_path / "split")[3]
    assert meta["pack_mode"] == "split" and meta["tokens_written"] == meta["tokens_in"]
    truncate = runner.invoke(app, [*base, "-o", str(tmp_path / "cut"), "--pack-mode", "truncate"])
    assert truncate.exit_code == 0, truncate.output
    meta = read_token_files(tmp_path / "cut")[3]
    assert meta["pack_mode"] == "truncate" and meta["tokens_dropped"] > 0
    assert meta["tokens_written"] + meta["tokens_dropped"] == meta["tokens_in"]
    bad = runner.invoke(app, [*base, "-o", str(tmp_path / "bad"), "--pack-mode", "pad"])
    assert bad.exit_code == 2 and "--pack-mode" in bad.output
