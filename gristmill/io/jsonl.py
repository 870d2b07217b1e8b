"""JSON Lines in and out: ``.jsonl``, ``.jsonl.gz``, ``.jsonl.zst`` (and ``.json.gz``, dolma's
habit).

The schema is inferred from the first batch of a file and then held fixed, so every batch of
a task has the same columns. A line that cannot be read (invalid UTF-8, invalid JSON, not an
object, a value whose type differs from the first rows') is set aside with its line number and
the reason, and the rest of the file goes on. Every non-blank line counts as a row, readable or
not, so generated ids (``file#row``) do not move when a bad line is fixed.
"""

from __future__ import annotations

import datetime
import decimal
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import pyarrow as pa

from gristmill.core import columns
from gristmill.errors import InputError
from gristmill.io.base import (
    FORMAT_SUFFIXES,
    Reader,
    ShardTask,
    TaskOutput,
    UnreadableRows,
    Writer,
    check_text_column,
    deliver_unreadable,
    normalise_columns,
    split_invalid_utf8,
)
from gristmill.io.filesystem import AtomicFile, InputFile, filesystem

JSONL_SUFFIXES = FORMAT_SUFFIXES["jsonl"]


def _open_binary(url: str) -> IO[bytes]:
    fs, path = filesystem(url)
    raw = fs.open(path, "rb")
    if path.endswith(".gz"):
        import gzip

        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if path.endswith(".zst"):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw))
    return raw  # type: ignore[no-any-return]


@dataclass
class _Line:
    """One non-blank line: its row number in the file, its line number, and what it holds."""

    row: int
    line: int
    value: dict[str, Any] | None
    raw: str
    problem: str | None = None


class JsonlReader(Reader):
    """Reads JSON Lines files; one task per file (compressed streams cannot be split)."""

    format = "jsonl"
    suffixes = JSONL_SUFFIXES

    def plan_file(self, file: InputFile) -> list[ShardTask]:
        return [ShardTask(file.url, file.relative, format=self.format)]

    def schema(self, task: ShardTask) -> pa.Schema:
        first = next(self.read(task, limit=self.batch_size, unreadable=_ignore), None)
        if first is None:
            return pa.schema(
                [pa.field(columns.ID, pa.string()), pa.field(columns.TEXT, pa.string())]
            )
        return first.schema

    def read(
        self,
        task: ShardTask,
        limit: int | None = None,
        *,
        columns: Sequence[str] | None = None,
        unreadable: UnreadableRows | None = None,
    ) -> Iterator[pa.Table]:
        schema: pa.Schema | None = None
        wanted = self.wanted_columns(columns)
        lines: list[_Line] = []
        for line in self._lines(task, limit, wanted):
            lines.append(line)
            if len(lines) >= self.batch_size:
                table, schema = self._to_table(task, lines, schema, unreadable)
                lines = []
                if table.num_rows:
                    yield table
        if lines:
            table, schema = self._to_table(task, lines, schema, unreadable)
            if table.num_rows:
                yield table

    def _lines(
        self, task: ShardTask, limit: int | None, wanted: set[str] | None
    ) -> Iterator[_Line]:
        row = 0
        number = 0
        try:
            with _open_binary(task.url) as handle:
                for number, data in enumerate(handle, start=1):
                    if not data.strip():
                        continue
                    yield self._parse(row, number, data, wanted)
                    row += 1
                    if limit is not None and row >= limit:
                        return
        except FileNotFoundError:
            raise InputError(task.url, "file not found") from None
        except (OSError, EOFError) as error:
            raise InputError(task.url, f"cannot read past line {number} ({error})") from None

    @staticmethod
    def _parse(row: int, number: int, data: bytes, wanted: set[str] | None) -> _Line:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raw = data.decode("utf-8", "replace")
            return _Line(row, number, None, raw, f"invalid UTF-8 (byte {error.start})")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            return _Line(row, number, None, text, f"invalid JSON ({error.msg})")
        if not isinstance(value, dict):
            return _Line(row, number, None, text, "a JSON object was expected")
        if wanted is not None:
            value = {k: v for k, v in value.items() if k in wanted}
        return _Line(row, number, value, text)

    def _to_table(
        self,
        task: ShardTask,
        lines: list[_Line],
        schema: pa.Schema | None,
        unreadable: UnreadableRows | None,
    ) -> tuple[pa.Table, pa.Schema | None]:
        readable = [line for line in lines if line.problem is None]
        if schema is None and readable:
            schema = _settle_null_types(pa.Table.from_pylist([readable[0].value]).schema)
            schema = _widen(schema, readable)
        good: list[_Line] = []
        if schema is not None and readable:
            try:
                pa.Table.from_pylist([line.value for line in readable], schema=schema)
                good = readable
            except (pa.ArrowException, TypeError, ValueError):
                good = [line for line in readable if _fits(line, schema)]
        raw = (
            pa.Table.from_pylist([line.value for line in good], schema=schema)
            if schema is not None
            else pa.table({})
        )
        if schema is not None and not schema.names:
            # No line holds a column this read wants: name the missing text, not Arrow's error.
            check_text_column(task.url, schema)
        table = self._normalise(raw, task, [line.row for line in good])
        check_text_column(task.url, table.schema)
        table, invalid, reasons = split_invalid_utf8(table, 0)
        rejected = [line for line in lines if line.problem is not None]
        self._deliver(task, rejected, invalid, reasons, unreadable)
        return table, schema

    def _normalise(self, raw: pa.Table, task: ShardTask, rows: list[int]) -> pa.Table:
        table = normalise_columns(
            raw,
            relative=task.relative,
            first_row=0,
            id_column=self.id_column,
            text_column=self.text_column,
        )
        if self.id_column not in raw.column_names:
            # Ids from the row numbers of the lines kept, not from their count.
            ids = pa.array([f"{task.relative}#{row}" for row in rows], pa.string())
            table = table.set_column(table.column_names.index(columns.ID), columns.ID, ids)
        return table

    def _deliver(
        self,
        task: ShardTask,
        lines: list[_Line],
        invalid: pa.Table,
        invalid_reasons: list[str],
        unreadable: UnreadableRows | None,
    ) -> None:
        if not lines and not invalid_reasons:
            return
        reasons = [f"unreadable line {line.line}: {line.problem}" for line in lines]
        table = pa.table(
            {
                columns.ID: pa.array(
                    [f"{task.relative}#{line.row}" for line in lines], pa.string()
                ),
                columns.TEXT: pa.array([line.raw for line in lines], pa.string()),
            }
        )
        if invalid_reasons:
            table = pa.concat_tables([table, invalid], promote_options="permissive")
            reasons += invalid_reasons
        deliver_unreadable(task.url, table, reasons, unreadable)


def _fits(line: _Line, schema: pa.Schema) -> bool:
    """Whether one row converts to the file's schema; records why not when it does not."""
    try:
        pa.Table.from_pylist([line.value], schema=schema)
        return True
    except (pa.ArrowException, TypeError, ValueError) as error:
        line.problem = f"does not match the types of the first rows ({error})"
        return False


def _widen(schema: pa.Schema, lines: list[_Line]) -> pa.Schema:
    """The first batch's schema: every key of its rows, typed by pyarrow's inference."""
    try:
        inferred = pa.Table.from_pylist([line.value for line in lines]).schema
    except (pa.ArrowException, TypeError, ValueError):
        return schema
    return _settle_null_types(inferred)


def _settle_null_types(schema: pa.Schema) -> pa.Schema:
    """A key that is null in every row of the first batch is taken to hold strings."""
    return pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in schema])


def _ignore(_rows: pa.Table, _reasons: list[str]) -> None:
    """Reading a schema looks at the readable rows only."""


# -- writing ------------------------------------------------------------------------------------
def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class JsonlTaskOutput(TaskOutput):
    """One task's JSON Lines file (compressed by its suffix), renamed into place at commit."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.rows_written = 0
        self._file = AtomicFile(url)
        self._raw = self._file.handle
        self._sink: IO[bytes] = self._raw
        if url.endswith(".gz"):
            import gzip

            self._sink = gzip.GzipFile(fileobj=self._raw, mode="wb")  # type: ignore[assignment]
        elif url.endswith(".zst"):
            import zstandard

            self._sink = zstandard.ZstdCompressor().stream_writer(self._raw)  # type: ignore[assignment]

    def write(self, table: pa.Table) -> None:
        for row in table.to_pylist():
            line = json.dumps(row, ensure_ascii=False, default=_json_default)
            self._sink.write(line.encode("utf-8") + b"\n")
        self.rows_written += table.num_rows

    def _close_compressor(self) -> None:
        if self._sink is not self._raw:
            self._sink.close()

    def commit(self) -> None:
        self._close_compressor()
        self._file.commit()

    def abort(self) -> None:
        try:
            self._close_compressor()
        finally:
            self._file.abort()


class JsonlWriter(Writer):
    """Writes one JSON Lines file per task (``compression``: none, gzip or zstd)."""

    format = "jsonl"

    def __init__(self, path: str, *, compression: str = "none") -> None:
        super().__init__(path)
        if compression not in ("none", "gzip", "zstd"):
            raise ValueError(f"JSONL compression must be none, gzip or zstd, not {compression!r}")
        self.compression = compression

    @property
    def suffix(self) -> str:
        return {"none": ".jsonl", "gzip": ".jsonl.gz", "zstd": ".jsonl.zst"}[self.compression]

    def open(self, task: ShardTask, schema: pa.Schema) -> JsonlTaskOutput:
        return JsonlTaskOutput(self.output_url(task))
