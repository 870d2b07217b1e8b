"""A small real scorer for the score_filter and two-pass tests (no quality model needed).

``test_letter_share`` scores each document by the share of its characters that are letters
(a crude but real quality signal: markup, numbers and symbols score low). Documents shorter
than ``min_chars`` get no score (null), as a real scorer does for text too short to judge.
Registered by name so YAML pipelines run by the CLI can use it.
"""

from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from gristmill.core.registry import register_stage
from gristmill.core.stage import Stage, StageParams


class LetterShareParams(StageParams):
    column: str = Field("letter_share", description="the score column to write")
    min_chars: int = Field(0, ge=0, description="shorter documents get a null score")
    sleep_per_batch: float = Field(0.0, ge=0, description="slow down, so a run can be killed")


@register_stage
class LetterShare(Stage):
    name = "test_letter_share"
    Params = LetterShareParams
    params: LetterShareParams
    requires = ("text",)

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (pa.field(self.params.column, pa.float64()),)

    def process(self, batch: pa.Table) -> pa.Table:
        if self.params.sleep_per_batch:
            time.sleep(self.params.sleep_per_batch)
        text = pc.fill_null(batch.column("text"), "")
        length = pc.utf8_length(text)
        letters = pc.utf8_length(pc.replace_substring_regex(text, r"[^\p{L}]", ""))
        share = pc.divide(pc.cast(letters, pa.float64()), pc.cast(length, pa.float64()))
        score = pc.if_else(pc.greater_equal(length, max(self.params.min_chars, 1)), share, None)
        return batch.append_column(self.params.column, score)
