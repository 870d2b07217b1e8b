"""Which executor a run uses: the pipeline's ``executor:`` section, overridden by CLI flags."""

from __future__ import annotations

from gristmill.errors import ConfigError
from gristmill.executors.base import Executor
from gristmill.executors.config import DaskConfig, ExecutorConfig, SlurmConfig


def build_executor(
    config: ExecutorConfig,
    *,
    executor_type: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    slurm: bool = False,
) -> Executor:
    """The executor to run with; ``--scheduler`` or ``--slurm`` imply the Dask executor."""
    kind = executor_type or ("dask" if scheduler or slurm else config.type)
    if kind not in ("local", "dask"):
        raise ConfigError(f"unknown executor {kind!r}: choose local or dask")
    if scheduler and slurm:
        raise ConfigError("--scheduler and --slurm exclude each other: choose one cluster")
    if kind == "local":
        if scheduler or slurm:
            raise ConfigError("--scheduler and --slurm need the dask executor")
        from gristmill.executors.local import LocalExecutor

        return LocalExecutor(workers=workers or config.workers)

    from gristmill.executors.dask import DaskExecutor

    dask_config: DaskConfig = config.dask
    if scheduler:
        dask_config = dask_config.model_copy(
            update={"cluster": "scheduler", "scheduler": scheduler}
        )
    elif slurm:
        dask_config = dask_config.model_copy(
            update={"cluster": "slurm", "slurm": dask_config.slurm or SlurmConfig()}
        )
    # A local config of one worker still means a cluster of workers, not one process.
    count = workers or (config.workers if config.type == "dask" else 2)
    return DaskExecutor(dask_config, workers=count)
