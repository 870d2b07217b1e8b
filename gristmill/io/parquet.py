"""Parquet in and out: streaming batch reads, atomic zstd writes with an explicit schema."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.core import columns
from gristmill.errors import InputError
from gristmill.io.base import (
    FORMAT_SUFFIXES,
    Reader,
    ShardTask,
    TaskOutput,
    UnreadableRows,
    Writer,
    deliver_unreadable,
    normalise_columns,
    split_invalid_utf8,
)
from gristmill.io.filesystem import AtomicFile, InputFile, filesystem

MB = 1024 * 1024
READ_BUFFER = 4 * MB


def open_parquet(url: str) -> pq.ParquetFile:
    """Open a Parquet file anywhere fsspec reaches, with an error that names the file."""
    fs, path = filesystem(url)
    try:
        # Without pre-buffering, and with a bounded read buffer, memory follows the batch
        # being read, not the row group or the file (pre-buffering tripled peak RSS).
        return pq.ParquetFile(fs.open(path, "rb"), pre_buffer=False, buffer_size=READ_BUFFER)
    except FileNotFoundError:
        raise InputError(url, "file not found") from None
    except (pa.ArrowException, OSError) as error:
        raise InputError(url, f"not a readable Parquet file ({error})") from None


class ParquetReader(Reader):
    """Reads Parquet files, globs or fsspec URLs, streaming record batches.

    Files larger than ``task_size_mb`` on disk are split into tasks of consecutive row groups
    of about that size, so one big file does not land on one worker.
    """

    format = "parquet"
    suffixes = FORMAT_SUFFIXES["parquet"]

    def __init__(
        self,
        paths: str | Sequence[str],
        *,
        columns: Sequence[str] | None = None,
        batch_size: int = 2048,
        task_size_mb: float = 512,
        id_column: str = columns.ID,
        text_column: str = columns.TEXT,
    ) -> None:
        super().__init__(
            paths,
            columns=columns,
            batch_size=batch_size,
            id_column=id_column,
            text_column=text_column,
        )
        self.task_size_mb = task_size_mb

    # -- planning ------------------------------------------------------------------------
    def plan_file(self, file: InputFile) -> list[ShardTask]:
        if file.size <= self.task_size_mb * MB:
            return [ShardTask(file.url, file.relative)]
        return self._split(file.url, file.relative)

    def _split(self, url: str, relative: str) -> list[ShardTask]:
        """Group consecutive row groups into tasks of about ``task_size_mb`` compressed."""
        metadata = open_parquet(url).metadata
        budget = self.task_size_mb * MB
        tasks: list[ShardTask] = []
        first, first_row, size, rows = 0, 0, 0, 0
        for index in range(metadata.num_row_groups):
            group = metadata.row_group(index)
            group_size = sum(
                group.column(c).total_compressed_size for c in range(group.num_columns)
            )
            if index > first and size + group_size > budget:
                tasks.append(ShardTask(url, relative, (first, index), first_row))
                first, first_row, size = index, rows, 0
            size += group_size
            rows += group.num_rows
        tasks.append(ShardTask(url, relative, (first, metadata.num_row_groups), first_row))
        return tasks if len(tasks) > 1 else [ShardTask(url, relative)]

    # -- reading -------------------------------------------------------------------------
    def _projection(
        self, file_schema: pa.Schema, projection: Sequence[str] | None = None
    ) -> list[str] | None:
        wanted = self.wanted_columns(projection)
        if wanted is None:
            return None
        return [name for name in file_schema.names if name in wanted]

    def _normalise(self, table: pa.Table, task: ShardTask, first_row: int) -> pa.Table:
        return normalise_columns(
            table,
            relative=task.relative,
            first_row=first_row,
            id_column=self.id_column,
            text_column=self.text_column,
        )

    def schema(self, task: ShardTask) -> pa.Schema:
        file_schema = open_parquet(task.url).schema_arrow
        projection = self._projection(file_schema)
        if projection is not None:
            file_schema = pa.schema([file_schema.field(name) for name in projection])
        return self._normalise(file_schema.empty_table(), task, 0).schema

    def read(
        self,
        task: ShardTask,
        limit: int | None = None,
        *,
        columns: Sequence[str] | None = None,
        unreadable: UnreadableRows | None = None,
    ) -> Iterator[pa.Table]:
        parquet = open_parquet(task.url)
        projection = self._projection(parquet.schema_arrow, columns)
        groups = None if task.row_groups is None else list(range(*task.row_groups))
        row = task.first_row
        remaining = limit
        try:
            batches = parquet.iter_batches(
                batch_size=self.batch_size, row_groups=groups, columns=projection
            )
            for batch in batches:
                table = pa.Table.from_batches([batch])
                if remaining is not None:
                    table = table.slice(0, remaining)
                    remaining -= table.num_rows
                table = self._normalise(table, task, row)
                good, bad, reasons = split_invalid_utf8(table, row)
                deliver_unreadable(task.url, bad, reasons, unreadable)
                row += table.num_rows
                yield good
                if remaining is not None and remaining <= 0:
                    return
        except (pa.ArrowException, OSError) as error:
            raise InputError(task.url, f"cannot read row {row} onwards ({error})") from None


class ParquetTaskOutput(TaskOutput):
    """One task's Parquet file, buffered into row groups of about ``row_group_rows`` rows or
    ``row_group_mb`` of memory, whichever comes first (filtered batches are often small)."""

    def __init__(
        self,
        url: str,
        schema: pa.Schema,
        *,
        compression: str,
        row_group_rows: int,
        row_group_mb: int,
    ) -> None:
        self.url = url
        self.schema = schema
        self.rows_written = 0
        self._file = AtomicFile(url)
        self._writer = pq.ParquetWriter(self._file.handle, schema, compression=compression)
        self._row_group_rows = row_group_rows
        self._row_group_bytes = row_group_mb * MB
        self._buffer: list[pa.Table] = []
        self._buffered_rows = 0
        self._buffered_bytes = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        table = conform(table, self.schema)
        self._buffer.append(table)
        self._buffered_rows += table.num_rows
        self._buffered_bytes += table.nbytes
        if (
            self._buffered_rows >= self._row_group_rows
            or self._buffered_bytes >= self._row_group_bytes
        ):
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        table = pa.concat_tables(self._buffer)
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self.rows_written += table.num_rows
        self._buffer, self._buffered_rows, self._buffered_bytes = [], 0, 0

    def commit(self) -> None:
        self._flush()
        self._writer.close()
        self._file.commit()

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self._file.abort()


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Put a table into the writer's schema: column order, types, and nulls for absent columns."""
    if table.schema.equals(schema):
        return table
    arrays = []
    for field in schema:
        if field.name in table.column_names:
            arrays.append(table.column(field.name).cast(field.type))
        else:
            arrays.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


class ParquetWriter(Writer):
    """Writes one zstd Parquet file per task, named after the task, atomically."""

    format = "parquet"

    def __init__(
        self,
        path: str,
        *,
        compression: str = "zstd",
        row_group_rows: int = 20_000,
        row_group_mb: int = 32,
    ) -> None:
        super().__init__(path)
        self.compression = compression
        self.row_group_rows = row_group_rows
        self.row_group_mb = row_group_mb

    @property
    def suffix(self) -> str:
        return ".parquet"

    def open(self, task: ShardTask, schema: pa.Schema) -> ParquetTaskOutput:
        return ParquetTaskOutput(
            self.output_url(task),
            schema,
            compression=self.compression,
            row_group_rows=self.row_group_rows,
            row_group_mb=self.row_group_mb,
        )
