"""Binary-classifier metrics in numpy, so judging a scorer needs no scikit-learn.

ROC AUC is computed from ranks (the Mann–Whitney U statistic): the probability that a random
positive scores above a random negative, ties counting one half. That is exact, needs no
threshold, and is the number the toxicity and quality checks report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    # Start of each run of equal values, and the mean rank of that run.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_ranks = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(mean_ranks, ends - starts)
    return ranks


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    truth = np.asarray(labels, dtype=bool)
    values = np.asarray(scores, dtype=np.float64)
    if truth.shape != values.shape:
        raise ValueError(f"{truth.shape[0]} labels but {values.shape[0]} scores")
    positives = int(truth.sum())
    negatives = int(truth.size - positives)
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = average_ranks(values)
    u = ranks[truth].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


@dataclass(frozen=True)
class BinaryMetrics:
    """What a held-out split says about a scorer, at one decision threshold."""

    examples: int
    positives: int
    negatives: int
    threshold: float
    precision: float
    recall: float
    accuracy: float
    roc_auc: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    def summary(self) -> str:
        return (
            f"held-out: {self.examples} examples ({self.positives} positive, "
            f"{self.negatives} negative); precision {self.precision:.3f}, "
            f"recall {self.recall:.3f}, accuracy {self.accuracy:.3f}, "
            f"ROC AUC {self.roc_auc:.3f} (threshold {self.threshold:g})"
        )


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> BinaryMetrics:
    """Precision, recall and accuracy at ``threshold``, and ROC AUC, of scores for labels."""
    truth = np.asarray(labels, dtype=bool)
    predicted = np.asarray(scores, dtype=np.float64) >= threshold
    true_positive = int((truth & predicted).sum())
    predicted_positive = int(predicted.sum())
    positives = int(truth.sum())
    return BinaryMetrics(
        examples=int(truth.size),
        positives=positives,
        negatives=int(truth.size - positives),
        threshold=threshold,
        precision=true_positive / predicted_positive if predicted_positive else 0.0,
        recall=true_positive / positives if positives else 0.0,
        accuracy=float((truth == predicted).mean()) if truth.size else 0.0,
        roc_auc=roc_auc(truth, scores),
    )
