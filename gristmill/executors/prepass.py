"""Two-pass runs: stages that need whole-run statistics before they can process (barriers).

A percentile cut needs the score distribution of the whole run, but the scores come from
earlier stages (a quality scorer, say). Design: the pipeline is cut into segments at each
barrier stage (``Stage.needs_run_statistics``):

1. segment 1 (the stages before the first barrier) runs over every task like any run, but
   writes to ``OUTPUT/_run/segments/01/`` with its own completion markers (resume works per
   segment; its rejects go to ``OUTPUT/_rejects/segment-01/``);
2. the barrier's summary is computed with the executor's own parallelism (``map_tasks``),
   reading only the columns the barrier requires from segment 1's output, merged, applied
   to the stage, and saved in ``OUTPUT/_run/statistics/NN_<stage>.json``;
3. segment 2 (the barrier and the stages up to the next barrier) runs from segment 1's
   output; the last segment writes ``OUTPUT`` itself.

When the barrier is the first stage there is nothing to materialise: the statistics are read
from the input. Why segments rather than running the prefix twice: the prefix is usually the
expensive part (scorers, LMs), and running it twice doubles that cost and needs it to be
deterministic, while a segment costs one extra copy of the data on disk, removed when the
run completes. The fingerprint of each segment's markers includes the decisions (the cuts)
it depends on, so a crash anywhere resumes to the same output: completed segment tasks are
skipped, statistics are recomputed from complete segment outputs only (deterministically:
the summaries merge order-independently), and final markers written under a different cut
do not count.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from gristmill.core.pipeline import Pipeline
from gristmill.core.stage import Stage
from gristmill.core.stats import PipelineStats
from gristmill.errors import ConfigError, GristmillError
from gristmill.executors.base import RunReport, TaskFailure, TaskResult
from gristmill.executors.layout import OutputLayout
from gristmill.executors.run import PreparedRun, check_previous_run, validate_before_run
from gristmill.io.base import Reader, ShardTask
from gristmill.io.filesystem import filesystem, join, write_bytes_atomically
from gristmill.io.parquet import ParquetReader, ParquetWriter, open_parquet

if TYPE_CHECKING:
    from gristmill.executors.run import Executor


def has_barrier(pipeline: Pipeline) -> bool:
    return any(stage.needs_run_statistics for stage in pipeline.stages)


@dataclass(frozen=True)
class Segment:
    """Stages ``[start, stop)``; the first one is a barrier, except maybe in segment 1."""

    index: int
    start: int
    stop: int
    barrier: bool


def split_segments(stages: list[Stage]) -> list[Segment]:
    cuts = sorted({0, len(stages), *(i for i, s in enumerate(stages) if s.needs_run_statistics)})
    return [
        Segment(n, start, stop, stages[start].needs_run_statistics)
        for n, (start, stop) in enumerate(itertools.pairwise(cuts), start=1)
    ]


@dataclass(frozen=True)
class SegmentLayout(OutputLayout):
    """An intermediate segment's layout: its rejects go beside the run's, not under _run/."""

    rejects_root: str = ""

    @property
    def rejects(self) -> str:
        return self.rejects_root


@dataclass
class Source:
    """What a segment reads: the run's input (with ``--limit``) or the previous segment's output."""

    reader: Reader
    tasks: list[ShardTask]
    limit: int | None


# -- the statistics pass (runs on workers) -----------------------------------------------------
def read_columns(
    reader: Reader, task: ShardTask, names: tuple[str, ...], limit: int | None
) -> Iterator[pa.Table]:
    """Only the named columns of a task: a Parquet input is read by column projection."""
    if not isinstance(reader, ParquetReader):
        for table in reader.read(task, limit):
            yield table.select([n for n in names if n in table.column_names])
        return
    parquet = open_parquet(task.url)
    renames = {reader.id_column: "id", reader.text_column: "text"}
    stored = {renames.get(n, n): n for n in parquet.schema_arrow.names}
    wanted = [stored[n] for n in names if n in stored]
    groups = None if task.row_groups is None else list(range(*task.row_groups))
    remaining = limit
    for batch in parquet.iter_batches(
        batch_size=reader.batch_size, row_groups=groups, columns=wanted
    ):
        table = pa.Table.from_batches([batch])
        if remaining is not None:
            table = table.slice(0, remaining)
            remaining -= table.num_rows
        yield table.rename_columns([renames.get(n, n) for n in table.column_names])
        if remaining is not None and remaining <= 0:
            return


def observe_task(stage: Stage, reader: Reader, limit: int | None, task: ShardTask) -> Any:
    """The merged summary of one task's batches, as the barrier stage would see them."""
    summaries = [
        stage.observe(table) for table in read_columns(reader, task, stage.requires, limit)
    ]
    return stage.merge_observations(summaries)


# -- fingerprints and saved decisions ----------------------------------------------------------
def segment_fingerprint(base: str, segment: int, decisions: dict[str, Any]) -> str:
    payload = json.dumps({"run": base, "segment": segment, "decisions": decisions}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def statistics_path(layout: OutputLayout, label: str) -> str:
    return join(layout.run_dir, "statistics", f"{label}.json")


def _read_json(url: str) -> Any:
    fs, path = filesystem(url)
    if not fs.exists(path):
        return None
    with fs.open(path, "rb") as handle:
        return json.loads(handle.read())


def _exists(url: str) -> bool:
    fs, path = filesystem(url)
    return bool(fs.exists(path))


# -- the driver --------------------------------------------------------------------------------
class SegmentedRun:
    """One run of a pipeline with barriers, on any executor (see the module's docstring)."""

    def __init__(
        self, executor: Executor, pipeline: Pipeline, *, limit: int | None, overwrite: bool
    ) -> None:
        if pipeline.reader is None or pipeline.writer is None:
            raise ConfigError("the pipeline needs a reader and a writer to run")
        self.executor = executor
        self.pipeline = pipeline
        self.reader: Reader = pipeline.reader
        self.writer: ParquetWriter = pipeline.writer
        self.limit = limit
        self.layout = OutputLayout(self.writer.path)
        self.base = pipeline.fingerprint(limit=limit)
        self.segments = split_segments(pipeline.stages)
        self.labels = pipeline.stage_labels
        self.started = time.perf_counter()
        if overwrite:
            self.layout.clear()
        check_previous_run(self.layout, self.base)
        self.tasks = self.reader.plan()
        validate_before_run(pipeline, self.tasks)
        self.layout.remove_temporaries()
        self.layout.write_run(pipeline.spec(), self.base)
        self.decisions: dict[str, Any] = {}
        self.results: list[TaskResult] = []
        self.failures: list[TaskFailure] = []
        self.docs_read = 0
        #: Per segment: its layout and fingerprint, once known.
        self.done: list[tuple[Segment, OutputLayout, str, list[ShardTask]]] = []

    @property
    def segments_root(self) -> str:
        return join(self.layout.run_dir, "segments")

    def segment_layout(self, segment: Segment) -> OutputLayout:
        if segment.index == len(self.segments):
            return self.layout
        return SegmentLayout(
            join(self.segments_root, f"{segment.index:02d}"),
            rejects_root=join(self.layout.rejects, f"segment-{segment.index:02d}"),
        )

    def barrier_label(self, segment: Segment) -> str:
        return self.labels[segment.start]

    def fingerprint_of(self, segment: Segment, decisions: dict[str, Any]) -> str:
        """A segment's output depends on its own barrier's decision and on those before it."""
        relevant = {
            self.barrier_label(s): decisions[self.barrier_label(s)]
            for s in self.segments[: segment.index]
            if s.barrier
        }
        return segment_fingerprint(self.base, segment.index, relevant)

    # -- fast path: a complete output under the saved decisions ----------------------------
    def saved_decisions(self) -> dict[str, Any] | None:
        decisions = {}
        for segment in self.segments:
            if not segment.barrier:
                continue
            label = self.barrier_label(segment)
            saved = _read_json(statistics_path(self.layout, label))
            if not isinstance(saved, dict) or "decision" not in saved:
                return None
            decisions[label] = saved["decision"]
        return decisions

    def already_complete(self) -> bool:
        decisions = self.saved_decisions()
        if decisions is None:
            return False
        final = self.fingerprint_of(self.segments[-1], decisions)
        if any(self.layout.completed_stats(t, final) is None for t in self.tasks):
            return False
        self.decisions = decisions
        tasks = self.tasks
        for segment in self.segments:
            layout = self.segment_layout(segment)
            fingerprint = self.fingerprint_of(segment, decisions)
            self.done.append((segment, layout, fingerprint, tasks))
            tasks = self.next_tasks(layout, tasks)
        return True

    def segment_writer(self, segment: Segment, layout: OutputLayout) -> ParquetWriter:
        if segment.index == len(self.segments):
            return self.writer
        return ParquetWriter(
            layout.root,
            compression=self.writer.compression,
            row_group_rows=self.writer.row_group_rows,
            row_group_mb=self.writer.row_group_mb,
        )

    @staticmethod
    def next_tasks(layout: OutputLayout, tasks: list[ShardTask]) -> list[ShardTask]:
        """The tasks reading a segment's output: same ids, so outputs keep their names."""
        return [ShardTask(join(layout.root, t.output_name()), t.output_name()) for t in tasks]

    # -- the passes ------------------------------------------------------------------------
    def run(self) -> RunReport:
        if self.already_complete():
            return self.finish()
        source = Source(self.reader, self.tasks, self.limit)
        for segment in self.segments:
            if segment.barrier and not self.compute_statistics(segment, source):
                break
            source_next = self.run_segment(segment, source)
            if source_next is None:
                break
            source = source_next
        return self.finish()

    def compute_statistics(self, segment: Segment, source: Source) -> bool:
        stage = self.pipeline.stages[segment.start]
        label = self.barrier_label(segment)
        observe = functools.partial(observe_task, stage, source.reader, source.limit)
        try:
            summaries = self.executor.map_tasks(observe, source.tasks)
            summary = stage.merge_observations(summaries)
            decision = stage.apply_run_statistics(summary)
        except Exception as error:  # noqa: BLE001 - reported like a failed task
            message = str(error) if isinstance(error, GristmillError) else repr(error)
            self.failures.append(
                TaskFailure(
                    f"statistics:{label}",
                    self.layout.root,
                    f"the whole-run statistics of stage {label} failed: {message}",
                )
            )
            return False
        self.decisions[label] = decision
        record = {"stage": label, "decision": decision, "summary": summary}
        write_bytes_atomically(
            statistics_path(self.layout, label), json.dumps(record, indent=1).encode()
        )
        return True

    def run_segment(self, segment: Segment, source: Source) -> Source | None:
        """Run one segment's pending tasks; the next segment's source, or None to stop."""
        last = segment.index == len(self.segments)
        layout = self.segment_layout(segment)
        writer = self.segment_writer(segment, layout)
        sub = Pipeline(
            self.pipeline.stages[segment.start : segment.stop],
            reader=source.reader,
            writer=writer,
            rejects=self.pipeline.rejects,
            name=f"{self.pipeline.name}[{segment.index}]",
        )
        fingerprint = self.fingerprint_of(segment, self.decisions)
        # An intermediate task counts as done only while its output is still there.
        pending = [
            task
            for task in source.tasks
            if layout.completed_stats(task, fingerprint) is None
            or not (last or _exists(writer.output_url(task)))
        ]
        prepared = PreparedRun(sub, layout, fingerprint, source.limit, source.tasks, pending)
        results = self.executor.execute_with_progress(prepared)
        self.results.extend(results)
        if segment.index == 1:
            self.docs_read += sum(r.docs_in for r in results)
        self.failures.extend(
            TaskFailure(r.task_id, r.url, r.error or "failed", r.details)
            for r in results
            if not r.ok
        )
        self.done.append((segment, layout, fingerprint, source.tasks))
        if last or any(not r.ok for r in results):
            # The next barrier's statistics need every task of this segment: stop here and
            # let a rerun resume once the failures are fixed.
            return None
        reader = ParquetReader([layout.root], batch_size=self.reader.batch_size)
        return Source(reader, self.next_tasks(layout, source.tasks), None)

    # -- the report ------------------------------------------------------------------------
    def task_stats(self, index: int) -> PipelineStats | None:
        """One task's stats over every segment, under the pipeline's own stage labels."""
        merged = PipelineStats(tasks=1)
        for segment, layout, fingerprint, tasks in self.done:
            stats = layout.completed_stats(tasks[index], fingerprint)
            if stats is None:
                return None
            labels = self.labels[segment.start : segment.stop]
            for (_local, stage_stats), label in zip(stats.stages.items(), labels, strict=False):
                merged.stages[label] = stage_stats
        return merged

    def finish(self) -> RunReport:
        finished = [self.task_stats(i) for i in range(len(self.tasks))]
        complete = len(self.done) == len(self.segments) and all(s is not None for s in finished)
        stats = PipelineStats.merged(s for s in finished if s is not None)
        self.layout.write_stats(stats)
        if complete and not self.failures:
            self.remove_segment_data()
        final = (
            self.fingerprint_of(self.segments[-1], self.decisions)
            if len(self.decisions) == sum(s.barrier for s in self.segments)
            else None
        )
        self.layout.write_run(
            {**self.pipeline.spec(), "run_statistics": self.decisions, "output_fingerprint": final},
            self.base,
        )
        self.layout.write_failures(
            [
                {"task": f.task_id, "input": f.url, "error": f.error, "details": f.details}
                for f in self.failures
            ]
        )
        ran = {r.task_id for r in self.results}
        return RunReport(
            output=self.layout.root,
            stats=stats,
            tasks_total=len(self.tasks),
            tasks_run=len(ran),
            tasks_skipped=len(self.tasks) - len(ran),
            failures=list(self.failures),
            docs_read=self.docs_read,
            seconds=time.perf_counter() - self.started,
        )

    def remove_segment_data(self) -> None:
        """Drop the intermediate copies once the output is complete; keep their markers."""
        fs, root = filesystem(self.segments_root)
        if not fs.exists(root):
            return
        for path in fs.find(root):
            if path.endswith(".parquet") and "/_run/" not in path[len(root) :]:
                fs.rm(path)


def run_in_segments(
    executor: Executor, pipeline: Pipeline, *, limit: int | None, overwrite: bool
) -> RunReport:
    return SegmentedRun(executor, pipeline, limit=limit, overwrite=overwrite).run()
