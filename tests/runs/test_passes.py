"""Two-pass runs (a percentile cut after a scorer): passes, the cut's phase, resume, fingerprints.

The interrupted runs are real ``gristmill run`` processes killed with SIGKILL part-way through
the first pass (the scorer's) or the second (the cut and what follows).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from support.data import read_output, split_samples
from support.processes import completed, kill_when, start_gristmill
from support.score_stages import LetterShare

from gristmill import Pipeline
from gristmill.core.chain import StageChain
from gristmill.executors import LocalExecutor
from gristmill.io import ParquetReader, ParquetWriter
from gristmill.runs.config import load_pipeline
from gristmill.runs.passes import split_passes
from gristmill.stages.filters.score_filter import ScoreFilter

SHARDS = 8

PIPELINE = """
name: two-pass
input: {{paths: ["{inputs}/*.parquet"], batch_size: 100}}
output: {{path: "{output}"}}
executor: {{type: local, workers: 2}}
stages:
  - test_letter_share: {{min_chars: 200, sleep_per_batch: {sleep}}}
  - score_filter: {{column: letter_share, method: percentile, keep_fraction: 0.5}}
  - test_letter_share: {{column: second_score, sleep_per_batch: {sleep}}}
"""


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("in")
    split_samples(directory, SHARDS)
    return directory


def _write_pipeline(directory: Path, inputs: Path, output: Path, sleep: float) -> Path:
    path = directory / f"{output.name}.yaml"
    path.write_text(PIPELINE.format(inputs=inputs, output=output, sleep=sleep))
    return path


@pytest.fixture(scope="module")
def reference(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run's output (without the slowdown, which changes nothing else)."""
    directory = tmp_path_factory.mktemp("reference")
    output = directory / "out"
    config = load_pipeline(_write_pipeline(directory, shards, output, 0.0))
    report = config.build().run(executor=LocalExecutor(workers=2))
    assert report.ok, report.failures
    return output


def _cli(pipeline: Path):
    return start_gristmill("run", str(pipeline), "--quiet", register=("support.score_stages",))


def _assert_same_output(output: Path, reference: Path) -> None:
    resumed, expected = read_output(output), read_output(reference)
    ids = resumed.column("id").to_pylist()
    assert len(ids) == len(set(ids)), "duplicated documents"
    assert resumed.drop_columns([]).equals(expected)
    assert [p for p in output.rglob("*") if p.name.startswith(".tmp-")] == []
    assert not list((output / "_run" / "passes").rglob("*.parquet")), "pass data kept"
    stats = json.loads((output / "_run" / "stats.json").read_text())
    reference_stats = json.loads((reference / "_run" / "stats.json").read_text())
    for label, figures in reference_stats["stages"].items():
        assert stats["stages"][label]["docs_in"] == figures["docs_in"]
        assert stats["stages"][label]["docs_out"] == figures["docs_out"]


@pytest.mark.slow  # about 35 s each: three process pools per run, on a shared machine
@pytest.mark.parametrize("interrupted_pass", ["first", "second"])
def test_resume_after_a_kill_in_either_pass_gives_the_uninterrupted_output(
    shards: Path, reference: Path, tmp_path: Path, interrupted_pass: str
):
    output = tmp_path / "out"
    pipeline = _write_pipeline(tmp_path, shards, output, 0.3)
    markers = (
        output / "_run" / "markers" / ("pass-01" if interrupted_pass == "first" else "pass-02")
    )
    kill_when(_cli(pipeline), lambda: completed(markers) >= 2)
    done = completed(markers)
    assert 2 <= done < SHARDS, f"the {interrupted_pass} pass should have been killed part-way"
    if interrupted_pass == "first":
        assert not (output / "_run" / "markers" / "pass-02").exists()

    rerun = _cli(pipeline)
    assert rerun.wait(timeout=300) == 0
    _assert_same_output(output, reference)


def test_a_failed_first_pass_task_is_left_out_of_the_cut_and_a_rerun_completes(
    shards: Path, tmp_path: Path
):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for path in sorted(shards.glob("*.parquet"))[:3]:
        (inputs / path.name).write_bytes(path.read_bytes())
    broken = inputs / "part-001.parquet"
    good = broken.read_bytes()
    broken.write_bytes(b"PAR1 not parquet")
    output = tmp_path / "out"

    def pipeline() -> Pipeline:
        return Pipeline(
            [
                LetterShare(),
                ScoreFilter(column="letter_share", method="percentile", keep_fraction=0.5),
            ],
            reader=ParquetReader(str(inputs / "*.parquet"), batch_size=200),
            writer=ParquetWriter(str(output)),
        )

    report = pipeline().run()
    assert not report.ok and [f.task_id for f in report.failures] == ["part-001"]
    assert "not a readable Parquet file" in report.failures[0].error
    # The cut is made over the two good files, and both get their output.
    assert sorted(p.name for p in output.glob("*.parquet")) == [
        "part-000.parquet",
        "part-002.parquet",
    ]
    phase = report.phases["02_score_filter"]
    assert phase["tasks"] == 2 and phase["tasks_left_out"] == ["part-001"]
    stats = json.loads((output / "_run" / "stats.json").read_text())
    assert stats["phases"]["02_score_filter"]["tasks_left_out"] == ["part-001"]
    good_rows = sum(
        pq.read_metadata(inputs / n).num_rows for n in ("part-000.parquet", "part-002.parquet")
    )
    assert abs(read_output(output).num_rows / good_rows - 0.5) <= 0.01

    broken.write_bytes(good)
    report = pipeline().run()
    assert report.ok
    kept = read_output(output).num_rows
    total = sum(pq.read_metadata(p).num_rows for p in inputs.glob("*.parquet"))
    assert abs(kept / total - 0.5) <= 0.01
    assert report.phases["02_score_filter"]["tasks"] == 3


def test_a_barrier_first_reads_the_input_and_several_barriers_chain(shards: Path, tmp_path: Path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for path in sorted(shards.glob("*.parquet")):
        table = LetterShare(min_chars=200).process(pq.read_table(path))
        pq.write_table(LetterShare(column="other").process(table), inputs / path.name)
    first = ScoreFilter(column="letter_share", method="percentile", keep_fraction=0.8)
    second = ScoreFilter(
        column="other", method="inverse", direction="keep_low", remove_fraction=0.25
    )
    assert [(p.start, p.stop, p.phase) for p in split_passes(StageChain([first, second]))] == [
        (0, 1, True),
        (1, 2, True),
    ]
    output = tmp_path / "out"
    report = Pipeline(
        [first, second],
        reader=ParquetReader(str(inputs / "*.parquet"), batch_size=300),
        writer=ParquetWriter(str(output)),
    ).run()
    assert report.ok, report.failures
    stats = report.stats.stages
    assert stats["01_score_filter"].docs_in == 3548
    after_first = stats["01_score_filter"].docs_out
    assert abs(after_first - 0.8 * 3254 - 294) <= 0.01 * 3254  # 294 unscored docs are kept
    assert abs(stats["02_score_filter"].docs_out / after_first - 0.75) <= 0.01
    assert read_output(output).num_rows == stats["02_score_filter"].docs_out
    phases = output / "_run" / "phases"
    assert sorted(p.name for p in phases.iterdir()) == ["01_score_filter", "02_score_filter"]
    # Once the run is whole only the decisions are kept: map and reduce data are removed,
    # and so is pass 1's output (it fed the second cut's phase).
    assert sorted(p.name for p in phases.rglob("*") if p.is_file()) == [
        "decision.json",
        "decision.json",
    ]
    assert not (output / "_run" / "passes").exists()

    # The output's fingerprint includes both cuts; the markers carry it.
    run = json.loads((output / "_run" / "run.json").read_text())
    cuts = run["decisions"]
    assert cuts["01_score_filter"]["keep_fraction"] == 0.8
    assert cuts["02_score_filter"]["keep_fraction"] == 0.75
    assert cuts["02_score_filter"]["direction"] == "keep_high"  # inverse of keep_low
    final = run["output_fingerprint"]
    assert final != run["fingerprint"]
    markers = list((output / "_run" / "markers" / "pass-02").glob("*.json"))
    assert len(markers) == SHARDS
    assert {json.loads(m.read_text())["fingerprint"] for m in markers} == {final}

    # A rerun of the whole output runs nothing and reports the same figures.
    again = Pipeline(
        [first, second],
        reader=ParquetReader(str(inputs / "*.parquet"), batch_size=300),
        writer=ParquetWriter(str(output)),
    ).run()
    assert again.ok and again.tasks_run == 0 and again.tasks_skipped == SHARDS
    assert again.stats.to_dict() == report.stats.to_dict()


def test_a_phase_that_reads_no_document_runs_first_and_cuts_no_pass(
    shards: Path, tmp_path: Path
) -> None:
    """The template index reads no document: it is built before pass 1, ``template_match``
    runs inside pass 1 with the scorer, and only the percentile cut starts a second pass."""
    from gristmill.core.phase import run_in_memory
    from gristmill.instructions.match import FI_MATCHES, TemplateMatch

    def stages() -> list:
        match = TemplateMatch(encoder={"backend": "static"}, index_dir=str(tmp_path / "index"))
        cut = ScoreFilter(column="letter_share", method="percentile", keep_fraction=0.5)
        return [LetterShare(min_chars=200), match, cut]

    assert [(p.start, p.stop, p.phase) for p in split_passes(StageChain(stages()))] == [
        (0, 2, False),
        (2, 3, True),
    ]
    output = tmp_path / "out"

    def run() -> Any:
        return Pipeline(
            stages(),
            reader=ParquetReader(str(shards / "*.parquet"), batch_size=500),
            writer=ParquetWriter(str(output)),
        ).run(executor=LocalExecutor(workers=2))

    report = run()
    assert report.ok, report.failures
    decisions = json.loads((output / "_run" / "run.json").read_text())["decisions"]
    assert set(decisions) == {"02_template_match", "03_score_filter"}
    steps = {p.name for p in (output / "_run" / "markers").iterdir()}
    assert {s for s in steps if s.startswith("pass-")} == {"pass-01", "pass-02"}
    # Pass 1's documents were matched against the run's index: the same matches as the stage
    # gives in memory on the same documents.
    out = read_output(output)
    alone = TemplateMatch(encoder={"backend": "static"}, index_dir=str(tmp_path / "index"))
    alone.use_phase_result(run_in_memory(alone.corpus_phase(), []))
    alone.setup()
    again = alone.process(out.drop_columns([FI_MATCHES]))
    assert again.column(FI_MATCHES).to_pylist() == out.column(FI_MATCHES).to_pylist()
    assert sum(1 for m in out.column(FI_MATCHES).to_pylist() if m) > out.num_rows // 4
    # Complete: a rerun runs nothing.
    rerun = run()
    assert rerun.ok and rerun.tasks_run == 0 and rerun.tasks_skipped == SHARDS
