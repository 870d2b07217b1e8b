"""Clusters of duplicates: joining candidate pairs, choosing the document each cluster keeps.

Which document a cluster keeps is decided by the documents alone, never by the order in
which tasks, key ranges or workers happened to run: the one with the highest ``prefer`` score
(``quality_score`` by default, when the input has it; a missing score counts as lowest), and
among equals the smallest id. The cluster's name (``dup_cluster``) is the kept document's id.

Pairs are joined transitively (if A~B and B~C, then A, B and C are one cluster) by connected
components over the pair graph: label propagation with pointer jumping, vectorised in numpy,
exact, and in memory proportional to the documents that have a duplicate, not to the corpus.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from gristmill.core.phase import ROW, TASK

DUP_CLUSTER = "dup_cluster"
DUP_CLUSTER_SIZE = "dup_cluster_size"
KEEP = "keep"
#: Columns of the keyed rows every dedup map emits besides KEY and ROW.
DOC_ID = "doc_id"
PRIORITY = "priority"

#: The per-document rows every dedup phase routes back: for each document in a cluster of two
#: or more, its cluster (the kept document's id), the cluster's size, and whether it is kept.
CLUSTER_SCHEMA = pa.schema(
    [
        pa.field(TASK, pa.uint64()),
        pa.field(ROW, pa.int64()),
        pa.field(DUP_CLUSTER, pa.string()),
        pa.field(DUP_CLUSTER_SIZE, pa.int64()),
        pa.field(KEEP, pa.bool_()),
    ]
)


def connected_components(first: np.ndarray, second: np.ndarray, nodes: int) -> np.ndarray:
    """The component of each node 0..nodes-1 (its smallest member) from undirected edges."""
    labels = np.arange(nodes, dtype=np.int64)
    if len(first) == 0:
        return labels
    while True:
        low = np.minimum(labels[first], labels[second])
        before = labels.copy()
        np.minimum.at(labels, first, low)
        np.minimum.at(labels, second, low)
        while True:  # pointer jumping: every node points at its label's label
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(labels, before):
            return labels


def cluster_rows(members: pl.DataFrame, component: np.ndarray) -> pa.Table:
    """Per-document rows for documents (TASK, ROW, DOC_ID, PRIORITY) and their component."""
    frame = members.with_columns(pl.Series("component", component))
    ranked = frame.sort(
        ["component", PRIORITY, DOC_ID], descending=[False, True, False], nulls_last=True
    )
    keepers = ranked.group_by("component", maintain_order=True).agg(
        pl.col(DOC_ID).first().alias(DUP_CLUSTER),
        pl.len().alias(DUP_CLUSTER_SIZE),
        pl.col(TASK).first().alias("kept_task"),
        pl.col(ROW).first().alias("kept_row"),
    )
    joined = frame.join(keepers, on="component", how="left").filter(pl.col(DUP_CLUSTER_SIZE) > 1)
    rows = joined.select(
        pl.col(TASK).cast(pl.UInt64),
        pl.col(ROW).cast(pl.Int64),
        pl.col(DUP_CLUSTER).cast(pl.String),
        pl.col(DUP_CLUSTER_SIZE).cast(pl.Int64),
        ((pl.col(TASK) == pl.col("kept_task")) & (pl.col(ROW) == pl.col("kept_row"))).alias(KEEP),
    )
    return rows.to_arrow().cast(CLUSTER_SCHEMA)


def groups_to_clusters(rows: pa.Table, group_columns: list[str]) -> pa.Table:
    """Documents that share every group column form one cluster (exact duplicates)."""
    frame = pl.from_arrow(rows)
    assert isinstance(frame, pl.DataFrame)
    frame = frame.with_columns(pl.len().over(group_columns).alias("_size")).filter(
        pl.col("_size") > 1
    )
    if frame.height == 0:
        return CLUSTER_SCHEMA.empty_table()
    frame = frame.unique([TASK, ROW], maintain_order=True)  # a document counts once
    component = frame.select(pl.struct(group_columns).rank("dense")).to_series().to_numpy()
    members = frame.select(TASK, ROW, DOC_ID, PRIORITY)
    return cluster_rows(members, component.astype(np.int64))


def size_histogram(sizes: np.ndarray) -> dict[str, int]:
    """How many clusters have each size (keys are sizes, as strings, for JSON)."""
    values, counts = np.unique(sizes, return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)}
