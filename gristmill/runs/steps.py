"""Steps and units: the driver's unit of resumable, isolated work.

A run is a sequence of steps (a pass of stages over every task, a phase's map or reduce, an
export's tokenisation). A step is a list of units, each with a stable key, the input it reads
(for messages) and a payload; the step's ``work`` function does one unit on a worker and
returns a small JSON value. ``run_unit`` wraps it on the worker: a unit already completed
under the step's fingerprint is not run again, an error becomes a failure naming the input,
and a completion marker holding the value is written last, after whatever the unit wrote.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gristmill.core.resources import Resources
from gristmill.errors import GristmillError
from gristmill.io.filesystem import write_json_atomically
from gristmill.runs.layout import OutputLayout
from gristmill.runs.lock import RunGuard, watch

#: ``work(shared, payload) -> value``: a module-level function; the value is JSON-able.
Work = Callable[[Any, Any], dict[str, Any]]


@dataclass(frozen=True)
class Unit:
    """One unit of a step: its key (unique in the step), what it reads, its argument."""

    key: str
    source: str
    payload: Any


@dataclass
class Step:
    """A list of units run through the executor; resumable by its completion markers."""

    key: str
    title: str
    fingerprint: str
    units: list[Unit]
    work: Work
    shared: Any = None
    resources: Resources | None = None
    #: A unit whose marker exists but whose output is gone (an intermediate file removed)
    #: must run again: this says whether a completed unit's output is still usable.
    still_valid: Callable[[Unit], bool] | None = None
    #: Called in the driver with the units about to run (to clear what they will rewrite).
    before_run: Callable[[list[Unit]], None] | None = None
    #: Run in the driver's own process, whatever the executor: for a step that streams what
    #: every other unit made, once and in order (an export's final write).
    in_driver: bool = False


@dataclass
class UnitResult:
    """What one unit gives back to the driver: small and picklable, never the data."""

    key: str
    source: str
    ok: bool
    value: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    details: str | None = None
    #: True when the unit was complete from an earlier run and did not run now.
    resumed: bool = False


@dataclass(frozen=True)
class UnitContext:
    """What ``run_unit`` needs besides the unit: where markers go, and the run's guard."""

    layout: OutputLayout
    step: str
    fingerprint: str
    guard: RunGuard | None


class RunLostError(GristmillError):
    """The run this worker works for no longer holds its output directory."""


def _described(unit: Unit, error: BaseException) -> str:
    message = (
        str(error) if isinstance(error, GristmillError) else f"{type(error).__name__}: {error}"
    )
    return message if unit.source in message else f"{unit.source}: {message}"


def run_unit(context: UnitContext, work: Work, shared: Any, unit: Unit) -> UnitResult:
    """One unit on a worker: skip it if done, run it, mark it done; never raise."""
    done = context.layout.completed(context.step, unit.key, context.fingerprint)
    if done is not None:
        # A retried unit whose first attempt completed before its worker died.
        return UnitResult(unit.key, unit.source, True, done, resumed=True)
    watch(context.guard)
    try:
        value = work(shared, unit.payload)
        if context.guard is not None and not context.guard.holds():
            raise RunLostError("the run that started this unit no longer holds its output")
        marker = {
            "unit": unit.key,
            "source": unit.source,
            "fingerprint": context.fingerprint,
            "value": value,
        }
        write_json_atomically(context.layout.marker_path(context.step, unit.key), marker)
    except Exception as error:  # noqa: BLE001 - one unit's failure must not stop the others
        details = None if isinstance(error, GristmillError) else traceback.format_exc()
        return UnitResult(
            unit.key, unit.source, False, error=_described(unit, error), details=details
        )
    finally:
        watch(None)
    return UnitResult(unit.key, unit.source, True, value)
