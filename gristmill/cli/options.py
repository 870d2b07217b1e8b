"""The command-line options every job shares: where it runs, resuming or starting over, and
how much it says. One definition each, so that every command spells and documents them alike."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gristmill.executors.base import Executor
from gristmill.executors.config import ExecutorConfig

ExecutorType = Annotated[
    Optional[str],
    typer.Option("--executor", "-e", help="local or dask (default: the file's executor, or local)"),
]
Workers = Annotated[Optional[int], typer.Option("--workers", "-w", min=1, help="worker processes")]
Scheduler = Annotated[
    Optional[str],
    typer.Option(help="dask: address of an existing scheduler, e.g. tcp://host:8786"),
]
Slurm = Annotated[bool, typer.Option("--slurm", help="dask: run the workers as Slurm jobs")]
Overwrite = Annotated[
    bool, typer.Option(help="start over, replacing what is there, instead of resuming")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress or summary")]


def chosen_executor(
    config: ExecutorConfig | None,
    executor_type: str | None,
    workers: int | None,
    scheduler: str | None,
    slurm: bool,
) -> Executor:
    """The executor the options ask for, over a file's ``executor:`` section (if any)."""
    from gristmill.executors.select import build_executor

    return build_executor(
        config or ExecutorConfig(),
        executor_type=executor_type,
        workers=workers,
        scheduler=scheduler,
        slurm=slurm,
    )
