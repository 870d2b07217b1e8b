"""The outcome of a run, as the caller gets it and as the console shows it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gristmill.core.stats import PipelineStats


@dataclass
class TaskFailure:
    """A unit that failed: which task (or unit), the input it read, why, and in which step."""

    task_id: str
    url: str
    error: str
    details: str | None = None
    step: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task_id,
            "input": self.url,
            "step": self.step,
            "error": self.error,
            "details": self.details,
        }


@dataclass
class RunReport:
    """Merged stats of every completed task, the phases' decisions, and what failed."""

    output: str
    stats: PipelineStats
    tasks_total: int
    tasks_run: int
    tasks_skipped: int
    failures: list[TaskFailure] = field(default_factory=list)
    docs_read: int = 0
    seconds: float = 0.0
    #: Per corpus-wide phase: over how many tasks it was computed, and its decision.
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Steps that could not run at all (a failed phase stops what depends on it).
    not_run: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.not_run


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
        f"{report.docs_read:,} documents read in {report.seconds:.1f}s",
        highlight=False,
    )
    if report.stats.unreadable:
        console.print(
            f"{report.stats.unreadable:,} unreadable input rows set aside in "
            f"{report.output}/_rejects (drop_stage 00_input)",
            highlight=False,
        )
    for label, phase in report.phases.items():
        summary = (phase.get("decision") or {}).get("summary")
        if summary:
            console.print(f"{escape(label)}: {escape(str(summary))}", highlight=False)
        left_out = phase.get("tasks_left_out") or []
        if left_out:
            console.print(
                f"[yellow]whole-run step {label}[/yellow] was computed over "
                f"{phase['tasks']} of {phase['tasks'] + len(left_out)} tasks (left out, failed "
                f"earlier: {escape(', '.join(left_out))}); a rerun with them fixed recomputes it",
                highlight=False,
            )
    for step in report.not_run:
        console.print(f"[red]NOT RUN[/red] {escape(step)}", highlight=False)
    for failure in report.failures:
        where = f" ({failure.step})" if failure.step else ""
        described = escape(f"{failure.task_id}{where}: {failure.error}")
        console.print(f"[red]FAILED[/red] {described}", highlight=False)
