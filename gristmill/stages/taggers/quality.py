"""Quality score from any fastText classifier: column ``quality_score``.

It stands in for the PaLM/GLaM quality classifier that Longpre et al. (2023, "A Pretrainer's
Guide to Training Data") filtered with, which was never released.

The score is P(positive label), so higher is always better whatever the model calls its
labels: DCLM's ``fasttext-oh-eli5`` (positive ``hq``), a Dolma quality model, or the small
default that ``gristmill train-classifier`` trained from curated, instruction and filtered web
text against unfiltered crawl (``gristmill/models/quality_default.yaml`` says how;
``docs/quality.md`` gives its held-out figures). Newlines become spaces first, as DCLM does.

``unit: paragraph`` (every non-blank line, Dolma's and datatrove's paragraph) or ``unit:
sentence`` scores each unit and adds ``quality_spans`` (``[start, end, score]`` of every
unit); the document's score is then the mean of its units' scores weighted by their length,
so one good line does not lift a page of boilerplate. Dropping is another stage's job
(``score_filter``), so a threshold can change without scoring again.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, PositiveInt

from gristmill.core import columns
from gristmill.core.registry import register_stage
from gristmill.core.stage import Stage, StageParams
from gristmill.models.fasttext_model import FastTextModel, prepare_texts
from gristmill.stages.taggers.scoring import (
    SPAN_TYPE,
    bundled_model,
    count_scores,
    has_text,
    score_units,
    set_columns,
)

QUALITY_SCORE = "quality_score"
QUALITY_SPANS = "quality_spans"
DEFAULT_QUALITY_MODEL = "quality_default.ftz"


class QualityParams(StageParams):
    model_path: str | None = Field(
        None,
        description="fastText classifier (.bin/.ftz); default: the bundled model trained on "
        "curated, instruction and filtered web text vs unfiltered crawl (docs/quality.md)",
    )
    positive_label: str = Field(
        "hq", description="the label meaning 'good' (with or without __label__); DCLM: hq"
    )
    unit: Literal["document", "paragraph", "sentence"] = Field(
        "document",
        description="score whole documents, or each paragraph (line) or sentence: adds "
        "quality_spans, and the document score is the length-weighted mean of its units",
    )
    newline_replacement: str = Field(" ", description="what replaces newlines (DCLM: a space)")
    max_chars: PositiveInt | None = Field(
        None, description="score only the first N characters of each document (None: all)"
    )


@register_stage
class QualityScorer(Stage):
    """Adds quality_score = P(positive label) of a fastText classifier (higher is better);
    paragraph or sentence units also add quality_spans.

    Null, empty or whitespace-only text scores 0 (and has no spans).
    """

    name = "quality"
    Params = QualityParams
    params: QualityParams
    requires = (columns.TEXT,)
    _model: FastTextModel | None = None

    def produced_fields(self) -> tuple[pa.Field, ...]:
        if self.params.unit == "document":
            return (pa.field(QUALITY_SCORE, pa.float32()),)
        return (pa.field(QUALITY_SCORE, pa.float32()), pa.field(QUALITY_SPANS, SPAN_TYPE))

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

    def score_by_unit(
        self, column: pa.Array | pa.ChunkedArray
    ) -> tuple[np.ndarray, list[list[dict[str, float | int]]]]:
        """Document scores (length-weighted unit means) and every row's scored units."""
        self.setup()
        assert self._model is not None
        model, label = self._model, self.params.positive_label
        # Spans are offsets into the text as stored, so it is only cut, never rewritten.
        if self.params.max_chars is not None:
            column = pc.utf8_slice_codeunits(column, 0, self.params.max_chars)
        texts = column.to_pylist()
        units = score_units(
            texts,
            np.flatnonzero(has_text(column)),
            self.params.unit,
            lambda lines: model.label_probability(lines, label),
        )
        weights = units.lengths()
        totals = np.bincount(units.owners, weights * units.scores, minlength=len(texts))
        sizes = np.bincount(units.owners, weights, minlength=len(texts))
        scores = np.divide(totals, sizes, out=np.zeros(len(texts)), where=sizes > 0)
        self.stats.count(f"{self.params.unit}s_scored", len(units.offsets))
        return scores.astype(np.float32), units.spans(len(texts))

    def process(self, batch: pa.Table) -> pa.Table:
        column = batch.column(columns.TEXT)
        if self.params.unit == "document":
            scores = self.score(column)
            values = [pa.array(scores, pa.float32())]
        else:
            scores, spans = self.score_by_unit(column)
            values = [pa.array(scores, pa.float32()), pa.array(spans, SPAN_TYPE)]
        count_scores(self.stats, QUALITY_SCORE, scores)
        return set_columns(batch, self.produced_fields(), values)
