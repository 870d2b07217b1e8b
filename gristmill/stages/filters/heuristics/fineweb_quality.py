"""FineWeb's line-level quality rules (Penedo et al. 2024), deciding as datatrove's filter does.

Lines are ``text.split("\\n")`` without blank ones; the list rule compares line breaks with
the word count, which is the only word-based statistic here, so only documents whose ratio
sits near ``new_line_ratio`` are re-counted with spaCy's exact words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import polars as pl
from pydantic import Field

from gristmill.core.filter import FilterParams
from gristmill.core.registry import register_stage
from gristmill.stages.filters.heuristics.base import (
    HeuristicFilter,
    HeuristicParams,
    first_reason,
    ratio,
)
from gristmill.stages.filters.heuristics.text import (
    PY_WHITESPACE,
    TERMINAL_PUNCTUATION,
    WS,
    batch_words,
    char_class,
    exact_words,
)


class FineWebQualityParams(HeuristicParams):
    line_punct_thr: float = Field(
        0.12, description="smaller share of lines ending in terminal punctuation: drop"
    )
    line_punct_exclude_zero: bool = Field(
        False, description="keep documents where no line ends in punctuation"
    )
    stop_chars: list[str] | None = Field(
        None, description="line endings that count as punctuation (default: sentence ends)"
    )
    short_line_thr: float = Field(0.67, description="larger share of short lines: drop")
    short_line_length: int = Field(30, description="a line this long or shorter is short")
    char_duplicates_ratio: float = Field(
        0.01, description="larger share of characters in repeated lines: drop"
    )
    new_line_ratio: float = Field(0.3, description="more line breaks per word: drop")


@register_stage
class FineWebQuality(HeuristicFilter):
    """Drops list-like, unpunctuated, short-lined or line-repeating documents."""

    name = "fineweb_quality"
    Params: ClassVar[type[FilterParams]] = FineWebQualityParams
    params: FineWebQualityParams

    def _stats(self, texts: pl.DataFrame) -> dict[str, np.ndarray]:
        p = self.params
        stops = TERMINAL_PUNCTUATION if p.stop_chars is None else frozenset(p.stop_chars)
        text = pl.col("text")
        lines = (
            texts.select(text.str.split("\n").alias("line"))
            .with_row_index("doc")
            .explode("line")
            .filter(pl.col("line").str.strip_chars(PY_WHITESPACE) != "")
        )
        if p.stop_chars is None or all(len(stop) == 1 for stop in stops):
            ends = pl.col("line").str.contains(f"[{char_class(stops)}]$")
        else:
            ends = pl.any_horizontal([pl.col("line").str.ends_with(stop) for stop in stops])
        per_doc = (
            lines.with_columns(
                ends=ends,
                short=pl.col("line").str.len_chars() <= p.short_line_length,
                repeat_chars=pl.when(pl.struct("doc", "line").is_first_distinct())
                .then(0)
                .otherwise(pl.col("line").str.len_chars()),
            )
            .group_by("doc")
            .agg(
                n_lines=pl.len(),
                ends=pl.col("ends").sum(),
                short=pl.col("short").sum(),
                repeat_chars=pl.col("repeat_chars").sum(),
            )
        )
        stats = {
            name: np.zeros(texts.height) for name in ("n_lines", "ends", "short", "repeat_chars")
        }
        doc = per_doc["doc"].to_numpy()
        for name in stats:
            stats[name][doc] = per_doc[name].to_numpy()
        frame = texts.select(
            breaks=text.str.count_matches("\n", literal=True),
            length=text.str.len_chars(),
        )
        stats["breaks"] = frame["breaks"].to_numpy().astype(np.float64)
        stats["length"] = frame["length"].to_numpy().astype(np.float64)
        return stats

    def _rules(self, s: dict[str, np.ndarray]) -> list[tuple[np.ndarray, str]]:
        p = self.params
        punct = ratio(s["ends"], s["n_lines"])
        punct_fail = punct < p.line_punct_thr
        if p.line_punct_exclude_zero:
            punct_fail &= punct != 0
        return [
            (s["n_lines"] == 0, "empty"),
            (punct_fail, "line_punct_ratio"),
            (ratio(s["short"], s["n_lines"]) > p.short_line_thr, "short_line_ratio"),
            (
                ratio(s["repeat_chars"], s["length"] - s["breaks"]) > p.char_duplicates_ratio,
                "char_dup_ratio",
            ),
            (ratio(s["breaks"], s["words"]) > p.new_line_ratio, "list_ratio"),
        ]

    def _rows_needing_words(
        self, texts: pl.DataFrame, stats: dict[str, np.ndarray], rows: np.ndarray
    ) -> np.ndarray:
        """Of ``rows``, those whose list rule needs the word count; the rest get a bound.

        Every whitespace-separated chunk holds at least one word, so the chunk count bounds
        the words from below and line breaks per chunk bound the ratio from above: a row
        below the threshold (less the re-check margin) by that bound passes the rule and is
        not near it whatever its words, and keeps the chunk count as its word count.
        """
        if not len(rows):
            return rows
        chunks = (
            texts[rows.tolist()]
            .select(pl.col("text").str.count_matches(f"[^{WS}]+"))["text"]
            .to_numpy()
            .astype(np.float64)
        )
        stats["words"][rows] = chunks
        threshold = self.params.new_line_ratio
        margin = self.params.exact_margin * max(abs(threshold), 1e-9)
        bound = ratio(stats["breaks"][rows], chunks)
        if self.params.exact_margin > 0:
            return rows[bound >= threshold - margin]
        return rows[bound > threshold]

    def decide(self, texts: pl.DataFrame) -> Sequence[str | None]:
        stats = self._stats(texts)
        stats["words"] = np.zeros(texts.height)
        decided = np.zeros(texts.height, dtype=bool)
        for failed, reason in self._rules(stats):
            if reason != "list_ratio":
                decided |= failed
        # Only documents the line rules keep need their words counted.
        rows = self._rows_needing_words(texts, stats, np.flatnonzero(~decided))
        if len(rows):
            subset = texts[rows.tolist()]
            # The words of the filters before (same documents) when there are some.
            stats["words"][rows] = batch_words(subset["text"]).list.len().to_numpy()
            near = rows[
                self.near(
                    ratio(stats["breaks"][rows], stats["words"][rows]), self.params.new_line_ratio
                )
            ]
            column = texts["text"]
            for row in near:
                stats["words"][row] = len(exact_words(column[int(row)]))
            self.stats.count("exact_rechecks", len(near))
        return first_reason(self._rules(stats), texts.height)
