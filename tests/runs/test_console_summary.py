"""The run summary on the console: at 80 and 200 columns, piped, and after a kill and resume.

The layouts are checked on a real run's figures; the resume test kills a real ``gristmill
run`` (SIGKILL, part-way through its first pass) and checks that the resumed run's summary
adds up to the uninterrupted run's: the same per-stage counts, documents read now plus before
equal to all the documents, every task either run now or already complete.
"""

from __future__ import annotations

import copy
import io
import re
from pathlib import Path

import pytest
from rich.console import Console
from support.data import split_samples
from support.processes import completed, kill_when, start_gristmill

from gristmill.executors import LocalExecutor
from gristmill.runs.config import load_pipeline
from gristmill.runs.progress import RunProgress
from gristmill.runs.report import RunReport, print_report

PIPELINE = """
name: summary
input: {{paths: ["{inputs}/*.parquet"], batch_size: 50}}
output: {{path: "{output}"}}
executor: {{type: local, workers: 2}}
stages:
  - test_letter_share: {{min_chars: 200, sleep_per_batch: {sleep}}}
  - score_filter: {{column: letter_share, method: percentile, keep_fraction: 0.5}}
  - test_letter_share: {{column: second_score}}
"""
SHARDS = 6


def _pipeline(directory: Path, inputs: Path, output: Path, sleep: float) -> Path:
    path = directory / f"{output.name}.yaml"
    path.write_text(PIPELINE.format(inputs=inputs, output=output, sleep=sleep))
    return path


def _run(pipeline: Path) -> RunReport:
    import support.score_stages  # noqa: F401 - registers test_letter_share

    report = load_pipeline(pipeline).build().run(executor=LocalExecutor(workers=1))
    assert report.ok, report.failures
    return report


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("in")
    split_samples(directory, SHARDS, rows=1200)
    return directory


@pytest.fixture(scope="module")
def reference(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> RunReport:
    directory = tmp_path_factory.mktemp("reference")
    return _run(_pipeline(directory, shards, directory / "out", 0.0))


def _printed(report: RunReport, width: int | None) -> str:
    """The summary as a terminal ``width`` wide shows it, or piped (None)."""
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width or 80, force_terminal=width is not None, color_system=None
    )
    print_report(report, console)
    return buffer.getvalue()


def _long_labelled(report: RunReport) -> RunReport:
    """A copy with stage labels and numbers as long as real pipelines have them."""
    report = copy.deepcopy(report)
    stages = dict(report.stats.stages)
    report.stats.stages = {
        f"{label}_with_a_long_name" if i % 2 else label: stats
        for i, (label, stats) in enumerate(stages.items())
    }
    report.docs_read *= 1000
    report.docs_read_total *= 1000
    for stats in report.stats.stages.values():
        stats.docs_in *= 1000
        stats.docs_out *= 1000
        stats.chars_in *= 10_000
        stats.chars_out *= 10_000
    return report


def test_at_80_columns_the_compact_layout_fits_and_cuts_nothing(reference: RunReport):
    report = _long_labelled(reference)
    shown = _printed(report, 80)
    assert max(len(line) for line in shown.splitlines()) <= 80, shown
    assert "…" not in shown
    for label, stats in report.stats.stages.items():
        assert label in shown
        assert f"{stats.docs_in:,} → {stats.docs_out:,}" in shown
        for reason, count in stats.dropped.most_common(3):
            assert f"{reason} {count:,}" in shown.replace("\n      ", " ")
    assert "chars in" not in shown  # the compact layout leaves the character counts out


def test_at_200_columns_the_full_table_shows_every_figure(reference: RunReport):
    report = reference
    shown = _printed(report, 200)
    assert max(len(line) for line in shown.splitlines()) <= 200
    assert "…" not in shown
    assert "chars in" in shown and "chars out" in shown
    for label, stats in report.stats.stages.items():
        row = next(line for line in shown.splitlines() if label in line)
        for figure in (stats.docs_in, stats.docs_out, stats.chars_in, stats.chars_out):
            assert f"{figure:,}" in row


def test_piped_the_summary_is_plain_text_whatever_the_width(reference: RunReport):
    report = _long_labelled(reference)
    piped = _printed(report, None)
    assert "\x1b[" not in piped and "━" not in piped and "─" not in piped
    wide = io.StringIO()
    print_report(report, Console(file=wide, width=300, force_terminal=False))
    assert wide.getvalue() == piped  # the layout does not follow the width
    lines = piped.splitlines()
    assert lines[1].split()[:3] == ["stage", "docs", "in"]
    for label, stats in report.stats.stages.items():
        row = next(line for line in lines if line.startswith(label + " "))
        for figure in (stats.docs_in, stats.docs_out, stats.chars_in, stats.chars_out):
            assert f"{figure:,}" in row
        for reason, count in stats.dropped.items():
            assert f"{reason} {count:,}" in row


def test_piped_progress_is_one_line_per_step_named_after_it():
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=False)
    with RunProgress(enabled=True, console=console) as progress:
        with progress.step("pass 1 of 3: 01_language … 06_fineweb_quality", 2) as advance:
            advance(100)
            advance(23)
        with progress.step("07_exact_dedup: map", 2) as advance:
            advance(0)
            advance(0)
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(
        r"pass 1 of 3: 01_language … 06_fineweb_quality: 2/2 done, 123 documents, [\d.]+s",
        lines[0],
    )
    assert re.fullmatch(r"07_exact_dedup: map: 2/2 done, [\d.]+s", lines[1])


def test_after_a_kill_and_resume_the_summary_adds_up_to_the_uninterrupted_run(
    shards: Path, reference: RunReport, tmp_path: Path
):
    output = tmp_path / "out"
    pipeline = _pipeline(tmp_path, shards, output, 0.4)
    markers = output / "_run" / "markers" / "pass-01"
    killed = start_gristmill("run", str(pipeline), "--quiet", register=("support.score_stages",))
    kill_when(killed, lambda: completed(markers) >= 2)
    before = completed(markers)
    assert 2 <= before < SHARDS, "the first pass should have been killed part-way"

    resumed = _run(pipeline)
    assert resumed.tasks_total == reference.tasks_total == SHARDS
    assert resumed.tasks_run + resumed.tasks_skipped == resumed.tasks_total
    assert resumed.docs_read_total == reference.docs_read == reference.docs_read_total
    assert 0 < resumed.docs_read < resumed.docs_read_total  # the killed run read the rest
    for label, stats in reference.stats.stages.items():
        assert resumed.stats.stages[label].docs_in == stats.docs_in
        assert resumed.stats.stages[label].docs_out == stats.docs_out
        assert resumed.stats.stages[label].dropped == stats.dropped

    shown = _printed(resumed, None)
    earlier = resumed.docs_read_total - resumed.docs_read
    assert (
        f"documents read: {resumed.docs_read:,} by this run + {earlier:,} by earlier runs = "
        f"{reference.docs_read:,} in total" in shown
    )
    assert f"{resumed.tasks_run:,} run now, {resumed.tasks_skipped:,} already complete" in shown

    again = _run(pipeline)  # a complete output: nothing runs, the totals stay true
    assert (again.tasks_run, again.tasks_skipped, again.docs_read) == (0, SHARDS, 0)
    assert again.docs_read_total == reference.docs_read
    assert f"documents read: 0 by this run + {reference.docs_read:,} by earlier runs" in (
        _printed(again, None)
    )
