"""Run any datatrove step inside a gristmill pipeline, on Arrow batches.

Filters go through their own ``filter_batch`` so the decisions (and reasons) are exactly
datatrove's; other steps (formatters, mappers) run through their ``run`` generator and their
edited text is written back. The reverse direction, a gristmill pipeline as a datatrove
step, is in ``gristmill.adapters.gristmill_in_datatrove``.

Metadata goes both ways. Every column of the batch but ``id`` and ``text`` is in each
document's ``metadata`` (``URLFilter`` reads ``metadata["url"]``); what the step writes there
comes back: a changed value of an existing column is written to that column, and a new key
becomes a column when the stage declares it with its Arrow type (``metadata:
{token_count: int64}``), so that a pipeline is still validated before any data flows. A new
key that is not declared fails the batch, naming the key (``undeclared_metadata: drop``
leaves such keys out instead).
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

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
    metadata: dict[str, str] = Field(
        default_factory=dict,
        description="metadata keys the step writes, returned as columns, with their Arrow "
        "types (string, int64, float64, bool, ...: pyarrow.type_for_alias names)",
    )
    undeclared_metadata: Literal["error", "drop"] = Field(
        "error",
        description="a new metadata key that is not in `metadata`: error fails the batch "
        "naming it; drop leaves it out",
    )

    @field_validator("metadata")
    @classmethod
    def _known_types(cls, value: dict[str, str]) -> dict[str, str]:
        for key, alias in value.items():
            if key in (columns.ID, columns.TEXT):
                raise ValueError(f"{key!r} is the document's own field, not metadata")
            arrow_type(alias, key)
        return value


def arrow_type(alias: str, key: str = "") -> pa.DataType:
    """The Arrow type of a name such as ``int64`` or ``string``."""
    try:
        return pa.type_for_alias(alias)
    except (ValueError, KeyError):
        raise ValueError(
            f"metadata {key!r}: {alias!r} is not an Arrow type name (string, int64, float64, "
            "bool, date32, timestamp[us], ...)"
        ) from None


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


def _python_values(column: pa.ChunkedArray) -> list[Any] | None:
    """A column as Python values for datatrove's metadata; None where some value has no
    Python form (a timestamp outside the years 1 to 9999)."""
    try:
        return column.to_pylist()  # type: ignore[no-any-return]
    except (OverflowError, ValueError, pa.ArrowException):
        return None


def _alias(documents: list[Any], key: str) -> str:
    """A type name for the values a step wrote under ``key``, for the error that asks for it."""
    values = [doc.metadata.get(key) for doc in documents if doc.metadata.get(key) is not None]
    try:
        kind = pa.array(values).type
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return "string"
    return {pa.float64(): "float64", pa.int64(): "int64", pa.bool_(): "bool"}.get(kind, str(kind))


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

    def produced_fields(self) -> tuple[pa.Field, ...]:
        declared = tuple(
            pa.field(key, arrow_type(alias, key)) for key, alias in self.params.metadata.items()
        )
        return (*super().produced_fields(), *declared)

    def _documents(self, batch: pa.Table) -> list[Any]:
        """One datatrove Document per row; every other column is in its metadata."""
        from datatrove.data import Document

        ids = batch.column(columns.ID).to_pylist()
        texts = batch.column(columns.TEXT).to_pylist()
        names: list[str] = []
        values: list[list[Any]] = []
        for name in self._metadata_columns(batch):
            column = _python_values(batch.column(name))
            if column is None:
                self.stats.count(f"metadata_not_passed:{name}")
                continue
            names.append(name)
            values.append(column)
        return [
            Document(
                text=t or "",
                id=str(i),
                metadata={n: v[row] for n, v in zip(names, values, strict=True)},
            )
            for row, (i, t) in enumerate(zip(ids, texts, strict=True))
        ]

    @staticmethod
    def _metadata_columns(batch: pa.Table) -> list[str]:
        return [n for n in batch.column_names if n not in (columns.ID, columns.TEXT)]

    def _write_back(self, batch: pa.Table, documents: list[Any]) -> pa.Table:
        """The batch with the documents' text and metadata (one document per row, in order);
        in annotate mode the text and the existing columns stay as they came (nothing is
        edited) and only the declared metadata is added."""
        annotate = self.params.mode == "annotate"
        texts = pa.array([doc.text for doc in documents], pa.string())
        original = batch.column(columns.TEXT)
        # Only the texts the step changed are replaced (a null text stays null).
        changed = pc.not_equal(texts, pc.fill_null(original, ""))
        if not annotate and pc.any(changed).as_py():
            position = batch.column_names.index(columns.TEXT)
            new = pc.if_else(changed, texts.cast(original.type), original)
            batch = batch.set_column(position, columns.TEXT, new)
        written: set[str] = set()
        for doc in documents:
            written.update(doc.metadata)
        for name in self._metadata_columns(batch):
            if annotate or name in self.params.metadata:
                continue
            before = _python_values(batch.column(name))
            if before is None:
                continue  # not passed to the step (no Python form): left as it is
            values = [doc.metadata.get(name) for doc in documents]
            if values != before:
                batch = self._set(batch, name, values, batch.schema.field(name).type)
        for name, alias in self.params.metadata.items():
            values = [doc.metadata.get(name) for doc in documents]
            batch = self._set(batch, name, values, arrow_type(alias, name))
        undeclared = sorted(written - set(batch.column_names) - {"filter_reason"})
        if undeclared and self.params.undeclared_metadata == "error":
            kinds = ", ".join(f"{k}: {_alias(documents, k)}" for k in undeclared)
            raise ConfigError(
                f"datatrove step {self.params.step}: wrote metadata {', '.join(undeclared)} "
                f"that the stage does not declare; declare it to get it as columns "
                f"(metadata: {{{kinds}}}) or set undeclared_metadata: drop"
            )
        for name in undeclared:
            self.stats.count(f"metadata_left_out:{name}")
        return batch

    def _set(self, batch: pa.Table, name: str, values: list[Any], kind: pa.DataType) -> pa.Table:
        try:
            array = pa.array(values, kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
            raise ConfigError(
                f"datatrove step {self.params.step}: metadata {name!r} does not fit {kind} "
                f"({error})"
            ) from None
        if name in batch.column_names:
            return batch.set_column(batch.column_names.index(name), name, array)
        return batch.append_column(name, array)

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
        # Some filters edit what they keep (C4's remove_lines) or write metadata (a language
        # label): the documents as the step left them are the output (annotate mode adds the
        # declared metadata and edits nothing).
        verdict.edited = self._write_back(batch, documents)
        return self.apply_verdict(batch, verdict)

    def _run_mapper(self, batch: pa.Table) -> StageResult:
        """A non-filter step: keep the rows it yields, with the text and metadata it gives
        them; in annotate mode every row stays, as it came, with ``keep_datatrove``."""
        documents = self._documents(batch)
        position = {id(doc): i for i, doc in enumerate(documents)}
        kept = {position[id(doc)] for doc in self._step.run(iter(documents), rank=0, world_size=1)}
        keep = pa.array([i in kept for i in range(batch.num_rows)], pa.bool_())
        verdict = Verdict(keep, pa.repeat(pa.scalar(self.drop_reason), batch.num_rows))
        verdict.edited = self._write_back(batch, documents)
        return self.apply_verdict(batch, verdict)
