"""Train a topic head (``topic: {head: ...}``) on labelled documents, and measure one.

The recipe: embed each labelled document with the head's encoders over their first tokens, add
the topic list's own descriptions and example openings as one extra document each (a topic
with few labelled documents still gets a direction), and fit a multinomial logistic regression
(L-BFGS, ``C``, classes weighted by inverse frequency so that a rare topic is not drowned by a
common one) over the encoders' L2-normalised vectors side by side. The fit is deterministic:
the same documents and encoders give the same head. ``cross_validate`` is how settings are
chosen without looking at a held-out set.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import yaml

from gristmill.classifiers.train import read_tables
from gristmill.core import columns
from gristmill.embeddings import EncoderConfig, load_encoder
from gristmill.errors import ConfigError
from gristmill.stages.taggers.topic_head import HeadFeatures, HeadInput, TopicHead

#: Tokens read of each document when an encoder's config does not say: the static table is
#: cheap, so it reads more; a transformer's cost grows with every token.
DEFAULT_TOKENS = {"static": 256}
OTHER_TOKENS = 128
DEFAULT_C = 3.0

Topics = list[tuple[str, list[str]]]


@dataclass(frozen=True)
class Labelled:
    """Documents and the topic each was given."""

    texts: list[str]
    topics: list[str]


def read_labelled(
    paths: Sequence[str], text_column: str = columns.TEXT, label_column: str = "topic"
) -> Labelled:
    """The non-blank texts of Parquet/JSONL files, globs or directories, with their labels."""
    texts: list[str] = []
    labels: list[str] = []
    for url, table in read_tables(paths, text_column, extra=[label_column]):
        if label_column not in table.column_names:
            raise ConfigError(f"{url}: no {label_column!r} column of topics")
        for text, label in zip(
            table.column(columns.TEXT).to_pylist(),
            table.column(label_column).to_pylist(),
            strict=True,
        ):
            if text and text.strip() and label:
                texts.append(text)
                labels.append(str(label))
    if not texts:
        raise ConfigError(f"{', '.join(paths)}: no labelled document")
    return Labelled(texts, labels)


def encoder_config(spec: str | dict) -> EncoderConfig:
    """``static``, ``minilm`` or an encoder mapping (YAML/JSON text or a dict), with the number
    of tokens it reads filled in."""
    value = yaml.safe_load(spec) if isinstance(spec, str) else spec
    try:
        config = EncoderConfig.model_validate(
            {"backend": value} if isinstance(value, str) else value
        )
    except ValueError as error:
        raise ConfigError(f"encoder {spec!r}: {error}") from None
    tokens = config.max_tokens or DEFAULT_TOKENS.get(config.backend, OTHER_TOKENS)
    return config.model_copy(update={"max_tokens": tokens})


def features_for(configs: list[EncoderConfig]) -> HeadFeatures:
    """The features a new head over these encoders reads (the encoders load here)."""
    inputs = [HeadInput(load_encoder(c).name, c.max_tokens or OTHER_TOKENS) for c in configs]
    return HeadFeatures(inputs, configs)


def _label_ids(labelled: Labelled, names: list[str]) -> np.ndarray:
    unknown = sorted(set(labelled.topics) - set(names))
    if unknown:
        raise ConfigError(f"labels not in the topic list: {', '.join(unknown)}")
    return np.array([names.index(topic) for topic in labelled.topics], dtype=np.int64)


def _description_texts(topics: Topics) -> list[str]:
    return ["\n".join(texts) for _, texts in topics]


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


def train_head(
    labelled: Labelled,
    topics: Topics,
    configs: list[EncoderConfig],
    *,
    c: float = DEFAULT_C,
    descriptions: bool = True,
) -> TopicHead:
    """A head over ``configs``' encoders from the labelled documents (and the descriptions)."""
    if not configs:
        raise ConfigError("a topic head reads at least one encoder")
    names = [name for name, _ in topics]
    labels = _label_ids(labelled, names)
    missing = sorted(set(names) - set(labelled.topics))
    if missing and not descriptions:
        raise ConfigError(f"no labelled document for {', '.join(missing)}")
    features = features_for(configs)
    texts = list(labelled.texts)
    if descriptions:
        texts += _description_texts(topics)
        labels = np.concatenate([labels, np.arange(len(names))])
    weights, bias = fit(features.vectors(texts), labels, c, len(names))
    return TopicHead(weights, bias, names, features.inputs)


def evaluate_head(
    head: TopicHead, labelled: Labelled, configs: list[EncoderConfig] | None = None
) -> dict[str, object]:
    """Accuracy over the labelled documents, and right/total per topic."""
    features = HeadFeatures(head.inputs, configs, width=head.weights.shape[1])
    chosen = head.probabilities(features.vectors(labelled.texts)).argmax(axis=1)
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for wanted, got in zip(labelled.topics, chosen, strict=True):
        total[wanted] += 1
        right[wanted] += head.labels[got] == wanted
    return {
        "documents": len(labelled.texts),
        "accuracy": round(sum(right.values()) / len(labelled.texts), 4),
        "per_topic": {name: f"{right[name]}/{total[name]}" for name in head.labels},
    }


def cross_validate(
    labelled: Labelled,
    topics: Topics,
    configs: list[EncoderConfig],
    *,
    cs: Sequence[float] = (1.0, 3.0, 10.0),
    folds: int = 5,
) -> list[tuple[bool, float, float]]:
    """(descriptions, C, mean accuracy) of each setting over stratified folds of the labelled
    documents; the documents are embedded once."""
    from sklearn.model_selection import StratifiedKFold

    names = [name for name, _ in topics]
    labels = _label_ids(labelled, names)
    features = features_for(configs)
    documents = features.vectors(labelled.texts)
    extra = features.vectors(_description_texts(topics))
    # a topic with fewer documents than folds cannot be stratified; its rows share one stratum
    counts = np.bincount(labels, minlength=len(names))
    strata = np.where(counts[labels] < folds, -1, labels)
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=0).split(documents, strata))
    results = []
    for descriptions in (False, True):
        for c in cs:
            scores = []
            for train_rows, test_rows in splits:
                x, y = documents[train_rows], labels[train_rows]
                if descriptions:
                    x = np.vstack([x, extra])
                    y = np.concatenate([y, np.arange(len(names))])
                weights, bias = fit(x, y, c, len(names))
                head = TopicHead(weights, bias, names, features.inputs)
                predicted = head.probabilities(documents[test_rows]).argmax(axis=1)
                scores.append(float((predicted == labels[test_rows]).mean()))
            results.append((descriptions, c, float(np.mean(scores))))
    return results
