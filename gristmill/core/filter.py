"""The filter contract: a stage that decides which rows stay, with the bookkeeping done once.

A subclass only says which rows to keep (and optionally why the others go); the base class
does the dropping, the drop counting by reason, the ``annotate`` mode (add ``keep_<name>``,
drop nothing) and hands the dropped rows to the rejects writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from gristmill.core.stage import Stage, StageParams, StageResult


class FilterParams(StageParams):
    mode: Literal["drop", "annotate"] = Field(
        "drop",
        description="drop: remove rejected rows; annotate: add a keep_<name> column, drop nothing",
    )


@dataclass
class Verdict:
    """Which rows to keep; ``reasons`` optionally says, per row, why a dropped row goes.

    A filter that edits what it keeps in the same pass (C4's line removal, ProX programs)
    returns the edited batch as ``edited`` (same rows, same order), instead of passing hidden
    state between methods; kept rows go on and dropped rows go to the rejects from it (a
    filter that wants its rejects as they came leaves those rows unedited there).
    """

    keep: pa.BooleanArray
    reasons: pa.Array | None = None
    edited: pa.Table | None = None


class Filter(Stage):
    """Base class of every filter. Implement ``keep`` or, for per-row reasons, ``judge``."""

    Params: ClassVar[type[StageParams]] = FilterParams
    params: FilterParams

    @property
    def keep_column(self) -> str:
        return f"keep_{self.name}"

    @property
    def drop_reason(self) -> str:
        """The reason recorded for dropped rows when ``judge`` gives none per row."""
        return self.name

    def keep(self, batch: pa.Table) -> pa.BooleanArray:
        raise NotImplementedError(f"filter {self.name!r} implements neither keep() nor judge()")

    def judge(self, batch: pa.Table) -> Verdict:
        return Verdict(self.keep(batch))

    def produced_fields(self) -> tuple[pa.Field, ...]:
        if self.params.mode == "annotate":
            return (pa.field(self.keep_column, pa.bool_()),)
        return ()

    def process(self, batch: pa.Table) -> pa.Table:
        return self.run_batch(batch).table

    def run_batch(self, batch: pa.Table) -> StageResult:
        return self.apply_verdict(batch, self.judge(batch))

    def apply_verdict(self, batch: pa.Table, verdict: Verdict) -> StageResult:
        """Drop (or annotate) by a verdict, counting drops by reason."""
        # A null decision is a drop: a filter that cannot say yes does not keep the row.
        keep = pc.fill_null(verdict.keep, False)
        edited = batch if verdict.edited is None else verdict.edited
        if len(keep) != batch.num_rows or edited.num_rows != batch.num_rows:
            raise ValueError(
                f"filter {self.name!r} returned {len(keep)} decisions and {edited.num_rows} "
                f"edited rows for {batch.num_rows} rows"
            )
        if self.params.mode == "annotate":
            return StageResult(edited.append_column(self.keep_column, keep))
        dropped = pc.invert(keep)
        reasons = verdict.reasons
        if reasons is None:
            reasons = pa.repeat(pa.scalar(self.drop_reason), batch.num_rows)
        rejected = edited.filter(dropped)
        dropped_reasons = pc.fill_null(pc.filter(reasons, dropped), self.drop_reason)
        self.stats.dropped.update(dropped_reasons.to_pylist())
        return StageResult(edited.filter(keep), rejected, dropped_reasons)
