"""What a user sees when the run cannot start, or its inputs are bad: one clear line naming
the file and the problem, the right exit code, and never a traceback. Real subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.data import split_samples

REPO = Path(__file__).resolve().parents[2]


def gristmill(
    *args: str, cwd: Path = REPO, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gristmill", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def _pipeline(tmp_path: Path, inputs: str, output: Path) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(f"input: {{paths: ['{inputs}']}}\noutput: {{path: '{output}'}}\nstages: []\n")
    return path


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_an_unwritable_output_is_one_line_and_exit_2(tmp_path: Path):
    split_samples(tmp_path / "in", 2, rows=50)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = gristmill("run", str(_pipeline(tmp_path, f"{tmp_path}/in/*.parquet", blocker / "out")))
    assert result.returncode == 2
    assert "cannot write to" in _one_error_line(result) and str(blocker) in result.stderr


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="Slurm is installed here")
def test_slurm_without_sbatch_is_one_line_and_exit_2(tmp_path: Path):
    pytest.importorskip("dask_jobqueue")
    split_samples(tmp_path / "in", 2, rows=50)
    pipeline = _pipeline(tmp_path, f"{tmp_path}/in/*.parquet", tmp_path / "out")
    result = gristmill("run", str(pipeline), "--executor", "dask", "--slurm", timeout=60)
    assert result.returncode == 2
    assert "sbatch" in _one_error_line(result)


def test_an_unreachable_scheduler_is_one_line_and_exit_2(tmp_path: Path):
    pytest.importorskip("distributed")
    split_samples(tmp_path / "in", 2, rows=50)
    pipeline = _pipeline(tmp_path, f"{tmp_path}/in/*.parquet", tmp_path / "out")
    pipeline.write_text(pipeline.read_text() + "executor: {dask: {connect_timeout: 2}}\n")
    result = gristmill("run", str(pipeline), "--scheduler", "tcp://127.0.0.1:9", timeout=120)
    assert result.returncode == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in _one_error_line(result)


def test_validate_opens_every_input_and_names_the_unreadable_ones(tmp_path: Path):
    paths = split_samples(tmp_path / "in", 4, rows=200)
    whole = paths[1].read_bytes()
    paths[1].write_bytes(whole[: len(whole) // 2])
    paths[2].write_bytes(b"")
    result = gristmill("validate", str(_pipeline(tmp_path, f"{tmp_path}/in", tmp_path / "out")))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    named = [line for line in result.stderr.splitlines() if line.startswith("unreadable")]
    assert len(named) == 2
    assert "part-001.parquet" in named[0] and "part-002.parquet" in named[1]
    assert "2 of 4 input files cannot be read" in result.stderr


def test_a_run_with_a_bad_file_says_it_is_incomplete_and_how_to_finish(tmp_path: Path):
    paths = split_samples(tmp_path / "in", 3, rows=90)
    paths[0].write_bytes(b"")
    out = tmp_path / "out"
    result = gristmill("run", str(_pipeline(tmp_path, f"{tmp_path}/in", out)))
    assert result.returncode == 1
    assert "part-000.parquet" in result.stderr and "not a readable Parquet file" in result.stderr
    assert "incomplete" in result.stderr and "run the same command again" in result.stderr
    assert "output: " not in result.stderr
