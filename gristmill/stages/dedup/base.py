"""What every dedup stage shares: its parameters, its keyed rows, and its apply pass.

A dedup stage is a filter with a corpus-wide phase (``core.phase``): the phase finds the
clusters over the whole run and routes each clustered document's row back to it (its
cluster, the cluster's size, whether it is the one kept); the stage's pass then adds
``dup_cluster`` (the kept document's id; a document without duplicates is its own cluster)
and ``dup_cluster_size``, and in ``drop`` mode keeps one document per cluster, the others
going to the rejects (``drop_reason`` ``<stage>:duplicate``, ``dup_cluster`` naming the
document kept). ``annotate`` drops nothing.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from gristmill.core import columns
from gristmill.core.filter import Filter, FilterParams, Verdict
from gristmill.core.phase import (
    DEFAULT_REDUCE_ROWS,
    KEY,
    ROW,
    PhaseResult,
    RowCursor,
    TaskInfo,
)
from gristmill.errors import ConfigError
from gristmill.stages.dedup.clusters import DOC_ID, DUP_CLUSTER, DUP_CLUSTER_SIZE, KEEP, PRIORITY


class DedupParams(FilterParams):
    prefer: str | None = Field(
        "quality_score",
        description="keep, in each cluster, the document with the highest value of this "
        "column when the input has it (missing counts lowest); then the smallest id",
    )
    reduce_rows: int = Field(
        DEFAULT_REDUCE_ROWS,
        ge=1,
        description="keyed rows one reduce task holds; more are split by key range",
    )


def priorities(batch: pa.Table, prefer: str | None) -> pa.Array:
    """The ``prefer`` column as float64, null where missing (or NaN, or the column absent)."""
    if prefer is None or prefer not in batch.column_names:
        return pa.nulls(batch.num_rows, pa.float64())
    values = batch.column(prefer).combine_chunks()
    try:
        values = values.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise ConfigError(
            f"dedup: column '{prefer}' (prefer) is {values.type}, not a number"
        ) from None
    return pc.if_else(pc.is_nan(values), pa.scalar(None, pa.float64()), values)


def keyed(
    batch: pa.Table,
    first: int,
    positions: np.ndarray,
    keys: np.ndarray,
    prefer: str | None,
    **extra: pa.Array,
) -> pa.Table:
    """A map's keyed rows: one per key, for the batch rows at ``positions`` (the batch starts
    at row ``first`` of its task), with the document's id and priority."""
    take = pa.array(np.asarray(positions, dtype=np.int64))
    ids = batch.column(columns.ID).combine_chunks().cast(pa.string())
    return pa.table(
        {
            KEY: pa.array(keys, pa.uint64()),
            ROW: pa.array(np.asarray(positions, dtype=np.int64) + first),
            DOC_ID: ids.take(take),
            PRIORITY: priorities(batch, prefer).take(take),
            **extra,
        }
    )


class PhaseRows(Filter):
    """A filter that reads its documents' rows of a whole-run phase, batch by batch."""

    #: What the phase finds, for the error when a stage runs without its result.
    finds: ClassVar[str] = "the whole run's results"

    def use_phase_result(self, result: PhaseResult) -> None:
        self._result = result

    def start_task(self, task: TaskInfo) -> None:
        result = getattr(self, "_result", None)
        if result is None:
            raise ConfigError(
                f"stage {self.name!r} needs {self.finds}: run it in a pipeline (the run finds "
                "them first), or give it a phase result (core.phase.run_in_memory)"
            )
        self._cursor = RowCursor(result.rows_for(task))

    def phase_rows(self, batch: pa.Table) -> pa.Table:
        """The phase's rows of this batch's documents (ROW relative to the batch)."""
        if not hasattr(self, "_cursor"):
            self.start_task(TaskInfo("batch"))
        return self._cursor.take(batch.num_rows)


class DedupStage(PhaseRows):
    """Base of the dedup stages: subclasses give the phase (``corpus_phase``)."""

    params: DedupParams
    finds = "the whole run's duplicates"
    #: The reason a dropped duplicate is recorded with.
    reason_suffix: ClassVar[str] = "duplicate"

    @property
    def drop_reason(self) -> str:
        return f"{self.name}:{self.reason_suffix}"

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (
            pa.field(DUP_CLUSTER, pa.string()),
            pa.field(DUP_CLUSTER_SIZE, pa.int64()),
            *super().produced_fields(),
        )

    def clusters_of(self, batch: pa.Table) -> tuple[pa.Array, np.ndarray, np.ndarray]:
        """Each row's cluster name, cluster size and whether it is kept."""
        rows = self.phase_rows(batch)
        cluster = (
            batch.column(columns.ID)
            .combine_chunks()
            .cast(pa.string())
            .to_numpy(zero_copy_only=False)
            .astype(object)
        )
        size = np.ones(batch.num_rows, dtype=np.int64)
        keep = np.ones(batch.num_rows, dtype=bool)
        if rows.num_rows:
            at = rows.column(ROW).to_numpy()
            cluster[at] = rows.column(DUP_CLUSTER).to_numpy(zero_copy_only=False)
            size[at] = rows.column(DUP_CLUSTER_SIZE).to_numpy()
            keep[at] = rows.column(KEEP).to_numpy(zero_copy_only=False)
        return pa.array(cluster, pa.string()), size, keep

    def judge(self, batch: pa.Table) -> Verdict:
        cluster, size, keep = self.clusters_of(batch)
        in_cluster = size > 1
        self.stats.count("documents_in_clusters", int(in_cluster.sum()))
        self.stats.count("clusters", int((in_cluster & keep).sum()))
        self.stats.count("duplicates", int((~keep).sum()))
        self.stats.count_values("cluster_size", size[in_cluster & keep].tolist())
        edited = columns.with_column(batch, DUP_CLUSTER, cluster)
        edited = columns.with_column(edited, DUP_CLUSTER_SIZE, pa.array(size))
        return Verdict(pa.array(keep), edited=edited)
