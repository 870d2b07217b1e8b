"""The executor contract: map a function over items on workers, and nothing more.

An executor knows nothing of pipelines, shards or outputs. It runs ``fn(shared, item)`` for
every item, where ``shared`` (a stage chain, say) travels to each worker once and is kept
there, so that models load once per worker process, not once per item. Functions are expected
to report their own failures in what they return; an executor only adds what a function
cannot say itself: that its worker died (killed, out of memory) on every attempt, or that it
raised. Outcomes come back in the order of the items, and ``on_done`` hears of each one as it
finishes, for progress displays.
"""

from __future__ import annotations

import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from gristmill.core.resources import Resources

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


@dataclass(frozen=True)
class Lost:
    """No outcome came back for an item: its worker kept dying, or the function raised."""

    error: str
    details: str | None = None

    @classmethod
    def from_exception(cls, error: BaseException) -> Lost:
        return cls(f"{type(error).__name__}: {error}", traceback.format_exc())


def worker_died(attempts: int) -> Lost:
    return Lost(
        f"the worker process died while running this (killed, or out of memory), "
        f"on each of {attempts} attempts"
    )


#: ``fn(shared, item)``: a picklable, module-level function (or a partial of one).
MapFunction = Callable[[Any, Any], Any]
DoneCallback = Callable[[int, Any], None]


class Executor(ABC):
    """Runs ``fn(shared, item)`` over items: in this process, a process pool, or Dask."""

    #: True when the work runs in other processes (which re-import the caller's script).
    spawns_processes: bool = False
    #: Who hears what the executor has to tell the user (a cluster's dashboard address).
    listener: Callable[[str], None] | None = None

    def announce(self, message: str) -> None:
        if self.listener is not None:
            self.listener(message)

    @contextmanager
    def session(self) -> Iterator[None]:
        """Keep the workers (a pool, a cluster) alive across several ``map`` calls."""
        yield

    @abstractmethod
    def map(
        self,
        fn: MapFunction,
        items: Sequence[Any],
        *,
        shared: Any = None,
        resources: Resources | None = None,
        on_done: DoneCallback | None = None,
    ) -> list[Any]:
        """``fn(shared, item)`` for every item; a ``Lost`` where no outcome came back."""


def call(fn: MapFunction, shared: Any, item: Any) -> Any:
    """Run one item, turning an exception into ``Lost`` so one item cannot stop the others."""
    try:
        return fn(shared, item)
    except Exception as error:  # noqa: BLE001 - reported with the item, the others go on
        return Lost.from_exception(error)
