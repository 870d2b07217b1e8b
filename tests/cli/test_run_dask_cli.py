"""`gristmill run --executor dask`: the same output as the local executor, with the dashboard
address and the progress display on stderr, and clear errors for contradictory options."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.data import read_output
from typer.testing import CliRunner

from gristmill.cli.app import app

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "pipelines" / "default.yaml"
INPUT = str(REPO / "data_samples" / "*.parquet")

# The [dask] extra (dask[distributed], dask-jobqueue) must be installed for these tests.
pytest.importorskip("distributed")


def run(*args: str):
    return CliRunner().invoke(app, ["run", str(DEFAULT), "-i", INPUT, *args])


def test_dask_run_prints_dashboard_and_matches_local_output(tmp_path: Path):
    local = run("-o", str(tmp_path / "local"), "--limit", "5", "--quiet", "-w", "1")
    assert local.exit_code == 0, local.output

    result = run("-o", str(tmp_path / "dask"), "--limit", "5", "--executor", "dask", "-w", "2")

    assert result.exit_code == 0, result.output
    assert "dask dashboard: http://" in result.stderr
    assert "tasks: 9 planned, 9 run" in result.stderr
    assert read_output(tmp_path / "dask").equals(read_output(tmp_path / "local"))


def test_scheduler_and_slurm_together_are_refused(tmp_path: Path):
    result = run("-o", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:8786", "--slurm")
    assert result.exit_code == 2
    assert "--scheduler and --slurm exclude each other" in result.stderr


def test_cluster_options_need_the_dask_executor(tmp_path: Path):
    result = run("-o", str(tmp_path / "o"), "--executor", "local", "--slurm")
    assert result.exit_code == 2
    assert "need the dask executor" in result.stderr
    assert not (tmp_path / "o").exists()


def test_unknown_executor_is_refused(tmp_path: Path):
    result = run("-o", str(tmp_path / "o"), "--executor", "ray")
    assert result.exit_code == 2
    assert "unknown executor 'ray'" in result.stderr
