"""What the model-scoring taggers share: which rows have text to score, score histograms, and
scoring by unit (paragraphs or sentences, with their spans).

A model is only asked about rows that hold text; null, empty and whitespace-only rows get the
stage's defined value instead, so bad input never reaches a model and never gives noise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gristmill.core import columns
from gristmill.core.stats import StageStats
from gristmill.errors import ConfigError
from gristmill.stages.taggers.sentences import unit_spans

#: A list of scored character spans per document (offsets are code points into the text).
SPAN_TYPE = pa.list_(
    pa.struct([("start", pa.int32()), ("end", pa.int32()), ("score", pa.float32())])
)

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


@dataclass(frozen=True)
class UnitScores:
    """Every unit (paragraph or sentence) of a batch, scored in one model call."""

    owners: np.ndarray  #: the row each unit belongs to
    offsets: list[tuple[int, int]]  #: (start, end) of each unit in its row's text
    scores: np.ndarray  #: float32, one per unit

    def lengths(self) -> np.ndarray:
        return np.array([end - start for start, end in self.offsets], dtype=np.float64)

    def spans(
        self, num_rows: int, threshold: float | None = None
    ) -> list[list[dict[str, float | int]]]:
        """Each row's units as ``{start, end, score}``, only those scoring at least
        ``threshold`` when one is given."""
        spans: list[list[dict[str, float | int]]] = [[] for _ in range(num_rows)]
        for owner, (start, end), score in zip(self.owners, self.offsets, self.scores, strict=True):
            if threshold is None or score >= threshold:
                spans[owner].append({"start": start, "end": end, "score": float(score)})
        return spans


def score_units(
    texts: Sequence[str | None],
    rows: np.ndarray,
    unit: str,
    score: Callable[[list[str]], np.ndarray],
) -> UnitScores:
    """Split the given rows of ``texts`` into units and score all of them in one call.

    ``score`` gets single-line strings (newlines inside a unit become spaces, as fastText
    needs) and returns one float per string.
    """
    owners: list[int] = []
    offsets: list[tuple[int, int]] = []
    units: list[str] = []
    for row in rows:
        text = texts[row] or ""
        for start, end in unit_spans(text, unit):
            owners.append(int(row))
            offsets.append((start, end))
            units.append(" ".join(text[start:end].split("\n")))
    values = score(units) if units else np.zeros(0, dtype=np.float32)
    return UnitScores(
        np.asarray(owners, dtype=np.int64), offsets, np.asarray(values, dtype=np.float32)
    )
