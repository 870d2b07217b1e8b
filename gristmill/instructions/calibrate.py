"""Labelled-check-set evaluation of a matcher encoder, and threshold calibration.

A check set pairs real documents with one template that fits each and one that does not. Two
figures follow for an encoder: how often the fitting template scores above the unfitting one
(ranking, threshold-free), and which cosine threshold best separates fitting from unfitting
pairs (calibration). A pair's score is the matcher's own: the best cosine over the document's
K+1 Gaussian-pooled vectors against the template description's vector.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gristmill.embeddings import Encoder
from gristmill.instructions.pooling import document_vectors


@dataclass
class CheckItem:
    """One labelled document: its text, a fitting and an unfitting template description."""

    source: str
    text: str
    fit: dict[str, str]
    unfit: dict[str, str]


def load_check_set(path: str | Path, data_root: str | Path) -> list[CheckItem]:
    """Read a check-set JSONL whose rows name a document by file (under ``data_root``) and row
    (a JSONL line, or None for a whole text file)."""
    root = Path(data_root)
    items = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        entry: dict[str, Any] = json.loads(line)
        file = root / entry["file"]
        if entry["row"] is None:
            text = file.read_text(encoding="utf-8")
        else:
            row = json.loads(file.read_text(encoding="utf-8").splitlines()[entry["row"]])
            text = row.get("text") or row["question"]
        items.append(
            CheckItem(f"{entry['file']}#{entry['row']}", text, entry["fit"], entry["unfit"])
        )
    return items


def pair_scores(documents: np.ndarray, descriptions: np.ndarray) -> np.ndarray:
    """``[n_docs, n_templates]``: best cosine over each document's slots."""
    return np.einsum("nsd,td->nst", documents, descriptions).max(axis=1)


@dataclass
class CheckReport:
    encoder: str
    items: int
    ranked_first: float  # fitting above its hand-written unfitting template
    ranked_first_hard: float  # fitting above the fitting template of another same-source doc
    threshold: float  # best-separating threshold on the calibration half
    heldout_accuracy: float  # fit >= t and unfit < t on the other half, pairs counted
    fit_scores: list[float]
    unfit_scores: list[float]


def best_threshold(fit: np.ndarray, unfit: np.ndarray) -> float:
    """The midpoint cut that classifies the most pairs right (fit >= t, unfit < t); ties go to
    the highest such cut, to keep fewer doubtful matches."""
    candidates = np.unique(np.concatenate([fit, unfit]))
    cuts = np.concatenate([[candidates[0] - 1e-3], (candidates[1:] + candidates[:-1]) / 2])
    correct = [(fit >= c).sum() + (unfit < c).sum() for c in cuts]
    best = max(correct)
    return float(max(c for c, n in zip(cuts, correct, strict=True) if n == best))


def evaluate(encoder: Encoder, items: Sequence[CheckItem]) -> CheckReport:
    """Ranking rates and a threshold calibrated on even items, checked on odd ones."""
    docs = document_vectors(encoder, [item.text for item in items])
    fit_vectors = encoder.encode([item.fit["description"] for item in items])
    unfit_vectors = encoder.encode([item.unfit["description"] for item in items])
    fit_all = pair_scores(docs, fit_vectors)  # [doc, every item's fitting template]
    fit = np.diag(fit_all)
    unfit = np.diag(pair_scores(docs, unfit_vectors))
    hard = []
    groups = [item.source.split("#")[0] for item in items]
    for n, group in enumerate(groups):
        others = [m for m, g in enumerate(groups) if g == group and m != n]
        if others:
            hard.append(all(fit[n] > fit_all[n, m] for m in others))
    calibration, heldout = np.arange(len(items)) % 2 == 0, np.arange(len(items)) % 2 == 1
    threshold = best_threshold(fit[calibration], unfit[calibration])
    right = (fit[heldout] >= threshold).sum() + (unfit[heldout] < threshold).sum()
    return CheckReport(
        encoder=encoder.name,
        items=len(items),
        ranked_first=float((fit > unfit).mean()),
        ranked_first_hard=float(np.mean(hard)) if hard else float("nan"),
        threshold=threshold,
        heldout_accuracy=float(right / (2 * heldout.sum())),
        fit_scores=[round(float(s), 4) for s in fit],
        unfit_scores=[round(float(s), 4) for s in unfit],
    )
