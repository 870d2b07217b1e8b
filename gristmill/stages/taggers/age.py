"""``age``: the date a document stands for, for data-age filtering.

Longpre et al. (2023, "A Pretrainer's Guide to Training Data") define age by crawl time, so
``crawl_date`` comes first; a Common Crawl dump id (``CC-MAIN-YYYY-WW``) gives the Monday of
that ISO week when the exact date is missing; the noisy ``created`` (dolma's field, a
timestamp or an ISO date string) comes last. The priority is configurable; columns absent from
the input are simply not used. Outputs: ``age_date`` (date32, UTC day), ``crawl_year`` (int16)
and ``age_source`` (the column that gave the date).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from gristmill.core import columns
from gristmill.core.registry import register_stage
from gristmill.core.stage import Stage, StageParams
from gristmill.core.stats import StageStats

DateSource = Literal["crawl_date", "dump", "created"]
CREATED = "created"
AGE_DATE = "age_date"
CRAWL_YEAR = "crawl_year"
AGE_SOURCE = "age_source"
MISSING = "missing"

_DUMP_PATTERN = r"^CC-MAIN-(?P<year>\d{4})-(?P<week>\d{2})"


#: The days a date may be: years 1 to 9999. Anything else in a date column is bad data (a
#: timestamp in the wrong unit, a sentinel), and Python's datetime cannot hold it, so every
#: reader of the output that converts dates to Python would fail on it.
FIRST_DAY = dt.date(1, 1, 1)
LAST_DAY = dt.date(9999, 12, 31)


def utc_dates(values: pa.ChunkedArray | pa.Array, name: str) -> pa.ChunkedArray | pa.Array:
    """Any timestamp, date or ISO date string column as date32; bad → null.

    Timestamps give their UTC day; strings give the day as written (``YYYY-MM-DD`` first).
    A day outside years 1 to 9999 is bad.
    """
    kind = values.type
    if pa.types.is_timestamp(kind):
        # Drop the zone first: casting a zoned timestamp to a date uses local time, not UTC.
        days = pc.cast(values, pa.timestamp(kind.unit), safe=False).cast(pa.date32())
    elif pa.types.is_date(kind):
        days = pc.cast(values, pa.date32())
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        day = pc.utf8_slice_codeunits(pc.utf8_trim_whitespace(values), 0, 10)
        parsed = pc.strptime(day, format="%Y-%m-%d", unit="s", error_is_null=True)
        # strptime rolls impossible days over (Feb 30th → March 2nd): such a date is wrong.
        exact = pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), day)
        days = pc.cast(pc.if_else(exact, parsed, None), pa.date32())
    elif pa.types.is_null(kind):
        return pa.chunked_array([pa.nulls(len(values), pa.date32())])
    else:
        raise TypeError(f"column '{name}' is {kind}: expected a timestamp, a date or an ISO string")
    first, last = pa.scalar(FIRST_DAY, pa.date32()), pa.scalar(LAST_DAY, pa.date32())
    inside = pc.and_(pc.greater_equal(days, first), pc.less_equal(days, last))
    return pc.if_else(inside, days, pa.scalar(None, pa.date32()))


def _week_one_monday(year: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of the Monday of ISO week 1: the week holding January 4th."""
    january_4 = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64) + 3
    return january_4 - (january_4 + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)


def dump_dates(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """``CC-MAIN-YYYY-WW`` → the Monday of ISO week WW of YYYY; anything else → null."""
    text = pc.cast(values, pa.string()) if not pa.types.is_string(values.type) else values
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks() if text.num_chunks else pa.array([], pa.string())
    parts = pc.extract_regex(text, _DUMP_PATTERN)  # null where it does not match
    year = pc.cast(pc.struct_field(parts, "year"), pa.int64()).to_numpy(zero_copy_only=False)
    week = pc.cast(pc.struct_field(parts, "week"), pa.int64()).to_numpy(zero_copy_only=False)
    valid = ~np.isnan(year.astype(np.float64)) & ~np.isnan(week.astype(np.float64))
    year = np.where(valid, year, 1970).astype(np.int64)
    week = np.where(valid, week, 1).astype(np.int64)
    valid &= (week >= 1) & (week <= 53)
    monday = _week_one_monday(year) + (week - 1) * 7
    valid &= monday < _week_one_monday(year + 1)  # week 53 exists in some years only
    return pa.array(monday.astype(np.int32), pa.date32(), mask=~valid)


def count_histogram(stats: StageStats, key: str, values: pa.ChunkedArray | pa.Array) -> None:
    """Add a batch's value counts to a stats histogram, counted by Arrow, nulls as 'missing'."""
    histogram = stats.histograms.setdefault(key, Counter())
    for item in pc.value_counts(values).to_pylist():
        value = item["values"]
        histogram[MISSING if value is None else str(value)] += int(item["counts"])


class AgeParams(StageParams):
    priority: list[DateSource] = Field(
        ["crawl_date", "dump", "created"],
        min_length=1,
        description="where the date comes from, first match wins: crawl_date (WARC date), "
        "dump (CC-MAIN-YYYY-WW → Monday of that ISO week), created (dolma, noisy)",
    )

    @field_validator("priority")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each source may appear once")
        return value


@register_stage
class AgeTagger(Stage):
    """Adds ``age_date``, ``crawl_year`` and ``age_source`` from whichever date columns exist."""

    name = "age"
    Params = AgeParams
    params: AgeParams
    requires = ()

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (
            pa.field(AGE_DATE, pa.date32()),
            pa.field(CRAWL_YEAR, pa.int16()),
            pa.field(AGE_SOURCE, pa.string()),
        )

    def _dates(self, batch: pa.Table, source: str) -> pa.ChunkedArray | pa.Array | None:
        column = {"crawl_date": columns.CRAWL_DATE, "dump": columns.DUMP, "created": CREATED}[
            source
        ]
        if column not in batch.column_names:
            return None
        values = batch.column(column)
        if source == "dump":
            return dump_dates(values)
        try:
            return utc_dates(values, column)
        except TypeError as error:
            raise ValueError(f"age: {error}") from None

    def process(self, batch: pa.Table) -> pa.Table:
        rows = batch.num_rows
        date = pa.nulls(rows, pa.date32())
        source = pa.nulls(rows, pa.string())
        for name in self.params.priority:
            found = self._dates(batch, name)
            if found is None:
                continue
            take = pc.and_(pc.is_null(date), pc.is_valid(found))
            date = pc.if_else(take, found, date)
            source = pc.if_else(take, pa.scalar(name), source)
        year = pc.cast(pc.year(date), pa.int16())
        count_histogram(self.stats, CRAWL_YEAR, year)
        count_histogram(self.stats, AGE_SOURCE, source)
        for column, values in ((AGE_DATE, date), (CRAWL_YEAR, year), (AGE_SOURCE, source)):
            if column in batch.column_names:  # tagged again: the new values replace the old
                batch = batch.drop_columns([column])
            batch = batch.append_column(column, values)
        return batch
