"""Toxicity scores: ``toxicity_score`` (higher = more toxic), and hate and NSFW scores.

It stands in for the Perspective API score that Longpre et al. (2023, "A Pretrainer's Guide to
Training Data") filtered on, which cannot run offline.

Scorers of ``toxicity_score``, all offline:

* ``mean`` (default): the mean of the two below, an ensemble of two models trained on
  different data by different methods, so that the quirks of one (tweets for the fastText
  model, the training sets of the package for the other) weigh half.
* ``profanity_check``: the linear offensive-language model inside ``alt-profanity-check``.
  It was trained on the full Davidson and Jigsaw data sets, so its figures on their rows are
  not held-out figures.
* ``fasttext``: a fastText model in Dolma's Jigsaw format (``__label__toxic`` or
  ``__label__nsfw`` against a ``non``-label), the positive label read from the model. Without a
  path, the bundled model trained on the Jigsaw and Davidson rows outside the held-out slice
  (``gristmill/models/toxicity_fasttext.yaml``).

``categories: true`` (default) also writes ``toxicity_hate_score`` and ``toxicity_nsfw_score``
from the two bundled fastText models trained the same way (hate speech; obscene or sexual
language), Dolma's two Jigsaw models. Held-out figures of every model: ``docs/toxicity.md``.

``unit: sentence`` scores every sentence, as Dolma does, and also writes ``toxicity_spans``:
``[start, end, score]`` of the sentences whose ``toxicity_score`` is at least
``span_threshold``; each document score is then its most toxic sentence's. The
``toxic_spans`` refiner removes those spans; dropping documents is ``score_filter``'s job.
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
from gristmill.models.linear_text import profanity_check_model
from gristmill.stages.taggers.scoring import (
    SPAN_TYPE,
    bundled_model,
    count_scores,
    has_text,
    score_units,
    set_columns,
)

TOXICITY_SCORE = "toxicity_score"
TOXICITY_SPANS = "toxicity_spans"
HATE_SCORE = "toxicity_hate_score"
NSFW_SCORE = "toxicity_nsfw_score"
DEFAULT_FASTTEXT_MODEL = "toxicity_fasttext.ftz"
DEFAULT_HATE_MODEL = "toxicity_hate.ftz"
DEFAULT_NSFW_MODEL = "toxicity_nsfw.ftz"
__all__ = ["SPAN_TYPE", "TOXICITY_SCORE", "TOXICITY_SPANS", "ToxicityScorer"]

Scorer = Callable[[Sequence[str]], np.ndarray]


class ToxicityParams(StageParams):
    model: Literal["profanity_check", "fasttext", "mean"] = Field(
        "mean",
        description="mean (ensemble of the two), profanity_check (alt-profanity-check's linear "
        "model) or fasttext (a Dolma-Jigsaw-style model)",
    )
    model_path: str | None = Field(
        None,
        description="fastText model for model=fasttext/mean; default: the bundled one trained "
        "on labelled Jigsaw and Davidson rows",
    )
    categories: bool = Field(
        True, description="also write toxicity_hate_score and toxicity_nsfw_score"
    )
    hate_model_path: str | None = Field(
        None, description="fastText hate-speech model; default: the bundled toxicity_hate.ftz"
    )
    nsfw_model_path: str | None = Field(
        None, description="fastText NSFW model; default: the bundled toxicity_nsfw.ftz"
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
    model = profanity_check_model()

    def score(texts: Sequence[str]) -> np.ndarray:
        return model.predict_proba(texts).astype(np.float32)

    return score


def fasttext_scorer(
    path: str | None, label: str | None, default: str = DEFAULT_FASTTEXT_MODEL
) -> Scorer:
    model = FastTextModel.load(path or bundled_model(default))
    chosen = positive_label(model, label)
    model.label_probability([], chosen)

    def score(texts: Sequence[str]) -> np.ndarray:
        return model.label_probability(texts, chosen)

    return score


@register_stage
class ToxicityScorer(Stage):
    """Adds toxicity_score (higher = more toxic), toxicity_hate_score and
    toxicity_nsfw_score (categories); sentence mode also adds toxicity_spans.

    Null, empty or whitespace-only text scores 0 (and has no spans).
    """

    name = "toxicity"
    Params = ToxicityParams
    params: ToxicityParams
    requires = (columns.TEXT,)
    _scorer: Scorer | None = None
    _categories: tuple[Scorer, Scorer] | None = None

    def produced_fields(self) -> tuple[pa.Field, ...]:
        fields = [pa.field(TOXICITY_SCORE, pa.float32())]
        if self.params.categories:
            fields += [pa.field(HATE_SCORE, pa.float32()), pa.field(NSFW_SCORE, pa.float32())]
        if self.params.unit == "sentence":
            fields.append(pa.field(TOXICITY_SPANS, SPAN_TYPE))
        return tuple(fields)

    def setup(self) -> None:
        if self._scorer is not None:
            return
        if self.params.categories:
            self._categories = (
                fasttext_scorer(self.params.hate_model_path, None, DEFAULT_HATE_MODEL),
                fasttext_scorer(self.params.nsfw_model_path, None, DEFAULT_NSFW_MODEL),
            )
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
        self._categories = None

    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        """toxicity_score of plain strings (newlines already replaced)."""
        self.setup()
        assert self._scorer is not None
        return _clipped(self._scorer, texts)

    def category_scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(hate, NSFW) scores of plain strings (newlines already replaced)."""
        self.setup()
        if self._categories is None:
            raise ConfigError("toxicity: categories is off, so no hate or NSFW model is loaded")
        hate, nsfw = self._categories
        return _clipped(hate, texts), _clipped(nsfw, texts)

    def process(self, batch: pa.Table) -> pa.Table:
        column = batch.column(columns.TEXT)
        rows = np.flatnonzero(has_text(column))
        columns_out = 3 if self.params.categories else 1
        scores = np.zeros((columns_out, batch.num_rows), dtype=np.float32)
        if self.params.unit == "document":
            texts = prepare_texts(
                column,
                newline_replacement=self.params.newline_replacement,
                max_chars=self.params.max_chars,
            )
            # Only fastText reads newlines as spaces by itself; the other scorers get lines.
            lines = texts.to_pylist()
            replacement = self.params.newline_replacement
            scores[:, rows] = self._score_all([one_line(lines[i], replacement) for i in rows])
            values = [pa.array(row, pa.float32()) for row in scores]
        else:
            spans = self._score_sentences(column, rows, scores)
            values = [pa.array(row, pa.float32()) for row in scores]
            values.append(pa.array(spans, SPAN_TYPE))
        count_scores(self.stats, TOXICITY_SCORE, scores[0])
        return set_columns(batch, self.produced_fields(), values)

    def _score_all(self, texts: list[str]) -> np.ndarray:
        """Every score this stage writes, one row each (toxicity, then hate and NSFW)."""
        if not self.params.categories:
            return self.score_texts(texts)[None, :]
        return np.stack([self.score_texts(texts), *self.category_scores(texts)])

    def _score_sentences(
        self, column: pa.Array | pa.ChunkedArray, rows: np.ndarray, scores: np.ndarray
    ) -> list[list[dict[str, float | int]]]:
        """Score every sentence of the batch in one call; fill ``scores`` with each
        document's maximum and return each document's spans above the threshold."""
        # Spans are offsets into the text as stored, so it is only cut, never rewritten.
        if self.params.max_chars is not None:
            column = pc.utf8_slice_codeunits(column, 0, self.params.max_chars)
        texts = column.to_pylist()
        # score_units wants toxicity_score per sentence; the category scores come with it.
        every_score: list[np.ndarray] = []

        def toxicity(lines: list[str]) -> np.ndarray:
            every_score.append(self._score_all(lines))
            return every_score[0][0]

        units = score_units(texts, rows, "sentence", toxicity)
        if every_score:
            for kind, unit_scores in enumerate(every_score[0]):
                np.maximum.at(scores[kind], units.owners, unit_scores)
        self.stats.count("sentences_scored", len(units.offsets))
        return units.spans(len(texts), self.params.span_threshold)


def _clipped(scorer: Scorer, texts: Sequence[str]) -> np.ndarray:
    if not texts:
        return np.zeros(0, dtype=np.float32)
    return np.clip(scorer(texts), 0.0, 1.0).astype(np.float32)
