"""A nearest-neighbour index over template-description vectors: exact numpy, or FAISS.

Vectors are L2-normalised, so inner product is cosine. Below ``AUTO_FAISS_AT`` templates an
exact numpy product is as fast as anything and has no dependency; from there on FAISS
(``faiss-cpu``) searches with a bounded top-k heap instead of sorting a score matrix per batch,
and can use an approximate structure (``faiss_factory``: ``HNSW32``, ``IVF4096,Flat``...) for
banks of millions. ``docs/fineinstructions.md`` has the measured speeds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gristmill.errors import ConfigError

IndexKind = Literal["auto", "numpy", "faiss"]

#: Bank size from which ``auto`` picks FAISS (see the benchmark figures in the docs).
AUTO_FAISS_AT = 50_000
#: Queries scored against the bank at once by the numpy index (bounds its score matrix).
NUMPY_CHUNK = 256


def resolve_kind(kind: IndexKind, size: int) -> Literal["numpy", "faiss"]:
    """The index a bank of ``size`` templates gets; ``auto`` uses FAISS only where installed."""
    if kind == "numpy":
        return "numpy"
    if kind == "faiss":
        _faiss()
        return "faiss"
    if size < AUTO_FAISS_AT:
        return "numpy"
    try:
        _faiss()
    except ConfigError:
        return "numpy"
    return "faiss"


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise ConfigError("index: faiss needs the package faiss-cpu (or faiss-gpu)") from None
    return faiss


class TemplateIndex:
    """Search ``[n, dim]`` unit vectors by inner product; row ``i`` is the bank's row ``i``."""

    def __init__(
        self,
        vectors: np.ndarray,
        kind: IndexKind = "auto",
        faiss_factory: str = "Flat",
        faiss_index: Any = None,
    ) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.kind = resolve_kind(kind, len(self.vectors))
        self.factory = faiss_factory
        self._faiss_index: Any = faiss_index
        if self.kind == "faiss" and faiss_index is None:
            faiss = _faiss()
            index = faiss.index_factory(
                self.vectors.shape[1], faiss_factory, faiss.METRIC_INNER_PRODUCT
            )
            if not index.is_trained:
                index.train(self.vectors)
            index.add(self.vectors)
            self._faiss_index = index

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, rows) per query, best first; rows are -1 where fewer exist."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(k, len(self.vectors)))
        if len(queries) == 0 or len(self.vectors) == 0:
            shape = (len(queries), k if len(self.vectors) else 0)
            return np.zeros(shape, np.float32), np.full(shape, -1, np.int64)
        if self._faiss_index is not None:
            scores, rows = self._faiss_index.search(queries, k)
            return scores.astype(np.float32), rows.astype(np.int64)
        all_scores = np.empty((len(queries), k), np.float32)
        all_rows = np.empty((len(queries), k), np.int64)
        for start in range(0, len(queries), NUMPY_CHUNK):
            block = queries[start : start + NUMPY_CHUNK] @ self.vectors.T
            top = np.argpartition(-block, k - 1, axis=1)[:, :k]
            picked = np.take_along_axis(block, top, axis=1)
            order = np.argsort(-picked, axis=1, kind="stable")
            all_rows[start : start + len(block)] = np.take_along_axis(top, order, axis=1)
            all_scores[start : start + len(block)] = np.take_along_axis(picked, order, axis=1)
        return all_scores, all_rows

    # -- storage: built once per run, read by every worker (an HNSW graph is not rebuilt) ----
    def save(self, directory: str | Path) -> None:
        """Write ``vectors.npy``, ``faiss.index`` (FAISS) and ``index.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "vectors.npy", self.vectors)
        if self._faiss_index is not None:
            _faiss().write_index(self._faiss_index, str(directory / "faiss.index"))
        meta = {"kind": self.kind, "factory": self.factory, "size": len(self.vectors)}
        (directory / "index.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: str | Path) -> TemplateIndex:
        directory = Path(directory)
        meta = json.loads((directory / "index.json").read_text())
        vectors = np.load(directory / "vectors.npy")
        stored = directory / "faiss.index"
        index = _faiss().read_index(str(stored)) if meta["kind"] == "faiss" else None
        return cls(vectors, meta["kind"], meta["factory"], index if stored.exists() else None)
