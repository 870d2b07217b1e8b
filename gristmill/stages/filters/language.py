"""Keep documents in the wanted languages with a confident enough language ID.

It reads the ``language`` and ``language_score`` columns that the ``language`` tagger wrote,
so changing the threshold or the language list never runs the model again. The defaults are
datatrove's and DCLM's (score ≥ 0.65).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from gristmill.core.filter import Filter, FilterParams, Verdict
from gristmill.core.registry import register_stage
from gristmill.stages.taggers.language import LANGUAGE, LANGUAGE_SCORE

#: Drop reasons, one per rule, so the stats say why documents went.
NO_LANGUAGE = "language_missing"
WRONG_LANGUAGE = "language_not_wanted"
LOW_SCORE = "language_score_low"


class LanguageFilterParams(FilterParams):
    languages: list[str] = Field(
        default_factory=list,
        description="language codes to keep, as the tagger writes them (e.g. en, de); "
        "empty: any language",
    )
    threshold: float = Field(
        0.65, ge=0.0, le=1.0, description="keep only rows whose language_score is at least this"
    )

    @field_validator("languages")
    @classmethod
    def _normalise(cls, value: list[str]) -> list[str]:
        return [code.strip().removeprefix("__label__") for code in value if code.strip()]


@register_stage
class LanguageFilter(Filter):
    """Drops documents outside ``languages`` or below ``threshold`` (needs the language tagger)."""

    name = "language_filter"
    Params = LanguageFilterParams  # type: ignore[assignment]
    params: LanguageFilterParams
    requires = (LANGUAGE, LANGUAGE_SCORE)

    def judge(self, batch: pa.Table) -> Verdict:
        # As strings: a column of type null (no language at all) cannot be matched otherwise.
        language = batch.column(LANGUAGE).cast(pa.string())
        score = pc.fill_null(batch.column(LANGUAGE_SCORE).cast(pa.float64()), 0.0)
        missing = language.is_null()
        confident = pc.greater_equal(score, self.params.threshold)
        if self.params.languages:
            wanted = pc.fill_null(
                pc.is_in(language, value_set=pa.array(self.params.languages, pa.string())),
                False,
            )
        else:
            wanted = pc.invert(missing)
        keep = pc.and_(pc.and_(wanted, confident), pc.invert(missing))
        no_reason = pa.scalar(None, pa.string())
        reasons = pc.if_else(
            missing,
            pa.scalar(NO_LANGUAGE),
            pc.if_else(
                pc.invert(wanted),
                pa.scalar(WRONG_LANGUAGE),
                pc.if_else(confident, no_reason, pa.scalar(LOW_SCORE)),
            ),
        )
        return Verdict(_single(keep), _single(reasons))


def _single(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
