"""Refuse, with a clear message, a run started at import time of a script.

Worker processes are started with ``spawn``: each imports the main script again. A script
that starts a run at module level, without ``if __name__ == "__main__":``, would start the
run again inside every worker, which Python stops with an error deep in the pool, and the
run then looks as if its workers were killed. The call site is on the stack when the run
starts, so it is checked there, before any worker is started.
"""

from __future__ import annotations

import ast
import multiprocessing
import sys
from types import FrameType

from gristmill.errors import ConfigError


def _is_main_check(node: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1):
        return False
    if not isinstance(node.ops[0], ast.Eq):
        return False
    sides = [node.left, node.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    mains = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return bool(names and mains)


def guarded_lines(source: str) -> set[int]:
    """The lines of a module that run only under ``if __name__ == "__main__":``."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and _is_main_check(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def _script_frame() -> FrameType | None:
    """The frame running the main script's own top-level code, if a call comes from there."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    frame = sys._getframe(1)
    while frame is not None:
        if (
            frame.f_code.co_name == "<module>"
            and frame.f_globals.get("__name__") in ("__main__", "__mp_main__")
            and path is not None
            and frame.f_code.co_filename == path
        ):
            return frame
        frame = frame.f_back  # type: ignore[assignment]
    return None


def check_main_guard() -> None:
    """Fail when a run that starts worker processes is started at a script's import time."""
    frame = _script_frame()
    if frame is None:
        return
    path = frame.f_code.co_filename
    message = (
        f"{path} line {frame.f_lineno} starts a gristmill run when the script is imported: "
        "worker processes import the script again and would start the run again. Put the "
        'run under `if __name__ == "__main__":`'
    )
    if multiprocessing.parent_process() is not None:
        raise ConfigError(message)  # a worker importing the script: never start a run here
    try:
        with open(path, encoding="utf-8") as handle:
            guarded = guarded_lines(handle.read())
    except (OSError, SyntaxError, ValueError):
        return
    if frame.f_lineno not in guarded:
        raise ConfigError(message)
