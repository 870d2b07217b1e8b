"""``age_filter``: keep documents whose date (from the ``age`` tagger) is inside a window.

Both ends are inclusive UTC days: ``max_date: 2019-12-31`` keeps a page crawled at any time
on December 31st 2019 and drops one crawled on January 1st 2020, which is the Guide's "drop
everything scraped after the cutoff year". A bare year is accepted: as ``min_date`` it means
January 1st, as ``max_date`` December 31st. Documents without a date follow ``on_missing``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator, model_validator

from gristmill.core.filter import Filter, FilterParams, Verdict
from gristmill.core.registry import register_stage
from gristmill.stages.taggers.age import AGE_DATE, count_histogram


def _year_to_date(value: Any, *, end: bool) -> Any:
    # pydantic reads an int as a Unix time, so 2019 would silently become 1970-01-01.
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= 9999:
            raise ValueError(f"{value} is not a year; give a date like 2019-12-31")
        return dt.date(value, 12, 31) if end else dt.date(value, 1, 1)
    return value


class AgeFilterParams(FilterParams):
    min_date: dt.date | None = Field(
        None, description="keep documents dated on or after this day (a year = its January 1st)"
    )
    max_date: dt.date | None = Field(
        None,
        description="keep documents dated on or before this day (a year = its December 31st; "
        "the Guide's cutoffs are 2013, 2016, 2019, 2022)",
    )
    on_missing: Literal["keep", "drop"] = Field(
        "keep", description="documents without a date: keep, or drop (as when reproducing Longpre)"
    )

    @field_validator("min_date", mode="before")
    @classmethod
    def _min_year(cls, value: Any) -> Any:
        return _year_to_date(value, end=False)

    @field_validator("max_date", mode="before")
    @classmethod
    def _max_year(cls, value: Any) -> Any:
        return _year_to_date(value, end=True)

    @model_validator(mode="after")
    def _ordered(self) -> AgeFilterParams:
        if self.min_date and self.max_date and self.min_date > self.max_date:
            raise ValueError(f"min_date {self.min_date} is after max_date {self.max_date}")
        return self


@register_stage
class AgeFilter(Filter):
    """Keeps documents dated inside ``[min_date, max_date]``; put the ``age`` tagger first."""

    name = "age_filter"
    Params = AgeFilterParams  # type: ignore[assignment]
    params: AgeFilterParams
    requires = (AGE_DATE,)

    def judge(self, batch: pa.Table) -> Verdict:
        dates = pc.cast(batch.column(AGE_DATE), pa.date32())
        rows = batch.num_rows
        missing = np.asarray(pc.is_null(dates).to_numpy(zero_copy_only=False), dtype=bool)
        before = np.zeros(rows, dtype=bool)
        after = np.zeros(rows, dtype=bool)
        if self.params.min_date is not None:
            low = pa.scalar(self.params.min_date, pa.date32())
            before = np.asarray(pc.fill_null(pc.less(dates, low), False).to_numpy(), dtype=bool)
        if self.params.max_date is not None:
            high = pa.scalar(self.params.max_date, pa.date32())
            after = np.asarray(pc.fill_null(pc.greater(dates, high), False).to_numpy(), dtype=bool)
        keep = ~(before | after) & (~missing | (self.params.on_missing == "keep"))
        reasons = np.select(
            [missing, before, after],
            ["age_missing", "age_before_min_date", "age_after_max_date"],
            default="",
        )
        kept_years = pc.year(pc.filter(dates, pa.array(keep)))
        count_histogram(self.stats, "kept_year", kept_years)
        return Verdict(pa.array(keep), pa.array(reasons, pa.string()))
