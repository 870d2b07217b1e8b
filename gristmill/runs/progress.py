"""The live progress display: one bar per step, named after it, with documents per second.

A bar is titled by its step ("pass 2 of 5: 07_exact_dedup", "08_minhash_dedup: map"). A
terminal narrower than ``runs.report.FULL_WIDTH`` gets fewer columns (no rate, no ETA), so
that a bar stays on one line; output that is not a terminal (a pipe, a log) gets one plain line
per step when it ends, instead of bars that cannot redraw.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
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
from rich.table import Column
from rich.text import Text

from gristmill.runs.report import FULL_WIDTH


class DocsPerSecondColumn(ProgressColumn):
    """Documents read by the step so far, and per second when ``rate`` (wide terminals)."""

    def __init__(self, rate: bool = True) -> None:
        super().__init__(table_column=Column(no_wrap=True))
        self.rate = rate

    def render(self, task: Task) -> Text:
        docs = task.fields.get("docs", 0)
        if not docs:
            return Text("")
        if not self.rate:
            return Text(f"{docs:,} docs", style="cyan")
        elapsed = task.elapsed or 0.0
        rate = docs / elapsed if elapsed > 0 else 0.0
        return Text(f"{docs:,} docs  {rate:,.0f} docs/s", style="cyan")


def _columns(width: int) -> list[ProgressColumn]:
    title = TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True))
    if width < FULL_WIDTH:
        return [
            title,
            BarColumn(bar_width=10),
            MofNCompleteColumn(table_column=Column(no_wrap=True)),
            DocsPerSecondColumn(rate=False),
            TimeElapsedColumn(table_column=Column(no_wrap=True)),
        ]
    return [
        title,
        BarColumn(),
        MofNCompleteColumn(table_column=Column(no_wrap=True)),
        DocsPerSecondColumn(),
        TimeElapsedColumn(table_column=Column(no_wrap=True)),
        TextColumn("ETA", table_column=Column(no_wrap=True)),
        TimeRemainingColumn(table_column=Column(no_wrap=True)),
    ]


class RunProgress:
    """Bars for the steps of one run; plain lines where there is no terminal; silent when
    disabled."""

    def __init__(self, *, enabled: bool, console: Console | None = None) -> None:
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self._progress = Progress(
            *_columns(self.console.width),
            console=self.console,
            disable=not self.live,
        )

    def __enter__(self) -> RunProgress:
        if self.live:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self._progress.stop()

    @contextmanager
    def step(self, title: str, total: int) -> Iterator[Callable[[int], None]]:
        """A bar for one step; the callable advances it by one unit and some documents."""
        task = self._progress.add_task(escape(title), total=total, docs=0)
        docs = done = 0
        started = time.perf_counter()

        def advance(count: int) -> None:
            nonlocal docs, done
            docs += count
            done += 1
            self._progress.update(task, advance=1, docs=docs)

        yield advance
        if self.enabled and not self.live:
            read = f", {docs:,} documents" if docs else ""
            self.console.out(
                f"{title}: {done}/{total} done{read}, {time.perf_counter() - started:.1f}s",
                highlight=False,
            )
