"""One shard task through one pass of stages: read, transform, write, on a worker.

This is the one place where a task reads, transforms and writes, so every pass and every
executor means the same by "done": the output renamed into place first, the completion marker
(written by ``runs.steps.run_unit``) second. Rows the reader cannot read and rows the stages
drop go to the pass's rejects, with the stage label and the reason.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from gristmill.core.chain import Rejected, StageChain
from gristmill.core.phase import TaskInfo
from gristmill.io.base import Reader, ShardTask, TaskOutput, Writer
from gristmill.io.filesystem import join, remove
from gristmill.io.parquet import ParquetWriter

DROP_STAGE = "drop_stage"
DROP_REASON = "drop_reason"
#: The ``drop_stage`` of input rows that could not be read at all.
INPUT_LABEL = "00_input"


def rejects_schema(output_schema: pa.Schema) -> pa.Schema:
    fields = [f.with_nullable(True) for f in output_schema]
    fields += [pa.field(DROP_STAGE, pa.string()), pa.field(DROP_REASON, pa.string())]
    return pa.schema(fields)


@dataclass
class ShardPass:
    """What every worker of a pass needs (sent once per worker): the stages and the files."""

    chain: StageChain
    reader: Reader
    writer: Writer
    #: Where the pass's rejects go; None keeps no rejects.
    rejects: str | None
    limit: int | None
    #: The stages from this pass's first to the pipeline's last, so that every reject file of
    #: a run has the columns of the whole pipeline's output (None: this pass's output columns).
    rest: StageChain | None = None

    def teardown(self) -> None:
        self.chain.teardown()


class _Rejects:
    """The rejects file of one task, opened at the first dropped row (none if nothing drops)."""

    def __init__(self, stack: ExitStack, shard: ShardPass, task: ShardTask, schema: pa.Schema):
        self._stack, self._shard, self._task = stack, shard, task
        whole = shard.rest if shard.rest is not None else shard.chain
        self._schema = rejects_schema(whole.validate(schema, source=task.url))
        self._output: TaskOutput | None = None

    @property
    def url(self) -> str | None:
        if self._shard.rejects is None:
            return None
        return join(self._shard.rejects, self._task.output_name())

    def write(self, table: pa.Table, stage: str, reasons: pa.Array | list[str]) -> None:
        if self._shard.rejects is None or table.num_rows == 0:
            return
        if self._output is None:
            writer = ParquetWriter(self._shard.rejects)
            self._output = self._stack.enter_context(writer.open(self._task, self._schema))
        labelled = table.append_column(
            DROP_STAGE, pa.repeat(pa.scalar(stage), table.num_rows)
        ).append_column(
            DROP_REASON,
            pa.array(reasons, pa.string())
            if isinstance(reasons, list)
            else reasons.cast(pa.string()),
        )
        self._output.write(labelled)

    def write_stages(self, rejected: list[Rejected]) -> None:
        for part in rejected:
            self.write(part.table, part.stage, part.reasons)

    @property
    def opened(self) -> bool:
        return self._output is not None


def run_shard(shard: ShardPass, task: ShardTask) -> dict[str, Any]:
    """Read, transform and write one task; raise on any problem, leaving no file behind."""
    chain = shard.chain
    input_schema = shard.reader.schema(task)
    output_schema = chain.validate(input_schema, source=task.url)
    chain.setup()
    chain.start_task(TaskInfo(task.task_id))
    docs_read = unreadable = 0
    try:
        with ExitStack() as stack:
            output = stack.enter_context(shard.writer.open(task, output_schema))
            rejects = _Rejects(stack, shard, task, input_schema)

            def set_aside(rows: pa.Table, reasons: list[str]) -> None:
                nonlocal unreadable
                unreadable += rows.num_rows
                rejects.write(rows, INPUT_LABEL, reasons)

            for table in shard.reader.read(task, shard.limit, unreadable=set_aside):
                docs_read += table.num_rows
                kept, rejected = chain.apply(table)
                output.write(kept)
                rejects.write_stages(rejected)
            if not rejects.opened and rejects.url is not None:
                remove(rejects.url)  # an earlier attempt's rejects, under other decisions
    finally:
        stats = chain.finish_task()
    stats.unreadable = unreadable
    return {"stats": stats.to_dict(), "docs_read": docs_read + unreadable}
