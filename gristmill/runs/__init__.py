"""The run driver and the jobs it runs: pipelines (passes and corpus-wide phases), exports,
mixture rounds. See ``runs.driver`` for what every job shares, and docs/runs.md."""

from gristmill.runs.pipeline import Pipeline
from gristmill.runs.report import RunReport, TaskFailure

__all__ = ["Pipeline", "RunReport", "TaskFailure"]
