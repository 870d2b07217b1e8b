"""The run driver: what every job shares, written once.

A job (a pipeline run, an export, a mixture round) is a sequence of steps over one output
directory. The driver owns everything around the steps: the output's lock (one run per
directory, stale locks taken over), ``--overwrite``, the fingerprint check that refuses to mix
two jobs' outputs, the executor's session (one pool or cluster for the whole run), the
completion markers that make every step resumable, failure isolation (a unit that fails is
recorded with its input and step, and the others go on), the progress display, leftover
temporaries, and ``failures.json``. Jobs say which steps to run and what to report.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from rich.console import Console

from gristmill.errors import ConfigError
from gristmill.executors.base import Executor, Lost
from gristmill.executors.local import LocalExecutor
from gristmill.io.filesystem import remove
from gristmill.runs.layout import OutputLayout
from gristmill.runs.lock import RunLock
from gristmill.runs.mainguard import check_main_guard
from gristmill.runs.progress import RunProgress
from gristmill.runs.report import TaskFailure
from gristmill.runs.steps import Step, UnitContext, UnitResult, run_unit


@dataclass
class StepOutcome:
    """Every unit's result in a step, in the step's order (resumed ones included)."""

    step: Step
    results: list[UnitResult] = field(default_factory=list)

    @property
    def ok(self) -> list[UnitResult]:
        return [r for r in self.results if r.ok]

    @property
    def failed(self) -> list[UnitResult]:
        return [r for r in self.results if not r.ok]

    @property
    def ran(self) -> list[UnitResult]:
        return [r for r in self.results if not r.resumed]

    def values(self) -> dict[str, dict[str, Any]]:
        """Unit key → value, for the units that completed."""
        return {r.key: r.value for r in self.ok}


class RunDriver:
    """Runs a job's steps on ``executor`` over the output directory ``root``."""

    def __init__(
        self,
        root: str,
        executor: Executor,
        *,
        overwrite: bool = False,
        progress: bool = True,
        console: Console | None = None,
    ) -> None:
        self.layout = OutputLayout(root.rstrip("/"))
        self.executor = executor
        self.overwrite = overwrite
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.progress = RunProgress(enabled=progress, console=self.console)
        self.lock = RunLock(self.layout.lock_path, self.layout.root)
        self.failures: list[TaskFailure] = []
        self.started = time.perf_counter()
        self._session: Any = None

    # -- the run's lifetime -------------------------------------------------------------------
    def __enter__(self) -> RunDriver:
        if self.executor.spawns_processes:
            check_main_guard()
        self.lock.acquire()
        try:
            if self.lock.took_over is not None and self.progress.enabled:
                self.console.print(
                    f"taking over {self.layout.root}: its last run (pid "
                    f"{self.lock.took_over.get('pid')}) died without finishing",
                    highlight=False,
                )
            if self.overwrite:
                self.layout.clear()
            self.layout.remove_temporaries()
            if self.progress.enabled:
                self.executor.listener = self._announce
            self._session = self.executor.session()
            self._session.__enter__()
            self.progress.__enter__()
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.progress.__exit__(kind, error, tb)
            if self._session is not None:
                self._session.__exit__(kind, error, tb)
            # An attempt killed mid-write may have left a temporary file; none runs now.
            self.layout.remove_temporaries()
        finally:
            self.lock.release()

    def _announce(self, message: str) -> None:
        self.console.print(message, highlight=False)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    # -- what this output holds -------------------------------------------------------------
    def claim(self, fingerprint: str, record: dict[str, Any], what: str = "job") -> None:
        """Refuse an output made by a different job; record this one's fingerprint."""
        previous = self.layout.previous_run()
        found = previous.get("fingerprint") if previous else None
        if found is not None and found != fingerprint:
            raise ConfigError(
                f"{self.layout.root} holds the output of a different {what} (fingerprint "
                f"{found}, this run {fingerprint}); pass --overwrite to replace it, or choose "
                "another output"
            )
        self.layout.write_run({**(previous or {}), **record, "fingerprint": fingerprint})

    def record(self, **fields: Any) -> None:
        """Add to ``run.json`` (decisions, the final fingerprint) as the run learns them."""
        self.layout.write_run({**(self.layout.previous_run() or {}), **fields})

    # -- steps ---------------------------------------------------------------------------------
    def run_step(self, step: Step) -> StepOutcome:
        """Run the step's units that are not complete; every unit's result, in order."""
        results: dict[str, UnitResult] = {}
        pending = []
        for unit in step.units:
            value = self.layout.completed(step.key, unit.key, step.fingerprint)
            if value is None:
                pending.append(unit)
            elif step.still_valid is None or step.still_valid(unit):
                results[unit.key] = UnitResult(unit.key, unit.source, True, value, resumed=True)
            else:
                # Marked done, but its output is gone: the marker must not stop the rerun.
                remove(self.layout.marker_path(step.key, unit.key))
                pending.append(unit)
        if pending:
            if step.before_run is not None:
                step.before_run(pending)
            context = UnitContext(self.layout, step.key, step.fingerprint, self.lock.guard)
            work = functools.partial(run_unit, context, step.work)
            with self.progress.step(step.title, len(pending)) as advance:

                def done(_index: int, outcome: Any) -> None:
                    docs = (
                        outcome.value.get("docs_read", 0) if isinstance(outcome, UnitResult) else 0
                    )
                    advance(int(docs))

                executor = LocalExecutor(workers=1) if step.in_driver else self.executor
                outcomes = executor.map(
                    work, pending, shared=step.shared, resources=step.resources, on_done=done
                )
            for unit, outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, Lost):
                    error = (
                        outcome.error
                        if unit.source in outcome.error
                        else (f"{unit.source}: {outcome.error}")
                    )
                    outcome = UnitResult(
                        unit.key, unit.source, False, error=error, details=outcome.details
                    )
                results[unit.key] = outcome
                if not outcome.ok:
                    self.failures.append(
                        TaskFailure(
                            unit.key,
                            unit.source,
                            outcome.error or "failed",
                            outcome.details,
                            step.title,
                        )
                    )
        return StepOutcome(step, [results[unit.key] for unit in step.units])

    def collect(self, step: Step) -> StepOutcome:
        """The step's completed units, from their markers alone; nothing runs."""
        results = []
        for unit in step.units:
            value = self.layout.completed(step.key, unit.key, step.fingerprint)
            if value is not None:
                results.append(UnitResult(unit.key, unit.source, True, value, resumed=True))
        return StepOutcome(step, results)

    def write_failures(self) -> None:
        self.layout.write_failures([failure.to_dict() for failure in self.failures])
