"""The examples of README.md and docs/runs.md work as written: each Python block runs as a
script, the YAML pipeline validates and runs, in a fresh directory beside the sample data."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from support.data import read_output, sample_table

REPO = Path(__file__).resolve().parents[1]


def blocks(document: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", document.read_text(encoding="utf-8"), re.S)


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """A user's directory: the sample data (and pipelines) where the examples expect them."""
    (tmp_path / "data_samples").symlink_to(REPO / "data_samples")
    (tmp_path / "pipelines").symlink_to(REPO / "pipelines")
    return tmp_path


def run_script(code: str, directory: Path) -> subprocess.CompletedProcess[str]:
    script = directory / "example.py"
    script.write_text(code, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": ""},
    )


def test_the_readme_python_examples_run_verbatim_as_scripts(workdir: Path):
    examples = blocks(REPO / "README.md", "python")
    assert len(examples) >= 2
    for code in examples:
        result = run_script(code, workdir)
        assert result.returncode == 0, result.stderr
    written = read_output(workdir / "output" / "example-python")
    assert 0 < written.num_rows < sample_table().num_rows  # Gopher quality dropped some
    assert "keep_language_filter" in written.column_names


def test_the_readme_pipeline_file_validates_and_runs(workdir: Path):
    (yaml,) = [b for b in blocks(REPO / "README.md", "yaml") if "name: example" in b]
    path = workdir / "example.yaml"
    path.write_text(yaml, encoding="utf-8")
    for command in (["validate", str(path)], ["run", str(path), "--limit", "20", "-q"]):
        result = subprocess.run(
            [sys.executable, "-m", "gristmill", *command],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
    assert len(list((workdir / "output" / "example").glob("*.parquet"))) == 9


def test_the_corpus_wide_stage_of_docs_runs_md_counts_repeated_texts(workdir: Path):
    (stage,) = blocks(REPO / "docs" / "runs.md", "python")
    (workdir / "text_count_stage.py").write_text(stage, encoding="utf-8")
    main = (
        "from gristmill import Pipeline\n"
        "from gristmill.io import ParquetReader, ParquetWriter\n"
        "from text_count_stage import TextCount\n"
        'if __name__ == "__main__":\n'
        "    report = Pipeline([TextCount()], reader=ParquetReader('data_samples'),\n"
        "                      writer=ParquetWriter('output/counted')).run(workers=2)\n"
        "    assert report.ok, report.failures\n"
    )
    result = run_script(main, workdir)
    assert result.returncode == 0, result.stderr
    written = read_output(workdir / "output" / "counted")
    expected = pc.value_counts(sample_table().column("text")).to_pylist()
    counts = {row["values"]: row["counts"] for row in expected}
    texts = written.column("text").to_pylist()
    assert written.column("text_count").to_pylist() == [counts[t] for t in texts]
    assert max(counts.values()) > 1
    assert pq.read_metadata(next((workdir / "output" / "counted").glob("*.parquet"))).num_rows
