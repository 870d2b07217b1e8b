"""The live progress display: one bar per step, named after it, with documents per second."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
from rich.text import Text


class DocsPerSecondColumn(ProgressColumn):
    """Documents per second of the step so far (units are the unit of the bar)."""

    def render(self, task: Task) -> Text:
        docs = task.fields.get("docs", 0)
        if not docs:
            return Text("")
        elapsed = task.elapsed or 0.0
        rate = docs / elapsed if elapsed > 0 else 0.0
        return Text(f"{docs:,} docs  {rate:,.0f} docs/s", style="cyan")


class RunProgress:
    """Bars for the steps of one run; silent when disabled."""

    def __init__(self, *, enabled: bool, console: Console | None = None) -> None:
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            DocsPerSecondColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            disable=not enabled,
        )

    def __enter__(self) -> RunProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    @contextmanager
    def step(self, title: str, total: int) -> Iterator[Callable[[int], None]]:
        """A bar for one step; the callable advances it by one unit and some documents."""
        task = self._progress.add_task(title, total=total, docs=0)
        docs = 0

        def advance(count: int) -> None:
            nonlocal docs
            docs += count
            self._progress.update(task, advance=1, docs=docs)

        yield advance
