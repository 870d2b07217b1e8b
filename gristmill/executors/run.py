"""The executor-independent start and end of a run: plan, validate, resume, merge, report."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from gristmill.core.pipeline import Pipeline
from gristmill.core.stats import PipelineStats
from gristmill.errors import ConfigError, InputError
from gristmill.executors.base import RunReport, TaskFailure, TaskResult
from gristmill.executors.layout import OutputLayout
from gristmill.executors.progress import RunProgress, print_report
from gristmill.io.base import ShardTask

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


@dataclass
class PreparedRun:
    pipeline: Pipeline
    layout: OutputLayout
    fingerprint: str
    limit: int | None
    tasks: list[ShardTask]
    pending: list[ShardTask]
    started: float = field(default_factory=time.perf_counter)


def validate_before_run(pipeline: Pipeline, tasks: list[ShardTask]) -> None:
    """Check the stages against the first readable input, before any task starts.

    An unreadable file is not an error here: its task will fail and be reported, while the
    others run. A schema problem, though, is the pipeline's and stops the run at once.
    """
    assert pipeline.reader is not None
    for task in tasks:
        try:
            schema = pipeline.reader.schema(task)
        except InputError:
            continue
        pipeline.validate(schema, source=task.url)
        return


def check_previous_run(layout: OutputLayout, fingerprint: str) -> None:
    """Refuse to mix two pipelines' outputs in one directory."""
    previous = layout.previous_fingerprint()
    if previous is not None and previous != fingerprint:
        raise ConfigError(
            f"{layout.root} holds the output of a different pipeline or --limit "
            f"(fingerprint {previous}, this run {fingerprint}); pass --overwrite to replace "
            f"it, or choose another output"
        )


def prepare_run(pipeline: Pipeline, *, limit: int | None, overwrite: bool) -> PreparedRun:
    if pipeline.reader is None or pipeline.writer is None:
        raise ConfigError("the pipeline needs a reader and a writer to run")
    layout = OutputLayout(pipeline.writer.path)
    fingerprint = pipeline.fingerprint(limit=limit)
    if overwrite:
        layout.clear()
    check_previous_run(layout, fingerprint)
    tasks = pipeline.reader.plan()
    validate_before_run(pipeline, tasks)
    layout.remove_temporaries()
    layout.write_run(pipeline.spec(), fingerprint)
    pending = [t for t in tasks if layout.completed_stats(t, fingerprint) is None]
    return PreparedRun(pipeline, layout, fingerprint, limit, tasks, pending)


def finish_run(prepared: PreparedRun, results: list[TaskResult]) -> RunReport:
    """Merge the stats of every completed task (this run's and earlier ones') and report."""
    layout = prepared.layout
    completed = [layout.completed_stats(t, prepared.fingerprint) for t in prepared.tasks]
    stats = PipelineStats.merged(s for s in completed if s is not None)
    layout.write_stats(stats)
    failures = [
        TaskFailure(r.task_id, r.url, r.error or "failed", r.details) for r in results if not r.ok
    ]
    layout.write_failures(
        [
            {"task": f.task_id, "input": f.url, "error": f.error, "details": f.details}
            for f in failures
        ]
    )
    return RunReport(
        output=layout.root,
        stats=stats,
        tasks_total=len(prepared.tasks),
        tasks_run=len(results),
        tasks_skipped=len(prepared.tasks) - len(prepared.pending),
        failures=failures,
        docs_read=sum(r.docs_in for r in results),
        seconds=time.perf_counter() - prepared.started,
    )


class Executor(ABC):
    """Runs a pipeline's pending shard tasks; subclasses only say how tasks are dispatched.

    Planning, validation, resume, stats merging and the report are the same for every
    executor, so they live here and ``execute`` is the only thing a new backend writes.
    """

    progress: bool = True

    def run(
        self, pipeline: Pipeline, *, limit: int | None = None, overwrite: bool = False
    ) -> RunReport:
        # A stage that needs whole-run statistics (a percentile cut) splits the run in passes.
        from gristmill.executors.prepass import has_barrier, run_in_segments

        if has_barrier(pipeline):
            report = run_in_segments(self, pipeline, limit=limit, overwrite=overwrite)
        else:
            prepared = prepare_run(pipeline, limit=limit, overwrite=overwrite)
            results = self.execute_with_progress(prepared)
            report = finish_run(prepared, results)
        if self.progress:
            print_report(report)
        return report

    def execute_with_progress(self, prepared: PreparedRun) -> list[TaskResult]:
        """``execute`` under a progress display of its pending tasks."""
        with RunProgress(len(prepared.pending), enabled=self.progress) as progress:
            return self.execute(prepared, progress)

    def map_tasks(self, fn: Callable[[Item], Outcome], items: Sequence[Item]) -> list[Outcome]:
        """``[fn(item) for item in items]`` with this executor's parallelism, in order.

        Used for the statistics pass of two-pass runs (executors/prepass.py). ``fn`` is a
        picklable callable (a module-level function or a ``functools.partial`` of one) and
        the items and results are small and picklable; an exception raised by ``fn`` is
        raised here. This default runs in-process; backends override it to spread the work.
        """
        return [fn(item) for item in items]

    @abstractmethod
    def execute(self, prepared: PreparedRun, progress: RunProgress) -> list[TaskResult]:
        """Run every task of ``prepared.pending``; one result per task, failures included."""
