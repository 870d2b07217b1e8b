"""Running a stage's corpus-wide phase (``core.phase``) as steps of the run driver.

```
_run/phases/LABEL/map/TASK.parquet         each task's keyed rows, sorted by KEY
_run/phases/LABEL/reduce/part-NNNNN.parquet  small reduce outputs, read by finish
_run/phases/LABEL/results/part-NNNNN.parquet per-document reduce outputs, sorted by TASK, ROW
_run/phases/LABEL/decision.json             the decision, with the fingerprint it was made under
```

The map of a task sorts its rows by key and writes them in row groups, so a reduce task reads
from each map file only the row groups that overlap its key range (Parquet statistics), and
nothing else. The number of key ranges follows from the map's row counts and the phase's
``reduce_rows``. Per-document results are sorted by task, so a task's rows are read back the
same way, from the row groups that hold its number.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.core.phase import KEY, ROW, TASK, CorpusPhase, Finished, TaskInfo, task_number
from gristmill.io.base import Reader, ShardTask
from gristmill.io.filesystem import (
    atomic_output,
    exists,
    filesystem,
    join,
    read_json,
    remove,
    write_json_atomically,
)
from gristmill.io.parquet import open_parquet
from gristmill.runs.layout import OutputLayout
from gristmill.runs.steps import Step, Unit

ROW_GROUP_ROWS = 65_536
KEY_SPACE = 1 << 64


def _write_sorted(url: str, table: pa.Table) -> None:
    with atomic_output(url) as handle:
        pq.write_table(table, handle, row_group_size=ROW_GROUP_ROWS, compression="zstd")


def _key_bounds(column: pa.ChunkedArray | pa.Array) -> tuple[int, int]:
    bounds = pc.min_max(column)
    return int(bounds["min"].as_py()), int(bounds["max"].as_py())


# -- map ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhaseMap:
    """A map step's shared object: the phase and where its input comes from."""

    phase: CorpusPhase
    reader: Reader
    limit: int | None
    directory: str


def _ignore(_rows: pa.Table, _reasons: list[str]) -> None:
    """Unreadable input rows go to the rejects in the pass that reads them for output."""


def _numbered(
    reader: Reader, task: ShardTask, limit: int | None, columns: tuple[str, ...]
) -> Iterator[tuple[int, pa.Table]]:
    first = 0
    for table in reader.read(task, limit, columns=list(columns) or None, unreadable=_ignore):
        yield first, table
        first += table.num_rows


def map_task(shared: PhaseMap, task: ShardTask) -> dict[str, Any]:
    """One task's keyed rows, tagged with the task, sorted by key, written atomically."""
    phase = shared.phase
    parts = [
        t
        for t in phase.map(_numbered(shared.reader, task, shared.limit, phase.columns))
        if t.num_rows
    ]
    url = join(shared.directory, "map", task.output_name())
    if not parts:
        return {"rows": 0, "url": None}
    table = pa.concat_tables(parts, promote_options="permissive")
    if KEY not in table.column_names:
        raise ValueError(f"the map of phase {type(phase).__name__} gave no {KEY!r} column")
    table = table.set_column(
        table.column_names.index(KEY), KEY, table.column(KEY).cast(pa.uint64())
    )
    number = pa.repeat(pa.scalar(task_number(task.task_id), pa.uint64()), table.num_rows)
    table = table.append_column(TASK, number).sort_by(KEY)
    _write_sorted(url, table)
    return {"rows": table.num_rows, "url": url}


# -- reduce ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyRange:
    """Keys ``[low, high)`` of one reduce task."""

    index: int
    low: int
    high: int


def key_ranges(rows: int, reduce_rows: int) -> list[KeyRange]:
    """Equal ranges of the 64-bit key space, enough that each holds about ``reduce_rows``."""
    count = max(1, math.ceil(rows / max(reduce_rows, 1)))
    edges = [i * KEY_SPACE // count for i in range(count)] + [KEY_SPACE]
    return [KeyRange(i, edges[i], edges[i + 1]) for i in range(count)]


@dataclass(frozen=True)
class PhaseReduce:
    """A reduce step's shared object: the phase, the map outputs it reads, where it writes."""

    phase: CorpusPhase
    map_files: tuple[str, ...]
    directory: str


def _rows_in_range(url: str, low: int, high: int) -> pa.Table | None:
    """The rows of a key-sorted file with ``low <= KEY < high``, reading overlapping groups."""
    parquet = open_parquet(url)
    position = parquet.schema_arrow.get_field_index(KEY)
    groups = []
    for index in range(parquet.metadata.num_row_groups):
        stats = parquet.metadata.row_group(index).column(position).statistics
        if stats is None or not stats.has_min_max or (stats.max >= low and stats.min < high):
            groups.append(index)
    if not groups:
        return None
    table = parquet.read_row_groups(groups)
    keys = table.column(KEY)
    inside = pc.greater_equal(keys, pa.scalar(low, pa.uint64()))
    if high < KEY_SPACE:
        inside = pc.and_(inside, pc.less(keys, pa.scalar(high, pa.uint64())))
    return table.filter(inside)


def reduce_task(shared: PhaseReduce, key_range: KeyRange) -> dict[str, Any]:
    """Every task's rows of one key range → the phase's reduce → results or small outputs."""
    parts = [
        t
        for url in shared.map_files
        if (t := _rows_in_range(url, key_range.low, key_range.high)) is not None
    ]
    parts = [t for t in parts if t.num_rows]
    if not parts:
        return {"rows_in": 0, "rows_out": 0, "per_document": False}
    rows = pa.concat_tables(parts, promote_options="permissive")
    out = shared.phase.reduce(rows)
    name = f"part-{key_range.index:05d}.parquet"
    if out is None or out.num_rows == 0:
        return {"rows_in": rows.num_rows, "rows_out": 0, "per_document": False}
    per_document = TASK in out.column_names and ROW in out.column_names
    if per_document:
        out = out.sort_by([(TASK, "ascending"), (ROW, "ascending")])
    _write_sorted(join(shared.directory, "results" if per_document else "reduce", name), out)
    return {"rows_in": rows.num_rows, "rows_out": out.num_rows, "per_document": per_document}


# -- finish ----------------------------------------------------------------------------------------
FINISH_FILE = "finish.parquet"


def _ignore_unreadable(_rows: pa.Table, _reasons: list[str]) -> None:
    """Rows that cannot be read are not part of the phase's input."""


@dataclass(frozen=True)
class PhaseSource:
    """The phase's input (what its map read), for a finish that reads documents again."""

    reader: Reader
    tasks: tuple[ShardTask, ...]
    limit: int | None

    def read(self, task: int, rows: np.ndarray, columns: Sequence[str]) -> pa.Table:
        found = [t for t in self.tasks if task_number(t.task_id) == task]
        if not found:
            raise KeyError(f"no task numbered {task} in this phase's input")
        wanted = np.asarray(rows, dtype=np.int64)
        parts, first = [], 0
        for table in self.reader.read(
            found[0], self.limit, columns=list(columns), unreadable=_ignore_unreadable
        ):
            inside = wanted[(wanted >= first) & (wanted < first + table.num_rows)] - first
            if inside.size:
                parts.append(table.select(list(columns)).take(pa.array(inside)))
            first += table.num_rows
        if not parts:
            return pa.table({name: pa.array([], pa.string()) for name in columns})
        return pa.concat_tables(parts, promote_options="permissive")


@dataclass(frozen=True)
class PhaseFinish:
    """The finish step's shared object: the phase, its small reduce outputs, its input."""

    phase: CorpusPhase
    small: tuple[str, ...]
    directory: str
    label: str
    source: PhaseSource


def finish_task(shared: PhaseFinish, _payload: Any) -> dict[str, Any]:
    """Make the decision (and per-document rows, if the phase gives any); save the decision."""
    finished = shared.phase.finish(
        (open_parquet(url).read() for url in shared.small), shared.source
    )
    rows: pa.Table | None = None
    decision = finished
    if isinstance(finished, Finished):
        decision, rows = finished.decision, finished.rows
    json.dumps(decision)  # a decision must be JSON: fail here, not in run.json
    url = join(shared.directory, "results", FINISH_FILE)
    remove(url)
    count = 0
    if rows is not None and rows.num_rows:
        if TASK not in rows.column_names or ROW not in rows.column_names:
            raise ValueError(f"{shared.label}: per-document rows of a finish need {TASK} and {ROW}")
        rows = rows.sort_by([(TASK, "ascending"), (ROW, "ascending")])
        _write_sorted(url, rows)
        count = rows.num_rows
    write_json_atomically(
        join(shared.directory, "decision.json"), {"stage": shared.label, "decision": decision}
    )
    return {"decision": decision, "rows": count}


# -- the result a stage reads --------------------------------------------------------------------
@dataclass
class StoredPhaseResult:
    """A finished phase: its decision, and its per-document rows read back by task."""

    decision: dict[str, Any]
    results: tuple[str, ...] = ()
    _index: list[tuple[str, list[tuple[int, int, int]]]] | None = field(
        default=None, repr=False, compare=False
    )

    def __getstate__(self) -> dict[str, Any]:
        return {"decision": self.decision, "results": self.results, "_index": None}

    def _groups(self) -> list[tuple[str, list[tuple[int, int, int]]]]:
        """Per results file: (row group, lowest task, highest task), read once per process."""
        if self._index is None:
            index = []
            for url in self.results:
                metadata = open_parquet(url).metadata
                position = metadata.schema.to_arrow_schema().get_field_index(TASK)
                groups = []
                for group in range(metadata.num_row_groups):
                    stats = metadata.row_group(group).column(position).statistics
                    if stats is None or not stats.has_min_max:
                        groups.append((group, 0, KEY_SPACE))
                    else:
                        groups.append((group, int(stats.min), int(stats.max)))
                index.append((url, groups))
            self._index = index
        return self._index

    def rows_for(self, task: TaskInfo) -> pa.Table:
        number = task.number
        parts = []
        for url, groups in self._groups():
            wanted = [g for g, low, high in groups if low <= number <= high]
            if wanted:
                table = open_parquet(url).read_row_groups(wanted)
                parts.append(
                    table.filter(pc.equal(table.column(TASK), pa.scalar(number, pa.uint64())))
                )
        if not parts:
            return pa.table({TASK: pa.array([], pa.uint64()), ROW: pa.array([], pa.int64())})
        rows = pa.concat_tables(parts, promote_options="permissive")
        return rows.sort_by(ROW)


# -- the steps -----------------------------------------------------------------------------------
def digest(*parts: Any) -> str:
    payload = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class PhaseRun:
    """The steps of one stage's phase in one run, and what they found."""

    label: str
    phase: CorpusPhase
    layout: OutputLayout
    base: str

    @property
    def directory(self) -> str:
        return self.layout.phase_dir(self.label)

    @property
    def decision_path(self) -> str:
        return join(self.directory, "decision.json")

    def map_step(self, reader: Reader, tasks: list[ShardTask], limit: int | None) -> Step:
        shared = PhaseMap(self.phase, reader, limit, self.directory)
        return Step(
            key=f"{self.label}.map",
            title=f"{self.label}: map",
            fingerprint=digest(self.base, "map", self.label),
            units=[Unit(t.task_id, t.url, t) for t in tasks],
            work=map_task,
            shared=shared,
            still_valid=lambda unit: self._map_output_kept(unit),
        )

    def _map_output_kept(self, unit: Unit) -> bool:
        url = join(self.directory, "map", unit.payload.output_name())
        fs, path = filesystem(url)
        return bool(fs.exists(path)) or not self._had_rows(unit)

    def _had_rows(self, unit: Unit) -> bool:
        marker = read_json(self.layout.marker_path(f"{self.label}.map", unit.key)) or {}
        return bool(marker.get("value", {}).get("rows"))

    def reduce_step(self, map_fingerprint: str, maps: dict[str, dict[str, Any]]) -> Step:
        """Over the map outputs of the tasks whose map completed (``maps``: key → value)."""
        files = tuple(sorted(v["url"] for v in maps.values() if v.get("url")))
        rows = sum(int(v.get("rows", 0)) for v in maps.values())
        ranges = key_ranges(rows, self.phase.reduce_rows)
        fingerprint = digest(map_fingerprint, "reduce", sorted(maps), len(ranges))
        return Step(
            key=f"{self.label}.reduce",
            title=f"{self.label}: reduce",
            fingerprint=fingerprint,
            units=[Unit(f"part-{r.index:05d}", self.label, r) for r in ranges],
            work=reduce_task,
            shared=PhaseReduce(self.phase, files, self.directory),
            still_valid=lambda unit: self._reduce_output_kept(unit, fingerprint),
            before_run=self._remove_outputs,
        )

    def _output(self, unit_key: str, value: dict[str, Any]) -> str | None:
        if not value.get("rows_out"):
            return None
        folder = "results" if value.get("per_document") else "reduce"
        return join(self.directory, folder, f"{unit_key}.parquet")

    def _reduce_output_kept(self, unit: Unit, fingerprint: str) -> bool:
        value = self.layout.completed(f"{self.label}.reduce", unit.key, fingerprint) or {}
        url = self._output(unit.key, value)
        return url is None or bool(filesystem(url)[0].exists(filesystem(url)[1]))

    def _remove_outputs(self, units: list[Unit]) -> None:
        """Before reduce units run (again): nothing of an earlier attempt may linger."""
        for unit in units:
            for folder in ("reduce", "results"):
                remove(join(self.directory, folder, f"{unit.key}.parquet"))

    def finish_step(
        self,
        reduce_fingerprint: str,
        reduced: dict[str, dict[str, Any]],
        source: PhaseSource,
    ) -> Step:
        """One unit that makes the decision from the reduce outputs (``reduced``: unit key →
        value); it runs on a worker, since a finish may hold a lot (every candidate pair)."""
        outputs = {key: self._output(key, value) for key, value in sorted(reduced.items())}
        small = tuple(
            url for key, url in outputs.items() if url and not reduced[key]["per_document"]
        )
        shared = PhaseFinish(self.phase, small, self.directory, self.label, source)
        fingerprint = digest(reduce_fingerprint, "finish")
        return Step(
            key=f"{self.label}.finish",
            title=f"{self.label}: finish",
            fingerprint=fingerprint,
            units=[Unit("decision", self.label, None)],
            work=finish_task,
            shared=shared,
            still_valid=lambda _unit: self._finish_output_kept(fingerprint),
        )

    def _finish_output_kept(self, fingerprint: str) -> bool:
        value = self.layout.completed(f"{self.label}.finish", "decision", fingerprint) or {}
        return not value.get("rows") or exists(join(self.directory, "results", FINISH_FILE))

    def result(
        self, reduced: dict[str, dict[str, Any]], finished: dict[str, Any]
    ) -> StoredPhaseResult:
        """What the stage gets: the decision, and every per-document output to read back."""
        outputs = {key: self._output(key, value) for key, value in sorted(reduced.items())}
        results = [url for key, url in outputs.items() if url and reduced[key]["per_document"]]
        if finished.get("rows"):
            results.append(join(self.directory, "results", FINISH_FILE))
        return StoredPhaseResult(finished["decision"], tuple(results))

    def saved_decision(self) -> dict[str, Any] | None:
        saved = read_json(self.decision_path)
        return saved["decision"] if isinstance(saved, dict) and "decision" in saved else None

    def remove_data(self) -> None:
        """Drop the map, reduce and results files once the run is whole; keep the decision."""
        for folder in ("map", "reduce", "results"):
            remove(join(self.directory, folder))
