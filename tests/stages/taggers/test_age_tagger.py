"""The ``age`` tagger on real sample rows: crawl_date, dump ids and dolma-style ``created``."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from support.data import sample_table

from gristmill.errors import ConfigError
from gristmill.stages.taggers.age import AgeTagger, dump_dates


@pytest.fixture(scope="module")
def samples() -> pa.Table:
    return sample_table()


def _rows(table: pa.Table, source: str) -> pa.Table:
    return table.filter(pc.equal(table.column("source"), source))


def test_crawl_date_comes_first_and_is_the_utc_day(samples: pa.Table):
    ccnet = _rows(samples, "ccnet")
    out = AgeTagger().process(ccnet)
    expected = [d.astimezone(dt.UTC).date() for d in ccnet.column("crawl_date").to_pylist()]
    assert out.column("age_date").to_pylist() == expected
    assert set(out.column("age_source").to_pylist()) == {"crawl_date"}
    assert out.column("crawl_year").type == pa.int16()
    assert out.column("crawl_year").to_pylist() == [d.year for d in expected]


def test_priority_is_configurable_and_dump_gives_the_monday_of_its_iso_week(samples: pa.Table):
    ccnet = _rows(samples, "ccnet")
    out = AgeTagger(priority=["dump", "crawl_date"]).process(ccnet)
    expected = []
    for dump in ccnet.column("dump").to_pylist():
        _cc, _main, year, week = dump.split("-")
        expected.append(dt.date.fromisocalendar(int(year), int(week), 1))
    assert out.column("age_date").to_pylist() == expected
    assert set(out.column("age_source").to_pylist()) == {"dump"}
    # redpajama_cc rows have a dump id and no crawl date: the default priority falls back.
    redpajama = AgeTagger().process(_rows(samples, "redpajama_cc"))
    assert set(redpajama.column("age_source").to_pylist()) == {"dump"}
    assert set(redpajama.column("age_date").to_pylist()) == {dt.date(2023, 2, 6)}


def test_dump_ids_that_are_not_dump_ids_give_no_date():
    dates = dump_dates(
        pa.array(["CC-MAIN-2021-53", "CC-MAIN-2020-53", "CC-MAIN-2019-00", "x", None])
    )
    assert dates.to_pylist() == [None, dt.date(2020, 12, 28), None, None, None]


def test_created_strings_and_timestamps(samples: pa.Table):
    books = _rows(samples, "gutenberg").drop_columns(["crawl_date", "dump"])
    created = ["2016-03-04", " 2019-12-31T23:30:00Z", "garbage", None, "2021-02-30"]
    created += ["2012-07-01T00:00:00+02:00"] * (books.num_rows - len(created))
    out = AgeTagger().process(books.append_column("created", pa.array(created)))
    dates = out.column("age_date").to_pylist()
    assert dates[:5] == [dt.date(2016, 3, 4), dt.date(2019, 12, 31), None, None, None]
    assert out.column("age_source").to_pylist()[:5] == ["created", "created", None, None, None]
    zoned = pa.array(
        [dt.datetime(2018, 1, 1, 1, 30, tzinfo=dt.UTC)] * books.num_rows,
        pa.timestamp("us", tz="America/New_York"),
    )
    out = AgeTagger().process(books.append_column("created", zoned))
    # 01:30 UTC is still December 31st in New York: the UTC day counts.
    assert set(out.column("age_date").to_pylist()) == {dt.date(2018, 1, 1)}


def test_absent_columns_are_not_used_and_the_year_histogram_is_counted(samples: pa.Table):
    hplt = _rows(samples, "hplt").select(["id", "text"])
    tagger = AgeTagger()
    out = tagger.process(hplt)
    assert out.column("age_date").null_count == hplt.num_rows
    assert out.column("age_source").null_count == hplt.num_rows
    tagger.process(samples)
    years = tagger.stats.histograms["crawl_year"]
    assert years["2019"] == 1000  # the C4 rows
    assert years["missing"] == hplt.num_rows + int(
        pc.sum(
            pc.and_(pc.is_null(samples.column("crawl_date")), pc.is_null(samples.column("dump")))
        ).as_py()
    )
    assert tagger.stats.histograms["age_source"]["crawl_date"] == 1000 + 37 + 30 + 1


def test_a_created_column_of_the_wrong_type_is_a_clear_error(samples: pa.Table):
    table = samples.slice(0, 3).append_column("created", pa.array([1, 2, 3]))
    with pytest.raises(ValueError, match="column 'created' is int64"):
        AgeTagger().process(table)
    with pytest.raises(ConfigError, match="each source may appear once"):
        AgeTagger(priority=["dump", "dump"])


def test_a_day_outside_years_1_to_9999_is_bad_and_the_next_source_decides():
    # Found by tests/stages/test_every_stage.py: a timestamp in the wrong unit (2**62 µs) gave
    # an age_date in the year 146138, a crawl_year wrapped round int16 (17036), and an
    # age_date no reader could turn into a Python date.
    micros = [2**62, -(2**62), 1_000_000_000_000_000, None]
    table = pa.table(
        {
            "id": ["far", "before", "2001", "none"],
            "crawl_date": pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "dump": ["CC-MAIN-2019-35", None, None, None],
        }
    )
    out = AgeTagger().process(table)
    assert out.column("age_date").to_pylist() == [
        dt.date.fromisocalendar(2019, 35, 1),
        None,
        dt.date(2001, 9, 9),
        None,
    ]
    assert out.column("crawl_year").to_pylist() == [2019, None, 2001, None]
    assert out.column("age_source").to_pylist() == ["dump", None, "crawl_date", None]
