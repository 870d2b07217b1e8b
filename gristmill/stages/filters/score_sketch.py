"""A mergeable, range-free histogram of float scores, for run-wide percentile cuts.

Each score falls in a bucket named by the top bits of its float64 pattern (sign, exponent and
``bits`` mantissa bits, mapped so that integer order is float order). Buckets are therefore
contiguous value ranges of relative width 2**-bits whatever the scores' range (probabilities,
lengths, log-likelihoods), and two sketches merge by adding counts: the same answer whatever
the split into batches, tasks and workers. The sketch is sparse: at most one entry per distinct
bucket actually seen.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

_TOP = np.uint64(1 << 63)
DEFAULT_BITS = 12


def _order_keys(values: np.ndarray) -> np.ndarray:
    """float64 → uint64 with the same order (negative floats flipped below the positives).

    -0.0 equals 0.0, so it gets 0.0's key (adding 0.0 turns it into +0.0).
    """
    raw = (np.asarray(values, dtype=np.float64) + 0.0).view(np.uint64)
    negative = (raw & _TOP) != 0
    return np.where(negative, ~raw, raw | _TOP)


def bucket_keys(values: np.ndarray, bits: int) -> np.ndarray:
    """The bucket of each value (NaN must be removed first)."""
    return _order_keys(values) >> np.uint64(52 - bits)


def _from_order_key(key: int) -> float:
    raw = key & ~(1 << 63) if key >> 63 else ~key & ((1 << 64) - 1)
    return float(np.array([raw], dtype=np.uint64).view(np.float64)[0])


def bucket_bounds(bucket: int, bits: int) -> tuple[float, float]:
    """The smallest and largest float a bucket holds."""
    shift = 52 - bits
    low, high = _from_order_key(bucket << shift), _from_order_key(((bucket + 1) << shift) - 1)
    # The buckets of the infinities also span NaN bit patterns, which no score has.
    return (-math.inf if math.isnan(low) else low), (math.inf if math.isnan(high) else high)


def sketch(values: np.ndarray, bits: int = DEFAULT_BITS) -> dict[str, Any]:
    """The JSON-able sketch of some scores (NaN must be removed first)."""
    keys, counts = np.unique(bucket_keys(values, bits), return_counts=True)
    return {
        "bits": bits,
        "count": int(counts.sum()),
        "buckets": {str(int(k)): int(c) for k, c in zip(keys, counts, strict=True)},
    }


def merge(sketches: Iterable[dict[str, Any]], bits: int = DEFAULT_BITS) -> dict[str, Any]:
    """Add sketches up; they must use the same precision."""
    total: Counter[str] = Counter()
    for part in sketches:
        if int(part["bits"]) != bits:
            raise ValueError(f"cannot merge a {part['bits']}-bit sketch into a {bits}-bit one")
        total.update({k: int(v) for k, v in part["buckets"].items()})
    return {
        "bits": bits,
        "count": sum(total.values()),
        "buckets": dict(sorted(total.items(), key=lambda kv: int(kv[0]))),
    }


@dataclass(frozen=True)
class Cut:
    """Keep scores beyond the boundary bucket, and a ``boundary_keep`` share of those in it.

    The share inside the boundary bucket is decided per document by a stable hash of its id,
    so that ties (a score column of integers, say) still give the requested fraction.
    """

    keep_high: bool
    keep_fraction: float
    bits: int
    boundary: int
    boundary_keep: float
    documents: int
    expected_kept: int

    def describe(self) -> dict[str, Any]:
        low, high = bucket_bounds(self.boundary, self.bits)
        return {
            "direction": "keep_high" if self.keep_high else "keep_low",
            "keep_fraction": self.keep_fraction,
            "bits": self.bits,
            "boundary_bucket": self.boundary,
            "boundary_low": low,
            "boundary_high": high,
            "boundary_keep": self.boundary_keep,
            "documents": self.documents,
            "expected_kept": self.expected_kept,
        }


def find_cut(summary: dict[str, Any], keep_fraction: float, keep_high: bool) -> Cut:
    """Where to cut so that ``keep_fraction`` of the sketched documents stay."""
    bits = int(summary["bits"])
    items = sorted(((int(k), int(v)) for k, v in summary["buckets"].items()), reverse=keep_high)
    documents = sum(count for _, count in items)
    target = round(keep_fraction * documents)
    if not items:
        return Cut(keep_high, keep_fraction, bits, 0, 0.0, 0, 0)
    before = 0
    for bucket, count in items:
        if before + count >= target:
            share = (target - before) / count
            return Cut(keep_high, keep_fraction, bits, bucket, share, documents, target)
        before += count
    bucket, _count = items[-1]
    return Cut(keep_high, keep_fraction, bits, bucket, 1.0, documents, target)
