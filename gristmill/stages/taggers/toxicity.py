"""Toxicity score: column ``toxicity_score``, higher = more toxic.

It stands in for the Perspective API score that Longpre et al. (2023, "A Pretrainer's Guide to
Training Data") filtered on, which cannot run offline.

Scorers, all offline:

* ``profanity_check`` (default): the linear offensive-language model inside the
  ``alt-profanity-check`` package. On the held-out Jigsaw + Davidson rows it scores ROC AUC
  0.99, well above the fastText model we can train from the samples (about 0.72) and above the
  mean of the two (0.96); ``tests/stages/taggers/test_toxicity_heldout.py`` keeps that measured.
* ``fasttext``: any fastText model in Dolma's Jigsaw format (``__label__toxic`` or
  ``__label__nsfw`` against a ``non``-label), read from a local path; the positive label is
  read from the model. Without a path, the small model trained from the samples is used.
* ``mean``: the mean of the two.

``unit: sentence`` scores every sentence, as Dolma does, and also writes ``toxicity_spans``:
``[start, end, score]`` of the sentences scoring at least ``span_threshold``; the document's
score is then its most toxic sentence. Dropping is another stage's job (``score_filter``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, PositiveInt

from gristmill.core import columns
from gristmill.core.registry import register_stage
from gristmill.core.stage import Stage, StageParams
from gristmill.errors import ConfigError
from gristmill.models.fasttext_model import (
    FastTextModel,
    one_line,
    prepare_texts,
    strip_label,
)
from gristmill.stages.taggers.scoring import bundled_model, count_scores, has_text, set_columns
from gristmill.stages.taggers.sentences import sentence_spans

TOXICITY_SCORE = "toxicity_score"
TOXICITY_SPANS = "toxicity_spans"
DEFAULT_FASTTEXT_MODEL = "toxicity_fasttext.ftz"
SPAN_TYPE = pa.list_(
    pa.struct([("start", pa.int32()), ("end", pa.int32()), ("score", pa.float32())])
)

Scorer = Callable[[Sequence[str]], np.ndarray]


class ToxicityParams(StageParams):
    model: Literal["profanity_check", "fasttext", "mean"] = Field(
        "profanity_check",
        description="profanity_check (bundled linear model, best on held-out data), fasttext "
        "(a Dolma-Jigsaw-style model), or the mean of both",
    )
    model_path: str | None = Field(
        None,
        description="fastText model for model=fasttext/mean; default: the small one trained "
        "from data_samples/",
    )
    label: str | None = Field(
        None,
        description="the fastText label meaning toxic (e.g. toxic, nsfw); default: the "
        "model's one label not starting with 'non'",
    )
    unit: Literal["document", "sentence"] = Field(
        "document", description="score whole documents, or sentences (adds toxicity_spans)"
    )
    span_threshold: float = Field(
        0.4, ge=0.0, le=1.0, description="sentence mode: record spans scoring at least this"
    )
    newline_replacement: str = Field(" ", description="what replaces newlines before scoring")
    max_chars: PositiveInt | None = Field(
        None, description="score only the first N characters of each document (None: all)"
    )


def positive_label(model: FastTextModel, wanted: str | None) -> str:
    """The label to score: the one asked for, or the model's only non-``non`` label."""
    if wanted is not None:
        return wanted
    candidates = [
        label for label in model.labels if not strip_label(label).lower().startswith("non")
    ]
    if len(candidates) != 1:
        raise ConfigError(
            f"{model.path}: cannot tell which label means toxic among "
            f"{', '.join(model.labels) or 'no labels'}; set label:"
        )
    return candidates[0]


def profanity_scorer() -> Scorer:
    try:
        from profanity_check import predict_prob
    except ImportError:
        raise ConfigError(
            "model profanity_check needs the alt-profanity-check package "
            "(`pip install alt-profanity-check`)"
        ) from None

    def score(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(predict_prob(list(texts)), dtype=np.float32)

    return score


def fasttext_scorer(path: str | None, label: str | None) -> Scorer:
    model = FastTextModel.load(path or bundled_model(DEFAULT_FASTTEXT_MODEL))
    chosen = positive_label(model, label)
    model.label_probability([], chosen)

    def score(texts: Sequence[str]) -> np.ndarray:
        return model.label_probability(texts, chosen)

    return score


@register_stage
class ToxicityScorer(Stage):
    """Adds toxicity_score (higher = more toxic); sentence mode also adds toxicity_spans.

    Null, empty or whitespace-only text scores 0 (and has no spans).
    """

    name = "toxicity"
    Params = ToxicityParams
    params: ToxicityParams
    requires = (columns.TEXT,)
    _scorer: Scorer | None = None

    def produced_fields(self) -> tuple[pa.Field, ...]:
        fields = [pa.field(TOXICITY_SCORE, pa.float32())]
        if self.params.unit == "sentence":
            fields.append(pa.field(TOXICITY_SPANS, SPAN_TYPE))
        return tuple(fields)

    def setup(self) -> None:
        if self._scorer is not None:
            return
        model = self.params.model
        if model == "profanity_check":
            self._scorer = profanity_scorer()
        elif model == "fasttext":
            self._scorer = fasttext_scorer(self.params.model_path, self.params.label)
        else:
            first = profanity_scorer()
            second = fasttext_scorer(self.params.model_path, self.params.label)
            self._scorer = lambda texts: (first(texts) + second(texts)) / np.float32(2.0)

    def teardown(self) -> None:
        self._scorer = None

    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Document scores of plain strings (newlines already replaced)."""
        self.setup()
        assert self._scorer is not None
        if not texts:
            return np.zeros(0, dtype=np.float32)
        return np.clip(self._scorer(texts), 0.0, 1.0).astype(np.float32)

    def process(self, batch: pa.Table) -> pa.Table:
        column = batch.column(columns.TEXT)
        rows = np.flatnonzero(has_text(column))
        scores = np.zeros(batch.num_rows, dtype=np.float32)
        if self.params.unit == "document":
            texts = prepare_texts(
                column,
                newline_replacement=self.params.newline_replacement,
                max_chars=self.params.max_chars,
            )
            # Only fastText reads newlines as spaces by itself; the other scorers get lines.
            lines = texts.to_pylist()
            replacement = self.params.newline_replacement
            scores[rows] = self.score_texts([one_line(lines[i], replacement) for i in rows])
            values: list[pa.Array] = [pa.array(scores, pa.float32())]
        else:
            spans = self._score_sentences(column, rows, scores)
            values = [pa.array(scores, pa.float32()), pa.array(spans, SPAN_TYPE)]
        count_scores(self.stats, TOXICITY_SCORE, scores)
        return set_columns(batch, self.produced_fields(), values)

    def _score_sentences(
        self, column: pa.Array | pa.ChunkedArray, rows: np.ndarray, scores: np.ndarray
    ) -> list[list[dict[str, float | int]]]:
        """Score every sentence of the batch in one call; fill ``scores`` with each
        document's maximum and return each document's spans above the threshold."""
        # Spans are offsets into the text as stored, so it is not rewritten here.
        if self.params.max_chars is not None:
            column = pc.utf8_slice_codeunits(column, 0, self.params.max_chars)
        texts = column.to_pylist()
        owners: list[int] = []
        offsets: list[tuple[int, int]] = []
        sentences: list[str] = []
        for row in rows:
            text = texts[row] or ""
            for start, end in sentence_spans(text):
                owners.append(int(row))
                offsets.append((start, end))
                sentences.append(text[start:end])
        sentence_scores = self.score_texts(sentences)
        spans: list[list[dict[str, float | int]]] = [[] for _ in range(len(texts))]
        if sentence_scores.size:
            np.maximum.at(scores, np.asarray(owners), sentence_scores)
        threshold = self.params.span_threshold
        for owner, (start, end), score in zip(owners, offsets, sentence_scores, strict=True):
            if score >= threshold:
                spans[owner].append({"start": start, "end": end, "score": float(score)})
        self.stats.count("sentences_scored", len(sentences))
        return spans
