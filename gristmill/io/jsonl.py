"""JSON Lines in: ``.jsonl``, ``.jsonl.gz`` and ``.jsonl.zst`` (and ``.json.gz``, dolma's habit).

The schema is inferred from the first batch of a file and then held fixed, so every batch of
a task has the same columns; a later row of another type is an error naming file and line.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import IO, Any

import pyarrow as pa

from gristmill.core import columns
from gristmill.errors import InputError
from gristmill.io.base import Reader, ShardTask, check_text_column, normalise_columns
from gristmill.io.filesystem import expand_inputs, filesystem

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json")


def _open_text(url: str) -> IO[str]:
    fs, path = filesystem(url)
    raw = fs.open(path, "rb")
    if path.endswith(".gz"):
        import gzip

        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8")
    if path.endswith(".zst"):
        import zstandard

        stream = zstandard.ZstdDecompressor().stream_reader(raw)
        return io.TextIOWrapper(stream, encoding="utf-8")
    return io.TextIOWrapper(raw, encoding="utf-8")


class JsonlReader(Reader):
    """Reads JSON Lines files; one task per file (compressed streams cannot be split)."""

    def plan(self) -> list[ShardTask]:
        return [ShardTask(f.url, f.relative) for f in expand_inputs(self.paths, JSONL_SUFFIXES)]

    def schema(self, task: ShardTask) -> pa.Schema:
        first = next(self.read(task, limit=self.batch_size), None)
        if first is None:
            empty = pa.schema(
                [pa.field(columns.ID, pa.string()), pa.field(columns.TEXT, pa.string())]
            )
            return empty
        return first.schema

    def read(self, task: ShardTask, limit: int | None = None) -> Iterator[pa.Table]:
        schema: pa.Schema | None = None
        rows: list[dict[str, Any]] = []
        first_row = 0
        line_number = 0
        try:
            with _open_text(task.url) as handle:
                for line_number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    rows.append(self._parse(task.url, line_number, line))
                    if limit is not None and first_row + len(rows) >= limit:
                        break
                    if len(rows) >= self.batch_size:
                        table, schema = self._to_table(task, rows, schema, first_row, line_number)
                        yield table
                        first_row += len(rows)
                        rows = []
        except (UnicodeDecodeError, OSError, EOFError) as error:
            raise InputError(task.url, f"cannot read past line {line_number} ({error})") from None
        if rows:
            table, schema = self._to_table(task, rows, schema, first_row, line_number)
            yield table

    def _parse(self, url: str, line_number: int, line: str) -> dict[str, Any]:
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(url, f"line {line_number}: invalid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise InputError(url, f"line {line_number}: a JSON object was expected")
        wanted = self.wanted_columns()
        if wanted is not None:
            row = {k: v for k, v in row.items() if k in wanted}
        return row

    def _to_table(
        self,
        task: ShardTask,
        rows: list[dict[str, Any]],
        schema: pa.Schema | None,
        first_row: int,
        line_number: int,
    ) -> tuple[pa.Table, pa.Schema]:
        try:
            raw = pa.Table.from_pylist(rows, schema=schema)
        except (pa.ArrowException, TypeError, ValueError) as error:
            raise InputError(
                task.url,
                f"rows {first_row + 1}-{first_row + len(rows)} (near line {line_number}) "
                f"do not match the types of the first rows ({error})",
            ) from None
        if schema is None:
            schema = _settle_null_types(raw.schema)
            raw = raw.cast(schema)
        table = normalise_columns(
            raw,
            relative=task.relative,
            first_row=first_row,
            id_column=self.id_column,
            text_column=self.text_column,
        )
        check_text_column(task.url, table.schema)
        return table, schema


def _settle_null_types(schema: pa.Schema) -> pa.Schema:
    """A key that is null in every row of the first batch is taken to hold strings."""
    return pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in schema])
