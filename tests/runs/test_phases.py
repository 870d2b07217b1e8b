"""Corpus-wide phases on the run driver: a per-document MapReduce whose keys are split over
many reduce tasks, the same on the local pool and on Dask, and resumed after a kill in any of
its steps (map, reduce, or the pass that applies it) to exactly the uninterrupted output.

The stage is ``test_text_repeats`` (tests/support/phase_stages.py): an exact-duplicate count
per document, the shape of a dedup stage. The interrupted runs are real ``gristmill run``
processes killed with SIGKILL.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from support.data import read_output, sample_table, split_samples
from support.phase_stages import REPEATS, TextRepeats, normalised_text
from support.processes import completed, kill_when, start_gristmill
from support.score_stages import LetterShare

from gristmill import Pipeline
from gristmill.executors import LocalExecutor
from gristmill.io import ParquetReader, ParquetWriter
from gristmill.runs.phases import key_ranges

SHARDS = 8
#: Fewer keyed rows per reduce task than the run has documents: the keys must be split.
REDUCE_ROWS = 400

PIPELINE = """
name: repeats
input: {{paths: ["{inputs}/*.parquet"], batch_size: 100}}
output: {{path: "{output}"}}
executor: {{type: local, workers: 2}}
stages:
  - test_letter_share: {{min_chars: 200}}
  - test_text_repeats:
      reduce_rows: {reduce_rows}
      sleep_map: {sleep_map}
      sleep_reduce: {sleep_reduce}
      sleep_per_batch: {sleep_apply}
"""


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("in")
    split_samples(directory, SHARDS)
    return directory


def _pipeline(inputs: Path, output: Path, **options: float) -> Pipeline:
    return Pipeline(
        [LetterShare(min_chars=200), TextRepeats(reduce_rows=REDUCE_ROWS, **options)],
        reader=ParquetReader(str(inputs / "*.parquet"), batch_size=100),
        writer=ParquetWriter(str(output)),
    )


def _expected_repeats() -> dict[str, int]:
    table = sample_table()
    frame = pl.DataFrame(
        {"id": table.column("id").to_pylist(), "key": normalised_text(table.column("text"))}
    )
    counted = frame.with_columns(pl.len().over("key").alias("n"))
    return dict(zip(counted["id"].to_list(), counted["n"].to_list(), strict=True))


@pytest.fixture(scope="module")
def reference(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("reference") / "out"
    report = _pipeline(shards, output).run(executor=LocalExecutor(workers=2))
    assert report.ok, report.failures
    return output


def test_the_phase_splits_its_keys_and_routes_each_count_to_its_document(
    reference: Path, shards: Path
):
    written = read_output(reference)
    expected = _expected_repeats()
    assert written.num_rows == len(expected)
    got = dict(
        zip(written.column("id").to_pylist(), written.column(REPEATS).to_pylist(), strict=True)
    )
    assert got == expected
    assert max(got.values()) > 1, "the samples hold repeated texts: the test must see some"

    # No reduce task held the whole run's keys: the keys were split into ranges.
    reduce_markers = sorted(
        (reference / "_run" / "markers" / "02_test_text_repeats.reduce").iterdir()
    )
    assert len(reduce_markers) == len(key_ranges(len(expected), REDUCE_ROWS)) > 1
    held = [json.loads(m.read_text())["value"]["rows_in"] for m in reduce_markers]
    assert sum(held) == len(expected)
    assert max(held) <= 2 * REDUCE_ROWS
    stats = json.loads((reference / "_run" / "stats.json").read_text())
    assert stats["phases"]["02_test_text_repeats"]["tasks"] == SHARDS
    assert stats["phases"]["02_test_text_repeats"]["tasks_left_out"] == []


def test_the_phase_on_dask_equals_the_local_pool(reference: Path, shards: Path, tmp_path: Path):
    pytest.importorskip("distributed")
    from gristmill.executors.config import DaskConfig
    from gristmill.executors.dask import DaskExecutor

    output = tmp_path / "out"
    executor = DaskExecutor(DaskConfig(dashboard_address=":0"), workers=2)
    report = _pipeline(shards, output).run(executor=executor)
    assert report.ok, report.failures
    assert read_output(output).equals(read_output(reference))
    for name in [p.name for p in reference.glob("*.parquet")]:
        assert pq.read_table(output / name).equals(pq.read_table(reference / name))


def _cli(pipeline: Path):
    return start_gristmill(
        "run", str(pipeline), "--quiet", register=("support.score_stages", "support.phase_stages")
    )


@pytest.mark.slow  # about 20 s each: a real run killed, then resumed
@pytest.mark.parametrize("step", ["map", "reduce", "apply"])
def test_a_run_killed_in_any_step_of_a_phase_resumes_to_the_same_output(
    shards: Path, reference: Path, tmp_path: Path, step: str
):
    output = tmp_path / "out"
    sleeps = {"sleep_map": 0.0, "sleep_reduce": 0.0, "sleep_apply": 0.0}
    sleeps[f"sleep_{step}"] = 0.6
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        PIPELINE.format(inputs=shards, output=output, reduce_rows=REDUCE_ROWS, **sleeps)
    )
    markers = output / "_run" / "markers"
    watched = {
        "map": markers / "02_test_text_repeats.map",
        "reduce": markers / "02_test_text_repeats.reduce",
        "apply": markers / "pass-02",
    }[step]
    kill_when(_cli(pipeline), lambda: completed(watched) >= 2)
    done = completed(watched)
    total = {"map": SHARDS, "reduce": len(key_ranges(3548, REDUCE_ROWS)), "apply": SHARDS}[step]
    assert 2 <= done < total, f"the run should have been killed inside the {step} step"
    finished = {p.name: p.stat().st_mtime_ns for p in watched.glob("*.json")}

    rerun = _cli(pipeline)
    assert rerun.wait(timeout=300) == 0
    resumed, expected = read_output(output), read_output(reference)
    assert resumed.equals(expected)
    assert [p for p in output.rglob("*") if p.name.startswith(".tmp-")] == []
    assert not (output / "_run" / "lock.json").exists()
    # What completed before the kill was not done again: its markers were not rewritten.
    assert {name: (watched / name).stat().st_mtime_ns for name in finished} == finished
