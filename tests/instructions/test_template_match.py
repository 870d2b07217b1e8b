"""Stage ``template_match`` on real documents and the packaged starter bank.

The bank is embedded once per run by the stage's corpus-wide phase (run here in memory and
through the run driver on two workers); documents get up to ``max_templates`` templates, one
per Gaussian slot, each at or above the threshold, the same whatever batch carries them.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from support.data import read_output, split_samples

from gristmill import Pipeline
from gristmill.core.phase import run_in_memory
from gristmill.executors import LocalExecutor
from gristmill.instructions.bank import load_bank
from gristmill.instructions.match import (
    FI_MATCHES,
    MATCH_TYPE,
    TemplateMatch,
    build_index,
    complexity_weights,
    index_key,
)
from gristmill.io import ParquetReader, ParquetWriter


def _documents(data_dir: Path) -> pa.Table:
    texts = []
    for name in (
        "web/dolma_ccnet_cc_en_head-0091.jsonl",
        "sources/dj_redpajama-cc-2023-06-refined.jsonl",
        "sources/dj_the-pile-uspto-refined.jsonl",
    ):
        texts += [json.loads(line)["text"] for line in (data_dir / name).read_text().splitlines()]
    texts += ["", None, "   \n"]  # no text: an empty list, never an error
    return pa.table({"id": [str(i) for i in range(len(texts))], "text": texts})


def _stage(tmp_path: Path, **params) -> TemplateMatch:
    params = {"encoder": {"backend": "static"}, "index_dir": str(tmp_path / "idx"), **params}
    return TemplateMatch(params)


def _ready(stage: TemplateMatch, table: pa.Table) -> TemplateMatch:
    stage.use_phase_result(run_in_memory(stage.corpus_phase(), [table]))
    stage.setup()
    return stage


def test_matches_are_valid_deterministic_and_batch_independent(data_dir: Path, tmp_path: Path):
    table = _documents(data_dir)
    stage = _ready(_stage(tmp_path), table)
    out = stage.process(table)
    assert out.schema.field(FI_MATCHES).type == MATCH_TYPE
    matches = out.column(FI_MATCHES).to_pylist()
    bank = load_bank()
    by_id = {r["template_id"]: r for r in bank.to_pylist()}
    matched = [m for m in matches if m]
    assert len(matched) >= 15, "most real documents fit some starter template"
    for row in matches:
        assert len(row) <= 6
        assert len({m["template_id"] for m in row}) == len(row)  # no template twice
        assert len({m["slot"] for m in row}) == len(row)  # one per slot
        for m in row:
            assert m["score"] >= stage.threshold
            assert by_id[m["template_id"]]["template"] == m["template"]
            assert by_id[m["template_id"]]["n_fi"] == m["n_fi"]
    assert matches[-3:] == [[], [], []]
    assert {m["slot"] for row in matches for m in row} - {0}, "window slots match too"
    # one document per batch, another stage instance: the same templates, the same scores
    again = _ready(_stage(tmp_path), table)
    single = [
        again.process(table.slice(i, 1)).column(FI_MATCHES)[0].as_py() for i in range(len(table))
    ]
    for a, b in zip(matches, single, strict=True):
        assert [m["template_id"] for m in a] == [m["template_id"] for m in b]
        np.testing.assert_allclose([m["score"] for m in a], [m["score"] for m in b], atol=1e-5)
    counters = stage.stats.counters
    assert counters["documents_matched"] + counters["documents_without_match"] == len(table)


def test_threshold_and_max_templates_bound_the_matches(data_dir: Path, tmp_path: Path):
    table = _documents(data_dir).slice(0, 10)
    everything = _ready(_stage(tmp_path, threshold=-1.0, max_templates=3), table).process(table)
    assert [len(m) for m in everything.column(FI_MATCHES).to_pylist()] == [3] * 10
    nothing = _ready(_stage(tmp_path, threshold=0.99), table).process(table)
    assert nothing.column(FI_MATCHES).to_pylist() == [[]] * 10


def test_the_index_is_built_once_and_keyed_by_bank_and_encoder(tmp_path: Path):
    stage = _stage(tmp_path)
    first = build_index(stage.params)
    vectors = Path(first["index"]) / "vectors.npy"
    stamp = vectors.stat().st_mtime_ns
    assert build_index(stage.params) == first  # a second build reuses the saved index
    assert vectors.stat().st_mtime_ns == stamp
    assert len(list((tmp_path / "idx").iterdir())) == 1
    json.dumps(first)  # the decision is JSON
    assert first["templates"] == load_bank().num_rows and first["kind"] == "numpy"
    # another bank, another encoder: another index
    rows = load_bank().slice(0, 20).to_pylist()
    other = tmp_path / "bank.jsonl"
    other.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert index_key(_stage(tmp_path, bank=str(other)).params) != first["key"]
    assert index_key(_stage(tmp_path, encoder={"backend": "minilm"}).params) != first["key"]


def test_complexity_weights_follow_real_queries_over_the_pool():
    n_fi = [1, 1, 1, 2, 2, 12]
    sources = ["nq", "wildchat#1", "nq", "lmsys#4", "nq", "oasst#9"]
    w = complexity_weights(n_fi, sources)
    # pool: 1 -> 3/6, 2 -> 2/6, 10+ -> 1/6; real (wildchat, lmsys, oasst): 1/3 each
    assert w == pytest.approx({1: (1 / 3) / (3 / 6), 2: (1 / 3) / (2 / 6), 10: (1 / 3) / (1 / 6)})
    assert complexity_weights(n_fi, ["nq"] * 6) == {1: 1.0, 2: 1.0, 10: 1.0}
    given = complexity_weights(n_fi, ["nq"] * 6, real={2: 1.0})
    assert given == {1: 0.0, 2: 3.0, 10: 0.0}


def test_weighted_draws_move_complexity_toward_the_target(data_dir: Path, tmp_path: Path):
    table = _documents(data_dir).slice(0, 30)
    plain = _ready(_stage(tmp_path, threshold=0.0), table).process(table)
    two = _ready(_stage(tmp_path, threshold=0.0, real_complexity={2: 1.0}), table).process(table)
    share = [
        Counter(m["n_fi"] for row in t.column(FI_MATCHES).to_pylist() for m in row)
        for t in (plain, two)
    ]
    print(
        "share of 2-variable templates: uniform",
        share[0][2] / sum(share[0].values()),
        "weighted",
        share[1][2] / sum(share[1].values()),
    )
    # a slot whose candidates all have weight 0 still draws (uniformly): weights choose among
    # candidates, they do not filter documents out
    assert share[1][2] / sum(share[1].values()) > 2 * share[0][2] / sum(share[0].values())


def test_a_pipeline_run_builds_the_index_once_for_every_worker(tmp_path: Path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    split_samples(inputs, 3, rows=30)
    index_dir = tmp_path / "idx"
    output = tmp_path / "out"
    stage = TemplateMatch(encoder={"backend": "static"}, index_dir=str(index_dir))
    report = Pipeline(
        [stage],
        reader=ParquetReader(str(inputs / "*.parquet"), batch_size=7),
        writer=ParquetWriter(str(output)),
    ).run(executor=LocalExecutor(workers=2))
    assert report.ok, report.failures
    written = read_output(output)
    assert written.num_rows == 30 and written.schema.field(FI_MATCHES).type == MATCH_TYPE
    assert sum(1 for m in written.column(FI_MATCHES).to_pylist() if m) > 10
    (saved,) = index_dir.iterdir()
    decision = json.loads(next((output / "_run" / "phases").glob("*/decision.json")).read_text())
    assert decision["decision"]["index"] == str(saved)
    stats = json.loads((output / "_run" / "stats.json").read_text())
    assert "index_rebuilt_on_worker" not in json.dumps(stats)
