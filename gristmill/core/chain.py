"""Stages in order, validated before any data flows, run batch by batch with their counters.

A chain is what every worker runs: it sets its stages up once, resets their counters at each
task so that a task's stats are its own, and labels each stage by its position in the whole
pipeline (``03_gopher_quality``), the labels that ``stats.json`` and the rejects carry. A pass
of a longer pipeline (``part``) keeps the labels its stages have in the whole.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from gristmill.core import columns
from gristmill.core.phase import TaskInfo
from gristmill.core.resources import Resources
from gristmill.core.stage import Stage
from gristmill.core.stats import PipelineStats
from gristmill.errors import PipelineValidationError


@dataclass
class Rejected:
    """Rows one stage dropped from one batch, with the reason of each."""

    stage: str
    table: pa.Table
    reasons: pa.Array


def character_count(table: pa.Table) -> int:
    if columns.TEXT not in table.column_names or table.num_rows == 0:
        return 0
    total = pc.sum(pc.utf8_length(table.column(columns.TEXT))).as_py()
    return int(total or 0)


def stage_labels(stages: Sequence[Stage]) -> list[str]:
    """Unique, ordered keys for the stats: each stage's position (from 1) and name."""
    return [f"{i:02d}_{stage.name}" for i, stage in enumerate(stages, start=1)]


class StageChain:
    """Stages in order; ``labels`` default to their positions (see ``stage_labels``)."""

    def __init__(self, stages: Sequence[Stage], *, labels: Sequence[str] | None = None) -> None:
        self.stages = list(stages)
        self.stage_labels = list(labels) if labels is not None else stage_labels(self.stages)
        if len(self.stage_labels) != len(self.stages):
            raise ValueError("one label per stage")
        self._is_set_up = False

    # -- description -----------------------------------------------------------------------
    @property
    def resources(self) -> Resources:
        total = Resources(cpus=1.0)
        for stage in self.stages:
            total = total.combine(stage.resources)
        return total

    def part(self, start: int, stop: int) -> StageChain:
        """Stages ``[start, stop)`` as a chain of their own, keeping their labels."""
        return StageChain(self.stages[start:stop], labels=self.stage_labels[start:stop])

    def spec(self) -> dict[str, Any]:
        return {"stages": [stage.spec() for stage in self.stages]}

    def fingerprint(self, **extra: Any) -> str:
        """A hash of what decides the output's content: the stages, their parameters, ``extra``."""
        payload = json.dumps({"stages": self.spec()["stages"], **extra}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    # -- validation ----------------------------------------------------------------------
    def validate(self, input_schema: pa.Schema, *, source: str = "the input") -> pa.Schema:
        """Check every stage's required columns; return the output schema.

        Fails naming the stage and the column when neither the input nor an earlier stage
        provides it, so a misconfigured run stops before it reads a single document.
        """
        if columns.TEXT not in input_schema.names:
            raise PipelineValidationError(
                f"{source} has no '{columns.TEXT}' column "
                f"(columns: {', '.join(input_schema.names) or 'none'})"
            )
        text_type = input_schema.field(columns.TEXT).type
        if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
            raise PipelineValidationError(
                f"{source}: column '{columns.TEXT}' is {text_type}, not a string"
            )
        fields = {field.name: field for field in input_schema}
        for label, stage in zip(self.stage_labels, self.stages, strict=True):
            for column in stage.requires:
                if column not in fields:
                    raise PipelineValidationError(
                        f"stage '{stage.name}' ({label}) needs column '{column}', which neither "
                        f"{source} nor an earlier stage provides "
                        f"(available: {', '.join(fields) or 'none'})"
                    )
            for field in stage.produced_fields():
                fields[field.name] = field.with_nullable(True)
        return pa.schema(list(fields.values()), metadata=input_schema.metadata)

    # -- running -------------------------------------------------------------------------
    def setup(self) -> None:
        """Load every stage's models; idempotent, so a worker pays for it once."""
        if self._is_set_up:
            return
        for stage in self.stages:
            stage.setup()
        self._is_set_up = True

    def teardown(self) -> None:
        if not self._is_set_up:
            return
        for stage in reversed(self.stages):
            stage.teardown()
        self._is_set_up = False

    def start_task(self, task: TaskInfo | None = None) -> None:
        for stage in self.stages:
            stage.reset_stats()
            if task is not None:
                stage.start_task(task)

    def finish_task(self) -> PipelineStats:
        stats = PipelineStats(tasks=1)
        for label, stage in zip(self.stage_labels, self.stages, strict=True):
            stats.stages[label] = stage.reset_stats()
        return stats

    def apply(self, table: pa.Table) -> tuple[pa.Table, list[Rejected]]:
        """Run one batch through every stage, counting documents, characters and time."""
        rejected: list[Rejected] = []
        for label, stage in zip(self.stage_labels, self.stages, strict=True):
            stats = stage.stats
            stats.docs_in += table.num_rows
            stats.chars_in += character_count(table)
            started = time.perf_counter()
            result = stage.run_batch(table)
            stats.seconds += time.perf_counter() - started
            table = result.table
            stats.docs_out += table.num_rows
            stats.chars_out += character_count(table)
            if result.rejected is not None and result.rejected.num_rows:
                reasons = result.reasons
                if reasons is None:
                    reasons = pa.repeat(pa.scalar(stage.name), result.rejected.num_rows)
                rejected.append(Rejected(label, result.rejected, reasons))
            if table.num_rows == 0:
                break
        return table, rejected
