"""The reader contract and the unit of work, the shard task.

A task is one input file or a range of row groups of a large one, so that a single huge file
is spread over several workers. Each task writes exactly one output file named after it,
which is what makes resume exact: a task's output either exists whole or not at all.
"""

from __future__ import annotations

import posixpath
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa

from gristmill.core import columns
from gristmill.errors import InputError

#: File name endings recognised as data, and stripped to name the outputs.
DATA_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json")


@dataclass(frozen=True)
class ShardTask:
    """One unit of work: a file, or the row groups ``[first, stop)`` of a file."""

    url: str
    relative: str
    row_groups: tuple[int, int] | None = None
    first_row: int = 0

    @property
    def task_id(self) -> str:
        """Stable name of the task: the output file name without its suffix."""
        stem = self.relative
        for suffix in DATA_SUFFIXES:
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        if self.row_groups is not None:
            first, stop = self.row_groups
            stem = f"{stem}.rg{first:05d}-{stop:05d}"
        return stem

    def output_name(self, suffix: str = ".parquet") -> str:
        return posixpath.normpath(self.task_id) + suffix


class Reader(ABC):
    """Plans shard tasks over its inputs and streams each task as Arrow tables.

    ``columns`` restricts what is read (id and text always come along); ``id_column`` and
    ``text_column`` name the user's columns that become ``id`` and ``text``.
    """

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

    def wanted_columns(self) -> set[str] | None:
        """The input columns to read, or None for all of them."""
        if self.columns is None:
            return None
        return {self.id_column, self.text_column, *self.columns}

    @abstractmethod
    def plan(self) -> list[ShardTask]:
        """Every task over the inputs, in a stable order."""

    @abstractmethod
    def schema(self, task: ShardTask) -> pa.Schema:
        """The schema of the tables ``read`` yields for this task (before any stage)."""

    @abstractmethod
    def read(self, task: ShardTask, limit: int | None = None) -> Iterator[pa.Table]:
        """Stream the task's documents as tables of at most ``batch_size`` rows."""


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
