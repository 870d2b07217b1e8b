"""Dedup stages as a user runs them: the same output on the local pool and on Dask (two
workers), and a run killed inside any step of MinHash's phase resumes to the same output."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from support.data import read_output
from support.phase_stages import SlowMinhashDedup
from support.planted import planted_corpus
from support.processes import completed, kill_when, start_gristmill

from gristmill import Pipeline
from gristmill.executors import LocalExecutor
from gristmill.io import ParquetReader, ParquetWriter
from gristmill.runs.phases import key_ranges
from gristmill.stages.dedup.exact import ExactDedup
from gristmill.stages.dedup.minhash import MinhashDedup
from gristmill.stages.dedup.paragraphs import ParagraphDedup

SHARDS = 16
REDUCE_ROWS = 800

PIPELINE = """
name: dedup
input: {{paths: ["{inputs}"], batch_size: 20}}
output: {{path: "{output}"}}
executor: {{type: local, workers: 2}}
stages:
  - exact_dedup
  - test_slow_minhash_dedup:
      reduce_rows: {reduce_rows}
      sleep_map: {sleep_map}
      sleep_reduce: {sleep_reduce}
      sleep_per_batch: {sleep_apply}
"""


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("planted")
    table = planted_corpus(240, (0.0, 0.02, 0.05, 0.1)).table
    size = -(-table.num_rows // SHARDS)
    for part in range(SHARDS):  # originals and copies end up in different shards
        rows = [(i * SHARDS + part) % table.num_rows for i in range(size)]
        pq.write_table(table.take(rows), directory / f"part-{part:02d}.parquet")
    return directory


def _stages() -> list:
    return [ExactDedup(), MinhashDedup(reduce_rows=REDUCE_ROWS), ParagraphDedup(unit="line")]


def _pipeline(inputs: Path, output: Path, stages: list) -> Pipeline:
    return Pipeline(
        stages, reader=ParquetReader(str(inputs), batch_size=20), writer=ParquetWriter(str(output))
    )


def _files(output: Path) -> dict[str, object]:
    return {
        str(p.relative_to(output)): pq.read_table(p)
        for p in sorted(output.rglob("*.parquet"))
        if p.relative_to(output).parts[0] != "_run"
    }


def test_dedup_on_dask_equals_the_local_pool(shards: Path, tmp_path: Path):
    pytest.importorskip("distributed")
    from gristmill.executors.config import DaskConfig
    from gristmill.executors.dask import DaskExecutor

    local = _pipeline(shards, tmp_path / "local", _stages()).run(executor=LocalExecutor(workers=2))
    on_dask = _pipeline(shards, tmp_path / "dask", _stages()).run(
        executor=DaskExecutor(DaskConfig(dashboard_address=":0"), workers=2)
    )
    assert local.ok and on_dask.ok, (local.failures, on_dask.failures)
    assert local.phases["02_minhash_dedup"]["decision"]["duplicates"] > 0
    written, wanted = _files(tmp_path / "dask"), _files(tmp_path / "local")
    assert sorted(written) == sorted(wanted)
    for name, table in wanted.items():
        assert written[name].equals(table), name
    stats = json.loads((tmp_path / "dask" / "_run" / "stats.json").read_text())
    assert stats["stages"]["02_minhash_dedup"]["counters"]["duplicates"] > 0


@pytest.fixture(scope="module")
def reference(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("reference") / "out"
    stages = [ExactDedup(), SlowMinhashDedup(reduce_rows=REDUCE_ROWS)]
    assert _pipeline(shards, output, stages).run(workers=2).ok
    return output


@pytest.mark.slow  # about 20 s each: a real run killed, then resumed
@pytest.mark.parametrize("step", ["map", "reduce", "apply"])
def test_a_minhash_run_killed_in_any_step_resumes_to_the_same_output(
    shards: Path, reference: Path, tmp_path: Path, step: str
):
    output = tmp_path / "out"
    sleeps = {"sleep_map": 0.0, "sleep_reduce": 0.0, "sleep_apply": 0.0}
    sleeps[f"sleep_{step}"] = 0.5 if step != "apply" else 0.2
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        PIPELINE.format(inputs=shards, output=output, reduce_rows=REDUCE_ROWS, **sleeps)
    )
    markers = output / "_run" / "markers"
    watched = {
        "map": markers / "02_test_slow_minhash_dedup.map",
        "reduce": markers / "02_test_slow_minhash_dedup.reduce",
        "apply": markers / "pass-02",
    }[step]
    run = start_gristmill("run", str(pipeline), "--quiet", register=("support.phase_stages",))
    kill_when(run, lambda: completed(watched) >= 2)
    done = completed(watched)
    keyed = 14 * sum(pq.read_metadata(p).num_rows for p in shards.glob("*.parquet"))
    total = {"map": SHARDS, "reduce": len(key_ranges(keyed, REDUCE_ROWS)), "apply": SHARDS}[step]
    assert 2 <= done < total, f"the run should have been killed inside the {step} step"

    rerun = start_gristmill("run", str(pipeline), "--quiet", register=("support.phase_stages",))
    assert rerun.wait(timeout=300) == 0
    assert read_output(output).equals(read_output(reference))
    written, wanted = _files(output), _files(reference)
    assert sorted(written) == sorted(wanted)
    for name, table in wanted.items():
        assert written[name].equals(table), name


def test_the_crawl_scale_pipeline_runs_on_the_samples(tmp_path: Path):
    """pipelines/dedup.yaml as shipped (its Slurm section set aside for the local pool)."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-m", "gristmill", "run", "pipelines/dedup.yaml", "--executor", "local",
         "-w", "2", "-o", str(tmp_path / "out"), "-q"],
        cwd=repo, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stats = json.loads((tmp_path / "out" / "_run" / "stats.json").read_text())
    assert set(stats["phases"]) == {
        "01_exact_dedup",
        "02_exact_dedup",
        "03_minhash_dedup",
        "04_paragraph_dedup",
    }
    kept = read_output(tmp_path / "out")
    assert 0 < kept.num_rows < 3548
