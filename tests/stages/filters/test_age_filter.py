"""``age_filter`` after the ``age`` tagger, run by the executor over small real Parquet inputs
whose dates come from each source: crawl_date, the dump id, and an added ``created`` column."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from support.data import sample_table

from gristmill import Pipeline
from gristmill.errors import ConfigError
from gristmill.io import ParquetReader, ParquetWriter
from gristmill.stages.filters.age import AgeFilter
from gristmill.stages.taggers.age import AgeTagger

MIN, MAX = dt.date(2019, 4, 22), dt.date(2020, 12, 31)


def _rows(table: pa.Table, *sources: str) -> pa.Table:
    return table.filter(pc.is_in(table.column("source"), pa.array(sources)))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    samples = sample_table()
    directory = tmp_path_factory.mktemp("dated")
    # 1. crawl dates: C4 (April 2019, across MIN), wget and cc_wet (2024), ccnet (2020, 2023).
    pq.write_table(_rows(samples, "c4", "wget", "cc_wet", "ccnet"), directory / "crawl.parquet")
    # 2. dump ids only: ccnet without its crawl dates, and redpajama_cc.
    dumps = _rows(samples, "ccnet", "redpajama_cc").drop_columns(["crawl_date"])
    ids = pc.binary_join_element_wise("dump-", dumps.column("id"), "")  # unique across files
    dumps = dumps.set_column(0, pa.field("id", pa.string(), nullable=False), ids)
    pq.write_table(dumps, directory / "dump.parquet")
    # 3. dolma-style created strings on books, edge days included; no crawl_date or dump.
    books = _rows(samples, "gutenberg", "shakespeare", "luxun").drop_columns(["crawl_date", "dump"])
    start = dt.date(2018, 1, 1)
    created: list[str | None] = [
        (start + dt.timedelta(days=3 * i)).isoformat() + ("T08:00:00Z" if i % 2 else "")
        for i in range(books.num_rows)
    ]
    created[:5] = ["2019-04-22", "2019-04-21T23:59:59Z", "2020-12-31T23:59:59Z", "2021-01-01", None]
    created[5] = "not a date"
    pq.write_table(books.append_column("created", pa.array(created)), directory / "created.parquet")
    # 4. no date at all.
    pq.write_table(_rows(samples, "hplt").select(["id", "text"]), directory / "undated.parquet")
    return directory


def _expected_dates(directory: Path) -> dict[str, dt.date | None]:
    """Each document's date, worked out independently with the standard library."""
    dates: dict[str, dt.date | None] = {}
    for path in directory.glob("*.parquet"):
        for row in pq.read_table(path).to_pylist():
            date = None
            if row.get("crawl_date") is not None:
                date = row["crawl_date"].astimezone(dt.UTC).date()
            elif row.get("dump"):
                _cc, _main, year, week = row["dump"].split("-")
                date = dt.date.fromisocalendar(int(year), int(week), 1)
            elif row.get("created"):
                try:
                    date = dt.date.fromisoformat(row["created"][:10])
                except ValueError:
                    date = None
            dates[row["id"]] = date
    return dates


@pytest.mark.parametrize("on_missing", ["keep", "drop"])
def test_keeps_exactly_the_documents_inside_the_window(inputs: Path, tmp_path: Path, on_missing):
    out = tmp_path / "out"
    report = Pipeline(
        [AgeTagger(), AgeFilter(min_date=MIN, max_date=MAX, on_missing=on_missing)],
        reader=ParquetReader(str(inputs / "*.parquet"), batch_size=128),
        writer=ParquetWriter(str(out)),
    ).run()
    assert report.ok, report.failures
    dates = _expected_dates(inputs)
    expected = {
        i
        for i, d in dates.items()
        if (d is None and on_missing == "keep") or (d and MIN <= d <= MAX)
    }
    # The shards' schemas differ (each has its own date columns): read them one by one.
    kept = pa.concat_tables(
        pq.read_table(p, columns=["id", "age_source"]) for p in sorted(out.glob("*.parquet"))
    )
    assert set(kept.column("id").to_pylist()) == expected
    # Every source contributed on both sides of the window.
    sources = dict(
        zip(kept.column("id").to_pylist(), kept.column("age_source").to_pylist(), strict=True)
    )
    assert {"crawl_date", "dump", "created"} <= set(sources.values())
    for edge, inside in (
        ("2019-04-22", True),
        ("2019-04-21T23:59:59Z", False),
        ("2020-12-31T23:59:59Z", True),
        ("2021-01-01", False),
    ):
        books = pq.read_table(inputs / "created.parquet")
        ident = books.filter(pc.equal(books.column("created"), edge)).column("id")[0].as_py()
        assert (ident in expected) is inside
    stats = report.stats.stages["02_age_filter"]
    missing = sum(d is None for d in dates.values())
    assert stats.dropped.get("age_missing", 0) == (missing if on_missing == "drop" else 0)
    assert stats.dropped["age_before_min_date"] == sum(1 for d in dates.values() if d and d < MIN)
    assert stats.dropped["age_after_max_date"] == sum(1 for d in dates.values() if d and d > MAX)
    years = report.stats.stages["01_age"].histograms["crawl_year"]
    assert sum(years.values()) == len(dates)
    assert years["missing"] == missing
    assert years["2019"] == sum(1 for d in dates.values() if d and d.year == 2019)


def test_a_bare_year_means_the_whole_year_and_the_window_must_be_ordered():
    stage = AgeFilter(min_date=2013, max_date=2019)
    assert stage.params.min_date == dt.date(2013, 1, 1)
    assert stage.params.max_date == dt.date(2019, 12, 31)
    assert AgeFilter(max_date="2016-06-30").params.max_date == dt.date(2016, 6, 30)
    with pytest.raises(ConfigError, match="is after max_date"):
        AgeFilter(min_date="2020-01-01", max_date="2019-01-01")
    with pytest.raises(ConfigError, match="not a year"):
        AgeFilter(max_date=20190)


def test_annotate_mode_marks_instead_of_dropping():
    table = AgeTagger().process(sample_table().slice(0, 50))
    out = AgeFilter(max_date=2016, on_missing="drop", mode="annotate").process(table)
    assert out.num_rows == 50
    assert out.column("keep_age_filter").to_pylist() == [False] * 50
