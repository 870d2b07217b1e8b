"""What every executor shares: running one shard task, and the report of a whole run.

``run_task`` is the one place where a task reads, transforms and writes, so the local and the
Dask executors cannot drift apart in what "done" means: output renamed into place first,
completion marker second.
"""

from __future__ import annotations

import time
import traceback
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from gristmill.core.pipeline import Pipeline, Rejected
from gristmill.core.stats import PipelineStats
from gristmill.errors import ConfigError, GristmillError
from gristmill.executors.layout import OutputLayout
from gristmill.io.base import ShardTask
from gristmill.io.parquet import ParquetWriter, TaskWriter

DROP_STAGE = "drop_stage"
DROP_REASON = "drop_reason"


@dataclass
class TaskResult:
    """What a worker sends back: small and picklable, never the data itself."""

    task_id: str
    url: str
    ok: bool
    stats: dict[str, Any] | None = None
    error: str | None = None
    details: str | None = None
    docs_in: int = 0
    seconds: float = 0.0


@dataclass
class TaskFailure:
    task_id: str
    url: str
    error: str
    details: str | None = None


@dataclass
class RunReport:
    """The outcome of a run: merged stats of every completed task, and what failed."""

    output: str
    stats: PipelineStats
    tasks_total: int
    tasks_run: int
    tasks_skipped: int
    failures: list[TaskFailure] = field(default_factory=list)
    docs_read: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def rejects_schema(output_schema: pa.Schema) -> pa.Schema:
    fields = [f.with_nullable(True) for f in output_schema]
    fields += [pa.field(DROP_STAGE, pa.string()), pa.field(DROP_REASON, pa.string())]
    return pa.schema(fields)


def _write_rejects(writer: TaskWriter, rejected: list[Rejected]) -> None:
    for part in rejected:
        table = part.table.append_column(
            DROP_STAGE, pa.repeat(pa.scalar(part.stage), part.table.num_rows)
        ).append_column(DROP_REASON, part.reasons.cast(pa.string()))
        writer.write(table)


def execute_task(
    pipeline: Pipeline, task: ShardTask, layout: OutputLayout, fingerprint: str, limit: int | None
) -> tuple[PipelineStats, int]:
    """Read, transform and write one task; raise on any problem, leaving nothing behind.

    Returns the task's stats and the number of documents it read.
    """
    reader, writer = pipeline.reader, pipeline.writer
    if reader is None or writer is None:
        raise ConfigError("the pipeline needs a reader and a writer to run tasks")
    input_schema = reader.schema(task)
    output_schema = pipeline.validate(input_schema, source=task.url)
    pipeline.setup()
    pipeline.start_task()
    with ExitStack() as stack:
        output = stack.enter_context(writer.open(task, output_schema))
        rejects: TaskWriter | None = None
        docs_read = 0
        for table in reader.read(task, limit):
            docs_read += table.num_rows
            kept, rejected = pipeline.apply(table)
            output.write(kept)
            if pipeline.rejects and rejected:
                if rejects is None:
                    # Opened on the first drop, so a task that drops nothing leaves no file.
                    rejects_writer = ParquetWriter(layout.rejects, compression=writer.compression)
                    rejects = stack.enter_context(
                        rejects_writer.open(task, rejects_schema(output_schema))
                    )
                _write_rejects(rejects, rejected)
    stats = pipeline.finish_task()
    layout.write_marker(task, fingerprint, stats)
    return stats, docs_read


def run_task(
    pipeline: Pipeline, task: ShardTask, layout: OutputLayout, fingerprint: str, limit: int | None
) -> TaskResult:
    """``execute_task`` with every error caught and described, for isolation between tasks."""
    started = time.perf_counter()
    try:
        stats, docs_read = execute_task(pipeline, task, layout, fingerprint, limit)
    except GristmillError as error:
        pipeline.finish_task()
        return TaskResult(task.task_id, task.url, False, error=str(error))
    except Exception as error:  # noqa: BLE001 - one bad task must not stop the others
        pipeline.finish_task()
        return TaskResult(
            task.task_id,
            task.url,
            False,
            error=f"{task.url}: {type(error).__name__}: {error}",
            details=traceback.format_exc(),
        )
    return TaskResult(
        task.task_id,
        task.url,
        True,
        stats=stats.to_dict(),
        docs_in=docs_read,
        seconds=time.perf_counter() - started,
    )
