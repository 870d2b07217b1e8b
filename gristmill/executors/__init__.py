"""Executors: backends that map a function over items on workers (see ``executors.base``)."""

from gristmill.executors.base import Executor, Lost
from gristmill.executors.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor", "Lost"]
