"""What every heuristic filter shares: reading the texts, the exact re-check, the verdict.

Each filter computes its statistics for the whole batch at once (polars), decides with numpy
in the reference order of its rules, and re-checks with spaCy's exact words only the rows
whose word-based statistics sit within ``exact_margin`` of a threshold, where the fast word
splitter could land on the other side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import polars as pl
import pyarrow as pa
from pydantic import Field

from gristmill.core import columns
from gristmill.core.filter import Filter, FilterParams, Verdict
from gristmill.errors import ConfigError
from gristmill.stages.filters.heuristics.text import spacy_available


class HeuristicParams(FilterParams):
    exact_margin: float = Field(
        0.0,
        ge=0.0,
        description="re-check with spaCy's exact English words the documents whose word "
        "statistics are within this relative distance of a threshold (0: never)",
    )


class HeuristicFilter(Filter):
    """Base of the heuristic filters: ``decide`` gives one reason (or None) per row."""

    Params: ClassVar[type[FilterParams]] = HeuristicParams
    params: HeuristicParams
    requires = (columns.ID, columns.TEXT)

    def setup(self) -> None:
        if self.params.exact_margin > 0 and not spacy_available():
            raise ConfigError(
                f"stage {self.name!r}, parameter 'exact_margin': the exact re-check needs "
                "spaCy (pip install spacy), or set exact_margin: 0"
            )

    def texts(self, batch: pa.Table) -> pl.DataFrame:
        """The batch's texts as a one-column frame, a null text read as ``""``."""
        text = pl.from_arrow(batch.select([columns.TEXT]).combine_chunks())
        assert isinstance(text, pl.DataFrame)
        return text.select(pl.col(columns.TEXT).cast(pl.String).fill_null(""))

    def decide(self, texts: pl.DataFrame) -> Sequence[str | None]:
        raise NotImplementedError

    def judge(self, batch: pa.Table) -> Verdict:
        reasons = self.decide(self.texts(batch))
        keep = pa.array([reason is None for reason in reasons], pa.bool_())
        return Verdict(keep, pa.array(reasons, pa.string()))

    def near(self, value: np.ndarray, threshold: float | None) -> np.ndarray:
        """Rows whose ``value`` is within the margin of ``threshold`` (relative)."""
        if threshold is None or self.params.exact_margin <= 0:
            return np.zeros(len(value), dtype=bool)
        margin = self.params.exact_margin * max(abs(threshold), 1e-9)
        return np.abs(value - threshold) <= margin


def first_reason(rules: Sequence[tuple[np.ndarray, str]], rows: int) -> list[str | None]:
    """Per row, the reason of the first rule (in order) that row fails, else None."""
    reasons = np.full(rows, None, dtype=object)
    undecided = np.ones(rows, dtype=bool)
    for failed, reason in rules:
        hit = undecided & failed
        reasons[hit] = reason
        undecided &= ~hit
    return reasons.tolist()  # type: ignore[no-any-return]


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, with 0 where the denominator is 0 (no division warning)."""
    out = np.zeros(len(numerator), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out
