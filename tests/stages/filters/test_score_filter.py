"""score_filter on real sample documents: threshold, whole-run percentile, inverse, pareto,
presets and missing scores. Scores come from ``test_letter_share``, a real (tiny) scorer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from support.data import read_output, sample_table, split_samples
from support.score_stages import LetterShare

from gristmill import Pipeline
from gristmill.core.phase import run_in_memory
from gristmill.errors import ConfigError
from gristmill.io import ParquetReader, ParquetWriter
from gristmill.runs.config import parse_pipeline
from gristmill.stages.filters.score_filter import PRESETS, ScoreFilter

SCORE = "letter_share"


@pytest.fixture(scope="module")
def scored() -> pa.Table:
    """Every sample document with its letter share (null under 200 characters)."""
    return LetterShare(min_chars=200).process(sample_table())


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The samples as 6 shards, sorted by id, so each shard holds different sources."""
    directory = tmp_path_factory.mktemp("shards")
    split_samples(directory, 6)
    return directory


def _run(inputs: Path, output: Path, stages: list, *, workers: int, batch_size: int = 250):
    pipeline = Pipeline(
        stages,
        reader=ParquetReader(str(inputs / "*.parquet"), batch_size=batch_size),
        writer=ParquetWriter(str(output)),
    )
    report = pipeline.run(workers=workers)
    assert report.ok, report.failures
    return report


def test_threshold_keeps_exactly_the_scores_on_the_chosen_side(scored: pa.Table):
    scores = scored.column(SCORE).to_numpy(zero_copy_only=False)
    present = ~np.isnan(scores.astype(float))
    for direction, expected in (("keep_high", scores >= 0.8), ("keep_low", scores <= 0.8)):
        stage = ScoreFilter(column=SCORE, threshold=0.8, direction=direction, on_missing="drop")
        kept = stage.run_batch(scored).table
        want = scored.filter(pa.array(present & np.where(present, expected, False)))
        assert kept.column("id").to_pylist() == want.column("id").to_pylist()
        assert 0 < kept.num_rows < scored.num_rows
        assert stage.stats.dropped[f"score_filter:{SCORE}:missing"] == int((~present).sum())


def test_missing_scores_follow_on_missing(scored: pa.Table):
    nulls = scored.column(SCORE).null_count
    assert nulls > 0, "the samples should hold documents too short to score"
    keep = ScoreFilter(column=SCORE, threshold=0.0, on_missing="keep").run_batch(scored)
    drop = ScoreFilter(column=SCORE, threshold=0.0, on_missing="drop").run_batch(scored)
    assert keep.table.num_rows == scored.num_rows
    assert drop.table.num_rows == scored.num_rows - nulls
    assert drop.rejected is not None and drop.rejected.column(SCORE).null_count == nulls


def test_pareto_keeps_high_scores_more_and_is_the_same_whatever_the_batching(scored: pa.Table):
    stage = ScoreFilter(column=SCORE, method="pareto", alpha=9, seed=7, on_missing="drop")
    whole = stage.run_batch(scored).table.column("id").to_pylist()
    pieces = [
        stage.run_batch(scored.slice(start, 137)).table.column("id").to_pylist()
        for start in range(0, scored.num_rows, 137)
    ]
    assert [i for piece in pieces for i in piece] == whole
    kept = set(whole)
    scores = dict(
        zip(scored.column("id").to_pylist(), scored.column(SCORE).to_pylist(), strict=True)
    )
    kept_scores = [s for i, s in scores.items() if i in kept]
    dropped_scores = [s for i, s in scores.items() if i not in kept and s is not None]
    assert 0 < len(kept) < scored.num_rows
    assert np.mean(kept_scores) > np.mean(dropped_scores)
    other_seed = ScoreFilter(column=SCORE, method="pareto", alpha=9, seed=8, on_missing="drop")
    assert set(other_seed.run_batch(scored).table.column("id").to_pylist()) != kept


def test_pareto_matches_the_gpt3_rule_in_distribution(scored: pa.Table):
    """Keep probability is P(pareto(alpha) > 1 - s) = (2 - s) ** -alpha: check it on average."""
    alpha = 2.0
    stage = ScoreFilter(column=SCORE, method="pareto", alpha=alpha, on_missing="drop")
    kept = stage.run_batch(scored).table.num_rows
    scores = np.array([s for s in scored.column(SCORE).to_pylist() if s is not None])
    expected = float(np.sum((2.0 - scores) ** -alpha))
    assert abs(kept - expected) < 4 * np.sqrt(expected)


def test_pareto_is_the_same_across_worker_counts_and_batch_sizes(shards: Path, tmp_path: Path):
    stages = [
        LetterShare(min_chars=200),
        ScoreFilter(column=SCORE, method="pareto", alpha=3, seed=1, on_missing="drop"),
    ]
    _run(shards, tmp_path / "one", stages, workers=1, batch_size=100)
    _run(shards, tmp_path / "two", stages, workers=2, batch_size=333)
    one, two = read_output(tmp_path / "one"), read_output(tmp_path / "two")
    assert one.num_rows > 0
    assert one.column("id").to_pylist() == two.column("id").to_pylist()


def test_percentile_cut_is_global_across_tasks_and_workers(shards: Path, tmp_path: Path):
    out = tmp_path / "out"
    stages = [
        LetterShare(min_chars=200),
        ScoreFilter(column=SCORE, method="percentile", keep_fraction=0.6, on_missing="drop"),
    ]
    report = _run(shards, out, stages, workers=2)
    scored_inputs = {
        p.stem: LetterShare(min_chars=200).process(pq.read_table(p)) for p in shards.iterdir()
    }
    total_scored = sum(t.num_rows - t.column(SCORE).null_count for t in scored_inputs.values())
    kept = read_output(out)
    fraction = kept.num_rows / total_scored
    print(f"percentile keep_fraction=0.60: kept {fraction:.4f} of {total_scored} scored docs")
    assert abs(fraction - 0.6) <= 0.01
    per_task = {}
    for name, table in scored_inputs.items():
        out_rows = pq.read_table(out / f"{name}.parquet").num_rows
        per_task[name] = out_rows / max(table.num_rows - table.column(SCORE).null_count, 1)
    print("per-task kept fractions:", {k: round(v, 3) for k, v in sorted(per_task.items())})
    assert max(per_task.values()) - min(per_task.values()) > 0.2, "the cut must not be per task"
    # The kept documents are the best ones: every kept score >= every dropped score
    # (apart from the boundary bucket of relative width 2**-12).
    rejects = pa.concat_tables(pq.read_table(p) for p in (out / "_rejects").glob("*.parquet"))
    worst_kept = pc.min(kept.column(SCORE)).as_py()
    best_dropped = pc.max(rejects.column(SCORE)).as_py()
    assert best_dropped <= worst_kept * (1 + 2**-11)
    assert report.stats.stages["02_score_filter"].docs_out == kept.num_rows
    decision_file = out / "_run" / "phases" / "02_score_filter" / "decision.json"
    saved = json.loads(decision_file.read_text())
    assert saved["decision"]["sketch"]["count"] == total_scored
    assert saved["decision"]["keep_fraction"] == 0.6

    # quantiles_from reuses that sketch: one pass, same output.
    again = tmp_path / "again"
    reuse = ScoreFilter(
        column=SCORE,
        method="percentile",
        keep_fraction=0.6,
        on_missing="drop",
        quantiles_from=str(decision_file),
    )
    assert reuse.corpus_phase() is None and "cut" in reuse.spec()
    _run(shards, again, [LetterShare(min_chars=200), reuse], workers=1)
    assert not (again / "_run" / "phases").exists()
    assert read_output(again).equals(kept)


def test_inverse_removes_the_least_toxic_share(shards: Path, tmp_path: Path):
    """toxicity_inverse_8 on a stand-in toxicity column: the lowest 8% go, nothing else."""
    out = tmp_path / "out"
    stages = [
        LetterShare(column="toxicity_score", min_chars=200),
        ScoreFilter(preset="toxicity_inverse_8", on_missing="drop"),
    ]
    _run(shards, out, stages, workers=1)
    kept = read_output(out)
    rejects = pa.concat_tables(pq.read_table(p) for p in (out / "_rejects").glob("*.parquet"))
    scored_rejects = rejects.filter(pc.is_valid(rejects.column("toxicity_score")))
    total = kept.num_rows + scored_rejects.num_rows
    print(f"toxicity_inverse_8: kept {kept.num_rows / total:.4f}")
    assert abs(kept.num_rows / total - 0.92) <= 0.01
    worst_removed = pc.max(scored_rejects.column("toxicity_score")).as_py()
    assert worst_removed <= pc.min(kept.column("toxicity_score")).as_py() * (1 + 2**-11)


@pytest.mark.parametrize(
    ("preset", "fraction", "direction"),
    [
        ("quality_keep_91", 0.91, "keep_high"),
        ("quality_keep_84", 0.84, "keep_high"),
        ("quality_keep_73", 0.73, "keep_high"),
        ("quality_keep_46", 0.46, "keep_high"),
        ("toxicity_keep_98", 0.98, "keep_low"),
        ("toxicity_keep_95", 0.95, "keep_low"),
        ("toxicity_keep_86", 0.86, "keep_low"),
        ("toxicity_keep_76", 0.76, "keep_low"),
        ("toxicity_keep_61", 0.61, "keep_low"),
        ("quality_inverse_27", 0.73, "keep_low"),
        ("toxicity_inverse_8", 0.92, "keep_high"),
    ],
)
def test_presets_reproduce_the_guides_retention(scored, preset, fraction, direction):
    """The cut each preset computes, applied to the whole samples, keeps the Guide's share."""
    column = PRESETS[preset]["column"]
    table = scored.rename_columns([column if n == SCORE else n for n in scored.column_names])
    stage = ScoreFilter(preset=preset, on_missing="drop")
    stage.use_phase_result(run_in_memory(stage.corpus_phase(), [table]))
    kept = stage.run_batch(table).table
    scored_rows = table.num_rows - table.column(column).null_count
    assert abs(kept.num_rows / scored_rows - fraction) <= 0.01
    other = table.filter(pc.invert(pc.is_in(table.column("id"), kept.column("id"))))
    other = other.filter(pc.is_valid(other.column(column)))
    if direction == "keep_high":
        assert pc.min(kept.column(column)).as_py() >= pc.max(other.column(column)).as_py() * (
            1 - 2**-11
        )
    else:
        assert pc.max(kept.column(column)).as_py() <= pc.min(other.column(column)).as_py() * (
            1 + 2**-11
        )


def test_explicit_parameters_override_a_preset_and_errors_are_clear():
    stage = ScoreFilter(preset="quality_keep_84", column="my_quality")
    assert stage.requires == ("my_quality",)
    assert stage.params.keep_fraction == 0.84 and stage.params.method == "percentile"
    with pytest.raises(ConfigError, match="'column' is required"):
        ScoreFilter(threshold=0.5)
    with pytest.raises(ConfigError, match="needs 'keep_fraction'"):
        ScoreFilter(column="x", method="percentile")
    with pytest.raises(ConfigError, match="preset"):
        ScoreFilter(preset="quality_keep_50")
    with pytest.raises(ConfigError, match="cannot read quantiles_from"):
        ScoreFilter(column="x", method="percentile", keep_fraction=0.5, quantiles_from="/nope.json")
    config = parse_pipeline(
        "input: {paths: [x.parquet]}\noutput: {path: out}\n"
        "stages:\n  - score_filter: {preset: toxicity_keep_76}\n"
    )
    (built,) = config.build_stages()
    assert built.params.direction == "keep_low" and built.params.keep_fraction == 0.76


def test_a_non_numeric_column_is_a_clear_error(scored: pa.Table):
    stage = ScoreFilter(column="source", threshold=0.5)
    with pytest.raises(ConfigError, match="column 'source' is string, not a number"):
        stage.run_batch(scored)


def test_a_toxicity_preset_after_the_real_toxicity_scorer(shards: Path, tmp_path: Path):
    """The preset end to end: the bundled toxicity model scores, the run-wide cut keeps 86%."""
    from gristmill.core.registry import available_stages

    if "toxicity" not in available_stages():
        pytest.skip("the toxicity scorer is not in this tree")
    toxicity = available_stages()["toxicity"]()
    out = tmp_path / "out"
    stages = [toxicity, ScoreFilter(preset="toxicity_keep_86")]
    report = _run(shards, out, stages, workers=1, batch_size=1000)
    kept = report.stats.stages["02_score_filter"].docs_out
    print(f"toxicity_keep_86 after the toxicity scorer: kept {kept / 3548:.4f}")
    assert abs(kept / 3548 - 0.86) <= 0.01
    rejects = pa.concat_tables(pq.read_table(p) for p in (out / "_rejects").glob("*.parquet"))
    kept_scores = read_output(out).column("toxicity_score")
    assert pc.min(rejects.column("toxicity_score")).as_py() >= pc.max(kept_scores).as_py() * (
        1 - 2**-11
    )


def test_a_percentile_cut_outside_a_run_is_a_clear_error(scored: pa.Table):
    stage = ScoreFilter(column=SCORE, method="percentile", keep_fraction=0.5)
    assert stage.corpus_phase() is not None
    with pytest.raises(ConfigError, match="percentile cut was never computed"):
        stage.run_batch(scored)


@pytest.mark.parametrize("on_missing", ["keep", "drop"])
def test_a_score_column_of_type_null_is_missing_everywhere(on_missing: str):
    # Found by tests/stages/test_every_stage.py: a column of type null (no score at all, as a
    # Parquet file may store it) was refused as "not a number", failing its task.
    table = pa.table({"id": ["a", "b", "c"], "text": ["x", "y", "z"], SCORE: pa.nulls(3)})
    threshold = ScoreFilter(column=SCORE, threshold=0.5, on_missing=on_missing)
    cut = ScoreFilter(column=SCORE, method="percentile", keep_fraction=0.5, on_missing=on_missing)
    cut.use_phase_result(run_in_memory(cut.corpus_phase(), [table]))
    for stage in (threshold, cut):
        result = stage.run_batch(table)
        assert result.table.num_rows == (3 if on_missing == "keep" else 0)
        if on_missing == "drop":
            assert result.reasons is not None
            assert set(result.reasons.to_pylist()) == {f"score_filter:{SCORE}:missing"}
