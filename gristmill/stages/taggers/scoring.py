"""What the model-scoring taggers share: which rows have text to score, and score histograms.

A model is only asked about rows that hold text; null, empty and whitespace-only rows get the
stage's defined value instead, so bad input never reaches a model and never gives noise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gristmill.core import columns
from gristmill.core.stats import StageStats
from gristmill.errors import ConfigError

#: Where the models that ship with gristmill live (package data).
BUNDLED_MODELS = Path(__file__).resolve().parents[2] / "models"


def has_text(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """True where a row holds something besides whitespace."""
    trimmed = pc.utf8_trim_whitespace(column)
    present = pc.fill_null(pc.greater(pc.utf8_length(trimmed), 0), False)
    return np.asarray(present.to_numpy(zero_copy_only=False), dtype=bool)


def set_columns(
    batch: pa.Table, fields: Sequence[pa.Field], values: Sequence[pa.Array]
) -> pa.Table:
    """Add the stage's columns, replacing any of the same name from an earlier run."""
    for field, array in zip(fields, values, strict=True):
        batch = columns.with_column(batch, field, array)
    return batch


def count_scores(stats: StageStats, key: str, scores: np.ndarray, bins: int = 10) -> None:
    """A ten-bin histogram of scores in [0, 1] (bin labels like ``0.3-0.4``)."""
    if scores.size == 0:
        return
    index = np.minimum((np.clip(scores, 0.0, 1.0) * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    labels = [f"{i / bins:.1f}-{(i + 1) / bins:.1f}" for i in range(bins)]
    stats.histograms.setdefault(key, Counter()).update(
        {label: int(count) for label, count in zip(labels, counts, strict=True) if count}
    )


def bundled_model(name: str) -> Path:
    """A model file shipped in ``gristmill/models``; a clear error if the install lacks it."""
    path = BUNDLED_MODELS / name
    if not path.is_file():
        raise ConfigError(
            f"the bundled model {name} is missing from {BUNDLED_MODELS} (an install without "
            f"package data?); pass model_path, or rebuild it with scripts/train_default_models.py"
        )
    return path
