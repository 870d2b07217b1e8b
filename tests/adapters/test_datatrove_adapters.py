"""The datatrove adapters agree with datatrove itself on real sample documents."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
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
from gristmill.errors import ConfigError
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


# -- metadata, both ways ------------------------------------------------------------------


def _datatrove_run(samples_dir: Path, work: Path, steps: list[object]) -> list[dict]:
    """datatrove's own run over the c4 shard: its reader, the steps, its JSONL writer."""
    import json

    output = work / "datatrove_out"
    LocalPipelineExecutor(
        pipeline=[
            DatatroveParquetReader(str(samples_dir), glob_pattern=SHARD, id_key="id"),
            *steps,
            JsonlWriter(str(output), compression=None),
        ],
        tasks=1,
        workers=1,
        logging_dir=str(work / "datatrove_logs"),
    ).run()
    return [json.loads(line) for p in sorted(output.glob("*.jsonl")) for line in p.open()]


def test_url_filter_reads_the_url_column_and_decides_as_in_datatrove(
    samples_dir: Path, tmp_path: Path
):
    """URLFilter needs ``metadata["url"]``: the columns are the documents' metadata."""
    from datatrove.pipeline.filters import URLFilter

    blocked = ["bbc.co.uk", "wikipedia.org", "nytimes.com"]
    expected = {
        row["id"]
        for row in _datatrove_run(samples_dir, tmp_path, [URLFilter(extra_domains=blocked)])
    }
    table = pq.read_table(samples_dir / SHARD)
    result = DatatroveStep(URLFilter(extra_domains=blocked)).run_batch(table)
    assert set(result.table.column("id").to_pylist()) == expected
    assert 0 < result.rejected.num_rows < table.num_rows
    assert "URLFilter:domain" in result.reasons.to_pylist()
    assert result.table.schema == table.schema  # nothing added, nothing retyped


def test_metadata_a_step_writes_comes_back_as_declared_columns(samples_dir: Path):
    from datatrove.pipeline.tokens.counter import TokensCounter
    from tokenizers import Tokenizer

    from gristmill.core.chain import StageChain
    from gristmill.core.config import StageEntry, build_stage
    from gristmill.models import EXPORT_TOKENIZER

    table = pq.read_table(samples_dir / SHARD).slice(0, 200)
    counter = DatatroveStep(
        step="datatrove.pipeline.tokens.counter.TokensCounter",
        args={"tokenizer_name_or_path": str(EXPORT_TOKENIZER)},
        metadata={"token_count": "int64"},
    )
    need = build_stage(
        StageEntry("score_filter", {"column": "token_count", "method": "threshold", "threshold": 9})
    )
    schema = StageChain([counter, need]).validate(table.schema)  # declared: validated up front
    assert schema.field("token_count").type == pa.int64()
    out = counter.process(table)
    tokenizer = Tokenizer.from_file(str(EXPORT_TOKENIZER))
    expected = [len(e.ids) for e in tokenizer.encode_batch(table.column("text").to_pylist())]
    assert out.column("token_count").to_pylist() == expected
    assert out.column_names == [*table.column_names, "token_count"]

    undeclared = DatatroveStep(TokensCounter(str(EXPORT_TOKENIZER)))
    with pytest.raises(ConfigError, match=r"token_count.*metadata: \{token_count: int64\}"):
        undeclared.process(table)
    left_out = DatatroveStep(TokensCounter(str(EXPORT_TOKENIZER)), undeclared_metadata="drop")
    assert left_out.process(table).column_names == table.column_names
    assert left_out.stats.counters["metadata_left_out:token_count"] == 1


def test_a_step_that_changes_a_column_s_metadata_changes_the_column(samples_dir: Path):
    from datatrove.pipeline.filters import LambdaFilter

    def strip_query(doc) -> bool:
        doc.metadata["url"] = doc.metadata["url"].split("?")[0].upper()
        return True

    table = pq.read_table(samples_dir / SHARD).slice(0, 50)
    for mode, changed in (("drop", True), ("annotate", False)):
        out = DatatroveStep(LambdaFilter(strip_query), mode=mode).process(table)
        urls = [u.split("?")[0].upper() for u in table.column("url").to_pylist()]
        assert (out.column("url").to_pylist() == urls) is changed
        assert out.schema.field("url").type == table.schema.field("url").type


def test_gristmill_taggers_in_a_datatrove_executor_return_their_columns_as_metadata(
    samples_dir: Path, tmp_path: Path
):
    from gristmill.stages.taggers.domain import DomainTagger
    from gristmill.stages.taggers.language import LanguageTagger

    rows = _datatrove_run(
        samples_dir, tmp_path, [GristmillStep([DomainTagger(), LanguageTagger()], batch_size=300)]
    )
    table = pq.read_table(samples_dir / SHARD)
    expected = LanguageTagger()
    expected.setup()
    tagged = expected.process(DomainTagger().process(table))
    assert [r["id"] for r in rows] == table.column("id").to_pylist()
    for name in ("url_host", "url_registered_domain", "language"):
        assert [r["metadata"][name] for r in rows] == tagged.column(name).to_pylist()
    scores = [r["metadata"]["language_score"] for r in rows]
    assert scores == pytest.approx(tagged.column("language_score").to_pylist(), abs=1e-6)
    assert all(r["metadata"]["url"] for r in rows)  # the reader's metadata is kept


@pytest.mark.parametrize(
    "stage",
    [
        "score_filter:percentile",
        "meco:exact",
    ],
)
def test_a_whole_run_stage_is_refused_when_the_step_is_built(stage: str):
    from gristmill.core.config import StageEntry, build_stage

    entries = {
        "score_filter:percentile": StageEntry(
            "score_filter", {"column": "text_length", "method": "percentile", "keep_fraction": 0.5}
        ),
        "meco:exact": StageEntry("meco", {"token_column": "token_count"}),
    }
    built = build_stage(entries[stage])
    assert built.corpus_phase() is not None
    with pytest.raises(ConfigError, match=f"'{built.name}'.*whole run"):
        GristmillStep([TextLength(), built])
    GristmillStep([TextLength()])  # a stage without a phase is fine


def test_a_mapper_annotates_and_takes_an_empty_batch(samples_dir: Path):
    from datatrove.pipeline.formatters import SymbolLinesFormatter

    table = pq.read_table(samples_dir / "web-ccnet-0000.parquet")
    annotated = DatatroveStep(SymbolLinesFormatter(), mode="annotate").process(table)
    assert annotated.num_rows == table.num_rows
    assert annotated.column("text").equals(table.column("text"))  # annotate never edits
    assert annotated.column("keep_datatrove").null_count == 0
    edited = DatatroveStep(SymbolLinesFormatter()).process(table)
    assert edited.column("id").equals(table.column("id"))
    assert edited.column("text") != table.column("text")
    assert DatatroveStep(SymbolLinesFormatter()).process(table.slice(0, 0)).num_rows == 0
