"""Train the ``static`` topic mode's head (``gristmill/models/topic_head.npz``) and measure it.

Recipe: embed each document of the labelled training set (``tests/data/topic/train.jsonl.gz``,
labelled by reading, see ``tests/data/SOURCES.md``) with the static WordLlama encoder over its
first ``MAX_TOKENS`` tokens, add the topic list's own descriptions and example openings
(``gristmill/templates/topics.yaml``) as one extra document each, and fit a multinomial
logistic regression (L-BFGS, ``C``, classes weighted by inverse frequency so that a rare topic
is not drowned by ``business``). The fit is deterministic, so a rerun writes the same head.

The held-out set (``tests/data/topic/eval.jsonl.gz``, other files than the training set for
the web part, disjoint documents for the rest) is only measured, never fitted: its accuracy
goes to ``topic_head.metrics.json`` beside the head. ``--select`` prints the 5-fold
cross-validated accuracy *on the training set* of the settings we chose between (C, tokens,
with or without the topic descriptions); the constants below are its best, picked without
looking at the held-out set. Run::

    python scripts/train_topic_head.py [--select] [--out gristmill/models]
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections import Counter
from pathlib import Path

import numpy as np

from gristmill.stages.taggers.topic import load_topics
from gristmill.stages.taggers.topic_static import ENCODER_NAME, TopicHead, load_static_encoder

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT / "tests" / "data" / "topic"
MAX_TOKENS = 256
C = 3.0
WITH_DESCRIPTIONS = True


def read_set(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def training_arrays(
    rows: list[dict[str, str]], names: list[str], max_tokens: int, descriptions: bool
) -> tuple[np.ndarray, np.ndarray]:
    encoder = load_static_encoder()
    texts = [row["text"] for row in rows]
    labels = [names.index(row["topic"]) for row in rows]
    if descriptions:
        for index, (_, topic_texts) in enumerate(load_topics()):
            texts.append("\n".join(topic_texts))
            labels.append(index)
    return encoder.mean_vectors(texts, max_tokens), np.array(labels)


def fit(
    vectors: np.ndarray, labels: np.ndarray, c: float, classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weights and biases for every class; a class with no document gets a bias of -30."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
    model.fit(vectors, labels)
    weights = np.zeros((classes, vectors.shape[1]), dtype=np.float32)
    bias = np.full(classes, -30.0, dtype=np.float32)
    weights[model.classes_] = model.coef_
    bias[model.classes_] = model.intercept_
    return weights, bias


def train(
    max_tokens: int = MAX_TOKENS, c: float = C, descriptions: bool = WITH_DESCRIPTIONS
) -> TopicHead:
    names = [name for name, _ in load_topics()]
    rows = read_set(DATA / "train.jsonl.gz")
    missing = set(names) - {row["topic"] for row in rows}
    if missing:
        raise SystemExit(f"no training document for {sorted(missing)}")
    vectors, labels = training_arrays(rows, names, max_tokens, descriptions)
    weights, bias = fit(vectors, labels, c, len(names))
    return TopicHead(weights, bias, names, ENCODER_NAME, max_tokens)


def evaluate(head: TopicHead, rows: list[dict[str, str]]) -> dict[str, object]:
    vectors = load_static_encoder().mean_vectors([row["text"] for row in rows], head.max_tokens)
    predicted = [head.labels[i] for i in head.probabilities(vectors).argmax(axis=1)]
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for row, got in zip(rows, predicted, strict=True):
        total[row["topic"]] += 1
        right[row["topic"]] += got == row["topic"]
    return {
        "documents": len(rows),
        "accuracy": round(sum(right.values()) / len(rows), 4),
        "per_topic": {name: f"{right[name]}/{total[name]}" for name in head.labels},
    }


def select() -> None:
    """5-fold cross-validation on the training set over the settings we chose between."""
    from sklearn.model_selection import StratifiedKFold

    names = [name for name, _ in load_topics()]
    rows = read_set(DATA / "train.jsonl.gz")
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    labels = np.array([names.index(row["topic"]) for row in rows])
    # the single adult document cannot be stratified; its fold is chosen by position
    split = list(folds.split(np.zeros(len(rows)), np.where(labels == 0, 1, labels)))
    for max_tokens in (128, 256, 512):
        for descriptions in (False, True):
            for c in (1.0, 3.0, 10.0):
                scores = []
                for train_idx, test_idx in split:
                    part = [rows[i] for i in train_idx]
                    vectors, y = training_arrays(part, names, max_tokens, descriptions)
                    weights, bias = fit(vectors, y, c, len(names))
                    head = TopicHead(weights, bias, names, ENCODER_NAME, max_tokens)
                    scores.append(evaluate(head, [rows[i] for i in test_idx])["accuracy"])
                print(
                    f"tokens={max_tokens} descriptions={descriptions} C={c}: "
                    f"{np.mean(scores):.3f} (5-fold on the training set)"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--select", action="store_true", help="cross-validate the settings")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "gristmill" / "models")
    args = parser.parse_args()
    if args.select:
        select()
        return
    head = train()
    head.save(args.out / "topic_head.npz")
    metrics = {
        "encoder": ENCODER_NAME,
        "max_tokens": head.max_tokens,
        "C": C,
        "with_topic_descriptions": WITH_DESCRIPTIONS,
        "train_documents": len(read_set(DATA / "train.jsonl.gz")),
        "fingerprint": head.fingerprint(),
        "held_out": evaluate(head, read_set(DATA / "eval.jsonl.gz")),
    }
    (args.out / "topic_head.metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
