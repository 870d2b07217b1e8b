"""Real ``gristmill`` commands in child processes, killed part-way, for the resume tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def start_gristmill(*args: str, register: tuple[str, ...] = ()) -> subprocess.Popen:
    """``gristmill ARGS`` in a session of its own (a kill then takes its workers too), after
    importing the test modules in ``register`` (which register test stages by name)."""
    code = "\n".join(
        [
            "import sys",
            f"sys.path.insert(0, {str(TESTS)!r})",
            *(f"import {module}" for module in register),
            "from gristmill.cli.app import main",
            f"sys.argv = ['gristmill', *{list(args)!r}]",
            "main()",
        ]
    )
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)


def completed(markers: Path) -> int:
    """How many units of a step have their completion marker."""
    return len(list(markers.glob("*.json"))) if markers.exists() else 0


def kill_when(process: subprocess.Popen, ready: Callable[[], bool], seconds: float = 180) -> None:
    """SIGKILL the command and its workers (its whole session) as soon as ``ready()``."""
    deadline = time.monotonic() + seconds
    while not ready() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    assert process.poll() is None, "the command ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
