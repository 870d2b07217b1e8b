"""Train a binary fastText classifier from positive and negative document sets.

This is the GLaM/DCLM recipe at small scale (Li et al., 2024, DataComp-LM): word bigrams
(``wordNgrams=2``) with hashed buckets, classes balanced by downsampling the majority class,
and a seeded held-out split on which precision, recall and ROC AUC are reported. Every random
choice is seeded and fastText trains on one thread, so the same inputs give the same model.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from gristmill.classifiers.metrics import BinaryMetrics, binary_metrics
from gristmill.core import columns
from gristmill.errors import ConfigError
from gristmill.io.formats import open_reader
from gristmill.models.fasttext_model import (
    TrainingOptions,
    as_label,
    one_line,
    train_supervised,
)


def read_tables(
    paths: Sequence[str], text_column: str = columns.TEXT, extra: Sequence[str] = ()
) -> Iterator[tuple[str, pa.Table]]:
    """(file, batch) of the given files, globs or directories, in order, with the text column
    and the ``extra`` ones a file has; a path that holds no input is an error naming it."""
    for path in paths:
        reader = open_reader([path], columns=list(extra), text_column=text_column)
        tasks = reader.plan()
        if not tasks:
            raise ConfigError(f"{path}: no Parquet or JSONL file found")
        for task in tasks:
            for table in reader.read(task):
                yield task.url, table


def read_texts(paths: Sequence[str], text_column: str = columns.TEXT) -> list[str]:
    """Every non-blank text of the given files, globs or directories, in order."""
    texts: list[str] = []
    for _, table in read_tables(paths, text_column):
        texts.extend(t for t in table.column(columns.TEXT).to_pylist() if t and t.strip())
    return texts


@dataclass
class LabelledSplit:
    """Texts with 0/1 labels, split into a training part and a held-out part."""

    train_texts: list[str] = field(default_factory=list)
    train_labels: list[int] = field(default_factory=list)
    test_texts: list[str] = field(default_factory=list)
    test_labels: list[int] = field(default_factory=list)


def balance_and_split(
    positives: Sequence[str],
    negatives: Sequence[str],
    *,
    balance: bool = True,
    holdout: float = 0.1,
    seed: int = 0,
) -> LabelledSplit:
    """Downsample the majority class (if ``balance``), then hold out ``holdout`` of each class.

    The split is stratified, so the held-out part has both classes whenever each class has
    at least two documents.
    """
    if not positives or not negatives:
        raise ConfigError(
            f"need both classes to train: {len(positives)} positive and {len(negatives)} "
            "negative documents with text"
        )
    if not 0.0 <= holdout < 1.0:
        raise ConfigError(f"holdout must be in [0, 1), got {holdout}")
    rng = np.random.default_rng(seed)
    classes = [(1, list(positives)), (0, list(negatives))]
    if balance:
        size = min(len(positives), len(negatives))
        classes = [
            (label, [texts[i] for i in np.sort(rng.choice(len(texts), size, replace=False))])
            for label, texts in classes
        ]
    split = LabelledSplit()
    for label, texts in classes:
        order = rng.permutation(len(texts))
        held = round(holdout * len(texts))
        if holdout > 0 and len(texts) >= 2:
            held = min(max(held, 1), len(texts) - 1)
        for rank, index in enumerate(order):
            if rank < held:
                split.test_texts.append(texts[index])
                split.test_labels.append(label)
            else:
                split.train_texts.append(texts[index])
                split.train_labels.append(label)
    # Interleave the classes: fastText's learning rate decays along the file.
    shuffle = rng.permutation(len(split.train_texts))
    split.train_texts = [split.train_texts[i] for i in shuffle]
    split.train_labels = [split.train_labels[i] for i in shuffle]
    return split


def write_training_file(
    path: Path, texts: Sequence[str], labels: Sequence[int], label_names: tuple[str, str]
) -> None:
    """fastText's input format: ``__label__<name> <one-line text>`` per document."""
    negative, positive = (as_label(name) for name in label_names)
    with path.open("w", encoding="utf-8", errors="replace") as handle:
        for text, label in zip(texts, labels, strict=True):
            handle.write(f"{positive if label else negative} {one_line(text)}\n")


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything ``train-classifier`` needs; the CLI and the default-model recipe fill it."""

    positive: tuple[str, ...]
    negative: tuple[str, ...]
    output: Path
    text_column: str = columns.TEXT
    positive_label: str = "hq"
    negative_label: str = "cc"
    holdout: float = 0.1
    seed: int = 0
    balance: bool = True
    training: TrainingOptions = field(default_factory=TrainingOptions)
    #: Product-quantize before saving (the ``.ftz`` form); None: when output ends in .ftz.
    quantize: bool | None = None
    #: With quantization, keep only this many embedding rows (0: all).
    cutoff: int = 100_000


@dataclass(frozen=True)
class TrainingResult:
    model_path: Path
    positives_read: int
    negatives_read: int
    train_examples: int
    metrics: BinaryMetrics | None


def train_classifier(config: ClassifierConfig) -> TrainingResult:
    """Read both sets, balance, split, train, evaluate on the held-out part, save."""
    if config.positive_label == config.negative_label:
        raise ConfigError("the positive and negative labels must differ")
    positives = read_texts(config.positive, config.text_column)
    negatives = read_texts(config.negative, config.text_column)
    split = balance_and_split(
        positives, negatives, balance=config.balance, holdout=config.holdout, seed=config.seed
    )
    with tempfile.TemporaryDirectory(prefix="gristmill-train-") as scratch:
        train_file = Path(scratch) / "train.txt"
        write_training_file(
            train_file,
            split.train_texts,
            split.train_labels,
            (config.negative_label, config.positive_label),
        )
        model = train_supervised(train_file, config.training)
    quantize = config.quantize if config.quantize is not None else config.output.suffix == ".ftz"
    if quantize:
        model.quantize(cutoff=config.cutoff)
    model.save(config.output)
    metrics = None
    if split.test_texts:
        scores = model.label_probability(split.test_texts, config.positive_label)
        metrics = binary_metrics(np.array(split.test_labels), scores)
    return TrainingResult(
        model_path=config.output,
        positives_read=len(positives),
        negatives_read=len(negatives),
        train_examples=len(split.train_texts),
        metrics=metrics,
    )
