"""Executors run a pipeline's shard tasks: in-process, in a process pool, or on Dask."""

from gristmill.executors.base import RunReport, TaskFailure
from gristmill.executors.local import LocalExecutor
from gristmill.executors.run import Executor

__all__ = ["Executor", "LocalExecutor", "RunReport", "TaskFailure"]
