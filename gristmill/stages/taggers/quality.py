"""Quality score from any fastText classifier: column ``quality_score``.

It stands in for the PaLM/GLaM quality classifier that Longpre et al. (2023, "A Pretrainer's
Guide to Training Data") filtered with, which was never released.

The score is P(positive label), so higher is always better whatever the model calls its
labels: DCLM's ``fasttext-oh-eli5`` (positive ``hq``), a Dolma quality model, or the small
default that ``gristmill train-classifier`` trained from ``data_samples/``
(``gristmill/models/quality_default.yaml`` says how). Newlines become spaces first, as DCLM
does. Dropping is another stage's job (``score_filter``), so a threshold can change without
scoring again.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import Field, PositiveInt

from gristmill.core import columns
from gristmill.core.registry import register_stage
from gristmill.core.stage import Stage, StageParams
from gristmill.models.fasttext_model import FastTextModel, prepare_texts
from gristmill.stages.taggers.scoring import bundled_model, count_scores, has_text, set_columns

QUALITY_SCORE = "quality_score"
DEFAULT_QUALITY_MODEL = "quality_default.ftz"


class QualityParams(StageParams):
    model_path: str | None = Field(
        None,
        description="fastText classifier (.bin/.ftz); default: the bundled model trained "
        "on data_samples/ (curated text vs noisy crawl)",
    )
    positive_label: str = Field(
        "hq", description="the label meaning 'good' (with or without __label__); DCLM: hq"
    )
    newline_replacement: str = Field(" ", description="what replaces newlines (DCLM: a space)")
    max_chars: PositiveInt | None = Field(
        None, description="score only the first N characters of each document (None: all)"
    )


@register_stage
class QualityScorer(Stage):
    """Adds quality_score = P(positive label) of a fastText classifier (higher is better).

    Null, empty or whitespace-only text scores 0.
    """

    name = "quality"
    Params = QualityParams
    params: QualityParams
    requires = (columns.TEXT,)
    _model: FastTextModel | None = None

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (pa.field(QUALITY_SCORE, pa.float32()),)

    def setup(self) -> None:
        if self._model is None:
            path = self.params.model_path or bundled_model(DEFAULT_QUALITY_MODEL)
            model = FastTextModel.load(path)
            # Fail at setup, not on the first batch, when the label is not the model's.
            model.label_probability([], self.params.positive_label)
            self._model = model

    def teardown(self) -> None:
        self._model = None

    def score(self, column: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """quality_score of every row of a text column (float32)."""
        self.setup()
        assert self._model is not None
        texts = prepare_texts(
            column,
            newline_replacement=self.params.newline_replacement,
            max_chars=self.params.max_chars,
        )
        scores = self._model.label_probability(texts, self.params.positive_label)
        return np.where(has_text(column), scores, 0.0).astype(np.float32)

    def process(self, batch: pa.Table) -> pa.Table:
        scores = self.score(batch.column(columns.TEXT))
        count_scores(self.stats, QUALITY_SCORE, scores)
        return set_columns(batch, self.produced_fields(), [pa.array(scores, pa.float32())])
