"""``gristmill report`` on small runs: where the page goes, what it says when a figure cannot be
made, and the error for a directory that holds no run (the default pipeline's whole report is
checked in a browser by ``test_report_browser``)."""

from __future__ import annotations

from pathlib import Path

from support.data import split_samples
from typer.testing import CliRunner

from gristmill import Pipeline
from gristmill.cli.app import app
from gristmill.io import ParquetReader, ParquetWriter
from gristmill.report.gather import gather
from gristmill.stages.filters.heuristics.gopher_quality import GopherQuality
from gristmill.stages.taggers.tokens import TokensTagger


def _run(tmp_path: Path, *, rejects: bool) -> Path:
    inputs = tmp_path / "in"
    split_samples(inputs, 2, rows=120)
    output = tmp_path / ("out" if rejects else "out-no-rejects")
    report = Pipeline(
        [GopherQuality(), TokensTagger()],
        reader=ParquetReader(str(inputs / "*.parquet")),
        writer=ParquetWriter(str(output)),
        rejects=rejects,
    ).run()
    assert report.ok
    return output


def test_report_writes_the_page_beside_the_stats_and_prints_its_path(tmp_path: Path):
    output = _run(tmp_path, rejects=True)
    result = CliRunner().invoke(app, ["report", str(output)])
    assert result.exit_code == 0, result.output
    page = output / "_run" / "report.html"
    assert result.stdout.strip() == str(page)
    html = page.read_text(encoding="utf-8")
    assert 'data-chart="funnel"' in html and "01_gopher_quality" in html
    data = gather(str(output))
    (first, second) = data.funnel
    assert first.docs_in == 120 and first.tokens_in is not None
    assert second.tokens_out == data.tokens_kept  # the tokens stage drops nothing
    assert first.tokens_in > first.tokens_out  # gopher_quality dropped some tokens
    assert sum(group.count for group in data.reasons) == data.rejected == 120 - data.docs_kept

    elsewhere = tmp_path / "elsewhere.html"
    result = CliRunner().invoke(app, ["report", str(output), "-o", str(elsewhere)])
    assert result.exit_code == 0 and elsewhere.read_text(encoding="utf-8") == html


def test_a_run_without_rejects_says_why_tokens_per_stage_are_missing(tmp_path: Path):
    output = _run(tmp_path, rejects=False)
    data = gather(str(output))
    assert all(row.tokens_out is None for row in data.funnel)
    assert "do not add up" in data.tokens_note
    assert data.tokens_kept is not None and data.reasons == []


def test_a_directory_without_a_run_is_refused_with_a_clear_error(tmp_path: Path):
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "not the output of a gristmill run" in " ".join(result.output.split())
