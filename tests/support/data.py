"""Helpers that turn the real sample shards into the inputs a test needs, and where the real
data the tests read lives (``tests/data``, built by ``scripts/build_test_data.py``)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.io.filesystem import data_files

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples"
#: Slices of real files (toxicity and HPLT labels, books, web pages), as their origin lays
#: them out; sources, licences and cuts in ``tests/data/SOURCES.md``.
TEST_DATA = Path(__file__).resolve().parents[1] / "data"


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


def benchmark_documents(path: Path, docs: int) -> Path:
    """The documents ``benchmarks/filters_vs_datatrove.py`` measures on, written to ``path``:
    the samples repeated to ``docs`` rows (ids made unique), one Parquet file, row groups of
    2048 (its ``build_data``, which the benchmark runs in a one-thread process)."""
    base = sample_table().select(["id", "text"])
    copies = []
    for copy in range(-(-docs // base.num_rows)):
        ids = pc.binary_join_element_wise(base.column("id"), pa.scalar(f"~{copy}"), "")
        copies.append(base.set_column(0, "id", ids))
    pq.write_table(pa.concat_tables(copies).slice(0, docs), path, row_group_size=2048)
    return path


def meco_curated(
    directory: Path, rows: int, parts: int, row_group_size: int | None = None
) -> pa.Table:
    """A curated output to export: the first ``rows`` sample documents that have a URL, with
    MeCo prefixes and phases, as ``parts`` Parquet files; returns what was written."""
    import pyarrow.compute as pc

    from gristmill.stages.taggers.meco import MecoConditioner

    table = sample_table()
    table = table.filter(pc.is_valid(table.column("url"))).slice(0, rows)
    tagged = MecoConditioner(cooldown_fraction=0.3).process(table)
    directory.mkdir(parents=True, exist_ok=True)
    size = -(-rows // parts)
    for index in range(parts):
        pq.write_table(
            tagged.slice(index * size, size),
            directory / f"part-{index:03d}.parquet",
            row_group_size=row_group_size,
        )
    return tagged
