"""``minhash_dedup``: near-duplicate documents by MinHash-LSH over word n-gram shingles.

The recipe is FineWeb's, as datatrove implements it: text normalised as datatrove does
(``normalise.simplify``), shingles of 5 words hashed with xxHash64, a signature of 14 x 8
MinHash values (permutations ``(h * a + b) mod (2^61 - 1)`` with datatrove's seeded ``a, b``),
and two documents are candidates when all 8 values of any of the 14 bands agree. With ``b``
bands of ``r`` rows, documents of Jaccard similarity ``s`` become candidates with probability
``1 - (1 - s^r)^b``: an S-curve that rises around ``(1/b)^(1/r)`` (0.72 for 14 x 8):

    s      0.5    0.6    0.7    0.75   0.8    0.85   0.9
    p      0.05   0.21   0.56   0.77   0.92   0.99   1.00

Words are the runs of characters between spaces of the normalised text (datatrove splits the
normalised text with spaCy, which also cuts a few forms, "cannot" into "can not": both
documents of a pair are cut alike, so pairs barely change). The signatures are computed by a
C kernel (``gristmill.native.minhash``) that hashes each shingle in place; hashing shingle by
shingle in Python is where datatrove spends its time (``benchmarks/dedup_vs_datatrove.py``
measures both).

The map writes each document's band keys (a 64-bit hash of the band's index and values);
each reduce task takes a range of keys and emits a candidate pair for every document that
shares a band with another (to the band's first document); the finish joins pairs across all
ranges into clusters (connected components) and, with ``verify``, first drops the pairs whose
true Jaccard similarity of shingle sets is below ``jaccard_threshold``, re-reading only the
candidate documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from pydantic import Field, model_validator

from gristmill.core import columns
from gristmill.core.phase import KEY, ROW, TASK, CorpusPhase, Finished, PhaseInputs
from gristmill.core.registry import register_stage
from gristmill.native.minhash import shingles as native_shingles
from gristmill.native.minhash import signatures as native_signatures
from gristmill.stages.dedup.base import DedupParams, DedupStage, keyed
from gristmill.stages.dedup.clusters import (
    DOC_ID,
    DUP_CLUSTER_SIZE,
    KEEP,
    PRIORITY,
    cluster_rows,
    connected_components,
    size_histogram,
)
from gristmill.stages.dedup.normalise import simplify

MERSENNE_61 = np.uint64((1 << 61) - 1)
PAIR_SIDES = ("a", "b")


class MinhashParams(DedupParams):
    n_grams: int = Field(5, ge=1, description="words per shingle")
    bands: int = Field(14, ge=1, description="LSH bands (b)")
    rows_per_band: int = Field(8, ge=1, description="MinHash values per band (r)")
    seed: int = Field(1, ge=0, description="seed of the permutations (datatrove's default: 1)")
    verify: bool = Field(
        False, description="drop candidate pairs below jaccard_threshold (true Jaccard)"
    )
    jaccard_threshold: float = Field(
        0.75, gt=0, le=1, description="with verify: the least Jaccard similarity of a pair"
    )

    @model_validator(mode="after")
    def _check(self) -> MinhashParams:
        if self.bands * self.rows_per_band > 4096:
            raise ValueError("bands * rows_per_band must be at most 4096")
        return self


def permutations(seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """datatrove's MinHash permutation parameters: the same seed gives the same a and b."""
    generator = np.random.RandomState(seed)
    a = generator.randint(1, MERSENNE_61, dtype=np.uint64, size=(1, count))
    b = generator.randint(0, MERSENNE_61, dtype=np.uint64, size=(1, count))
    return np.ascontiguousarray(a[0]), np.ascontiguousarray(b[0])


def _splitmix(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = values + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def signatures(
    texts: pa.Array, n_grams: int, a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures (docs x len(a)) of normalised texts, and which docs have one."""
    array = texts.cast(pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    count = len(array)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[
        array.offset : array.offset + count + 1
    ].copy()
    data = array.buffers()[2]
    payload = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(1, np.uint8)
    out = np.zeros((count, len(a)), dtype=np.uint64)
    has = np.zeros(count, dtype=np.uint8)
    native_signatures(offsets, payload, n_grams, a, b, out, has)
    return out, has.astype(bool)


def band_keys(signature: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per document and band: a hash of the band's index and its values."""
    shaped = signature.reshape(len(signature), bands, rows)
    keys = np.empty((len(signature), bands), dtype=np.uint64)
    for band in range(bands):
        key = _splitmix(np.full(len(signature), band, dtype=np.uint64))
        for row in range(rows):
            key = _splitmix(key ^ shaped[:, band, row])
        keys[:, band] = key
    return keys


def shingle_set(text: str, n_grams: int) -> np.ndarray:
    """The distinct shingle hashes of one document (after normalisation)."""
    simplified = simplify(pa.array([text], pa.large_string()))[0].as_py() or ""
    return np.unique(np.frombuffer(native_shingles(simplified.encode("utf-8"), n_grams), np.uint64))


def jaccard(one: np.ndarray, other: np.ndarray) -> float:
    union = len(np.union1d(one, other))
    return len(np.intersect1d(one, other, assume_unique=True)) / union if union else 0.0


class MinhashPhase(CorpusPhase):
    """Map: band keys. Reduce: candidate pairs per key range. Finish: clusters."""

    def __init__(self, params: MinhashParams) -> None:
        self.params = params
        self.columns = tuple(c for c in (columns.ID, columns.TEXT, params.prefer) if c)
        self.reduce_rows = params.reduce_rows
        self._permutations: tuple[np.ndarray, np.ndarray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_permutations": None}

    @property
    def hashes(self) -> int:
        return self.params.bands * self.params.rows_per_band

    def _parameters(self) -> tuple[np.ndarray, np.ndarray]:
        if self._permutations is None:
            self._permutations = permutations(self.params.seed, self.hashes)
        return self._permutations

    # -- map ---------------------------------------------------------------------------------
    def map(self, batches: Iterable[tuple[int, pa.Table]]) -> Iterator[pa.Table]:
        a, b = self._parameters()
        p = self.params
        for first, batch in batches:
            signature, has = signatures(simplify(batch.column(columns.TEXT)), p.n_grams, a, b)
            present = np.flatnonzero(has)
            if not len(present):
                continue
            keys = band_keys(signature[present], p.bands, p.rows_per_band)
            yield keyed(batch, first, np.repeat(present, p.bands), keys.reshape(-1), p.prefer)

    # -- reduce: candidate pairs within a key range -----------------------------------------------
    def reduce(self, rows: pa.Table) -> pa.Table | None:
        frame = (
            pl.DataFrame(rows).unique([KEY, TASK, ROW]).with_columns(pl.len().over(KEY).alias("_n"))
        )
        frame = frame.filter(pl.col("_n") > 1).drop("_n")
        if frame.height == 0:
            return None
        sides = [TASK, ROW, DOC_ID, PRIORITY]
        hubs = (
            frame.sort([KEY, TASK, ROW])
            .group_by(KEY, maintain_order=True)
            .first()
            .rename({c: f"a_{c}" for c in sides})
        )
        pairs = (
            frame.rename({c: f"b_{c}" for c in sides})
            .join(hubs, on=KEY)
            .filter(
                (pl.col(f"a_{TASK}") != pl.col(f"b_{TASK}"))
                | (pl.col(f"a_{ROW}") != pl.col(f"b_{ROW}"))
            )
            .select([f"{side}_{c}" for side in PAIR_SIDES for c in sides])
            .unique()
        )
        return pairs.to_arrow()

    # -- finish: clusters over every range ------------------------------------------------------
    def finish(self, reduced: Iterator[pa.Table], inputs: PhaseInputs | None = None) -> Finished:
        parts = [pl.DataFrame(t) for t in reduced]
        pairs = (
            pl.concat(parts).unique([f"{s}_{c}" for s in PAIR_SIDES for c in (TASK, ROW)])
            if parts
            else pl.DataFrame()
        )
        decision: dict[str, Any] = {
            "bands": self.params.bands,
            "rows_per_band": self.params.rows_per_band,
            "n_grams": self.params.n_grams,
            "threshold": round((1 / self.params.bands) ** (1 / self.params.rows_per_band), 4),
            "candidate_pairs": pairs.height,
        }
        if self.params.verify and pairs.height:
            pairs = self._verified(pairs, inputs)
            decision["verified_pairs"] = pairs.height
        if pairs.height == 0:
            decision.update(clusters=0, documents_in_clusters=0, duplicates=0, cluster_sizes={})
            decision["summary"] = "no near duplicates"
            return Finished(decision)
        sides = [TASK, ROW, DOC_ID, PRIORITY]
        members = pl.concat(
            [pairs.select([pl.col(f"{s}_{c}").alias(c) for c in sides]) for s in PAIR_SIDES]
        ).unique([TASK, ROW], maintain_order=True)
        index = members.with_row_index("_node").select(TASK, ROW, "_node")
        ends = [
            pairs.select(pl.col(f"{s}_{TASK}").alias(TASK), pl.col(f"{s}_{ROW}").alias(ROW))
            .join(index, on=[TASK, ROW], how="left", maintain_order="left")["_node"]
            .to_numpy()
            .astype(np.int64)
            for s in PAIR_SIDES
        ]
        component = connected_components(ends[0], ends[1], members.height)
        rows = cluster_rows(members, component)
        kept = rows.filter(rows.column(KEEP))
        sizes = kept.column(DUP_CLUSTER_SIZE).to_numpy()
        decision.update(
            clusters=kept.num_rows,
            documents_in_clusters=rows.num_rows,
            duplicates=rows.num_rows - kept.num_rows,
            cluster_sizes=size_histogram(sizes),
        )
        decision["summary"] = (
            f"{kept.num_rows:,} clusters of near duplicates, {rows.num_rows - kept.num_rows:,} "
            f"documents beyond the one kept each (from {decision['candidate_pairs']:,} "
            "candidate pairs)"
        )
        return Finished(decision, rows)

    def _verified(self, pairs: pl.DataFrame, inputs: PhaseInputs | None) -> pl.DataFrame:
        """Only the pairs whose shingle sets have a Jaccard similarity of at least the
        threshold; the candidate documents are read again (only those)."""
        if inputs is None:
            raise ValueError("minhash_dedup with verify needs the phase's inputs")
        needed = (
            pl.concat(
                [
                    pairs.select(pl.col(f"{s}_{TASK}").alias(TASK), pl.col(f"{s}_{ROW}").alias(ROW))
                    for s in PAIR_SIDES
                ]
            )
            .unique()
            .sort([TASK, ROW])
        )
        shingles: dict[tuple[int, int], np.ndarray] = {}
        for (task,), group in needed.group_by([TASK], maintain_order=True):
            positions = group[ROW].to_numpy()
            texts = inputs.read(int(task), positions, [columns.TEXT]).column(columns.TEXT)
            for position, text in zip(positions, texts.to_pylist(), strict=True):
                shingles[(int(task), int(position))] = shingle_set(text or "", self.params.n_grams)
        keep = [
            jaccard(shingles[(at, ar)], shingles[(bt, br)]) >= self.params.jaccard_threshold
            for at, ar, bt, br in pairs.select(
                f"a_{TASK}", f"a_{ROW}", f"b_{TASK}", f"b_{ROW}"
            ).iter_rows()
        ]
        return pairs.filter(pl.Series(keep, dtype=pl.Boolean))


@register_stage
class MinhashDedup(DedupStage):
    """Near duplicates by MinHash-LSH (FineWeb's 5-gram, 14 x 8 setting); one kept each."""

    name = "minhash_dedup"
    Params = MinhashParams  # type: ignore[assignment]
    params: MinhashParams
    requires = (columns.ID, columns.TEXT)

    def corpus_phase(self) -> MinhashPhase:
        return MinhashPhase(self.params)
