"""Gopher's quality rules (Rae et al. 2021, table A1), deciding as datatrove's filter does.

Word statistics come from the batch-wide word splitter; line statistics from
``str.splitlines`` semantics. The reasons are datatrove's (``gopher_short_doc``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import polars as pl
from pydantic import Field

from gristmill.core.filter import FilterParams
from gristmill.core.registry import register_stage
from gristmill.native.words import word_stats as _kernel_word_stats
from gristmill.stages.filters.heuristics.base import (
    HeuristicFilter,
    HeuristicParams,
    first_reason,
    ratio,
)
from gristmill.stages.filters.heuristics.text import (
    INLINE_WS,
    SYMBOLS,
    batch_words,
    exact_words,
    normalise_line_breaks,
    word_views,
)

STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
#: The word statistics, in the order of ``word_counts``' rows and ``_word_stats``' tuple.
WORD_STATS = ("n_words", "n_content", "content_chars", "n_alpha", "n_stop")
#: Every symbol, for the kernel.
_SYMBOL_STRING = "".join(sorted(SYMBOLS))


class GopherQualityParams(HeuristicParams):
    min_doc_words: int | None = Field(50, description="fewer non-symbol words: drop")
    max_doc_words: int | None = Field(100_000, description="more non-symbol words: drop")
    min_avg_word_length: float | None = Field(3, description="shorter mean word length: drop")
    max_avg_word_length: float | None = Field(10, description="longer mean word length: drop")
    max_symbol_word_ratio: float | None = Field(
        0.1, description="more '#' or ellipses per word: drop"
    )
    max_bullet_lines_ratio: float | None = Field(
        0.9, description="larger share of lines starting with a bullet: drop"
    )
    max_ellipsis_lines_ratio: float | None = Field(
        0.3, description="larger share of lines ending with an ellipsis: drop"
    )
    max_non_alpha_words_ratio: float | None = Field(
        0.8, description="smaller share of words holding a letter: drop (datatrove's name)"
    )
    min_stop_words: int | None = Field(2, description="fewer distinct stop words: drop")
    stop_words: list[str] = Field(
        default_factory=lambda: list(STOP_WORDS), description="the stop words counted"
    )


def word_counts(lists: pl.Series, stop_words: Sequence[str]) -> np.ndarray:
    """``WORD_STATS`` of every word list: an int64 array of one row per statistic.

    Words; words holding a character that is not in ``SYMBOLS`` (or a letter); the characters
    (code points) of those; words holding a letter (``\\p{L}``); how many distinct
    ``stop_words`` (case-sensitive) are among the words. A null list has no words.
    """
    doc_offsets, views, buffers = word_views(lists)
    counts = np.zeros((len(WORD_STATS), len(doc_offsets) - 1), dtype=np.int64)
    _kernel_word_stats(doc_offsets, views, buffers, _SYMBOL_STRING, list(stop_words), counts)
    return counts


def _word_stats(tokens: list[str], stop_words: frozenset[str]) -> tuple[int, int, int, int, int]:
    """(words, non-symbol words, their characters, words with a letter, stop words) of a list:
    ``word_counts`` of one list, for spaCy's words in the exact re-check."""
    content = [w for w in tokens if not SYMBOLS.issuperset(w)]
    alpha = sum(1 for w in tokens if any(c.isalpha() for c in w))
    return (
        len(tokens),
        len(content),
        sum(map(len, content)),
        alpha,
        len(stop_words.intersection(tokens)),
    )


@register_stage
class GopherQuality(HeuristicFilter):
    """Drops documents failing Gopher's word count, word length, symbol, list or stop words."""

    name = "gopher_quality"
    Params: ClassVar[type[FilterParams]] = GopherQualityParams
    params: GopherQualityParams

    def _stats(self, texts: pl.DataFrame) -> dict[str, np.ndarray]:
        text = pl.col("text")
        # Normalised once: the line counts below read it four times.
        lines = pl.col("lines")
        frame = texts.with_columns(lines=normalise_line_breaks(text)).select(
            hashes=text.str.count_matches("#", literal=True),
            ellipses=text.str.count_matches("...", literal=True)
            + text.str.count_matches("…", literal=True),
            n_lines=pl.when(lines == "")
            .then(0)
            .otherwise(lines.str.strip_suffix("\n").str.count_matches("\n", literal=True) + 1),
            bullets=lines.str.count_matches(f"(?m)^[{INLINE_WS}]*[•-]"),
            end_ellipses=lines.str.count_matches(f"(?m)(?:\\.\\.\\.|…)[{INLINE_WS}]*$"),
        )
        stats = {name: frame[name].to_numpy().astype(np.float64) for name in frame.columns}
        stats.update(self._word_stats(batch_words(texts["text"])))
        return stats

    def _word_stats(self, words: pl.Series) -> dict[str, np.ndarray]:
        """Per document: words, non-symbol words and their characters, words with a letter,
        distinct stop words.

        One pass of the C kernel over the words' Arrow buffers (``word_counts``).
        """
        counts = word_counts(words, self.params.stop_words)
        return {name: counts[k].astype(np.float64) for k, name in enumerate(WORD_STATS)}

    def _rules(self, s: dict[str, np.ndarray]) -> list[tuple[np.ndarray, str]]:
        p = self.params
        mean_length = ratio(s["content_chars"], s["n_content"])
        rules = []
        if p.min_doc_words:
            rules.append((s["n_content"] < p.min_doc_words, "gopher_short_doc"))
        if p.max_doc_words:
            rules.append((s["n_content"] > p.max_doc_words, "gopher_long_doc"))
        if p.min_avg_word_length:
            rules.append((mean_length < p.min_avg_word_length, "gopher_below_avg_threshold"))
        if p.max_avg_word_length:
            rules.append((mean_length > p.max_avg_word_length, "gopher_above_avg_threshold"))
        if p.max_symbol_word_ratio:
            limit = p.max_symbol_word_ratio
            rules.append((ratio(s["hashes"], s["n_words"]) > limit, "gopher_too_many_hashes"))
            rules.append((ratio(s["ellipses"], s["n_words"]) > limit, "gopher_too_many_ellipsis"))
        if p.max_bullet_lines_ratio:
            bullets = ratio(s["bullets"], s["n_lines"])
            rules.append((bullets > p.max_bullet_lines_ratio, "gopher_too_many_bullets"))
        if p.max_ellipsis_lines_ratio:
            ends = ratio(s["end_ellipses"], s["n_lines"])
            rules.append((ends > p.max_ellipsis_lines_ratio, "gopher_too_many_end_ellipsis"))
        if p.max_non_alpha_words_ratio:
            alpha = ratio(s["n_alpha"], s["n_words"])
            rules.append((alpha < p.max_non_alpha_words_ratio, "gopher_below_alpha_threshold"))
        if p.min_stop_words:
            rules.append((s["n_stop"] < p.min_stop_words, "gopher_enough_stop_words"))
        return rules

    def _borderline(self, s: dict[str, np.ndarray]) -> np.ndarray:
        """Rows whose decision the fast word splitter could have got wrong.

        A row failing a rule by a clear margin is dropped whatever the exact words say, so
        only rows near a word-based threshold and not clearly failing are re-checked.
        """
        p = self.params
        mean_length = ratio(s["content_chars"], s["n_content"])
        hashes = ratio(s["hashes"], s["n_words"])
        ellipses = ratio(s["ellipses"], s["n_words"])
        alpha = ratio(s["n_alpha"], s["n_words"])
        checks = [
            (s["n_content"], p.min_doc_words, -1),
            (s["n_content"], p.max_doc_words, 1),
            (mean_length, p.min_avg_word_length, -1),
            (mean_length, p.max_avg_word_length, 1),
            (hashes, p.max_symbol_word_ratio, 1),
            (ellipses, p.max_symbol_word_ratio, 1),
            (alpha, p.max_non_alpha_words_ratio, -1),
            (s["n_stop"] - 0.5, (p.min_stop_words or 0) - 0.5 or None, -1),
        ]
        near = np.zeros(len(mean_length), dtype=bool)
        clear_fail = np.zeros(len(mean_length), dtype=bool)
        for value, threshold, direction in checks:
            if not threshold:
                continue
            close = self.near(value, threshold)
            near |= close
            clear_fail |= ~close & ((value - threshold) * direction > 0)
        for failed, _ in self._rules(s):
            if _ in ("gopher_too_many_bullets", "gopher_too_many_end_ellipsis"):
                clear_fail |= failed
        return near & ~clear_fail

    def decide(self, texts: pl.DataFrame) -> Sequence[str | None]:
        stats = self._stats(texts)
        rows = np.flatnonzero(self._borderline(stats))
        if len(rows):
            stop_words = frozenset(self.params.stop_words)
            column = texts["text"]
            for row in rows:
                exact = _word_stats(exact_words(column[int(row)]), stop_words)
                for name, value in zip(WORD_STATS, exact, strict=True):
                    stats[name][row] = value
            self.stats.count("exact_rechecks", len(rows))
        return first_reason(self._rules(stats), texts.height)
