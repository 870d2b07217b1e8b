"""Small real stages for exercising the executors: they do real work on real batches."""

from __future__ import annotations

import os
import time

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from gristmill.core.filter import Filter, FilterParams
from gristmill.core.stage import Stage, StageParams


class LengthParams(StageParams):
    sleep_per_batch: float = Field(0.0, ge=0)


class TextLength(Stage):
    """Adds ``text_length`` (characters); optionally slow, so a run can be interrupted."""

    name = "test_text_length"
    Params = LengthParams
    requires = ("text",)

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (pa.field("text_length", pa.int64()),)

    def process(self, batch: pa.Table) -> pa.Table:
        if self.params.sleep_per_batch:
            time.sleep(self.params.sleep_per_batch)
        lengths = pc.fill_null(pc.utf8_length(batch.column("text")), 0).cast(pa.int64())
        return batch.append_column("text_length", lengths)


class MinLengthParams(FilterParams):
    min_chars: int = 100


class MinLength(Filter):
    """Keeps documents of at least ``min_chars`` characters."""

    name = "test_min_length"
    Params = MinLengthParams
    requires = ("text",)

    def keep(self, batch: pa.Table) -> pa.BooleanArray:
        return pc.greater_equal(pc.utf8_length(batch.column("text")), self.params.min_chars)


class NeedsColumn(Stage):
    """Reads a column nothing provides, to exercise validation."""

    name = "test_needs_column"
    requires = ("text", "quality_score")

    def process(self, batch: pa.Table) -> pa.Table:
        return batch


class KillParams(StageParams):
    victim_source: str
    sentinel: str


class KillWorkerOnce(Stage):
    """Kills its own worker process the first time it sees ``victim_source`` (sentinel file)."""

    name = "test_kill_worker_once"
    Params = KillParams

    def process(self, batch: pa.Table) -> pa.Table:
        sources = (
            set(batch.column("source").to_pylist()) if "source" in batch.column_names else set()
        )
        if self.params.victim_source in sources and not os.path.exists(self.params.sentinel):
            with open(self.params.sentinel, "w") as handle:
                handle.write(str(os.getpid()))
            os._exit(137)
        return batch
