"""Real stages with corpus-wide phases, for the run driver's and the dedup stages' tests.

``test_text_repeats`` adds ``text_repeats``: how many documents of the whole run have the same
text (after lowercasing and collapsing whitespace), an exact-duplicate count. Its phase maps
every document to the hash of its text, reduces each key range to counts per document, and
routes each count back to its document, which is the shape of every dedup stage. The sleeps
slow a step down so that a test can kill the run inside it. Registered by name so that YAML
pipelines run by the CLI can use it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from gristmill.core.phase import KEY, ROW, TASK, CorpusPhase, PhaseResult, RowCursor, TaskInfo
from gristmill.core.registry import register_stage
from gristmill.core.stage import Stage, StageParams
from gristmill.stages.dedup.minhash import MinhashDedup, MinhashParams, MinhashPhase
from gristmill.stages.filters.id_hash import id_hashes, salt_for

REPEATS = "text_repeats"


def normalised_text(text: pa.ChunkedArray | pa.Array) -> pa.Array:
    lowered = pc.utf8_lower(pc.fill_null(text, ""))
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(lowered, r"\s+", " "))


class RepeatsParams(StageParams):
    reduce_rows: int = Field(1_000_000, ge=1, description="keyed rows one reduce task holds")
    sleep_map: float = Field(0.0, ge=0, description="seconds per map task")
    sleep_reduce: float = Field(0.0, ge=0, description="seconds per reduce task")
    sleep_per_batch: float = Field(0.0, ge=0, description="seconds per batch of the pass")


class TextRepeatsPhase(CorpusPhase):
    columns = ("text",)

    def __init__(self, params: RepeatsParams) -> None:
        self.params = params
        self.reduce_rows = params.reduce_rows

    def map(self, batches: Iterable[tuple[int, pa.Table]]) -> Iterator[pa.Table]:
        for first, batch in batches:
            keys = id_hashes(normalised_text(batch.column("text")), salt_for("test.repeats", 0))
            rows = np.arange(first, first + batch.num_rows, dtype=np.int64)
            yield pa.table({KEY: pa.array(keys, pa.uint64()), ROW: pa.array(rows)})
        time.sleep(self.params.sleep_map)

    def reduce(self, rows: pa.Table) -> pa.Table:
        time.sleep(self.params.sleep_reduce)
        frame = pl.from_arrow(rows)
        assert isinstance(frame, pl.DataFrame)
        counted = frame.with_columns(pl.len().over(KEY).alias(REPEATS))
        return counted.select(TASK, ROW, pl.col(REPEATS).cast(pl.Int64)).to_arrow()

    def finish(self, reduced: Iterator[pa.Table], inputs: object = None) -> dict[str, Any]:
        return {"small_outputs": sum(1 for _ in reduced)}


@register_stage
class TextRepeats(Stage):
    name = "test_text_repeats"
    Params = RepeatsParams
    params: RepeatsParams
    requires = ("text",)

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (pa.field(REPEATS, pa.int64()),)

    def corpus_phase(self) -> TextRepeatsPhase:
        return TextRepeatsPhase(self.params)

    def use_phase_result(self, result: PhaseResult) -> None:
        self._result = result

    def start_task(self, task: TaskInfo) -> None:
        self._cursor = RowCursor(self._result.rows_for(task))

    def process(self, batch: pa.Table) -> pa.Table:
        if self.params.sleep_per_batch:
            time.sleep(self.params.sleep_per_batch)
        rows = self._cursor.take(batch.num_rows)
        counts = np.ones(batch.num_rows, dtype=np.int64)
        counts[rows.column(ROW).to_numpy()] = rows.column(REPEATS).to_numpy()
        return batch.append_column(REPEATS, pa.array(counts))


class SlowMinhashParams(MinhashParams):
    sleep_map: float = Field(0.0, ge=0, description="seconds per map task")
    sleep_reduce: float = Field(0.0, ge=0, description="seconds per reduce task")
    sleep_per_batch: float = Field(0.0, ge=0, description="seconds per batch of the pass")


class SlowMinhashPhase(MinhashPhase):
    """The real MinHash phase, slowed down so that a test can kill a run inside a step."""

    def map(self, batches: Iterable[tuple[int, pa.Table]]) -> Iterator[pa.Table]:
        yield from super().map(batches)
        time.sleep(self.params.sleep_map)

    def reduce(self, rows: pa.Table) -> pa.Table | None:
        time.sleep(self.params.sleep_reduce)
        return super().reduce(rows)


@register_stage
class SlowMinhashDedup(MinhashDedup):
    name = "test_slow_minhash_dedup"
    Params = SlowMinhashParams  # type: ignore[assignment]

    def corpus_phase(self) -> SlowMinhashPhase:
        return SlowMinhashPhase(self.params)

    def judge(self, batch: pa.Table):  # type: ignore[no-untyped-def]
        time.sleep(self.params.sleep_per_batch)
        return super().judge(batch)
