"""The ``executor:`` section of a pipeline file: which backend runs the tasks, and where."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlurmConfig(_Section):
    """A ``dask_jobqueue.SLURMCluster``: each Slurm job runs ``processes`` one-thread workers."""

    queue: str | None = Field(default=None, description="Slurm partition (-p)")
    account: str | None = Field(default=None, description="Slurm account (-A)")
    cores: PositiveInt = Field(default=1, description="cores per job")
    processes: PositiveInt | None = Field(
        default=None,
        description="worker processes per job (default: one per core, one thread each)",
    )
    memory: str = Field(default="4GB", description="memory per job, e.g. 16GB")
    walltime: str = Field(default="01:00:00", description="time limit per job")
    gpus_per_job: NonNegativeInt = Field(
        default=0, description="GPUs per job: adds --gres=gpu:N and a GPU worker resource"
    )
    job_directives: list[str] = Field(
        default_factory=list, description="extra #SBATCH options, e.g. ['--qos=high']"
    )
    job_script_prologue: list[str] = Field(
        default_factory=list, description="shell lines run before the worker starts"
    )
    jobs: PositiveInt = Field(default=1, description="jobs to start when not adaptive")
    minimum_jobs: NonNegativeInt | None = Field(
        default=None,
        description="adaptive scaling: fewest jobs (set this or maximum_jobs to adapt)",
    )
    maximum_jobs: PositiveInt | None = Field(
        default=None, description="adaptive scaling: most jobs"
    )
    scheduler_host: str | None = Field(
        default=None,
        description="address the scheduler listens on, reachable from the compute nodes",
    )
    interface: str | None = Field(default=None, description="network interface of the workers")
    log_directory: str | None = Field(default=None, description="where Slurm writes the job logs")
    local_directory: str | None = Field(default=None, description="workers' scratch directory")

    @property
    def adaptive(self) -> bool:
        return self.minimum_jobs is not None or self.maximum_jobs is not None


class DaskConfig(_Section):
    """Where the Dask executor finds its workers; ``cluster`` defaults from what is set."""

    cluster: Literal["local", "scheduler", "slurm"] | None = Field(
        default=None, description="local (LocalCluster), scheduler (an existing one) or slurm"
    )
    scheduler: str | None = Field(default=None, description="address of an existing scheduler")
    slurm: SlurmConfig | None = None
    retries: NonNegativeInt = Field(
        default=1, description="times a task may lose its worker (killed, out of memory) and rerun"
    )
    connect_timeout: PositiveFloat = Field(
        default=30, description="seconds to wait for an existing scheduler"
    )
    dashboard_address: str = Field(default=":8787", description="dashboard of a cluster we start")
    gpus_per_worker: NonNegativeFloat = Field(
        default=0, description="GPU resource each LocalCluster worker advertises"
    )
    memory_limit: str | None = Field(
        default="auto",
        description="memory limit per LocalCluster worker (the nanny restarts it above)",
    )

    def resolved_cluster(self) -> Literal["local", "scheduler", "slurm"]:
        if self.cluster is not None:
            return self.cluster
        if self.scheduler:
            return "scheduler"
        return "slurm" if self.slurm is not None else "local"


class ExecutorConfig(_Section):
    type: Literal["local", "dask"] = "local"
    workers: PositiveInt = 1
    dask: DaskConfig = Field(default_factory=DaskConfig)
