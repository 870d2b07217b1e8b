"""The outcome of a run, as the caller gets it and as the console shows it.

The summary fits where it is shown:

* a terminal of 120 columns or more gets the full table (documents and characters in and
  out, the main drop reasons, seconds per stage);
* a narrower terminal gets a compact layout: a line per stage with its documents in and out,
  the main drop reasons indented below it; labels and numbers are never cut;
* output that is not a terminal (a pipe, a log file, CI) gets plain aligned text whose layout
  does not depend on any width, with no colours and no box drawing, so that logs compare and
  grep alike wherever they were made.

After a resume the figures say what this run did and what the output holds: tasks run now
against tasks complete from earlier runs, documents read now against documents read in total.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gristmill.core.stats import PipelineStats, StageStats

#: Terminals at least this wide get the full table; narrower ones the compact one.
FULL_WIDTH = 120
#: Drop reasons shown per stage in a terminal (a pipe gets all of them).
REASONS_SHOWN = 3


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
    #: Documents this run read (its own pass-1 units; 0 when every task was complete).
    docs_read: int = 0
    seconds: float = 0.0
    #: Per corpus-wide phase: over how many tasks it was computed, and its decision.
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Steps that could not run at all (a failed phase stops what depends on it).
    not_run: list[str] = field(default_factory=list)
    #: Documents read by every completed pass-1 unit, in this run and the earlier ones.
    docs_read_total: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures and not self.not_run


# -- figures ------------------------------------------------------------------------------------
def _kept(stats: StageStats) -> str:
    return f"{stats.docs_out / stats.docs_in:.1%}" if stats.docs_in else "-"


def _figures(stats: StageStats) -> list[str]:
    """A stage's figures as the tables show them: docs in, out, kept, chars in, out."""
    return [
        f"{stats.docs_in:,}",
        f"{stats.docs_out:,}",
        _kept(stats),
        f"{stats.chars_in:,}",
        f"{stats.chars_out:,}",
    ]


def _reasons(stats: StageStats, shown: int | None) -> list[str]:
    ranked = sorted(stats.dropped.items(), key=lambda item: (-item[1], item[0]))
    lines = [f"{reason} {count:,}" for reason, count in ranked[:shown]]
    if shown is not None and len(ranked) > shown:
        lines.append(f"(+{len(ranked) - shown} more)")
    return lines


def tasks_line(report: RunReport) -> str:
    return (
        f"tasks: {report.tasks_total:,} planned, {report.tasks_run:,} run now, "
        f"{report.tasks_skipped:,} already complete, {len(report.failures):,} failed"
    )


def documents_line(report: RunReport) -> str:
    total = max(report.docs_read_total, report.docs_read)
    earlier = total - report.docs_read
    line = f"documents read: {report.docs_read:,} by this run"
    if earlier:
        line += f" + {earlier:,} by earlier runs = {total:,} in total"
    elif total:
        line += " (all of them)"
    kept = _documents_kept(report.stats)
    if kept is not None and total:
        line += f"; {kept:,} kept ({kept / total:.1%})"
    return f"{line}; {report.seconds:.1f}s"


def _documents_kept(stats: PipelineStats) -> int | None:
    if not stats.stages:
        return None
    return list(stats.stages.values())[-1].docs_out


# -- layouts ------------------------------------------------------------------------------------
def full_table(report: RunReport) -> Table:
    """Per stage: documents and characters in and out, drops by reason, time (wide terminals)."""
    table = Table(title=f"gristmill: {report.output}", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("stage", no_wrap=True)
    for heading in ("docs in", "docs out", "kept", "chars in", "chars out"):
        table.add_column(heading, justify="right", no_wrap=True)
    table.add_column("dropped by", overflow="fold", ratio=1, min_width=20)
    table.add_column("s", justify="right", no_wrap=True)
    for label, stats in report.stats.stages.items():
        table.add_row(
            label,
            *_figures(stats),
            "\n".join(_reasons(stats, REASONS_SHOWN)),
            f"{stats.seconds:.1f}",
        )
    return table


def compact_lines(report: RunReport, width: int) -> list[str]:
    """Stage, documents in → out and the share kept on one line (the numbers on the next when
    the label leaves no room), the main drop reasons indented below it: nothing is cut, and no
    line is wider than ``width`` (narrow terminals)."""
    rows = [
        (label, f"{stats.docs_in:,} → {stats.docs_out:,}", _kept(stats), stats)
        for label, stats in report.stats.stages.items()
    ]
    label_width = max([len("stage"), *(len(label) for label, *_rest in rows)])
    docs_width = max([len("documents"), *(len(docs) for _l, docs, *_rest in rows)])
    kept_width = max([len("kept"), *(len(kept) for _l, _d, kept, _s in rows)])
    numbers_width = docs_width + 2 + kept_width
    inline = label_width + 2 + numbers_width <= width

    def numbers(docs: str, kept: str) -> str:
        return f"{docs.rjust(docs_width)}  {kept.rjust(kept_width)}"

    lines = []
    if inline:
        lines.append(f"{'stage'.ljust(label_width)}  {numbers('documents', 'kept')}")
    else:
        lines.append("stage")
        lines.append(numbers("documents", "kept").rjust(width))
    for label, docs, kept, stats in rows:
        if inline:
            lines.append(f"{label.ljust(label_width)}  {numbers(docs, kept)}")
        else:
            lines.append(label)
            lines.append(numbers(docs, kept).rjust(width))
        reasons = ", ".join(_reasons(stats, REASONS_SHOWN))
        if reasons:
            lines += textwrap.wrap(
                f"dropped: {reasons}",
                width=max(width, 20),
                initial_indent="    ",
                subsequent_indent="      ",
                break_on_hyphens=False,
            )
    return lines


def plain_lines(report: RunReport) -> list[str]:
    """The table as plain aligned text, the same whatever the width (logs, pipes, CI)."""
    headings = ["stage", "docs in", "docs out", "kept", "chars in", "chars out", "s", "dropped by"]
    rows = [
        [label, *_figures(stats), f"{stats.seconds:.1f}", ", ".join(_reasons(stats, None))]
        for label, stats in report.stats.stages.items()
    ]
    widths = [max(len(row[i]) for row in [headings, *rows]) for i in range(len(headings) - 1)]

    def line(cells: list[str]) -> str:
        aligned = [cells[0].ljust(widths[0])]
        aligned += [cell.rjust(width) for cell, width in zip(cells[1:-1], widths[1:], strict=True)]
        return "  ".join([*aligned, cells[-1]]).rstrip()

    return [f"gristmill: {report.output}", line(headings), *(line(row) for row in rows)]


def _notes(report: RunReport) -> Iterable[str]:
    """The lines under the table, as console markup."""
    yield escape(tasks_line(report))
    yield escape(documents_line(report))
    if report.stats.unreadable:
        yield escape(
            f"{report.stats.unreadable:,} unreadable input rows set aside in "
            f"{report.output}/_rejects (drop_stage 00_input)"
        )
    for label, phase in report.phases.items():
        summary = (phase.get("decision") or {}).get("summary")
        if summary:
            yield f"{escape(label)}: {escape(str(summary))}"
        left_out = phase.get("tasks_left_out") or []
        if left_out:
            yield (
                f"[yellow]whole-run step {escape(label)}[/yellow] was computed over "
                f"{phase['tasks']} of {phase['tasks'] + len(left_out)} tasks (left out, failed "
                f"earlier: {escape(', '.join(left_out))}); a rerun with them fixed recomputes it"
            )
    for step in report.not_run:
        yield f"[red]NOT RUN[/red] {escape(step)}"
    for failure in report.failures:
        where = f" ({failure.step})" if failure.step else ""
        yield f"[red]FAILED[/red] {escape(f'{failure.task_id}{where}: {failure.error}')}"


def print_report(report: RunReport, console: Console | None = None) -> None:
    """The summary, laid out for where it goes (see the module's docstring)."""
    console = console or Console(stderr=True, soft_wrap=True)
    if not console.is_terminal:
        lines = plain_lines(report) if report.stats.stages else []
        for line in lines:
            console.out(line, highlight=False)
        for note in _notes(report):
            console.print(note, highlight=False, soft_wrap=True)
        return
    if report.stats.stages and console.width >= FULL_WIDTH:
        console.print(full_table(report), soft_wrap=False)
    elif report.stats.stages:
        console.print(
            Text(f"gristmill: {report.output}", style="bold", overflow="fold"), soft_wrap=False
        )
        for number, line in enumerate(compact_lines(report, console.width)):
            console.print(Text(line, style="bold" if number == 0 else ""), soft_wrap=True)
    for note in _notes(report):
        console.print(note, highlight=False)
