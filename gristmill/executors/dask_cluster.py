"""Connecting to Dask workers: a LocalCluster, an existing scheduler, or Slurm jobs.

Every cluster we start runs one thread per worker process: stages keep per-task counters and
loaded models, which are not meant to be shared between threads. The scheduler of a cluster we
start hands a task whose worker died straight back to the executor, which retries it; an
existing scheduler keeps its own settings (start it with
``DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=1.0`` so that a dying worker takes no queued
task down with it).
"""

from __future__ import annotations

import logging
import shutil
import sys
from contextlib import AbstractContextManager, ExitStack
from typing import Any

import dask

from gristmill.errors import ConfigError
from gristmill.executors.config import DaskConfig, SlurmConfig

#: The worker resource GPU stages ask for; workers with GPUs advertise it.
GPU_RESOURCE = "GPU"


def _scheduler_settings() -> AbstractContextManager[Any]:
    """Scheduler settings, read when a scheduler starts.

    A task whose worker dies comes straight back to the executor, which counts the attempts
    (``allowed-failures`` 0); a worker holds only the task it runs (saturation 1.0), so when it
    dies no innocent task queued behind it is blamed.
    """
    return dask.config.set(
        {
            "distributed.scheduler.allowed-failures": 0,
            "distributed.scheduler.worker-saturation": 1.0,
            **WORKER_MEMORY_SETTINGS,
        }
    )


#: Our tasks keep no data in Dask's memory (results are a few numbers): what fills a worker
#: is models and the batch in flight. Pausing or spilling then frees nothing and only hangs
#: the run, so workers run on until the nanny's terminate threshold, and a task that really
#: needs more memory than a worker has fails after its retries, with a message.
WORKER_MEMORY_SETTINGS: dict[str, Any] = {
    "distributed.worker.memory.target": False,
    "distributed.worker.memory.spill": False,
    "distributed.worker.memory.pause": False,
}


def _environment_exports(settings: dict[str, Any]) -> list[str]:
    """``export DASK_...`` lines that give Slurm-launched workers the same settings."""
    lines = []
    for key, value in settings.items():
        name = "DASK_" + key.upper().replace(".", "__").replace("-", "_")
        lines.append(f"export {name}={value}")
    return lines


def local_cluster(config: DaskConfig, workers: int) -> Any:
    """A LocalCluster of ``workers`` one-thread processes."""
    from distributed import LocalCluster

    resources = {GPU_RESOURCE: config.gpus_per_worker} if config.gpus_per_worker else None
    with _scheduler_settings():
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=config.dashboard_address,
            resources=resources,
            memory_limit=config.memory_limit,
            silence_logs=logging.ERROR,
        )


def slurm_cluster_kwargs(slurm: SlurmConfig, config: DaskConfig) -> dict[str, Any]:
    """The ``SLURMCluster`` arguments for a pipeline's ``executor.dask.slurm`` section."""
    directives = list(slurm.job_directives)
    worker_args: list[str] = []
    if slurm.gpus_per_job:
        directives.append(f"--gres=gpu:{slurm.gpus_per_job}")
        processes = slurm.processes or slurm.cores
        worker_args += ["--resources", f"{GPU_RESOURCE}={slurm.gpus_per_job / processes:g}"]
    scheduler_options: dict[str, Any] = {"dashboard_address": config.dashboard_address}
    if slurm.scheduler_host:
        scheduler_options["host"] = slurm.scheduler_host
    kwargs: dict[str, Any] = {
        "queue": slurm.queue,
        "account": slurm.account,
        "cores": slurm.cores,
        "processes": slurm.processes or slurm.cores,
        "memory": slurm.memory,
        "walltime": slurm.walltime,
        "job_extra_directives": directives,
        "job_script_prologue": [
            *_environment_exports(WORKER_MEMORY_SETTINGS),
            *slurm.job_script_prologue,
        ],
        "worker_extra_args": worker_args,
        # The workers must import the same gristmill and stages as this process.
        "python": sys.executable,
        "scheduler_options": scheduler_options,
    }
    for name in ("interface", "log_directory", "local_directory"):
        value = getattr(slurm, name)
        if value is not None:
            kwargs[name] = value
    return kwargs


def slurm_cluster(config: DaskConfig) -> Any:
    """A ``SLURMCluster`` scaled to a fixed number of jobs, or adaptive between two bounds."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise ConfigError(
            "the Slurm cluster needs dask-jobqueue: pip install 'gristmill[dask]'"
        ) from None
    if shutil.which("sbatch") is None:
        raise ConfigError(
            "the Slurm cluster needs Slurm's sbatch, which is not on PATH here: run on a Slurm "
            "login node, or choose another executor (--executor local, or --scheduler ADDRESS)"
        )
    slurm = config.slurm or SlurmConfig()
    with _scheduler_settings():
        cluster = SLURMCluster(**slurm_cluster_kwargs(slurm, config))
    if slurm.adaptive:
        bounds = {"minimum_jobs": slurm.minimum_jobs or 0}
        if slurm.maximum_jobs is not None:
            bounds["maximum_jobs"] = slurm.maximum_jobs
        cluster.adapt(**bounds)
    else:
        cluster.scale(jobs=slurm.jobs)
    return cluster


def connect(config: DaskConfig, workers: int, stack: ExitStack) -> tuple[Any, Any]:
    """A ``distributed.Client`` and the cluster we started (None for an existing scheduler).

    ``stack`` closes the client, and the cluster with its workers or Slurm jobs.
    """
    from distributed import Client

    kind = config.resolved_cluster()
    if kind == "scheduler":
        if not config.scheduler:
            raise ConfigError("the Dask executor needs a scheduler address (--scheduler)")
        try:
            client = Client(config.scheduler, timeout=config.connect_timeout)
        except OSError as error:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {config.scheduler}: {error}"
            ) from None
        return stack.enter_context(client), None
    cluster = slurm_cluster(config) if kind == "slurm" else local_cluster(config, workers)
    stack.enter_context(cluster)
    return stack.enter_context(Client(cluster)), cluster


def slurm_job_ids(cluster: Any) -> list[str]:
    """The ids of the Slurm jobs a ``SLURMCluster`` has submitted and still holds."""
    jobs = getattr(cluster, "workers", {}) or {}
    return sorted(str(job.job_id) for job in jobs.values() if getattr(job, "job_id", None))


def gpu_capacity(config: DaskConfig) -> float | None:
    """The GPU resource each worker of a cluster we start offers; None for other schedulers."""
    kind = config.resolved_cluster()
    if kind == "local":
        return config.gpus_per_worker
    if kind == "slurm":
        slurm = config.slurm or SlurmConfig()
        return slurm.gpus_per_job / (slurm.processes or slurm.cores)
    return None
