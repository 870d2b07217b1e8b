"""The datatrove adapters agree with datatrove itself on real sample documents."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.filters import GopherQualityFilter
from datatrove.pipeline.readers import ParquetReader as DatatroveParquetReader
from datatrove.pipeline.writers import JsonlWriter
from support.data import read_output
from support.stages import MinLength, TextLength

from gristmill import Pipeline
from gristmill.adapters.datatrove_in_gristmill import DatatroveStep
from gristmill.adapters.gristmill_in_datatrove import GristmillStep
from gristmill.io import ParquetReader, ParquetWriter

SHARD = "web-c4-0000.parquet"


def _datatrove_kept_ids(samples_dir: Path, work: Path) -> set[str]:
    output = work / "datatrove_out"
    LocalPipelineExecutor(
        pipeline=[
            DatatroveParquetReader(str(samples_dir), glob_pattern=SHARD, id_key="id"),
            GopherQualityFilter(),
            JsonlWriter(str(output), compression=None),
        ],
        tasks=1,
        workers=1,
        logging_dir=str(work / "datatrove_logs"),
    ).run()
    import json

    return {
        json.loads(line)["id"]
        for path in output.glob("*.jsonl")
        for line in path.read_text().splitlines()
    }


def test_wrapped_gopher_quality_keeps_exactly_what_datatrove_keeps(
    samples_dir: Path, tmp_path: Path
):
    expected = _datatrove_kept_ids(samples_dir, tmp_path)
    out = tmp_path / "gristmill_out"
    report = Pipeline(
        [DatatroveStep(GopherQualityFilter())],
        reader=ParquetReader(str(samples_dir / SHARD)),
        writer=ParquetWriter(str(out)),
    ).run()
    kept = set(read_output(out).column("id").to_pylist())
    total = pq.read_metadata(samples_dir / SHARD).num_rows

    assert 0 < len(expected) < total, "the filter should keep some documents and drop some"
    assert kept == expected
    dropped = report.stats.stages["01_datatrove"].dropped
    assert sum(dropped.values()) == total - len(expected)
    assert all(reason.startswith("GopherQualityFilter:gopher_") for reason in dropped)


def test_datatrove_step_from_yaml_parameters_matches_the_instance(samples_dir: Path):
    by_name = DatatroveStep(
        step="datatrove.pipeline.filters.GopherQualityFilter", args={"min_doc_words": 80}
    )
    by_instance = DatatroveStep(GopherQualityFilter(min_doc_words=80))
    table = pq.read_table(samples_dir / SHARD).slice(0, 300)
    assert by_name.process(table).equals(by_instance.process(table))


def test_gristmill_stages_run_as_a_datatrove_step(samples_dir: Path):
    table = pq.read_table(samples_dir / SHARD).slice(0, 200)
    documents = [Document(text=r["text"], id=r["id"]) for r in table.to_pylist()]
    step = GristmillStep([TextLength(), MinLength(min_chars=1000)], batch_size=64)

    out = list(step.run(iter(documents)))

    expected = [r for r in table.to_pylist() if len(r["text"]) >= 1000]
    assert [d.id for d in out] == [r["id"] for r in expected]
    assert [d.metadata["text_length"] for d in out] == [len(r["text"]) for r in expected]


def test_a_datatrove_filter_that_edits_what_it_keeps_hands_on_the_edited_text(samples_dir: Path):
    """C4's remove_lines rewrites the documents it keeps; the adapter must pass that on, and it
    agrees with gristmill's own vectorised c4_quality, text and all."""
    from datatrove.pipeline.filters import C4QualityFilter

    from gristmill.core.registry import get_stage_class

    table = pq.read_table(samples_dir / "web-ccnet-0000.parquet")
    wrapped = DatatroveStep(C4QualityFilter()).process(table)
    ours = get_stage_class("c4_quality")().process(table)

    originals = dict(
        zip(table.column("id").to_pylist(), table.column("text").to_pylist(), strict=True)
    )
    edited = [r for r in wrapped.to_pylist() if r["text"] != originals[r["id"]]]
    assert edited, "C4 removes lines from some of these pages: the test would prove nothing"
    assert wrapped.column("id").to_pylist() == ours.column("id").to_pylist()
    assert wrapped.column("text").to_pylist() == ours.column("text").to_pylist()
