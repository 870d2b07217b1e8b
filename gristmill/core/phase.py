"""The corpus-wide phase contract: what a stage computes over the whole run before it decides.

Some decisions need every document of the run first: a percentile cut needs the whole score
distribution, dedup needs every document's hash, MeCo's cooldown split needs every document's
token count. A stage that needs such a decision returns a :class:`CorpusPhase` from
``Stage.corpus_phase()``, and the run driver runs it as a small MapReduce before the stage's
ordinary streaming pass:

1. **map**, one task per shard task: the stage's input, read with only ``columns``, becomes
   keyed rows: a ``KEY`` column (uint64) and any values; rows meant to come back to their
   document also carry ``ROW``, the document's position in its task. The driver adds
   ``TASK``, a stable number of the task (:func:`task_number`).
2. **reduce**, one task per range of keys: every task's rows whose key falls in the range, in
   one table. The driver sizes the ranges so that no reduce task holds more than
   ``reduce_rows`` rows, so no process ever holds the whole corpus's keys. A reduce output
   that keeps ``TASK`` and ``ROW`` is per-document and is routed back to its task; any other
   output is small and goes to ``finish``.
3. **finish**, once (one unit on a worker): the small reduce outputs → the *decision*, a
   JSON mapping that is saved, reported, and part of the fingerprint of everything computed
   after it; and, where the answer for a document needs the whole run at once (clusters of
   near duplicates joined across key ranges), per-document rows of its own (``Finished``).
   ``inputs`` reads documents of the phase's input back by task and row, for a finish that
   must look at a few of them again (verifying candidate pairs, say).

The stage then gets a :class:`PhaseResult` (``Stage.use_phase_result``) before its streaming
pass, and in that pass reads its own documents' rows with ``PhaseResult.rows_for(task)``: the
driver runs the stage first in its pass, so it sees each task's rows in their stored order and
a :class:`RowCursor` can follow them batch by batch.

Every step's outputs are atomic and marked complete, so a run killed in any step resumes at
that step; a task that fails is left out of the reduce, and the report says so.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: The key a map row is grouped by; reduce tasks receive contiguous ranges of it.
KEY = "_key"
#: The task a row comes from (:func:`task_number`), added by the driver.
TASK = "_task"
#: A document's position in its task (0-based, in the order the task's rows are stored).
ROW = "_row"

#: Keyed rows one reduce task may hold, unless a phase says otherwise.
DEFAULT_REDUCE_ROWS = 4_000_000


def task_number(task_key: str) -> int:
    """A stable 63-bit number for a task, the same in every run and on every worker.

    A number, not the task's position in the plan, so that map outputs stay valid when files
    are added to or removed from a run's inputs.
    """
    digest = hashlib.blake2b(task_key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@dataclass(frozen=True)
class TaskInfo:
    """Which task a stage is working on: its key (the task id) and its stable number."""

    key: str

    @property
    def number(self) -> int:
        return task_number(self.key)


class CorpusPhase(ABC):
    """A MapReduce over the whole run that a stage needs before it can decide any document."""

    #: Columns of the stage's input the map reads (a projection: nothing else is read).
    columns: tuple[str, ...] = ()
    #: The most keyed rows one reduce task should hold; the driver splits the keys to fit.
    reduce_rows: int = DEFAULT_REDUCE_ROWS
    #: False when the decision depends on no document (the map reads nothing, e.g. embedding
    #: a template bank): the phase then runs before the first pass and cuts none, so the
    #: stages before it do not pay for a copy of the data they have no reason to wait for.
    reads_documents: bool = True

    @abstractmethod
    def map(self, batches: Iterable[tuple[int, pa.Table]]) -> Iterator[pa.Table]:
        """Keyed rows for one task, from its ``(first_row, batch)`` pairs in order."""

    @abstractmethod
    def reduce(self, rows: pa.Table) -> pa.Table | None:
        """Every task's rows of one key range (any order); per-document results keep TASK and
        ROW, anything else must be small (``finish`` reads all of it in one process)."""

    @abstractmethod
    def finish(
        self, reduced: Iterator[pa.Table], inputs: PhaseInputs | None = None
    ) -> dict[str, Any] | Finished:
        """The decision (JSON-able), from every reduce output that is not per-document; or a
        ``Finished`` with per-document rows too."""


@dataclass
class Finished:
    """What a finish gives when it also decides per document: the decision, and rows with
    TASK and ROW that go back to their tasks like per-document reduce outputs."""

    decision: dict[str, Any]
    rows: pa.Table | None = None


class PhaseInputs(Protocol):
    """The phase's input, read back by task and row (for a finish that needs a few documents
    again)."""

    def read(self, task: int, rows: np.ndarray, columns: Sequence[str]) -> pa.Table:
        """The given rows (positions, ascending) of the task numbered ``task``, in order."""
        ...


class SummaryPhase(CorpusPhase):
    """A phase whose whole-run need is one small mergeable summary (a histogram, counts).

    Subclasses say how to summarise a batch, how to merge summaries (order-independently) and
    what to decide from the run's summary; the keyed machinery is this class's business.
    """

    SUMMARY = "summary"

    @abstractmethod
    def summarise(self, batch: pa.Table) -> dict[str, Any]:
        """A JSON-able summary of one batch of the stage's input."""

    @abstractmethod
    def merge(self, summaries: list[dict[str, Any]]) -> dict[str, Any]:
        """Fold summaries into one; the result must not depend on their order."""

    @abstractmethod
    def decide(self, summary: dict[str, Any]) -> dict[str, Any]:
        """The decision from the whole run's summary."""

    def _row(self, summary: dict[str, Any]) -> pa.Table:
        return pa.table(
            {
                KEY: pa.array([0], pa.uint64()),
                self.SUMMARY: pa.array([json.dumps(summary, sort_keys=True)], pa.large_string()),
            }
        )

    def _summaries(self, table: pa.Table) -> list[dict[str, Any]]:
        return [json.loads(text) for text in table.column(self.SUMMARY).to_pylist()]

    def map(self, batches: Iterable[tuple[int, pa.Table]]) -> Iterator[pa.Table]:
        yield self._row(self.merge([self.summarise(batch) for _first, batch in batches]))

    def reduce(self, rows: pa.Table) -> pa.Table | None:
        return self._row(self.merge(self._summaries(rows)))

    def finish(
        self, reduced: Iterator[pa.Table], inputs: PhaseInputs | None = None
    ) -> dict[str, Any]:
        return self.decide(self.merge([s for table in reduced for s in self._summaries(table)]))


class PhaseResult(Protocol):
    """What a finished phase hands its stage: the decision and the per-document rows."""

    @property
    def decision(self) -> dict[str, Any]: ...

    def rows_for(self, task: TaskInfo) -> pa.Table:
        """The per-document reduce rows of one task, sorted by ROW (empty when none)."""
        ...


class RowCursor:
    """Follows one task's per-document phase rows through its batches, by row position.

    ``take(n)`` gives the rows of the next ``n`` documents, with ROW made relative to the
    batch (0 is the batch's first row); documents without a row simply have none.
    """

    def __init__(self, rows: pa.Table) -> None:
        self._rows = rows
        self._positions = rows.column(ROW).to_numpy() if rows.num_rows else None
        self._next = 0
        self._index = 0

    def take(self, count: int) -> pa.Table:
        start, stop = self._next, self._next + count
        self._next = stop
        if self._positions is None:
            return self._rows.slice(0, 0)
        first = self._index
        last = int(np.searchsorted(self._positions, stop, side="left"))
        self._index = last
        part = self._rows.slice(first, last - first)
        relative = pc.subtract(part.column(ROW), pa.scalar(start, part.schema.field(ROW).type))
        return part.set_column(part.column_names.index(ROW), ROW, relative)


class MemoryInputs:
    """``PhaseInputs`` over tables in memory, taken as one task."""

    def __init__(self, task: TaskInfo, tables: list[pa.Table]) -> None:
        self._task = task
        self._tables = tables

    def read(self, task: int, rows: np.ndarray, columns: Sequence[str]) -> pa.Table:
        if task != self._task.number or not self._tables:
            raise KeyError(f"no task {task} in memory")
        whole = pa.concat_tables(self._tables, promote_options="permissive")
        return whole.select(list(columns)).take(pa.array(rows, pa.int64()))


class MemoryPhaseResult:
    """A phase's result computed in this process (see ``run_in_memory``)."""

    def __init__(self, decision: dict[str, Any], rows: pa.Table | None, task: TaskInfo) -> None:
        self.decision = decision
        self._rows = rows
        self._task = task

    def rows_for(self, task: TaskInfo) -> pa.Table:
        if self._rows is None or task.number != self._task.number:
            return pa.table({TASK: pa.array([], pa.uint64()), ROW: pa.array([], pa.int64())})
        return self._rows


def run_in_memory(
    phase: CorpusPhase, tables: Iterable[pa.Table], task: TaskInfo | None = None
) -> MemoryPhaseResult:
    """The whole phase in this process over ``tables``, taken as one task's batches in order.

    For small data, notebooks and tests; a run goes through the run driver instead, which
    splits the same work over tasks, key ranges and workers.
    """
    task = task or TaskInfo("memory")
    batches = list(tables)
    inputs = MemoryInputs(task, batches)

    def numbered() -> Iterator[tuple[int, pa.Table]]:
        first = 0
        for table in batches:
            yield first, table
            first += table.num_rows

    mapped = [t for t in phase.map(numbered()) if t.num_rows]
    if not mapped:
        return _memory_result(phase.finish(iter(()), inputs), None, task)
    keyed = pa.concat_tables(mapped, promote_options="permissive")
    keyed = keyed.append_column(
        TASK, pa.repeat(pa.scalar(task.number, pa.uint64()), keyed.num_rows)
    )
    reduced = phase.reduce(keyed.sort_by(KEY))
    rows = None
    small: list[pa.Table] = []
    if reduced is not None and reduced.num_rows:
        if TASK in reduced.column_names and ROW in reduced.column_names:
            rows = reduced.sort_by(ROW)
        else:
            small.append(reduced)
    return _memory_result(phase.finish(iter(small), inputs), rows, task)


def _memory_result(
    finished: dict[str, Any] | Finished, rows: pa.Table | None, task: TaskInfo
) -> MemoryPhaseResult:
    if isinstance(finished, Finished):
        parts = [t for t in (rows, finished.rows) if t is not None and t.num_rows]
        rows = pa.concat_tables(parts, promote_options="permissive").sort_by(ROW) if parts else None
        return MemoryPhaseResult(finished.decision, rows, task)
    return MemoryPhaseResult(finished, rows, task)
