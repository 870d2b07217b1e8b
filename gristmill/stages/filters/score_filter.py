"""``score_filter``: keep documents by a score column, the Pretrainer's Guide way.

One filter for every score (quality, toxicity, anything numeric), because scoring and dropping
are separate stages: a cut can change without scoring again. Methods:

* ``threshold``: keep ``score >= threshold`` (keep_high) or ``<= threshold`` (keep_low).
* ``percentile``: keep ``keep_fraction`` of the documents from the preferred end. The cut needs
  the score distribution of the whole run, so the stage has a corpus-wide phase: the run
  driver sketches the scores of every task first (``score_sketch``, mergeable), or
  ``quantiles_from`` reuses the decision of an earlier run
  (``OUTPUT/_run/phases/NN_score_filter/decision.json``, which holds the sketch).
* ``inverse``: the Guide's inverse filters: remove ``remove_fraction`` from the end the normal
  filter keeps (the least toxic 8%, the best-looking 27%).
* ``pareto``: GPT-3's soft filter, keep iff ``pareto(alpha) > 1 - score``; the Pareto draw of
  each document comes from a stable hash of its id and ``seed``, so it is the same whatever the
  batching and the workers.

Fractions apply to the documents that have a score; null or NaN scores follow ``on_missing``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from gristmill.core import columns
from gristmill.core.filter import Filter, FilterParams, Verdict
from gristmill.core.phase import PhaseResult, SummaryPhase
from gristmill.core.registry import register_stage
from gristmill.errors import ConfigError
from gristmill.stages.filters import score_sketch
from gristmill.stages.filters.id_hash import id_uniforms, salt_for

Method = Literal["threshold", "percentile", "inverse", "pareto"]
Direction = Literal["keep_high", "keep_low"]

#: The Pretrainer's Guide retention fractions on C4 (Longpre et al., 2023), as percentile
#: cuts, so that they hold for any scorer. Quality scores are oriented higher = better.
PRESETS: dict[str, dict[str, Any]] = {
    **{
        f"quality_keep_{round(f * 100)}": {
            "column": "quality_score",
            "method": "percentile",
            "direction": "keep_high",
            "keep_fraction": f,
        }
        for f in (0.91, 0.84, 0.73, 0.46)
    },
    "quality_inverse_27": {
        "column": "quality_score",
        "method": "inverse",
        "direction": "keep_high",
        "remove_fraction": 0.27,
    },
    **{
        f"toxicity_keep_{round(f * 100)}": {
            "column": "toxicity_score",
            "method": "percentile",
            "direction": "keep_low",
            "keep_fraction": f,
        }
        for f in (0.98, 0.95, 0.86, 0.76, 0.61)
    },
    "toxicity_inverse_8": {
        "column": "toxicity_score",
        "method": "inverse",
        "direction": "keep_low",
        "remove_fraction": 0.08,
    },
}

Preset = Literal[
    "quality_keep_91",
    "quality_keep_84",
    "quality_keep_73",
    "quality_keep_46",
    "quality_inverse_27",
    "toxicity_keep_98",
    "toxicity_keep_95",
    "toxicity_keep_86",
    "toxicity_keep_76",
    "toxicity_keep_61",
    "toxicity_inverse_8",
]


class ScoreFilterParams(FilterParams):
    preset: Preset | None = Field(
        None,
        description=(
            "the Pretrainer's Guide retention on C4, as a whole-run percentile cut; fills the "
            "parameters you do not set. quality_keep_91/84/73/46: keep the top 91/84/73/46% "
            "of quality_score (the Guide's T=0.975/0.95/0.9/0.7); quality_inverse_27: remove "
            "the best-scoring 27% (inverse T=0.5); toxicity_keep_98/95/86/76/61: keep the "
            "least toxic 98/95/86/76/61% of toxicity_score (T=0.95/0.9/0.7/0.5/0.3); "
            "toxicity_inverse_8: remove the least toxic 8% (inverse T=0.06)"
        ),
    )
    column: str | None = Field(
        None, description="the score column (quality_score and toxicity_score for the presets)"
    )
    method: Method = Field(
        "threshold",
        description="threshold | percentile (whole-run cut) | inverse (remove from the kept "
        "end) | pareto (GPT-3 soft filter)",
    )
    direction: Direction = Field(
        "keep_high", description="which end a normal filter keeps: keep_high or keep_low"
    )
    threshold: float | None = Field(
        None, description="threshold: keep score >= threshold (keep_high) or <= (keep_low)"
    )
    keep_fraction: float | None = Field(
        None, gt=0, le=1, description="percentile: the share of scored documents to keep"
    )
    remove_fraction: float | None = Field(
        None, ge=0, lt=1, description="inverse: the share removed from the end normally kept"
    )
    quantiles_from: str | None = Field(
        None,
        description="percentile/inverse: the decision of an earlier run "
        "(OUTPUT/_run/phases/NN_score_filter/decision.json), used instead of a whole-run phase",
    )
    alpha: float = Field(9.0, gt=0, description="pareto: the shape (GPT-3 used 9)")
    seed: int = Field(0, description="pareto and percentile tie-breaks: per-document draws")
    on_missing: Literal["keep", "drop"] = Field(
        "keep", description="what happens to documents whose score is null or NaN"
    )
    precision_bits: int = Field(
        score_sketch.DEFAULT_BITS,
        ge=4,
        le=24,
        description="percentile: mantissa bits of the score sketch (relative bucket width 2^-n)",
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") in PRESETS:
            return {**PRESETS[data["preset"]], **data}
        return data

    @model_validator(mode="after")
    def _check_method(self) -> ScoreFilterParams:
        if not self.column:
            raise ValueError("'column' is required (or a 'preset' that names one)")
        needed = {
            "threshold": "threshold",
            "percentile": "keep_fraction",
            "inverse": "remove_fraction",
        }.get(self.method)
        if needed is not None and getattr(self, needed) is None:
            raise ValueError(f"method '{self.method}' needs '{needed}'")
        if self.quantiles_from is not None and self.method not in ("percentile", "inverse"):
            raise ValueError("'quantiles_from' only applies to the percentile and inverse methods")
        return self


def load_saved_sketch(path: str, column: str) -> dict[str, Any]:
    """The score sketch of an earlier run's decision file, checked against this column."""
    try:
        saved = json.loads(Path(path).read_text(encoding="utf-8"))
        sketch = saved["decision"]["sketch"]
        sketch_column = sketch["column"]
        sketch["bits"], sketch["buckets"]
    except OSError as error:
        raise ConfigError(f"score_filter: cannot read quantiles_from {path} ({error})") from None
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(
            f"score_filter: quantiles_from {path} is not a score_filter decision ({error!r})"
        ) from None
    if sketch_column != column:
        raise ConfigError(
            f"score_filter: quantiles_from {path} sketches column '{sketch_column}', not '{column}'"
        )
    return dict(sketch)


class ScoreSketchPhase(SummaryPhase):
    """The whole run's score distribution, as a mergeable sketch; the decision is the cut."""

    def __init__(self, stage: ScoreFilter) -> None:
        self.stage = stage
        self.columns = (stage.column,)

    def summarise(self, batch: pa.Table) -> dict[str, Any]:
        values, present = self.stage.scores(batch)
        summary = score_sketch.sketch(values[present], self.stage.params.precision_bits)
        summary["column"] = self.stage.column
        return summary

    def merge(self, summaries: list[dict[str, Any]]) -> dict[str, Any]:
        merged = score_sketch.merge(summaries, self.stage.params.precision_bits)
        merged["column"] = self.stage.column
        return merged

    def decide(self, summary: dict[str, Any]) -> dict[str, Any]:
        cut = self.stage.cut_for(summary).describe()
        low, high = cut["boundary_low"], cut["boundary_high"]
        text = (
            f"the cut keeps {cut['expected_kept']:,} of {cut['documents']:,} scored documents "
            f"({self.stage.column} boundary {low:.4g}..{high:.4g})"
        )
        return {**cut, "sketch": summary, "summary": text}


@register_stage
class ScoreFilter(Filter):
    """Keeps documents by a score column: threshold, whole-run percentile, inverse or pareto."""

    name = "score_filter"
    Params = ScoreFilterParams  # type: ignore[assignment]
    params: ScoreFilterParams

    def __init__(self, params: Any = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._cut: score_sketch.Cut | None = None
        self._saved: dict[str, Any] | None = None
        if self.params.quantiles_from is not None:
            self._saved = load_saved_sketch(self.params.quantiles_from, self.column)
            self._cut = self.cut_for(self._saved)

    # -- description -------------------------------------------------------------------------
    @property
    def column(self) -> str:
        assert self.params.column is not None  # checked by the parameters' validator
        return self.params.column

    @property
    def requires(self) -> tuple[str, ...]:  # type: ignore[override]
        # Only the score: the whole-run statistics pass reads just this column. The id
        # (per-document draws) is always there, since every reader provides one.
        return (self.column,)

    @property
    def drop_reason(self) -> str:
        return f"{self.name}:{self.column}"

    @property
    def _is_cut(self) -> bool:
        return self.params.method in ("percentile", "inverse")

    @property
    def _cut_keeps_high(self) -> bool:
        high = self.params.direction == "keep_high"
        return not high if self.params.method == "inverse" else high

    @property
    def _cut_fraction(self) -> float:
        if self.params.method == "inverse":
            return 1.0 - float(self.params.remove_fraction or 0.0)
        return float(self.params.keep_fraction or 0.0)

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        if self._saved is not None and self._cut is not None:
            # The file's content, not only its path, decides the output.
            spec["cut"] = self._cut.describe()
        return spec

    # -- the whole-run cut -----------------------------------------------------------------
    def corpus_phase(self) -> ScoreSketchPhase | None:
        if not self._is_cut or self._saved is not None:
            return None
        return ScoreSketchPhase(self)

    def use_phase_result(self, result: PhaseResult) -> None:
        self._cut = self.cut_for(result.decision["sketch"])

    def scores(self, batch: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """The scores as float64, and which of them are present (not null, not NaN)."""
        column = batch.column(self.column)
        kind = column.type
        # A column of type null (no score at all, as a Parquet file may store it) is missing
        # everywhere, not a column of the wrong type.
        numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_null)
        if not (any(check(kind) for check in numeric) or pa.types.is_decimal(kind)):
            raise ConfigError(f"score_filter: column '{self.column}' is {kind}, not a number")
        values = pc.fill_null(column.cast(pa.float64()), float("nan")).to_numpy()
        values = np.asarray(values, dtype=np.float64)
        return values, ~np.isnan(values)

    def cut_for(self, sketch: dict[str, Any]) -> score_sketch.Cut:
        if int(sketch["bits"]) != self.params.precision_bits:
            raise ConfigError(
                f"score_filter: the saved sketch has precision_bits={sketch['bits']}, "
                f"this stage {self.params.precision_bits}"
            )
        return score_sketch.find_cut(sketch, self._cut_fraction, self._cut_keeps_high)

    # -- deciding ------------------------------------------------------------------------------
    def judge(self, batch: pa.Table) -> Verdict:
        values, present = self.scores(batch)
        ids = batch.column(columns.ID)
        method = self.params.method
        if method == "threshold":
            keep = self._keep_threshold(values)
        elif method == "pareto":
            keep = self._keep_pareto(values, ids)
        else:
            keep = self._keep_cut(values, present, ids)
        keep = np.where(present, keep, self.params.on_missing == "keep")
        reasons = np.where(present, self.drop_reason, f"{self.drop_reason}:missing")
        return Verdict(pa.array(keep, pa.bool_()), pa.array(reasons, pa.string()))

    def _keep_threshold(self, values: np.ndarray) -> np.ndarray:
        threshold = float(self.params.threshold)  # type: ignore[arg-type]
        with np.errstate(invalid="ignore"):
            if self.params.direction == "keep_high":
                return values >= threshold
            return values <= threshold

    def _keep_pareto(self, values: np.ndarray, ids: pa.ChunkedArray) -> np.ndarray:
        score = values if self.params.direction == "keep_high" else 1.0 - values
        uniforms = id_uniforms(ids, salt_for("score_filter.pareto", self.params.seed))
        # numpy's pareto(a) is the Lomax draw (1 - U) ** (-1 / a) - 1, by inverse transform.
        draws = np.power(1.0 - uniforms, -1.0 / self.params.alpha) - 1.0
        with np.errstate(invalid="ignore"):
            return draws > 1.0 - score

    def _keep_cut(
        self, values: np.ndarray, present: np.ndarray, ids: pa.ChunkedArray
    ) -> np.ndarray:
        cut = self._cut
        if cut is None:
            raise ConfigError(
                "score_filter: the percentile cut was never computed; run the pipeline (the run "
                "computes the cut over the whole run first) or set quantiles_from"
            )
        keys = np.zeros(len(values), dtype=np.uint64)
        keys[present] = score_sketch.bucket_keys(values[present], cut.bits)
        boundary = np.uint64(cut.boundary)
        beyond = keys > boundary if cut.keep_high else keys < boundary
        at = keys == boundary
        if cut.boundary_keep <= 0.0 or not at.any():
            return beyond
        uniforms = id_uniforms(ids, salt_for("score_filter.tie", self.params.seed))
        return beyond | (at & (uniforms < cut.boundary_keep))
