"""The reader and writer contracts, and the unit of work: the shard task.

A task is one input file or a range of row groups of a large one, so that a single huge file
is spread over several workers. Each task writes exactly one output file named after it,
which is what makes resume exact: a task's output either exists whole or not at all.
"""

from __future__ import annotations

import posixpath
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from gristmill.core import columns
from gristmill.errors import ConfigError, InputError
from gristmill.io.filesystem import InputFile, expand_inputs

#: Receives the rows of a batch that cannot be read (the table, and a reason per row).
UnreadableRows = Callable[[pa.Table, list[str]], None]


@dataclass(frozen=True)
class ShardTask:
    """One unit of work: a file, or the row groups ``[first, stop)`` of a file."""

    url: str
    relative: str
    row_groups: tuple[int, int] | None = None
    first_row: int = 0
    format: str = "parquet"

    @property
    def task_id(self) -> str:
        """Stable name of the task: the output file name without its suffix."""
        stem = strip_data_suffix(self.relative)
        if self.row_groups is not None:
            first, stop = self.row_groups
            stem = f"{stem}.rg{first:05d}-{stop:05d}"
        return stem

    def output_name(self, suffix: str = ".parquet") -> str:
        return posixpath.normpath(self.task_id) + suffix


#: File name endings of each input format; also stripped from input names to name outputs.
FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "parquet": (".parquet",),
    "jsonl": (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json"),
}


def format_of(path: str) -> str | None:
    """The input format a file name says, or None for a file no reader handles."""
    for name, suffixes in FORMAT_SUFFIXES.items():
        if path.endswith(suffixes):
            return name
    return None


def strip_data_suffix(name: str) -> str:
    for suffixes in FORMAT_SUFFIXES.values():
        for suffix in suffixes:
            if name.endswith(suffix):
                return name[: -len(suffix)]
    return name


def check_unique_tasks(tasks: Sequence[ShardTask]) -> None:
    """Two inputs that would write the same output (``a.parquet`` and ``a.jsonl``) are refused."""
    seen: dict[str, str] = {}
    for task in tasks:
        other = seen.setdefault(task.task_id, task.url)
        if other != task.url:
            raise ConfigError(
                f"inputs {other!r} and {task.url!r} would both write {task.task_id!r}; "
                "rename one of them"
            )


class Reader(ABC):
    """Plans shard tasks over its inputs and streams each task as Arrow tables.

    ``columns`` restricts what is read (id and text always come along); ``id_column`` and
    ``text_column`` name the user's columns that become ``id`` and ``text``.
    """

    #: The format this reader reads, and the file endings it recognises in a directory.
    format: ClassVar[str] = ""
    suffixes: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        paths: str | Sequence[str],
        *,
        columns: Sequence[str] | None = None,
        batch_size: int = 2048,
        id_column: str = columns.ID,
        text_column: str = columns.TEXT,
    ) -> None:
        self.paths = [paths] if isinstance(paths, str) else list(paths)
        self.columns = list(columns) if columns is not None else None
        self.batch_size = batch_size
        self.id_column = id_column
        self.text_column = text_column

    def wanted_columns(self, projection: Sequence[str] | None = None) -> set[str] | None:
        """The input columns to read (under the user's names), or None for all of them.

        ``projection`` (our names) narrows the reader's own ``columns`` for one read.
        """
        renames = {columns.ID: self.id_column, columns.TEXT: self.text_column}
        wanted: set[str] | None = None
        if self.columns is not None:
            wanted = {self.id_column, self.text_column, *self.columns}
        if projection is not None:
            narrowed = {renames.get(name, name) for name in projection}
            wanted = narrowed if wanted is None else wanted & narrowed
        return wanted

    def plan(self) -> list[ShardTask]:
        """Every task over the inputs, in a stable order."""
        tasks = [
            task
            for file in expand_inputs(self.paths, self.suffixes)
            for task in self.plan_file(file)
        ]
        check_unique_tasks(tasks)
        return tasks

    @abstractmethod
    def plan_file(self, file: InputFile) -> list[ShardTask]:
        """The tasks of one input file."""

    @abstractmethod
    def schema(self, task: ShardTask) -> pa.Schema:
        """The schema of the tables ``read`` yields for this task (before any stage).

        Opens the file (a Parquet footer, a JSONL file's first lines): an unreadable file
        raises ``InputError`` here, which is what ``gristmill validate`` relies on.
        """

    @abstractmethod
    def read(
        self,
        task: ShardTask,
        limit: int | None = None,
        *,
        columns: Sequence[str] | None = None,
        unreadable: UnreadableRows | None = None,
    ) -> Iterator[pa.Table]:
        """Stream the task's documents as tables of at most ``batch_size`` rows.

        ``columns`` reads only those columns (a projection). Rows that cannot be read
        (invalid UTF-8, malformed JSON, a value of the wrong type) go to ``unreadable`` with
        their position and the reason, and the rest of the file goes on; without it, the
        first such row raises ``InputError`` naming the file and the row.
        """


class TaskOutput(ABC):
    """One task's output file, written under a temporary name; ``commit`` renames it into
    place, ``abort`` (or an exception inside ``with``) leaves nothing behind."""

    rows_written: int = 0

    @abstractmethod
    def write(self, table: pa.Table) -> None: ...

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def abort(self) -> None: ...

    def __enter__(self) -> TaskOutput:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


class Writer(ABC):
    """Writes one file per task into ``path``, named after the task, atomically."""

    format: ClassVar[str] = ""

    def __init__(self, path: str) -> None:
        self.path = path.rstrip("/")

    @property
    @abstractmethod
    def suffix(self) -> str:
        """The file ending of what this writer writes."""

    def output_url(self, task: ShardTask) -> str:
        return posixpath.join(self.path, task.output_name(self.suffix))

    @abstractmethod
    def open(self, task: ShardTask, schema: pa.Schema) -> TaskOutput:
        """Start the task's output file, of this schema."""


def check_text_column(url: str, schema: pa.Schema) -> None:
    """Fail early, naming the file, when the documents have no text to work on."""
    if columns.TEXT not in schema.names:
        raise InputError(
            url, f"no '{columns.TEXT}' column (columns: {', '.join(schema.names) or 'none'})"
        )
    text_type = schema.field(columns.TEXT).type
    if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
        raise InputError(url, f"column '{columns.TEXT}' is {text_type}, not a string")


def generated_ids(relative: str, first_row: int, count: int) -> pa.Array:
    """Ids for inputs that have none: the file's name and the row number, stable on rerun."""
    return pa.array([f"{relative}#{first_row + i}" for i in range(count)], pa.string())


def normalise_columns(
    table: pa.Table, *, relative: str, first_row: int, id_column: str, text_column: str
) -> pa.Table:
    """Rename the user's id/text columns to ours and add ids where the input has none."""
    names = list(table.column_names)
    renames = {id_column: columns.ID, text_column: columns.TEXT}
    if any(old != new and old in names for old, new in renames.items()):
        table = table.rename_columns([renames.get(n, n) if n in renames else n for n in names])
    if columns.ID not in table.column_names:
        ids = generated_ids(relative, first_row, table.num_rows)
        table = table.add_column(0, columns.ID, ids)
    elif not pa.types.is_string(table.schema.field(columns.ID).type):
        position = table.column_names.index(columns.ID)
        table = table.set_column(position, columns.ID, table.column(columns.ID).cast(pa.string()))
    return table


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def split_invalid_utf8(table: pa.Table, first_row: int) -> tuple[pa.Table, pa.Table, list[str]]:
    """Separate the rows holding invalid UTF-8 in any string column from the rest.

    Arrow's readers do not check UTF-8, and one bad string breaks whatever later converts the
    column (polars, Python strings), so it is checked here, once, on the whole batch; only a
    batch that fails is looked at row by row. The bad rows come back with their bad strings
    decoded leniently (U+FFFD), so that they can be written to the rejects.
    """
    try:
        table.validate(full=True)
        return table, table.slice(0, 0), []
    except pa.ArrowInvalid as error:
        problem = error
    bad = [False] * table.num_rows
    problems: list[list[str]] = [[] for _ in range(table.num_rows)]
    repaired: dict[str, pa.Array] = {}
    for field in table.schema:
        if not _is_text(field.type):
            continue
        values = table.column(field.name).cast(pa.large_binary()).to_pylist()
        fixed: list[str | None] = []
        changed = False
        for row, value in enumerate(values):
            if value is None:
                fixed.append(None)
                continue
            try:
                fixed.append(value.decode("utf-8"))
            except UnicodeDecodeError as error:
                bad[row] = True
                changed = True
                problems[row].append(f"'{field.name}' (byte {error.start})")
                fixed.append(value.decode("utf-8", "replace"))
        if changed:
            repaired[field.name] = pa.array(fixed, field.type)
    if not any(bad):
        raise problem  # not a top-level string: nothing to set aside row by row
    mask = pa.array(bad, pa.bool_())
    good = table.filter(pc.invert(mask))
    rejected = table
    for name, array in repaired.items():
        rejected = rejected.set_column(rejected.column_names.index(name), name, array)
    rejected = rejected.filter(mask)
    reasons = [
        f"unreadable row {first_row + row}: invalid UTF-8 in {', '.join(problems[row])}"
        for row in range(table.num_rows)
        if bad[row]
    ]
    return good, rejected, reasons


def deliver_unreadable(
    url: str, rows: pa.Table, reasons: list[str], unreadable: UnreadableRows | None
) -> None:
    """Hand unreadable rows on, or fail naming the file and the first of them."""
    if not reasons:
        return
    if unreadable is None:
        raise InputError(url, reasons[0])
    unreadable(rows, reasons)


def unreadable_inputs(reader: Reader, tasks: Sequence[ShardTask]) -> list[str]:
    """Open every input file once (its schema: a Parquet footer, a JSONL file's first lines)
    and describe each that cannot be read."""
    problems = []
    seen: set[str] = set()
    for task in tasks:
        if task.url in seen:
            continue
        seen.add(task.url)
        try:
            reader.schema(task)
        except InputError as error:
            problems.append(str(error))
    return problems
