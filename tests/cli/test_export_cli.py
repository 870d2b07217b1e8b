"""`gristmill export` on the run driver: executors, resume and overwrite, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.data import meco_curated
from typer.testing import CliRunner

from gristmill.cli.app import app
from gristmill.export.writer import EXPORT_FILES


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three files of real documents with MeCo prefixes, and a run's bookkeeping beside them."""
    root = tmp_path_factory.mktemp("curated")
    meco_curated(root, rows=300, parts=3)
    (root / "_run").mkdir()
    (root / "_run" / "stats.json").write_text("{}")
    return root


def export(curated: Path, output: Path, *args: str):
    return CliRunner().invoke(app, ["export", str(curated), "-o", str(output), *args])


def _same_files(one: Path, other: Path) -> bool:
    return all((one / name).read_bytes() == (other / name).read_bytes() for name in EXPORT_FILES)


def test_export_on_dask_matches_the_local_export(curated: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    local = export(curated, tmp_path / "local", "--seq-len", "128", "-w", "1", "--quiet")
    assert local.exit_code == 0, local.output
    result = export(curated, tmp_path / "dask", "--seq-len", "128", "--executor", "dask", "-w", "2")
    assert result.exit_code == 0, result.output
    assert "dask dashboard: http://" in result.stderr
    assert "3 input tasks tokenised" in " ".join(result.stderr.split())
    assert _same_files(tmp_path / "dask", tmp_path / "local")


def test_rerun_resumes_and_other_options_need_overwrite(curated: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    first = export(curated, output, "--seq-len", "128")
    assert first.exit_code == 0, first.output
    meta = (output / "meta.json").read_bytes()

    again = export(curated, output, "--seq-len", "128")
    assert again.exit_code == 0, again.output
    assert "already complete (3 input tasks)" in " ".join(again.stderr.split())
    assert (output / "meta.json").read_bytes() == meta

    other = export(curated, output, "--seq-len", "64")
    assert other.exit_code == 2
    message = " ".join(other.stderr.split())
    assert f"{output} holds an export made with other options: seq_len 64 (was 128)" in message
    assert "pass --overwrite to replace it" in message
    assert "Traceback" not in other.output
    assert (output / "meta.json").read_bytes() == meta  # the refused run changed nothing

    replaced = export(curated, output, "--seq-len", "64", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert b'"seq_len": 64' in (output / "meta.json").read_bytes()


def test_export_into_a_pipeline_output_is_refused(curated: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    (output / "_run").mkdir(parents=True)
    (output / "_run" / "run.json").write_text('{"fingerprint": "abc", "pipeline": {}}')
    result = export(curated, output, "--quiet")
    assert result.exit_code == 2
    assert "holds the output of a pipeline run or another job, not an export" in " ".join(
        result.stderr.split()
    )
    assert sorted(p.name for p in output.rglob("*")) == ["_run", "run.json"]


def test_a_failed_task_exits_1_and_a_rerun_finishes(curated: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for path in curated.glob("*.parquet"):
        (inputs / path.name).write_bytes(path.read_bytes())
    broken = inputs / "part-001.parquet"
    good = broken.read_bytes()
    broken.write_bytes(b"garbage")
    result = export(inputs, tmp_path / "out", "--quiet")
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "export incomplete: 1 of 3 input tasks could not be tokenised" in message
    assert "part-001.parquet" in message and "failures.json" in message
    assert not (tmp_path / "out" / "meta.json").exists()

    broken.write_bytes(good)
    rerun = export(inputs, tmp_path / "out")
    assert rerun.exit_code == 0, rerun.output
    assert "1 of 3 input tasks tokenised now" in " ".join(rerun.stderr.split())
    reference = export(curated, tmp_path / "reference", "--quiet")
    assert reference.exit_code == 0, reference.output
    assert _same_files(tmp_path / "out", tmp_path / "reference")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--executor", "ray"], "unknown executor 'ray'"),
        (["--executor", "local", "--scheduler", "tcp://127.0.0.1:8786"], "need the dask executor"),
        (["--phase", "warmup"], "--phase must be all, conditioning or cooldown"),
    ],
)
def test_bad_options_exit_2(curated: Path, tmp_path: Path, args: list[str], expected: str) -> None:
    result = export(curated, tmp_path / "out", *args)
    assert result.exit_code == 2
    assert expected in " ".join(result.stderr.split())
    assert not (tmp_path / "out").exists()


def test_export_on_an_existing_scheduler(curated: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    local = export(curated, tmp_path / "local", "--quiet")
    assert local.exit_code == 0, local.output
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        result = export(curated, tmp_path / "remote", "--scheduler", cluster.scheduler_address)
    assert result.exit_code == 0, result.output
    assert _same_files(tmp_path / "remote", tmp_path / "local")
