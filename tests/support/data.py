"""Helpers that turn the real sample shards into the inputs a test needs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.io.filesystem import data_files

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples"


def sample_table() -> pa.Table:
    """Every sample document, in a stable order."""
    tables = [pq.read_table(path) for path in sorted(SAMPLES.glob("*.parquet"))]
    return pa.concat_tables(tables).sort_by("id")


def split_samples(directory: Path, parts: int, *, rows: int | None = None) -> list[Path]:
    """Write the samples (or their first ``rows``) as ``parts`` Parquet files."""
    table = sample_table()
    if rows is not None:
        table = table.slice(0, rows)
    directory.mkdir(parents=True, exist_ok=True)
    size = -(-table.num_rows // parts)
    paths = []
    for index in range(parts):
        path = directory / f"part-{index:03d}.parquet"
        pq.write_table(table.slice(index * size, size), path, row_group_size=200)
        paths.append(path)
    return paths


def read_output(directory: Path) -> pa.Table:
    """Every data file of an output directory (bookkeeping folders excluded), sorted by id."""
    files = data_files(str(directory), (".parquet",))
    tables = [pq.read_table(f.url) for f in files]
    if len({t.schema for t in tables}) > 1:
        return pa.concat_tables(tables, promote_options="permissive").sort_by("id")
    return pa.concat_tables(tables).sort_by("id")
