"""The one place that picks a reader or a writer, by format or by the files' names.

``auto`` input reads every supported format it finds: a directory holding Parquet and JSONL
files reads both (each file is its own task, so their schemas need not agree); two inputs
that would write the same output name (``a.parquet`` and ``a.jsonl``) are refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

import pyarrow as pa

from gristmill.core import columns
from gristmill.errors import ConfigError
from gristmill.io.base import (
    FORMAT_SUFFIXES,
    Reader,
    ShardTask,
    UnreadableRows,
    Writer,
    format_of,
)
from gristmill.io.filesystem import InputFile
from gristmill.io.jsonl import JsonlReader, JsonlWriter
from gristmill.io.parquet import ParquetReader, ParquetWriter

InputFormat = Literal["auto", "parquet", "jsonl"]
OutputFormat = Literal["parquet", "jsonl"]


class AnyFormatReader(Reader):
    """Every supported format at once: each file goes to the reader of its format."""

    format = "auto"
    suffixes = tuple(s for suffixes in FORMAT_SUFFIXES.values() for s in suffixes)

    def __init__(self, readers: dict[str, Reader]) -> None:
        first = next(iter(readers.values()))
        super().__init__(
            first.paths,
            columns=first.columns,
            batch_size=first.batch_size,
            id_column=first.id_column,
            text_column=first.text_column,
        )
        self.readers = readers

    def _reader(self, name: str | None, where: str) -> Reader:
        if name is None or name not in self.readers:
            raise ConfigError(f"{where}: not a Parquet or JSON Lines file")
        return self.readers[name]

    def plan_file(self, file: InputFile) -> list[ShardTask]:
        return self._reader(format_of(file.url), file.url).plan_file(file)

    def schema(self, task: ShardTask) -> pa.Schema:
        return self._reader(task.format, task.url).schema(task)

    def read(
        self,
        task: ShardTask,
        limit: int | None = None,
        *,
        columns: Sequence[str] | None = None,
        unreadable: UnreadableRows | None = None,
    ) -> Iterator[pa.Table]:
        reader = self._reader(task.format, task.url)
        return reader.read(task, limit, columns=columns, unreadable=unreadable)


def open_reader(
    paths: str | Sequence[str],
    *,
    format: InputFormat = "auto",
    columns: Sequence[str] | None = None,
    batch_size: int = 2048,
    task_size_mb: float = 512,
    id_column: str = columns.ID,
    text_column: str = columns.TEXT,
) -> Reader:
    """The reader of these inputs: one format, or (``auto``) every format found."""
    options = {
        "columns": columns,
        "batch_size": batch_size,
        "id_column": id_column,
        "text_column": text_column,
    }
    readers: dict[str, Reader] = {
        "parquet": ParquetReader(paths, task_size_mb=task_size_mb, **options),  # type: ignore[arg-type]
        "jsonl": JsonlReader(paths, **options),  # type: ignore[arg-type]
    }
    if format == "auto":
        return AnyFormatReader(readers)
    if format not in readers:
        raise ConfigError(f"unknown input format {format!r}: choose auto, parquet or jsonl")
    return readers[format]


def open_writer(
    path: str,
    *,
    format: OutputFormat = "parquet",
    compression: str = "zstd",
    row_group_rows: int = 20_000,
) -> Writer:
    """The writer of a run's output: Parquet (``compression`` any Parquet codec) or JSON Lines
    (``compression`` none, gzip or zstd)."""
    if format == "parquet":
        return ParquetWriter(path, compression=compression, row_group_rows=row_group_rows)
    if format == "jsonl":
        codec = {"zstd": "zstd", "gzip": "gzip", "none": "none"}.get(compression)
        if codec is None:
            raise ConfigError(
                f"JSON Lines output compresses with none, gzip or zstd, not {compression!r}"
            )
        return JsonlWriter(path, compression=codec)
    raise ConfigError(f"unknown output format {format!r}: choose parquet or jsonl")
