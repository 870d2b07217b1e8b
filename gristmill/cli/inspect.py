"""``gristmill inspect``: what is in a Parquet or JSONL file, at a glance."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gristmill.core import columns
from gristmill.io.formats import open_reader


def inspect_path(path: str, *, show: int, console: Console) -> None:
    """Schema, row count, null counts per column and the first few documents of every file."""
    reader = open_reader(path)
    for task in reader.plan():
        rows = 0
        nulls: dict[str, int] = {}
        empty_texts = 0
        samples: list[dict[str, object]] = []
        schema: pa.Schema | None = None
        for table in reader.read(task):
            schema = table.schema
            rows += table.num_rows
            for name in table.column_names:
                nulls[name] = nulls.get(name, 0) + table.column(name).null_count
            text = table.column(columns.TEXT)
            empty_texts += int(pc.sum(pc.equal(pc.utf8_length(text), 0)).as_py() or 0)
            if len(samples) < show:
                samples.extend(table.slice(0, show - len(samples)).to_pylist())
        console.rule(f"[bold]{task.url}")
        console.print(f"{rows:,} rows, {empty_texts:,} empty texts")
        summary = Table("column", "type", "nulls")
        for field in schema or []:
            summary.add_row(
                escape(field.name), escape(str(field.type)), f"{nulls.get(field.name, 0):,}"
            )
        console.print(summary)
        for sample in samples:
            text = str(sample.get(columns.TEXT) or "")
            shown = text[:300].replace("\n", "⏎ ") + ("…" if len(text) > 300 else "")
            console.print(
                f"[cyan]{sample.get(columns.ID)}[/cyan] ({len(text):,} chars): {shown}",
                highlight=False,
            )
