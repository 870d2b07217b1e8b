"""``paragraph_dedup``: paragraphs (or lines) repeated across the run are removed after their
first occurrences: boilerplate, cookie notices, navigation, as dolma's paragraph dedup and
CCNet's line dedup do.

A document's units are its paragraphs (text between blank lines) or its lines. Each unit is
compared after a normalisation (``simplify`` by default: lowercase, no punctuation, numbers as
0, so that "© 2021 Acme." and "© 2023 Acme" are one unit); units that are empty after it, or
shorter than ``min_chars``, are never removed. A unit that occurs more than ``keep_first``
times in the run is kept in its first ``keep_first`` occurrences, in the order of document id
(then unit position), and removed from every later one, with the blank line or line break
that followed it. A document left with no text is dropped (``paragraph_dedup:empty``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from gristmill.core import columns
from gristmill.core.filter import FilterParams, Verdict
from gristmill.core.phase import (
    DEFAULT_REDUCE_ROWS,
    KEY,
    ROW,
    TASK,
    CorpusPhase,
    PhaseInputs,
)
from gristmill.core.registry import register_stage
from gristmill.stages.dedup.base import PhaseRows
from gristmill.stages.dedup.clusters import DOC_ID
from gristmill.stages.dedup.normalise import normalised
from gristmill.stages.filters.id_hash import id_hashes, salt_for

CHECK = "check"
UNIT = "unit"
#: A paragraph ends at a line break followed by one or more blank lines.
PARAGRAPH_BREAK = r"\n(?:[ \t\r\f\v]*\n)+"


class ParagraphDedupParams(FilterParams):
    unit: Literal["paragraph", "line"] = Field(
        "paragraph", description="paragraph: text between blank lines; line: each line"
    )
    keep_first: int = Field(1, ge=1, description="occurrences of a unit kept in the run")
    min_chars: int = Field(
        1, ge=1, description="units shorter than this (normalised) are never removed"
    )
    normalise: Literal["none", "whitespace", "simplify"] = Field(
        "simplify", description="how units are compared (see exact_dedup)"
    )
    reduce_rows: int = Field(DEFAULT_REDUCE_ROWS, ge=1, description="keyed rows per reduce task")


def split_units(text: str, unit: str) -> tuple[list[str], list[str]]:
    """A text's units and the separators after each (the last one's is empty)."""
    pattern = "\n" if unit == "line" else PARAGRAPH_BREAK
    pieces = re.split(f"({pattern})", text)
    return pieces[0::2], [*pieces[1::2], ""]


def units_frame(texts: pa.Array | pa.ChunkedArray, unit: str) -> pl.DataFrame:
    """Every unit of every text: (doc, unit index, unit text), as ``split_units`` cuts them."""
    series = pl.Series("text", texts).cast(pl.String).fill_null("")
    if unit == "paragraph":
        series = series.str.replace_all(PARAGRAPH_BREAK, "\x00\x01\x00")
        separator = "\x00\x01\x00"
    else:
        separator = "\n"
    return (
        pl.DataFrame({"doc": np.arange(len(series)), "text": series.str.split(separator)})
        .with_columns(pl.int_ranges(pl.col("text").list.len()).alias(UNIT))
        .explode("text", UNIT)
    )


def without_units(text: str, gone: set[int], unit: str) -> str:
    """The text without the units at positions ``gone``, each with the break that followed
    it; the text's last kept unit ends it (no dangling break)."""
    units, separators = split_units(text, unit)
    kept = [(u, s) for i, (u, s) in enumerate(zip(units, separators, strict=True)) if i not in gone]
    if not kept:
        return ""
    kept[-1] = (kept[-1][0], "")
    return "".join(u + s for u, s in kept)


class ParagraphPhase(CorpusPhase):
    """Map: two hashes per unit. Reduce: the occurrences past the first ones, per document."""

    def __init__(self, params: ParagraphDedupParams) -> None:
        self.params = params
        self.columns = (columns.ID, columns.TEXT)
        self.reduce_rows = params.reduce_rows

    def map(self, batches: Iterable[tuple[int, pa.Table]]) -> Iterator[pa.Table]:
        p = self.params
        for first, batch in batches:
            units = units_frame(batch.column(columns.TEXT), p.unit)
            compared = normalised(units["text"].to_arrow(), p.normalise)
            long_enough = pc.greater_equal(pc.utf8_length(compared), p.min_chars).to_numpy(False)
            units = units.filter(pl.Series(long_enough))
            if units.height == 0:
                continue
            chosen = compared.filter(pa.array(long_enough))
            ids = batch.column(columns.ID).combine_chunks().cast(pa.string())
            docs = units["doc"].to_numpy()
            yield pa.table(
                {
                    KEY: pa.array(id_hashes(chosen, salt_for("paragraph_dedup.key", 0))),
                    CHECK: pa.array(id_hashes(chosen, salt_for("paragraph_dedup.check", 0))),
                    ROW: pa.array(docs.astype(np.int64) + first),
                    UNIT: pa.array(units[UNIT].to_numpy().astype(np.int32)),
                    DOC_ID: ids.take(pa.array(docs)),
                }
            )

    def reduce(self, rows: pa.Table) -> pa.Table | None:
        frame = pl.from_arrow(rows)
        assert isinstance(frame, pl.DataFrame)
        ordered = frame.sort([KEY, CHECK, DOC_ID, TASK, ROW, UNIT]).with_columns(
            pl.int_range(pl.len()).over([KEY, CHECK]).alias("_occurrence")
        )
        removed = ordered.filter(pl.col("_occurrence") >= self.params.keep_first)
        if removed.height == 0:
            return None
        return removed.select(TASK, ROW, UNIT).to_arrow()

    def finish(
        self, reduced: Iterator[pa.Table], inputs: PhaseInputs | None = None
    ) -> dict[str, Any]:
        return {"unit": self.params.unit, "keep_first": self.params.keep_first}


@register_stage
class ParagraphDedup(PhaseRows):
    """Removes paragraphs (or lines) repeated across the run after their first occurrences."""

    name = "paragraph_dedup"
    Params = ParagraphDedupParams  # type: ignore[assignment]
    params: ParagraphDedupParams
    requires = (columns.ID, columns.TEXT)
    finds = "the whole run's repeated paragraphs"

    @property
    def drop_reason(self) -> str:
        return f"{self.name}:empty"

    def corpus_phase(self) -> ParagraphPhase:
        return ParagraphPhase(self.params)

    def judge(self, batch: pa.Table) -> Verdict:
        removals = self.phase_rows(batch)
        if removals.num_rows == 0:
            return Verdict(pa.repeat(pa.scalar(True), batch.num_rows))
        text_column = batch.column(columns.TEXT)
        texts = text_column.to_pylist()
        by_row: dict[int, set[int]] = {}
        for row, unit in zip(
            removals.column(ROW).to_pylist(), removals.column(UNIT).to_pylist(), strict=True
        ):
            by_row.setdefault(row, set()).add(unit)
        emptied = np.zeros(batch.num_rows, dtype=bool)
        removed_chars = 0
        for row, gone in by_row.items():
            before = texts[row] or ""
            texts[row] = without_units(before, gone, self.params.unit)
            removed_chars += len(before) - len(texts[row])
            emptied[row] = not texts[row].strip()
        self.stats.count("units_removed", removals.num_rows)
        self.stats.count("documents_edited", len(by_row))
        self.stats.count("characters_removed", removed_chars)
        position = batch.column_names.index(columns.TEXT)
        edited = batch.set_column(position, columns.TEXT, pa.array(texts, text_column.type))
        return Verdict(pa.array(~emptied), edited=edited)
