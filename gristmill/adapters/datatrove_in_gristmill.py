"""Run any datatrove step inside a gristmill pipeline, on Arrow batches.

Filters go through their own ``filter_batch`` so the decisions (and reasons) are exactly
datatrove's; other steps (formatters, mappers) run through their ``run`` generator and their
edited text is written back. The reverse direction, a gristmill pipeline as a datatrove
step, is in ``gristmill.adapters.gristmill_in_datatrove``.
"""

from __future__ import annotations

import importlib
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from gristmill.core import columns
from gristmill.core.filter import Filter, FilterParams, Verdict
from gristmill.core.registry import register_stage
from gristmill.core.stage import StageResult
from gristmill.errors import ConfigError

ALLOWED_PREFIX = "datatrove.pipeline."


class DatatroveStepParams(FilterParams):
    step: str = Field(
        "",
        description="import path of a datatrove step class, "
        "e.g. datatrove.pipeline.filters.GopherQualityFilter",
    )
    args: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the step")


def import_step_class(path: str) -> type:
    """Import a datatrove step class by dotted path; only datatrove's own steps are allowed."""
    if not path.startswith(ALLOWED_PREFIX):
        raise ConfigError(
            f"datatrove step {path!r}: only classes under {ALLOWED_PREFIX} are allowed"
        )
    module_name, _, class_name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"datatrove step {path!r} cannot be imported ({error})") from None


def _plain_attributes(step: object) -> dict[str, str]:
    """What a step instance was configured with, for the run's fingerprint."""
    simple = (int, float, str, bool, tuple, list, type(None))
    return {
        k: repr(v) for k, v in sorted(vars(step).items()) if isinstance(v, simple) and k != "stats"
    }


@register_stage
class DatatroveStep(Filter):
    """Any datatrove PipelineStep (filters, formatters) as a gristmill stage."""

    name = "datatrove"
    Params = DatatroveStepParams
    params: DatatroveStepParams
    requires = (columns.ID, columns.TEXT)

    def __init__(self, step: Any = None, params: Any = None, **kwargs: Any) -> None:
        if step is not None and not isinstance(step, (str, dict, DatatroveStepParams)):
            self._step = step
            kwargs.setdefault("step", f"{type(step).__module__}.{type(step).__qualname__}")
        else:
            if isinstance(step, str):
                kwargs.setdefault("step", step)
            elif step is not None:
                params = step
            self._step = None
        super().__init__(params, **kwargs)
        if self._step is None:
            if not self.params.step:
                raise ConfigError("stage 'datatrove', parameter 'step': a step class is required")
            self._step = import_step_class(self.params.step)(**self.params.args)

    @property
    def step(self) -> Any:
        return self._step

    @property
    def drop_reason(self) -> str:
        return type(self._step).__name__

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        spec["params"]["instance"] = _plain_attributes(self._step)
        return spec

    def _documents(self, batch: pa.Table) -> list[Any]:
        from datatrove.data import Document

        ids = batch.column(columns.ID).to_pylist()
        texts = batch.column(columns.TEXT).to_pylist()
        return [Document(text=t or "", id=str(i)) for i, t in zip(ids, texts, strict=True)]

    def _is_filter(self) -> bool:
        from datatrove.pipeline.filters.base_filter import BaseFilter

        return isinstance(self._step, BaseFilter)

    def judge(self, batch: pa.Table) -> Verdict:
        return self._judge_documents(self._documents(batch))

    def _judge_documents(self, documents: list[Any]) -> Verdict:
        results = self._step.filter_batch(documents)
        keep, reasons = [], []
        for result in results:
            kept, reason = result if isinstance(result, tuple) else (result, None)
            keep.append(bool(kept))
            reasons.append(f"{self.drop_reason}:{reason}" if reason else self.drop_reason)
        return Verdict(pa.array(keep, pa.bool_()), pa.array(reasons, pa.string()))

    def run_batch(self, batch: pa.Table) -> StageResult:
        if not self._is_filter():
            return self._run_mapper(batch)
        documents = self._documents(batch)
        verdict = self._judge_documents(documents)
        # Some filters edit what they keep (C4's remove_lines): their text is the output.
        texts = pa.array([doc.text for doc in documents], pa.string())
        original = pc.fill_null(batch.column(columns.TEXT), "")
        if not pc.all(pc.equal(texts, original)).as_py():
            position = batch.column_names.index(columns.TEXT)
            batch = batch.set_column(position, columns.TEXT, texts)
        return self.apply_verdict(batch, verdict)

    def _run_mapper(self, batch: pa.Table) -> StageResult:
        """A non-filter step: keep the rows it yields, with the text it gives them."""
        documents = self._documents(batch)
        position = {id(doc): i for i, doc in enumerate(documents)}
        kept: dict[int, str] = {}
        for doc in self._step.run(iter(documents), rank=0, world_size=1):
            kept[position[id(doc)]] = doc.text
        rows = sorted(kept)
        mask = pa.array([i in kept for i in range(batch.num_rows)], pa.bool_())
        table = batch.filter(mask)
        text_index = table.column_names.index(columns.TEXT)
        table = table.set_column(
            text_index, columns.TEXT, pa.array([kept[i] for i in rows], pa.string())
        )
        rejected = batch.filter(pa.array([i not in kept for i in range(batch.num_rows)]))
        if rejected.num_rows:
            self.stats.dropped[self.drop_reason] += rejected.num_rows
        reasons = pa.repeat(pa.scalar(self.drop_reason), rejected.num_rows)
        return StageResult(table, rejected, reasons)
