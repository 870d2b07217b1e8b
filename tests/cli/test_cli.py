"""The ``gristmill`` command as a user runs it: a real subprocess, real files, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
from support.data import read_output, sample_table, split_samples

REPO = Path(__file__).resolve().parents[2]


def gristmill(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gristmill", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def _pipeline_file(tmp_path: Path, inputs: str, output: Path, stages: str = "[]") -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        f"input: {{paths: ['{inputs}']}}\noutput: {{path: '{output}'}}\nstages: {stages}\n"
    )
    return path


def test_run_with_a_corrupt_shard_exits_nonzero_and_keeps_the_rest(tmp_path: Path):
    split_samples(tmp_path / "in", 3)
    (tmp_path / "in" / "part-001.parquet").write_bytes(b"\x00garbage")
    out = tmp_path / "out"
    result = gristmill(
        "run", str(_pipeline_file(tmp_path, f"{tmp_path}/in/*.parquet", out)), "-w", "2"
    )

    assert result.returncode == 1
    assert "part-001.parquet" in result.stderr and "not a readable Parquet file" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in out.glob("*.parquet")) == ["part-000.parquet", "part-002.parquet"]
    failures = json.loads((out / "_run" / "failures.json").read_text())
    assert [f["task"] for f in failures] == ["part-001"]


def test_input_and_output_options_override_the_file(tmp_path: Path):
    split_samples(tmp_path / "in", 2, rows=100)
    pipeline = _pipeline_file(tmp_path, "nowhere/*.parquet", tmp_path / "unused")
    out = tmp_path / "elsewhere"
    result = gristmill(
        "run", str(pipeline), "--input", f"{tmp_path}/in/*.parquet", "--output", str(out), "-q"
    )
    assert result.returncode == 0, result.stderr
    assert read_output(out).equals(sample_table().slice(0, 100))


def test_changing_the_pipeline_needs_overwrite(tmp_path: Path):
    split_samples(tmp_path / "in", 2, rows=100)
    out = tmp_path / "out"
    assert (
        gristmill(
            "run", str(_pipeline_file(tmp_path, f"{tmp_path}/in/*.parquet", out)), "-q"
        ).returncode
        == 0
    )
    changed = _pipeline_file(
        tmp_path,
        f"{tmp_path}/in/*.parquet",
        out,
        "[{datatrove: {step: datatrove.pipeline.filters.GopherQualityFilter}}]",
    )
    refused = gristmill("run", str(changed), "-q")
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    replaced = gristmill("run", str(changed), "-q", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert read_output(out).num_rows < 100


def test_validate_reports_a_missing_text_column_before_running(tmp_path: Path):
    table = (
        sample_table()
        .slice(0, 20)
        .rename_columns(["id", "body", "source", "url", "crawl_date", "dump"])
    )
    pq.write_table(table, tmp_path / "body.parquet")
    pipeline = _pipeline_file(tmp_path, f"{tmp_path}/body.parquet", tmp_path / "out")
    for command in ("validate", "run"):
        result = gristmill(command, str(pipeline))
        assert result.returncode == 2
        assert "has no 'text' column" in result.stderr and "body" in result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.parquet"))


def test_validate_accepts_the_default_pipeline():
    result = gristmill("validate", "pipelines/default.yaml")
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stderr


def test_stages_lists_stages_and_shows_parameters():
    listing = gristmill("stages")
    assert listing.returncode == 0 and "datatrove" in listing.stdout
    detail = gristmill("stages", "datatrove")
    assert detail.returncode == 0
    for expected in ("step", "args", "mode", "'drop'"):
        assert expected in detail.stdout
    unknown = gristmill("stages", "no_such_stage")
    assert unknown.returncode == 2 and "unknown stage" in unknown.stderr


def test_stages_shows_docs_as_text_not_restructuredtext():
    """Docstrings are reST (``age_date``): the terminal gets the words, not the markup."""
    import io

    from rich.console import Console

    from gristmill.cli.stages import print_stages, render_doc
    from gristmill.core.registry import available_stages

    assert render_doc("Adds ``age_date`` (see :class:`Age`) [x]::") == (
        "Adds [cyan]age_date[/cyan] (see [cyan]Age[/cyan]) \\[x]:"
    )
    listing = gristmill("stages")
    assert "age_date" in listing.stdout and "`" not in listing.stdout
    for name in available_stages():
        out = io.StringIO()
        print_stages(name, Console(file=out, width=200))
        assert "``" not in out.getvalue(), name


def test_inspect_shows_schema_counts_and_documents(samples_dir: Path):
    result = gristmill("inspect", str(samples_dir / "web-c4-0000.parquet"), "--show", "2")
    assert result.returncode == 0, result.stderr
    assert "1,000 rows" in result.stdout
    assert "crawl_date" in result.stdout and "timestamp[us, tz=UTC]" in result.stdout
    first_id = pq.read_table(samples_dir / "web-c4-0000.parquet").column("id")[0].as_py()
    assert first_id in result.stdout


def test_inspect_names_a_corrupt_file(tmp_path: Path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"nope")
    result = gristmill("inspect", str(bad))
    assert result.returncode == 2 and "bad.parquet" in result.stderr


def test_every_command_is_mounted_on_the_main_app():
    result = gristmill("--help")
    assert result.returncode == 0
    for command in (
        "run",
        "validate",
        "stages",
        "inspect",
        "export",
        "mixture",
        "meco",
        "train-classifier",
    ):
        assert command in result.stdout, command
