"""Pipelines run end to end on the real sample shards: round trip, stats, rejects, validation."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.data import read_output, sample_table, split_samples
from support.stages import MinLength, NeedsColumn, TextLength

from gristmill import Pipeline
from gristmill.errors import PipelineValidationError
from gristmill.io import ParquetReader, ParquetWriter


def pipeline(stages, inputs: str, output: Path, **reader_options) -> Pipeline:
    return Pipeline(
        stages,
        reader=ParquetReader(inputs, **reader_options),
        writer=ParquetWriter(str(output)),
    )


def test_round_trip_without_stages_keeps_every_row_and_value(samples_dir: Path, tmp_path: Path):
    report = pipeline([], str(samples_dir / "*.parquet"), tmp_path / "out").run(workers=2)

    assert report.ok and report.tasks_total == len(list(samples_dir.glob("*.parquet")))
    written = read_output(tmp_path / "out")
    original = sample_table()
    assert written.schema == original.schema
    assert written.equals(original)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.parquet")) == sorted(
        p.name for p in samples_dir.glob("*.parquet")
    )


def test_stats_and_rejects_account_for_every_document(samples_dir: Path, tmp_path: Path):
    out = tmp_path / "out"
    report = pipeline(
        [TextLength(), MinLength(min_chars=500)], str(samples_dir / "*.parquet"), out
    ).run(workers=1)
    original = sample_table()
    written = read_output(out)
    rejects = pa.concat_tables(
        pq.read_table(p) for p in sorted((out / "_rejects").glob("*.parquet"))
    )

    lengths = {r["id"]: len(r["text"]) for r in original.select(["id", "text"]).to_pylist()}
    assert set(written.column("id").to_pylist()) == {i for i, n in lengths.items() if n >= 500}
    assert set(rejects.column("id").to_pylist()) == {i for i, n in lengths.items() if n < 500}
    assert set(rejects.column("drop_stage").to_pylist()) == {"02_test_min_length"}
    assert written.column("text_length").to_pylist() == [
        lengths[i] for i in written.column("id").to_pylist()
    ]

    stats = json.loads((out / "_run" / "stats.json").read_text())
    length_stage, filter_stage = (
        stats["stages"]["01_test_text_length"],
        stats["stages"]["02_test_min_length"],
    )
    assert length_stage["docs_in"] == length_stage["docs_out"] == original.num_rows
    assert length_stage["chars_in"] == sum(lengths.values())
    assert filter_stage["docs_out"] == written.num_rows
    assert filter_stage["dropped"] == {"test_min_length": rejects.num_rows}
    assert report.stats.stages["02_test_min_length"].docs_dropped == rejects.num_rows


def test_annotate_mode_adds_keep_column_and_drops_nothing(samples_dir: Path, tmp_path: Path):
    out = tmp_path / "out"
    pipeline([MinLength(min_chars=500, mode="annotate")], str(samples_dir / "*.parquet"), out).run()
    written = read_output(out)
    assert written.num_rows == sample_table().num_rows
    expected = [len(t) >= 500 for t in written.column("text").to_pylist()]
    assert written.column("keep_test_min_length").to_pylist() == expected
    assert not (out / "_rejects").exists()


def test_missing_column_fails_validation_naming_stage_and_column(samples_dir: Path, tmp_path: Path):
    run = pipeline([TextLength(), NeedsColumn()], str(samples_dir / "*.parquet"), tmp_path / "o")
    with pytest.raises(
        PipelineValidationError, match=r"stage 'test_needs_column'.*'quality_score'"
    ):
        run.run()
    assert not list((tmp_path / "o").glob("*.parquet"))


def test_input_without_text_column_fails_before_processing(samples_dir: Path, tmp_path: Path):
    table = sample_table().drop_columns(["text"]).slice(0, 10)
    pq.write_table(table, tmp_path / "no_text.parquet")
    run = pipeline([], str(tmp_path / "no_text.parquet"), tmp_path / "out")
    with pytest.raises(PipelineValidationError, match=r"no_text.parquet has no 'text' column"):
        run.run()
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.parquet"))


def test_large_file_is_split_into_row_group_tasks(tmp_path: Path):
    table = sample_table()
    pq.write_table(table, tmp_path / "big.parquet", row_group_size=250)
    reader = ParquetReader(str(tmp_path / "big.parquet"), task_size_mb=0.5)
    tasks = reader.plan()
    assert len(tasks) > 2
    assert tasks[0].row_groups is not None and tasks[0].row_groups[0] == 0
    assert tasks[-1].row_groups is not None
    assert tasks[-1].row_groups[1] == pq.ParquetFile(tmp_path / "big.parquet").num_row_groups

    out = tmp_path / "out"
    report = Pipeline([], reader=reader, writer=ParquetWriter(str(out))).run(workers=2)
    assert report.ok and report.tasks_total == len(tasks)
    assert read_output(out).equals(table)
    assert all(".rg" in p.name for p in out.glob("*.parquet"))


def test_inputs_without_ids_get_stable_generated_ids(tmp_path: Path):
    table = sample_table().drop_columns(["id"]).slice(0, 300)
    pq.write_table(table, tmp_path / "noid.parquet", row_group_size=100)
    out = tmp_path / "out"
    pipeline([], str(tmp_path / "noid.parquet"), out, batch_size=64).run()
    ids = pq.read_table(out / "noid.parquet").column("id").to_pylist()
    assert ids == [f"noid.parquet#{i}" for i in range(300)]


def test_limit_reads_at_most_n_documents_per_task(samples_dir: Path, tmp_path: Path):
    paths = split_samples(tmp_path / "in", 3)
    report = pipeline([], str(tmp_path / "in" / "*.parquet"), tmp_path / "out").run(limit=7)
    assert report.docs_read == 7 * len(paths)
    assert read_output(tmp_path / "out").num_rows == 21
