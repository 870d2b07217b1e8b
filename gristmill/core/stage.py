"""The stage contract: a named, parameterised transform of Arrow batches.

A stage declares the columns it reads and adds, so a pipeline is checked before any data
flows; it loads its models in ``setup`` (once per worker process) and keeps no state across
batches unless it says so, which is what makes shards independent and resumable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, ValidationError

from gristmill.core.phase import CorpusPhase, PhaseResult, TaskInfo
from gristmill.core.resources import Resources
from gristmill.core.stats import StageStats
from gristmill.errors import ConfigError


class StageParams(BaseModel):
    """Base of every stage's parameters: one validated schema for YAML and Python alike."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class StageResult:
    """What one batch through one stage gives: the rows that go on, and those dropped."""

    table: pa.Table
    rejected: pa.Table | None = None
    reasons: pa.Array | None = None


def describe_validation_error(stage: str, error: ValidationError) -> str:
    """One line per wrong parameter, naming the stage and the parameter, for humans."""
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(parameters)"
        given = item.get("input")
        shown = "" if isinstance(given, dict) else f" (got {given!r})"
        lines.append(f"stage '{stage}', parameter '{location}': {item['msg']}{shown}")
    return "; ".join(lines)


class Stage:
    """Base class of every stage; subclasses set ``name``, ``Params`` and ``process``."""

    #: Registry key, used in YAML.
    name: ClassVar[str] = ""
    #: The pydantic model of this stage's parameters.
    Params: ClassVar[type[StageParams]] = StageParams
    #: Columns it reads; checked before any data flows. May be a property when it depends
    #: on the parameters (a score filter reads the column it is told to).
    requires: tuple[str, ...] = ()
    #: What each worker needs to run it.
    resources: Resources = Resources()

    def __init__(self, params: StageParams | Mapping[str, Any] | None = None, **kwargs: Any):
        self.params = self._build_params(params, kwargs)
        self.stats = StageStats(self.name)

    @classmethod
    def _build_params(
        cls, params: StageParams | Mapping[str, Any] | None, overrides: Mapping[str, Any]
    ) -> Any:
        if isinstance(params, cls.Params) and not overrides:
            return params
        values: dict[str, Any] = {}
        if isinstance(params, StageParams):
            values.update(params.model_dump())
        elif params is not None:
            values.update(params)
        values.update(overrides)
        try:
            return cls.Params(**values)
        except ValidationError as error:
            raise ConfigError(describe_validation_error(cls.name, error)) from None

    # -- the contract ------------------------------------------------------------------
    def produced_fields(self) -> tuple[pa.Field, ...]:
        """The columns this stage adds, with their Arrow types (nullable)."""
        return ()

    @property
    def produces(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.produced_fields())

    def setup(self) -> None:
        """Load models and other heavy resources; called once per worker process."""

    def process(self, batch: pa.Table) -> pa.Table:
        raise NotImplementedError(f"stage {self.name!r} does not implement process()")

    def teardown(self) -> None:
        """Release what ``setup`` took (GPU memory, server connections)."""

    # -- corpus-wide phases (see gristmill.core.phase) -------------------------------------
    def corpus_phase(self) -> CorpusPhase | None:
        """The MapReduce over the whole run this stage needs before deciding, if any.

        When a stage returns one, the run driver runs it over the stage's input (every task),
        hands the result to ``use_phase_result`` and only then streams the stage's pass.
        """
        return None

    def use_phase_result(self, result: PhaseResult) -> None:
        """Take the finished phase's decision (and per-document rows) before the pass."""
        raise NotImplementedError(f"stage {self.name!r} does not implement use_phase_result()")

    def start_task(self, task: TaskInfo) -> None:
        """A new task begins (its batches follow in order); stages with per-document phase
        rows fetch their task's rows here."""

    # -- used by the pipeline runner -------------------------------------------------------
    def run_batch(self, batch: pa.Table) -> StageResult:
        """Process one batch; filters override this to hand back their dropped rows."""
        return StageResult(self.process(batch))

    def reset_stats(self) -> StageStats:
        """Start a new task's counters and hand back the finished ones."""
        finished, self.stats = self.stats, StageStats(self.name)
        return finished

    def spec(self) -> dict[str, Any]:
        """The JSON form of this stage: enough to rebuild it and to fingerprint a run."""
        return {"stage": self.name, "params": self.params.model_dump(mode="json")}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.params.model_dump().items())
        return f"{type(self).__name__}({shown})"
