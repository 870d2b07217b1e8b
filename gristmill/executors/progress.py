"""The live progress display and the closing per-stage summary, with rich."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from gristmill.executors.base import RunReport


class DocsPerSecondColumn(ProgressColumn):
    """Documents per second over the run so far (tasks are the unit of the bar)."""

    def render(self, task: Task) -> Text:
        docs = task.fields.get("docs", 0)
        elapsed = task.elapsed or 0.0
        rate = docs / elapsed if elapsed > 0 else 0.0
        return Text(f"{docs:,} docs  {rate:,.0f} docs/s", style="cyan")


class RunProgress:
    """Tasks done, documents per second and ETA; silent when disabled."""

    def __init__(self, total: int, *, enabled: bool, console: Console | None = None) -> None:
        self.enabled = enabled
        self.docs = 0
        self.started = time.perf_counter()
        self._progress = Progress(
            TextColumn("[bold]tasks"),
            BarColumn(),
            MofNCompleteColumn(),
            DocsPerSecondColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            disable=not enabled,
        )
        self._task = self._progress.add_task("tasks", total=total, docs=0)

    def __enter__(self) -> RunProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def advance(self, docs: int) -> None:
        self.docs += docs
        self._progress.update(self._task, advance=1, docs=self.docs)


def summary_table(report: RunReport) -> Table:
    """Per stage: documents and characters in and out, drops by reason, time."""
    table = Table(title=f"gristmill: {report.output}", title_justify="left")
    for heading in (
        "stage",
        "docs in",
        "docs out",
        "kept",
        "chars in",
        "chars out",
        "dropped by",
        "s",
    ):
        table.add_column(heading, justify="left" if heading in ("stage", "dropped by") else "right")
    for label, stats in report.stats.stages.items():
        kept = f"{stats.docs_out / stats.docs_in:.1%}" if stats.docs_in else "-"
        reasons = ", ".join(f"{r} {n:,}" for r, n in stats.dropped.most_common(3))
        table.add_row(
            label,
            f"{stats.docs_in:,}",
            f"{stats.docs_out:,}",
            kept,
            f"{stats.chars_in:,}",
            f"{stats.chars_out:,}",
            reasons,
            f"{stats.seconds:.1f}",
        )
    return table


def print_report(report: RunReport, console: Console | None = None) -> None:
    console = console or Console(stderr=True, soft_wrap=True)
    if report.stats.stages:
        console.print(summary_table(report))
    console.print(
        f"tasks: {report.tasks_total} planned, {report.tasks_run} run, "
        f"{report.tasks_skipped} already complete, {len(report.failures)} failed; "
        f"{report.docs_read:,} documents read in {report.seconds:.1f}s"
    )
    for failure in report.failures:
        console.print(f"[red]FAILED[/red] {failure.task_id}: {failure.error}", highlight=False)
