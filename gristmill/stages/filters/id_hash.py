"""Per-document random numbers that depend only on the document id and a seed.

Soft filters (pareto) and tie-breaks at a percentile cut must give the same answer whatever the
batching, the number of workers or the task a document lands in, so the randomness comes from
a stable hash of the id, not from a generator's state. Python's ``hash()`` is salted per
process and polars' hash is not stable across versions, hence this small numpy hash: a
polynomial over the UTF-8 bytes (wrapping uint64 arithmetic), finished with splitmix64.
It is vectorised over the whole Arrow string buffer, with no per-document Python loop.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_MULTIPLIER = np.uint64(0x100000001B3)  # FNV-64 prime: odd, so the polynomial is invertible


def salt_for(purpose: str, seed: int) -> int:
    """A 64-bit salt naming what the numbers are for, so two uses of one seed stay independent."""
    digest = hashlib.sha256(f"gristmill:{purpose}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _splitmix64(values: np.ndarray) -> np.ndarray:
    x = values + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def as_large_strings(values: pa.Array | pa.ChunkedArray) -> pa.LargeStringArray:
    """A column as one large_string array (the layout the hashes read), nulls read as empty:
    a null hashes like the empty string, a defined result rather than an error."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = values.cast(pa.string())
    return pc.fill_null(values, "").cast(pa.large_string())


def id_hashes(ids: pa.Array | pa.ChunkedArray, salt: int) -> np.ndarray:
    """One uint64 per id, a function of the id's bytes and ``salt`` only."""
    with np.errstate(over="ignore"):
        array = as_large_strings(ids)
        count = len(array)
        if count == 0:
            return np.zeros(0, dtype=np.uint64)
        buffers = array.buffers()
        offsets = np.frombuffer(buffers[1], dtype=np.int64)[array.offset : array.offset + count + 1]
        data = (
            np.frombuffer(buffers[2], dtype=np.uint8)
            if buffers[2] is not None
            else np.zeros(0, np.uint8)
        )
        first, last = int(offsets[0]), int(offsets[-1])
        lengths = np.diff(offsets)
        sums = np.zeros(count, dtype=np.uint64)
        if last > first:
            powers = np.full(int(lengths.max()), _MULTIPLIER, dtype=np.uint64)
            powers[0] = 1
            powers = np.cumprod(powers, dtype=np.uint64)
            position = np.arange(last - first) - np.repeat(offsets[:-1] - first, lengths)
            terms = data[first:last].astype(np.uint64) * powers[position]
            nonempty = lengths > 0
            sums[nonempty] = np.add.reduceat(terms, (offsets[:-1] - first)[nonempty])
        mixed_length = _splitmix64(lengths.astype(np.uint64) ^ np.uint64(salt))
        return _splitmix64(sums ^ mixed_length)


def id_uniforms(ids: pa.Array | pa.ChunkedArray, salt: int) -> np.ndarray:
    """One float in [0, 1) per id, uniform, reproducible from the id and ``salt`` alone."""
    return (id_hashes(ids, salt) >> np.uint64(11)).astype(np.float64) * 2.0**-53
