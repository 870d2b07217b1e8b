"""Pipelines on the Dask executor (a LocalCluster, an existing scheduler, or Slurm) give the
local executor's output, markers and resume, and survive a worker killed mid-run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

# The [dask] extra (dask[distributed], dask-jobqueue) must be installed for these tests.
pytest.importorskip("distributed")

from support.data import read_output
from support.stages import TextLength

from gristmill import Pipeline
from gristmill.adapters.datatrove_in_gristmill import DatatroveStep
from gristmill.core.stage import Stage
from gristmill.errors import ConfigError
from gristmill.executors.base import Lost
from gristmill.executors.config import DaskConfig, SlurmConfig
from gristmill.executors.dask import DaskExecutor
from gristmill.executors.dask_cluster import local_cluster
from gristmill.executors.local import LocalExecutor
from gristmill.io import ParquetReader, ParquetWriter
from gristmill.runs.config import load_pipeline

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SAMPLES = REPO / "data_samples"
DEFAULT_PIPELINE = REPO / "pipelines" / "default.yaml"
# Workers start from a clean interpreter: they import the test stages by name from here.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from dask_test_stages import (  # noqa: E402
    GpuWorkerName,
    KillWorkerAlways,
    KillWorkerMidWrite,
    RecordSetup,
    WorkerName,
)

#: Documents read per task: every sample file is a task, and the suite stays quick.
LIMIT = 15
VICTIM_SOURCE = "c4"  # the source of data_samples/web-c4-0000.parquet


def default_stages() -> list[Stage]:
    """The stages of pipelines/default.yaml as it is now; a datatrove step if it has none."""
    if DEFAULT_PIPELINE.exists():
        stages = load_pipeline(DEFAULT_PIPELINE).build_stages()
        if stages:
            return stages
    return [DatatroveStep(step="datatrove.pipeline.filters.GopherRepetitionFilter"), TextLength()]


def sample_pipeline(stages: list[Stage], output: Path, batch_size: int = 2048) -> Pipeline:
    reader = ParquetReader(str(SAMPLES), batch_size=batch_size)
    return Pipeline(stages, reader=reader, writer=ParquetWriter(str(output)))


def local_dask(**options: object) -> DaskConfig:
    return DaskConfig(dashboard_address=":0", **options)  # type: ignore[arg-type]


def rejects_of(output: Path) -> pa.Table | None:
    files = sorted((output / "_rejects").rglob("*.parquet"))
    if not files:
        return None
    tables = [pq.read_table(f) for f in files]
    # Rejects of an earlier segment (before a whole-run barrier) lack the later columns.
    return pa.concat_tables(tables, promote_options="default").sort_by("id")


def leftovers(output: Path) -> list[Path]:
    """Temporary files of unfinished writes: a killed attempt must leave none behind."""
    return [p for p in output.rglob("*") if p.name.startswith(".tmp-")]


@pytest.fixture(scope="module")
def local_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default pipeline's output through the local executor: what Dask must reproduce."""
    output = tmp_path_factory.mktemp("local") / "out"
    report = sample_pipeline(default_stages(), output).run(
        executor=LocalExecutor(workers=1), limit=LIMIT
    )
    assert report.ok, report.failures
    return output


@pytest.fixture(scope="module")
def shared_client():
    """One LocalCluster (as the executor starts it: one thread per worker, one retry) for the
    tests that need no fresh cluster of their own, so the suite starts workers only once."""
    from distributed import Client

    cluster = local_cluster(local_dask(retries=1), workers=2)
    with cluster, Client(cluster) as client:
        yield client


def assert_same_values(written: pa.Table, wanted: pa.Table, float_tolerance: float) -> None:
    """Equal tables; floating-point columns may differ by ``float_tolerance`` (relative)."""
    assert written.schema == wanted.schema
    for name in wanted.column_names:
        if float_tolerance and pa.types.is_floating(wanted.schema.field(name).type):
            got = np.array(written.column(name).to_pylist(), dtype=float)
            want = np.array(wanted.column(name).to_pylist(), dtype=float)
            assert np.allclose(got, want, rtol=float_tolerance, equal_nan=True), name
        else:
            assert written.column(name).equals(wanted.column(name)), name


def assert_same_output(
    output: Path, expected: Path, *, stage_labels: bool = True, float_tolerance: float = 0.0
) -> None:
    """Same kept rows and values, same rejected rows and reasons; ``stage_labels=False`` when
    an extra stage in front shifts the stage positions that ``drop_stage`` records.

    ``float_tolerance`` is for runs with another batch size: the MiniLM topic scores of a
    document change in their last bits with the padding of the batch it is embedded in.
    """
    written, wanted = read_output(output), read_output(expected)
    assert written.column("id").to_pylist() == wanted.column("id").to_pylist()
    assert_same_values(written, wanted, float_tolerance)
    rejects, wanted_rejects = rejects_of(output), rejects_of(expected)
    assert (rejects is None) == (wanted_rejects is None)
    if rejects is not None and wanted_rejects is not None:
        if not stage_labels:
            rejects = rejects.drop_columns(["drop_stage"])
            wanted_rejects = wanted_rejects.drop_columns(["drop_stage"])
        assert_same_values(rejects, wanted_rejects, float_tolerance)


def test_default_pipeline_on_two_workers_equals_local(
    local_output: Path, tmp_path: Path, shared_client
):
    output = tmp_path / "out"
    executor = DaskExecutor(client=shared_client)
    report = sample_pipeline(default_stages(), output).run(executor=executor, limit=LIMIT)

    assert report.ok, report.failures
    assert report.tasks_run == report.tasks_total == len(list(SAMPLES.glob("*.parquet")))
    assert executor.dashboard_link and executor.dashboard_link.startswith("http")
    assert_same_output(output, local_output)
    local_stats = json.loads((local_output / "_run" / "stats.json").read_text())
    dask_stats = json.loads((output / "_run" / "stats.json").read_text())
    for label, stage in local_stats["stages"].items():
        counts = ("docs_in", "docs_out", "chars_in", "chars_out", "dropped")
        assert {k: dask_stats["stages"][label][k] for k in counts} == {k: stage[k] for k in counts}
    assert len(list((output / "_run" / "markers" / "pass-01").glob("*.json"))) == report.tasks_total


def test_worker_killed_mid_run_is_retried_and_output_equals_local(
    local_output: Path, tmp_path: Path, shared_client
):
    output, sentinel = tmp_path / "out", tmp_path / "killed-once"
    killer = KillWorkerMidWrite(
        victim_source=VICTIM_SOURCE, sentinel=str(sentinel), output=str(output)
    )
    # Several batches per task, so that the kill comes mid-write.
    pipeline = sample_pipeline([*default_stages(), killer], output, batch_size=5)
    report = pipeline.run(executor=DaskExecutor(client=shared_client), limit=LIMIT)

    assert sentinel.exists(), "the victim task never ran"
    # The killed attempt had written a partial file; it never shows in the output.
    partial = sentinel.read_text().split()
    assert any(Path(p).name.endswith("-web-c4-0000.parquet") for p in partial), partial
    assert report.ok, report.failures
    assert_same_output(output, local_output, float_tolerance=1e-6)
    assert leftovers(output) == []
    assert len(list((output / "_run" / "markers" / "pass-01").glob("*.json"))) == report.tasks_total


def test_task_that_keeps_killing_workers_fails_alone_and_others_complete(
    tmp_path: Path, shared_client
):
    output = tmp_path / "out"
    stages = [KillWorkerAlways(victim_source=VICTIM_SOURCE), TextLength()]
    pipeline = sample_pipeline(stages, output)
    executor = DaskExecutor(local_dask(retries=1), client=shared_client)
    report = pipeline.run(executor=executor, limit=LIMIT)

    assert [f.task_id for f in report.failures] == ["web-c4-0000"]
    assert "web-c4-0000.parquet" in report.failures[0].error
    assert "died" in report.failures[0].error and "2 attempts" in report.failures[0].error
    written = {p.stem for p in output.glob("*.parquet")}
    expected = {p.stem for p in SAMPLES.glob("*.parquet")} - {"web-c4-0000"}
    assert written == expected
    assert leftovers(output) == []
    failures = json.loads((output / "_run" / "failures.json").read_text())
    assert [f["task"] for f in failures] == ["web-c4-0000"]

    again = pipeline.run(executor=executor, limit=LIMIT)  # resume: only the failed task runs again
    assert (again.tasks_run, again.tasks_skipped) == (1, len(expected))
    assert [f.task_id for f in again.failures] == ["web-c4-0000"]


def test_rerun_resumes_running_only_unfinished_tasks(tmp_path: Path, shared_client):
    output, setups = tmp_path / "out", tmp_path / "setups.txt"
    pipeline = sample_pipeline([RecordSetup(path=str(setups)), TextLength()], output)
    executor = DaskExecutor(client=shared_client)
    first = pipeline.run(executor=executor, limit=LIMIT)
    assert first.ok and first.tasks_run == first.tasks_total
    complete = read_output(output)

    # Lose one task's output and marker, as if its worker had died before finishing.
    (output / "toxic-mixed-0000.parquet").unlink()
    (output / "_run" / "markers" / "pass-01" / "toxic-mixed-0000.json").unlink()
    second = pipeline.run(executor=executor, limit=LIMIT)

    assert (second.tasks_run, second.tasks_skipped) == (1, first.tasks_total - 1)
    assert read_output(output).equals(complete)
    stats = json.loads((output / "_run" / "stats.json").read_text())
    assert stats["stages"]["02_test_text_length"]["docs_in"] == complete.num_rows


def test_models_load_once_per_worker_process_not_per_task(tmp_path: Path, shared_client):
    setups = tmp_path / "setups.txt"
    pipeline = sample_pipeline([RecordSetup(path=str(setups)), TextLength()], tmp_path / "out")
    report = pipeline.run(executor=DaskExecutor(client=shared_client), limit=LIMIT)

    assert report.ok and report.tasks_run == 9
    pids = setups.read_text().split()
    assert 1 <= len(pids) <= 2  # one per worker process that ran tasks, never one per task
    assert len(set(pids)) == len(pids)


def _square(_shared: object, value: int) -> int:
    return value * value


def _divide(_shared: object, value: int) -> int:
    return 1 // value


def test_map_runs_on_the_workers_in_order_and_an_error_stays_with_its_item(shared_client):
    executor = DaskExecutor(client=shared_client)
    assert executor.map(_square, list(range(7)), shared=None) == [i * i for i in range(7)]
    first, second = executor.map(_divide, [1, 0])
    assert first == 1
    assert isinstance(second, Lost) and "ZeroDivisionError" in second.error


def test_two_pass_run_through_dask_equals_local(tmp_path: Path, shared_client):
    """A percentile cut after a scorer: statistics pass and both segments on one cluster."""
    from support.score_stages import LetterShare

    from gristmill.stages.filters.score_filter import ScoreFilter

    def two_pass(output: Path) -> Pipeline:
        stages = [
            LetterShare(min_chars=200),
            ScoreFilter(column="letter_share", method="percentile", keep_fraction=0.5),
        ]
        return sample_pipeline(stages, output)

    local = two_pass(tmp_path / "local").run(executor=LocalExecutor(workers=1))
    on_dask = two_pass(tmp_path / "dask").run(executor=DaskExecutor(client=shared_client))

    assert local.ok and on_dask.ok, on_dask.failures
    written = read_output(tmp_path / "dask")
    documents = sum(pq.ParquetFile(f).metadata.num_rows for f in SAMPLES.glob("*.parquet"))
    assert 0 < written.num_rows < documents  # the cut kept some, not all
    assert written.equals(read_output(tmp_path / "local"))
    assert leftovers(tmp_path / "dask") == []


@pytest.fixture()
def cluster_with_one_gpu_worker(tmp_path: Path):
    """A scheduler with a plain worker, and a second worker advertising one GPU."""
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO / "tests")])}
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                cluster.scheduler_address,
                "--nthreads",
                "1",
                "--resources",
                "GPU=1",
                "--name",
                "gpu-worker",
                "--no-dashboard",
                "--local-directory",
                str(tmp_path / "gpu-worker"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with Client(cluster) as client:
                client.wait_for_workers(2, timeout=60)
            yield cluster.scheduler_address
        finally:
            worker.terminate()
            worker.wait(timeout=30)


def test_gpu_stages_run_only_on_gpu_workers_and_cpu_stages_anywhere(
    cluster_with_one_gpu_worker: str, tmp_path: Path
):
    config = DaskConfig(scheduler=cluster_with_one_gpu_worker)
    gpu = sample_pipeline([GpuWorkerName()], tmp_path / "gpu").run(
        executor=DaskExecutor(config), limit=LIMIT
    )
    assert gpu.ok, gpu.failures
    assert set(read_output(tmp_path / "gpu").column("dask_worker").to_pylist()) == {"gpu-worker"}

    cpu = sample_pipeline([WorkerName()], tmp_path / "cpu").run(
        executor=DaskExecutor(config), limit=LIMIT
    )
    assert cpu.ok, cpu.failures
    assert read_output(tmp_path / "cpu").num_rows == read_output(tmp_path / "gpu").num_rows


def test_gpu_pipeline_on_a_cluster_without_gpus_fails_before_running(tmp_path: Path):
    pipeline = sample_pipeline([GpuWorkerName()], tmp_path / "out")
    with pytest.raises(ConfigError, match=r"need 1 GPU per worker.*gpus_per_worker"):
        pipeline.run(executor=DaskExecutor(local_dask(), workers=2), limit=LIMIT)
    assert not list((tmp_path / "out").glob("*.parquet"))


def test_unreachable_scheduler_is_a_clear_error(tmp_path: Path):
    pipeline = sample_pipeline([TextLength()], tmp_path / "out")
    config = DaskConfig(scheduler="tcp://127.0.0.1:9", connect_timeout=2)
    with pytest.raises(
        ConfigError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"
    ):
        pipeline.run(executor=DaskExecutor(config), limit=LIMIT)


# -- Slurm -------------------------------------------------------------------------------------
def _slurm_job(job_id: str) -> str:
    return subprocess.run(
        ["scontrol", "show", "job", job_id], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.slurm
def test_slurm_cluster_runs_default_pipeline_as_slurm_jobs(local_output: Path, tmp_path: Path):
    """Needs the single-node Slurm of .ci/setup_slurm.sh."""
    output = tmp_path / "out"
    slurm = SlurmConfig(
        cores=2,
        memory="8GB",  # two workers, each loading the default pipeline's models
        walltime="00:20:00",
        jobs=1,
        scheduler_host="127.0.0.1",
        log_directory=str(tmp_path / "slurm-logs"),
        job_directives=["--comment=gristmill-test"],
        # The jobs run the venv's Python; they find the test stages as the local workers do.
        job_script_prologue=[f"export PYTHONPATH={HERE}:{REPO / 'tests'}"],
    )
    executor = DaskExecutor(local_dask(slurm=slurm))
    report = sample_pipeline(default_stages(), output).run(executor=executor, limit=LIMIT)

    assert report.ok, report.failures
    assert executor.job_ids, "no Slurm job was submitted"
    for job_id in executor.job_ids:
        described = _slurm_job(job_id)
        assert "Comment=gristmill-test" in described
        assert f"JobId={job_id}" in described
        assert (tmp_path / "slurm-logs" / f"dask-worker-{job_id}.err").exists()
    assert_same_output(output, local_output)
