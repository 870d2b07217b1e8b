"""ROC AUC by ranks against the pairwise definition, and the balanced, seeded split."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gristmill.classifiers.metrics import binary_metrics, roc_auc
from gristmill.classifiers.train import balance_and_split
from gristmill.errors import ConfigError


def pairwise_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """The definition: P(positive > negative) + ½ P(tie), over every pair."""
    pos, neg = scores[labels], scores[~labels]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 6)), min_size=2, max_size=60).filter(
        lambda rows: 0 < sum(label for label, _ in rows) < len(rows)
    )
)
def test_rank_auc_is_the_pairwise_auc(rows: list[tuple[bool, int]]) -> None:
    labels = np.array([label for label, _ in rows])
    scores = np.array([score / 6 for _, score in rows])  # few values: many ties
    assert roc_auc(labels, scores) == pytest.approx(pairwise_auc(labels, scores))


def test_auc_edges_and_threshold_metrics() -> None:
    labels = np.array([True, True, False, False])
    assert roc_auc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 1.0
    assert roc_auc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 0.0
    assert roc_auc(labels, np.full(4, 0.5)) == 0.5
    assert np.isnan(roc_auc(np.array([True, True]), np.array([0.1, 0.2])))
    m = binary_metrics(labels, np.array([0.9, 0.4, 0.6, 0.1]))
    assert (m.precision, m.recall, m.accuracy) == (0.5, 0.5, 0.5)


def test_split_balances_stratifies_and_is_seeded() -> None:
    positives = [f"good {i}" for i in range(100)]
    negatives = [f"bad {i}" for i in range(30)]
    split = balance_and_split(positives, negatives, holdout=0.1, seed=7)
    assert split.train_labels.count(1) == split.train_labels.count(0) == 27
    assert split.test_labels.count(1) == split.test_labels.count(0) == 3
    assert not set(split.train_texts) & set(split.test_texts)
    again = balance_and_split(positives, negatives, holdout=0.1, seed=7)
    assert again.train_texts == split.train_texts and again.test_texts == split.test_texts
    other = balance_and_split(positives, negatives, holdout=0.1, seed=8)
    assert other.train_texts != split.train_texts
    unbalanced = balance_and_split(positives, negatives, balance=False, holdout=0.0)
    assert len(unbalanced.train_texts) == 130 and not unbalanced.test_texts


def test_split_refuses_a_missing_class() -> None:
    with pytest.raises(ConfigError, match="need both classes"):
        balance_and_split(["only good"], [])
