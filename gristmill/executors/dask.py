"""The Dask executor: the local executor's shard tasks, on a ``distributed`` cluster.

One Dask task per pending shard task, each running ``run_task`` on a worker, so markers,
atomic outputs and resume are exactly the local executor's. The pipeline travels as one
pickled blob; a worker unpickles and sets it up the first time it sees it and keeps it in a
module-level cache, so models load once per worker process, not once per task.

A task whose worker dies (killed, out of memory) comes back as ``KilledWorker`` and is
resubmitted, ``retries`` times at most, then reported as failed while every other task
completes. (A cluster we start gives up on a task at its first dead worker; an existing
scheduler first retries it ``distributed.scheduler.allowed-failures`` times by itself.) A rerun
of a task that had already written its marker (its worker died before the result came back)
returns the marker's stats instead of running again.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import cloudpickle
from rich.console import Console

from gristmill.core.config import DaskConfig
from gristmill.core.pipeline import Pipeline
from gristmill.errors import ConfigError
from gristmill.executors.base import RunReport, TaskResult, run_task
from gristmill.executors.dask_cluster import GPU_RESOURCE, connect, gpu_capacity, slurm_job_ids
from gristmill.executors.layout import OutputLayout
from gristmill.executors.progress import RunProgress
from gristmill.executors.run import Executor, Item, Outcome, PreparedRun
from gristmill.io.base import ShardTask

# -- worker side -------------------------------------------------------------------------------
#: Set-up pipelines of this worker process, by blob hash; bounded so a long-lived cluster
#: serving many runs does not keep every run's models in memory.
_PIPELINES: OrderedDict[str, Pipeline] = OrderedDict()
_CACHE_SIZE = 2
#: Stages are not thread-safe: a worker started with several threads runs one task at a time.
_LOCK = threading.Lock()


def _cached_pipeline(key: str, blob: bytes) -> Pipeline:
    pipeline = _PIPELINES.get(key)
    if pipeline is None:
        # The blob is the pipeline object this run's own driver pickled (stages and their
        # parameters; never documents), sent as Dask sends every task; the local executor
        # ships it the same way through multiprocessing. No user data is ever unpickled.
        pipeline = cloudpickle.loads(blob)
        _PIPELINES[key] = pipeline
        while len(_PIPELINES) > _CACHE_SIZE:
            _old_key, old = _PIPELINES.popitem(last=False)
            old.teardown()
    _PIPELINES.move_to_end(key)
    return pipeline


def _completed_result(task: ShardTask, layout: OutputLayout, fingerprint: str) -> TaskResult | None:
    stats = layout.completed_stats(task, fingerprint)
    if stats is None:
        return None
    first = next(iter(stats.stages.values()), None)
    return TaskResult(
        task.task_id, task.url, True, stats=stats.to_dict(), docs_in=first.docs_in if first else 0
    )


def run_on_worker(
    key: str,
    blob: bytes,
    task: ShardTask,
    layout: OutputLayout,
    fingerprint: str,
    limit: int | None,
) -> TaskResult:
    """The Dask task: one shard task through this worker's cached pipeline."""
    with _LOCK:
        done = _completed_result(task, layout, fingerprint)
        if done is not None:
            return done
        return run_task(_cached_pipeline(key, blob), task, layout, fingerprint, limit)


# -- client side -------------------------------------------------------------------------------
def task_resources(pipeline: Pipeline) -> dict[str, float] | None:
    """Worker resources a task of this pipeline needs: GPU pipelines wait for GPU workers."""
    gpus = pipeline.resources.gpus
    return {GPU_RESOURCE: gpus} if gpus > 0 else None


def _failure(task: ShardTask, error: BaseException, attempts: int) -> TaskResult:
    from distributed import KilledWorker

    if isinstance(error, KilledWorker):
        message = (
            f"{task.url}: the worker process died while running this task (killed, or out of "
            f"memory), on each of {attempts} attempts"
        )
    else:
        message = f"{task.url}: {type(error).__name__}: {error}"
    return TaskResult(task.task_id, task.url, False, error=message)


class DaskExecutor(Executor):
    """Runs tasks on a Dask cluster: a LocalCluster, an existing scheduler, or Slurm jobs.

    ``client`` uses an already connected ``distributed.Client`` (left open); otherwise
    ``config`` says which cluster to start or join, and ``workers`` sizes a LocalCluster.
    """

    def __init__(
        self,
        config: DaskConfig | None = None,
        *,
        workers: int = 2,
        client: Any = None,
        progress: bool = True,
        console: Console | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.config = config or DaskConfig()
        self.workers = workers
        self.client = client
        self.progress = progress
        self.console = console or Console(stderr=True)
        #: The dashboard of the last run's cluster, for display and for tests.
        self.dashboard_link: str | None = None
        #: The Slurm jobs the last run submitted (empty on other clusters).
        self.job_ids: list[str] = []
        self._stack: ExitStack | None = None
        self._connection: tuple[Any, Any] | None = None

    @property
    def retries(self) -> int:
        return self.config.retries

    # -- one cluster per run ------------------------------------------------------------------
    def run(
        self, pipeline: Pipeline, *, limit: int | None = None, overwrite: bool = False
    ) -> RunReport:
        """As ``Executor.run``; every pass of the run (statistics, tasks) shares one cluster."""
        with self._session():
            return super().run(pipeline, limit=limit, overwrite=overwrite)

    def _connect(self) -> Any:
        """The run's client, connecting (starting the cluster) on first use only, so a run
        with nothing left to do starts no cluster and submits no Slurm job."""
        if self._connection is None:
            stack = self._stack
            assert stack is not None, "connect within run() or _session()"
            if self.client is not None:
                self._connection = (self.client, None)
            else:
                self._connection = connect(self.config, self.workers, stack)
            self.dashboard_link = self._connection[0].dashboard_link
            if self.progress:
                self.console.print(f"dask dashboard: {self.dashboard_link}", highlight=False)
        return self._connection[0]

    def _record_jobs(self) -> None:
        cluster = self._connection[1] if self._connection is not None else None
        self.job_ids = slurm_job_ids(cluster) if cluster is not None else []

    # -- the Executor hooks ------------------------------------------------------------------
    def map_tasks(self, fn: Callable[[Item], Outcome], items: Sequence[Item]) -> list[Outcome]:
        """``fn`` over ``items`` on the workers, in order; the first error is raised here."""
        if not items:
            return []
        with self._session():
            client = self._connect()
            futures = client.map(fn, list(items), pure=False)
            outcomes: list[Outcome] = client.gather(futures)
        return outcomes

    def execute(self, prepared: PreparedRun, progress: RunProgress) -> list[TaskResult]:
        if not prepared.pending:
            return []
        self._check_gpus(prepared.pipeline)
        with self._session():
            results = self._run_tasks(self._connect(), prepared, progress)
        # A killed attempt may have left its temporary file behind; no attempt is running now.
        prepared.layout.remove_temporaries()
        return results

    @contextmanager
    def _session(self) -> Iterator[None]:
        """The cluster's lifetime: the outermost call (``run``, or a hook called on its own)
        closes it, with its workers and Slurm jobs, when it returns."""
        if self._stack is not None:
            yield
            return
        with ExitStack() as stack:
            self._stack = stack
            try:
                yield
            finally:
                self._record_jobs()
                self._stack = None
                self._connection = None

    def _check_gpus(self, pipeline: Pipeline) -> None:
        """Fail before submitting when a cluster we start could never run a GPU task."""
        needed = task_resources(pipeline)
        if needed is None or self.client is not None:
            return
        offered = gpu_capacity(self.config)
        if offered is not None and offered < needed[GPU_RESOURCE]:
            raise ConfigError(
                f"the pipeline's stages need {needed[GPU_RESOURCE]:g} GPU per worker, but the "
                f"Dask workers offer {offered:g}: set executor.dask.gpus_per_worker (local "
                f"cluster) or executor.dask.slurm.gpus_per_job"
            )

    def _run_tasks(
        self, client: Any, prepared: PreparedRun, progress: RunProgress
    ) -> list[TaskResult]:
        from distributed import KilledWorker, as_completed

        blob = cloudpickle.dumps(prepared.pipeline)
        key = hashlib.sha256(blob).hexdigest()[:16]
        resources = task_resources(prepared.pipeline)
        run_token = uuid.uuid4().hex[:8]  # never collide with an earlier run on the same scheduler

        def submit(index: int, attempt: int) -> Any:
            # One key prefix for the whole run: the scheduler treats the tasks as one group and
            # queues them, so a worker holds only the task it runs when it dies.
            return client.submit(
                run_on_worker,
                key,
                blob,
                prepared.pending[index],
                prepared.layout,
                prepared.fingerprint,
                prepared.limit,
                key=f"gristmill-task-{run_token}-{index:06d}-{attempt}",
                pure=False,
                resources=resources,
            )

        futures = {submit(i, 0): (i, 0) for i in range(len(prepared.pending))}
        results: list[TaskResult] = []
        pending = as_completed(futures)
        for future in pending:
            index, attempt = futures.pop(future)
            task = prepared.pending[index]
            try:
                result = future.result()
            except KilledWorker as error:
                if attempt < self.retries:
                    retry = submit(index, attempt + 1)
                    futures[retry] = (index, attempt + 1)
                    pending.add(retry)
                    future.release()
                    continue
                result = _failure(task, error, attempts=attempt + 1)
            except Exception as error:  # noqa: BLE001 - reported, and the other tasks go on
                result = _failure(task, error, attempts=attempt + 1)
            future.release()
            results.append(result)
            progress.advance(result.docs_in)
        return results
