"""ProX stages end to end on real documents: the tiny random model through transformers,
and the rule programmer on real boilerplate pages, with no model at all."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from support.data import read_output

from gristmill import Pipeline
from gristmill.errors import ConfigError
from gristmill.io import ParquetReader, ParquetWriter
from gristmill.refiners.prox import RuleProgrammer
from gristmill.refiners.prox.stages import Prox, ProxChunk, ProxDoc
from gristmill.runs.config import parse_pipeline

REPO = Path(__file__).resolve().parents[3]
WEB = ["web-ccnet-0000.parquet", "web-html-0000.parquet"]
BAD_ROWS = [("bad-null", None), ("bad-empty", ""), ("bad-blank", "  \n\t \n")]


def web_table(samples_dir: Path, rows: int | None = None, max_chars: int | None = None) -> pa.Table:
    """Real crawled pages; model tests take short ones, since CPU prefill is the cost."""
    table = pa.concat_tables([pq.read_table(samples_dir / name) for name in WEB])
    if max_chars is not None:
        table = table.filter(pc.less(pc.utf8_length(table.column("text")), max_chars))
    return table if rows is None else table.slice(0, rows)


def with_bad_rows(table: pa.Table) -> pa.Table:
    """Append null, empty and blank texts (provenance copied from real rows)."""
    bad = table.slice(0, len(BAD_ROWS))
    bad = bad.set_column(
        bad.schema.get_field_index("id"), "id", pa.array([i for i, _ in BAD_ROWS], pa.string())
    )
    field = table.schema.field("text")
    bad = bad.set_column(
        bad.schema.get_field_index("text"),
        field.with_nullable(True),
        pa.array([t for _, t in BAD_ROWS], field.type),
    )
    return pa.concat_tables([table, bad], promote_options="default")


def run(stages, table: pa.Table, tmp_path: Path) -> tuple[pa.Table, pa.Table, dict]:
    """Write ``table`` as a shard, run the pipeline, return output, rejects and stats."""
    src = tmp_path / "in" / "shard.parquet"
    src.parent.mkdir(parents=True)
    pq.write_table(table, src)
    out = tmp_path / "out"
    report = Pipeline(stages, reader=ParquetReader(str(src)), writer=ParquetWriter(str(out))).run()
    assert report.ok, report.failures
    rejects = sorted((out / "_rejects").glob("*.parquet"))
    rejected = pa.concat_tables(pq.read_table(p) for p in rejects) if rejects else None
    stats = json.loads((out / "_run" / "stats.json").read_text())
    return read_output(out), rejected, stats


def tiny(model: Path, **options) -> dict:
    return {"backend": "transformers", "model": str(model), "options": options}


# ----------------------------------------------------------------------- model programmer


def test_model_pipeline_records_every_document_and_leaves_garbage_harmless(
    samples_dir: Path, tiny_model_dir: Path, tmp_path: Path
):
    table = with_bad_rows(web_table(samples_dir, rows=16, max_chars=2500))
    original = {r["id"]: r["text"] for r in table.select(["id", "text"]).to_pylist()}
    stages = [
        ProxDoc(generator=tiny(tiny_model_dir), max_new_tokens=12),
        ProxChunk(generator=tiny(tiny_model_dir), max_new_tokens=12, executor="strict"),
    ]
    kept, rejected, stats = run(stages, table, tmp_path)

    rows = kept.to_pylist() + (rejected.to_pylist() if rejected is not None else [])
    assert sorted(r["id"] for r in rows) == sorted(original)  # nothing lost, nothing doubled
    assert all(r["prox_status"] for r in rows)
    assert all(r["prox_doc_program"] is not None for r in rows)
    for r in rows:
        if r["id"].startswith("bad-"):
            assert r["prox_status"] == "drop_empty" and r["drop_stage"] == "01_prox_doc"
        elif r.get("drop_stage") == "01_prox_doc":
            # Compat doc level: the released executor drops on any "drop" in the output.
            assert r["prox_status"] == "drop_doc" and "drop" in r["prox_doc_program"]
        else:
            assert "drop" not in r["prox_doc_program"]
            assert r["prox_chunks"] >= 1 and r["prox_chunk_program"] is not None
    # Strict mode counts every garbage line; a random model writes no valid call, so no
    # kept document is edited, and the rejects keep their original text.
    for r in rows:
        assert r["text"] == original[r["id"]]
        if r["prox_chunk_program"]:
            assert r["prox_errors"] >= 1
            assert r["prox_status"] in {"unchanged", "discarded", "drop_short"}
    for r in kept.to_pylist():
        assert r["prox_status"] in {"unchanged", "discarded"}
    if rejected is not None:
        assert (
            rejected.column("drop_reason").to_pylist() == rejected.column("prox_status").to_pylist()
        )

    doc, chunk = stats["stages"]["01_prox_doc"], stats["stages"]["02_prox_chunk"]
    assert doc["counters"]["prompts"] == 16 and doc["counters"]["generation_errors"] == 0
    assert chunk["counters"]["errors"] >= 1
    assert sum(doc["histograms"]["status"].values()) == table.num_rows
    assert sum(chunk["histograms"]["status"].values()) == doc["docs_out"]


def test_overlong_prompts_fail_alone_and_are_counted(tiny_model_dir: Path, samples_dir: Path):
    normal = web_table(samples_dir, rows=2, max_chars=2500)
    long_line = " ".join(["refinement"] * 2500)  # one line, longer than the 2048 context
    text = "A title line for this page\n" + long_line + "\nand a closing line of text here"
    table = pa.concat_tables(
        [normal, pa.table({"id": ["long"], "text": [text]})], promote_options="default"
    )
    doc = ProxDoc(generator=tiny(tiny_model_dir), max_new_tokens=4)
    chunk = ProxChunk(generator=tiny(tiny_model_dir), max_new_tokens=4)
    first = doc.run_batch(table)
    second = chunk.run_batch(first.table.filter(pc.equal(first.table.column("id"), "long")))

    row = first.table.filter(pc.equal(first.table.column("id"), "long")).to_pylist()[0]
    assert row["prox_doc_truncated"] is True  # head of the doc only, as upstream
    long_row = second.table.to_pylist()[0]
    assert long_row["prox_chunks"] == 3  # the over-long line is a chunk of its own
    assert long_row["prox_errors"] >= 1  # its prompt overflowed: empty program, one error
    assert long_row["text"] == text  # compat: random output does not touch the text
    assert chunk.stats.counters["oversized_chunks"] == 1
    assert chunk.stats.counters["generation_errors"] == 1
    assert chunk.generator is not None and chunk.generator.errors == 1
    doc.teardown()
    chunk.teardown()


def test_prox_stage_runs_both_levels_and_merges_their_figures(
    samples_dir: Path, tiny_model_dir: Path
):
    table = with_bad_rows(web_table(samples_dir, rows=6, max_chars=2500))
    stage = Prox(
        doc_generator=tiny(tiny_model_dir),
        chunk_generator=tiny(tiny_model_dir),
        doc_max_new_tokens=6,
        chunk_max_new_tokens=6,
    )
    stage.setup()
    try:
        result = stage.run_batch(table)
    finally:
        stage.teardown()
    assert result.rejected is not None
    assert result.table.num_rows + result.rejected.num_rows == table.num_rows
    for name in ("prox_doc_program", "prox_chunk_program", "prox_status", "prox_errors"):
        assert name in result.table.column_names and name in result.rejected.column_names
    assert set(result.reasons.to_pylist()) >= {"drop_empty"}
    counters = stage.stats.counters
    assert counters["doc_prompts"] == 6
    assert counters["chunk_prompts"] >= result.table.num_rows
    assert sum(stage.stats.dropped.values()) == result.rejected.num_rows


# ----------------------------------------------------------------------- rule programmer


def test_rule_programmer_strips_boilerplate_from_real_pages(samples_dir: Path, tmp_path: Path):
    table = with_bad_rows(web_table(samples_dir))
    original = {r["id"]: r["text"] for r in table.select(["id", "text"]).to_pylist()}
    kept, rejected, stats = run([ProxChunk(programmer="rule")], table, tmp_path)

    rows = kept.to_pylist()
    edited = [r for r in rows if r["prox_status"] == "edited"]
    assert len(edited) >= 10  # crawled pages carry navigation, share bars, footers
    rules = RuleProgrammer()
    for r in edited:
        before = original[r["id"]].split("\n")
        labels = rules.classify(original[r["id"]])
        removed = [line for line, label in zip(before, labels, strict=True) if label]
        assert r["prox_chunk_program"].startswith(("remove_lines(", "normalize("))
        assert len(r["text"].split("\n")) <= len(before) - len(removed) + r["text"].count("\n")
        # Every line that stays is an original line (at most with a trailing phrase cut).
        assert all(any(line in b for b in before) for line in r["text"].split("\n"))
        assert len(r["text"]) < len(original[r["id"]])
    for r in rows:
        if r["prox_status"] == "unchanged":
            assert r["text"] == original[r["id"]]
    assert rejected is not None
    assert set(rejected.column("prox_status").to_pylist()) <= {
        "drop_short",
        "drop_ratio",
        "drop_empty",
    }
    assert {"bad-null", "bad-empty", "bad-blank"} <= set(rejected.column("id").to_pylist())
    chunk = stats["stages"]["01_prox_chunk"]
    assert chunk["counters"]["calls"] >= len(edited)
    assert chunk["chars_out"] < chunk["chars_in"]


def test_rule_programs_mean_the_same_to_both_executors(samples_dir: Path):
    table = web_table(samples_dir)
    compat = ProxChunk(programmer="rule").run_batch(table)
    strict = ProxChunk(programmer="rule", executor="strict").run_batch(table)
    assert compat.table.column("text").equals(strict.table.column("text"))
    assert compat.table.column("prox_status").equals(strict.table.column("prox_status"))


def test_rule_prox_survives_huge_and_garbage_documents():
    c4 = pq.read_table(REPO / "data_samples" / "web-c4-0000.parquet").column("text")
    page = "\n".join(c4.to_pylist()) + "\nShare on Facebook | Tweet | Pin it\n"
    huge = page * (10_000_000 // len(page) + 1)  # one 10 MB document of real paragraphs
    garbage = "\x00\x01 ��\ufffd" * 1000 + "\n" + '}{)(=,"' * 500
    table = pa.table({"id": ["huge", "garbage", "null"], "text": [huge, garbage, None]})
    stage = ProxChunk(programmer="rule")
    result = stage.run_batch(table)
    rows = {r["id"]: r for r in result.table.to_pylist()}
    rows.update({r["id"]: r for r in (result.rejected.to_pylist() if result.rejected else [])})
    assert len(huge) >= 9_000_000
    assert rows["huge"]["prox_status"] == "edited"
    assert "Share on Facebook" not in rows["huge"]["text"]
    assert rows["null"]["prox_status"] == "drop_empty" and rows["null"]["text"] is None
    assert rows["garbage"]["prox_status"] in {"unchanged", "drop_short", "edited"}
    assert sum(stage.stats.histograms["status"].values()) == 3


# ----------------------------------------------------------------------- configuration


def test_model_programmer_without_generator_is_a_config_error():
    with pytest.raises(ConfigError, match=r"prox_doc.*generator"):
        ProxDoc(programmer="model")
    with pytest.raises(ConfigError, match="gpu_memory_utilisation"):
        ProxChunk(
            generator={"backend": "vllm", "model": "x", "options": {"gpu_memory_utilisation": 1}}
        )


def test_gpu_pipeline_file_builds_without_loading_models():
    path = REPO / "pipelines" / "prox_vllm.yaml"
    config = parse_pipeline(path.read_text(), str(path))
    stages = config.build_stages()
    assert [s.name for s in stages] == ["prox_doc", "prox_chunk"]
    for stage in stages:
        assert stage.params.generator.backend == "vllm"
        assert stage.resources.gpus == 1.0
        assert stage.generator is None  # models load in setup(), on the worker


def test_doc_prompts_of_long_documents_equal_upstream_full_tokenization(
    samples_dir: Path, tiny_model_dir: Path
):
    from transformers import AutoTokenizer

    from gristmill.refiners.prox import build_doc_prompts

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    c4 = pq.read_table(samples_dir / "web-c4-0000.parquet").column("text").to_pylist()
    texts = ["\n".join(c4[i : i + 40]) for i in range(0, 400, 40)]  # long real documents
    stage = ProxDoc(generator=tiny(tiny_model_dir))
    stage.tokenizer = tokenizer  # prompt building only; no model is loaded
    built: list = []
    batches = list(stage._token_ids(texts, built))
    assert [len(b) for b in batches] == [8, 2]  # built slice by slice
    assert built == build_doc_prompts(texts, tokenizer)
    assert [list(ids) for b in batches for ids in b] == [list(p.token_ids) for p in built]
    assert sum(p.truncated for p in built) >= 5
    assert stage._builder().tokenized_chars < sum(map(len, texts)) / 2  # heads only


def test_prompt_slices_start_small_and_grow():
    from gristmill.refiners.prox.stages import _slices

    items = list(range(300))
    parts = list(_slices(items))
    assert [len(p) for p in parts] == [8, 16, 32, 64, 64, 64, 52]
    assert [i for p in parts for i in p] == items
    assert list(_slices([])) == []
    assert [list(p) for p in _slices([1, 2])] == [[1, 2]]


# ----------------------------------------------------------------------- both levels, any batch
# Found by tests/stages/test_every_stage.py: ``prox`` in annotate mode wrote keep_prox_doc and
# keep_prox_chunk but no keep_prox, and refined rows the doc level drops; a batch the doc
# level kept nothing of (an empty batch, only blank texts) came out without the chunk columns.


def test_prox_annotate_marks_every_row_as_drop_mode_decides(samples_dir: Path):
    table = with_bad_rows(web_table(samples_dir, rows=12))
    annotated = Prox(programmer="rule", mode="annotate").run_batch(table)
    dropped = Prox(programmer="rule").run_batch(table)
    out = annotated.table
    assert annotated.rejected is None or annotated.rejected.num_rows == 0
    assert out.column("id").to_pylist() == table.column("id").to_pylist()
    keep = out.column("keep_prox")
    assert keep.null_count == 0 and "keep_prox_doc" not in out.column_names
    marked = [i for i, k in zip(out["id"].to_pylist(), keep.to_pylist(), strict=True) if k]
    assert marked == dropped.table.column("id").to_pylist()
    assert dropped.rejected is not None
    assert dropped.table.num_rows + dropped.rejected.num_rows == table.num_rows
    # Kept rows are refined alike in both modes; rows the doc level drops never see the
    # chunk level.
    by_id = {r["id"]: r for r in out.to_pylist()}
    for row in dropped.table.to_pylist():
        assert by_id[row["id"]]["text"] == row["text"]
    for row in dropped.rejected.to_pylist():
        if row["prox_status"] == "drop_empty":
            assert by_id[row["id"]]["prox_chunk_program"] is None


@pytest.mark.parametrize("texts", [[], [""], [None, "  \n"]], ids=["empty", "blank", "null"])
@pytest.mark.parametrize("mode", ["drop", "annotate"])
def test_prox_gives_every_column_when_the_doc_level_keeps_nothing(texts: list, mode: str):
    table = pa.table(
        {"id": [f"r{i}" for i in range(len(texts))], "text": pa.array(texts, pa.string())}
    )
    stage = Prox(programmer="rule", mode=mode)
    result = stage.run_batch(table)
    outputs = [result.table] + ([result.rejected] if result.rejected is not None else [])
    for field in stage.produced_fields():
        for out in outputs:
            assert out.schema.field(field.name).type == field.type
    assert sum(out.num_rows for out in outputs) == len(texts)
