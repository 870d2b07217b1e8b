"""The command-line options every job shares: where it runs, resuming or starting over, and
how much it says. One definition each, so that every command spells and documents them alike."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from typer.core import TyperCommand

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

#: What silences the progress bars and chatter of the libraries stages use (transformers'
#: "Loading weights", tqdm, huggingface_hub downloads), in this process and in every worker
#: it starts (they inherit the environment).
QUIET_ENVIRONMENT = {
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "PYTHONWARNINGS": "ignore",
}


def silence_third_party() -> None:
    """Under ``--quiet``: only errors reach stderr, from this process and its workers.

    Call it before any worker starts and before any model library is imported.
    """
    import os
    import warnings

    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    warnings.simplefilter("ignore")


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


def spread_list_options(args: list[str], options: tuple[str, ...]) -> list[str]:
    """``--positive a b`` as ``--positive a --positive b`` for each of ``options`` (click gives
    an option one value per flag, a shell glob gives many); every other argument stays."""
    out: list[str] = []
    current: str | None = None
    expecting = False
    for arg in args:
        flag = next((f for f in options if f.startswith("--") and arg.startswith(f + "=")), None)
        if arg in options or flag:
            current, expecting = flag or arg, flag is None
        elif arg.startswith("-") and len(arg) > 1:
            current = None
        elif current is not None:
            if not expecting:
                out.append(current)
            expecting = False
        out.append(arg)
    return out


def list_options_command(*options: str) -> type[TyperCommand]:
    """A command class whose ``options`` take several values after one flag."""

    class ListOptionsCommand(TyperCommand):
        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: click's Context
            return super().parse_args(ctx, spread_list_options(list(args), options))

    return ListOptionsCommand
