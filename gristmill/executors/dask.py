"""The Dask executor: items on a ``distributed`` cluster (LocalCluster, a scheduler, or Slurm).

One Dask task per item. The shared object travels as one pickled blob that each worker
unpickles once and keeps (``executors.shared``), so models load once per worker process. An
item whose worker dies (killed, out of memory) comes back as ``KilledWorker`` and is
resubmitted, ``retries`` times at most, then reported as lost while every other item
completes. (A cluster we start gives up on a task at its first dead worker; an existing
scheduler first retries it ``distributed.scheduler.allowed-failures`` times by itself.) The
cluster is started on the first ``map`` of a session and closed, with its workers and Slurm
jobs, when the session ends; a LocalCluster's workers also end when this process dies.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import cloudpickle

from gristmill.core.resources import Resources
from gristmill.errors import ConfigError
from gristmill.executors.base import DoneCallback, Executor, Lost, MapFunction, call, worker_died
from gristmill.executors.config import DaskConfig
from gristmill.executors.dask_cluster import GPU_RESOURCE, connect, gpu_capacity, slurm_job_ids
from gristmill.executors.shared import digest, shared_object

#: Stages are not thread-safe: a worker started with several threads runs one item at a time.
_LOCK = threading.Lock()


def _run_on_worker(key: str, blob: bytes, fn: MapFunction, item: Any) -> Any:
    with _LOCK:
        return call(fn, shared_object(key, blob, cloudpickle.loads), item)


def worker_resources(resources: Resources | None) -> dict[str, float] | None:
    """Dask worker resources an item needs: GPU work waits for GPU workers."""
    if resources is None or resources.gpus <= 0:
        return None
    return {GPU_RESOURCE: resources.gpus}


class DaskExecutor(Executor):
    """Runs items on a Dask cluster: a LocalCluster, an existing scheduler, or Slurm jobs.

    ``client`` uses an already connected ``distributed.Client`` (left open); otherwise
    ``config`` says which cluster to start or join, and ``workers`` sizes a LocalCluster.
    """

    spawns_processes = True

    def __init__(
        self, config: DaskConfig | None = None, *, workers: int = 2, client: Any = None
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.config = config or DaskConfig()
        self.workers = workers
        self.client = client
        #: The dashboard of the last session's cluster, for display and for tests.
        self.dashboard_link: str | None = None
        #: The Slurm jobs the last session submitted (empty on other clusters).
        self.job_ids: list[str] = []
        self._stack: ExitStack | None = None
        self._connection: tuple[Any, Any] | None = None

    @property
    def retries(self) -> int:
        return self.config.retries

    # -- one cluster per session ----------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[None]:
        """The cluster's lifetime: the outermost session closes it, with its workers and
        Slurm jobs; a session that maps nothing starts no cluster and submits no job."""
        if self._stack is not None:
            yield
            return
        with ExitStack() as stack:
            self._stack = stack
            try:
                yield
            finally:
                cluster = self._connection[1] if self._connection is not None else None
                self.job_ids = slurm_job_ids(cluster) if cluster is not None else []
                self._stack = None
                self._connection = None

    def _client(self) -> Any:
        if self._connection is None:
            assert self._stack is not None, "connect within a session"
            if self.client is not None:
                self._connection = (self.client, None)
            else:
                self._connection = connect(self.config, self.workers, self._stack)
            self.dashboard_link = self._connection[0].dashboard_link
            self.announce(f"dask dashboard: {self.dashboard_link}")
        return self._connection[0]

    def _check_gpus(self, needed: dict[str, float] | None) -> None:
        """Fail before submitting when a cluster we start could never run a GPU item."""
        if needed is None or self.client is not None:
            return
        offered = gpu_capacity(self.config)
        if offered is not None and offered < needed[GPU_RESOURCE]:
            raise ConfigError(
                f"the pipeline's stages need {needed[GPU_RESOURCE]:g} GPU per worker, but the "
                f"Dask workers offer {offered:g}: set executor.dask.gpus_per_worker (local "
                f"cluster) or executor.dask.slurm.gpus_per_job"
            )

    # -- mapping ---------------------------------------------------------------------------
    def map(
        self,
        fn: MapFunction,
        items: Sequence[Any],
        *,
        shared: Any = None,
        resources: Resources | None = None,
        on_done: DoneCallback | None = None,
    ) -> list[Any]:
        outcomes: list[Any] = [None] * len(items)
        if not items:
            return outcomes
        needed = worker_resources(resources)
        self._check_gpus(needed)
        with self.session():
            self._run(self._client(), fn, items, shared, needed, outcomes, on_done)
        return outcomes

    def _run(
        self,
        client: Any,
        fn: MapFunction,
        items: Sequence[Any],
        shared: Any,
        needed: dict[str, float] | None,
        outcomes: list[Any],
        on_done: DoneCallback | None,
    ) -> None:
        from distributed import KilledWorker, as_completed

        blob = cloudpickle.dumps(shared)
        key = digest(blob)
        token = uuid.uuid4().hex[:8]  # never collide with another map on the same scheduler

        def submit(index: int, attempt: int) -> Any:
            # One key prefix per map: the scheduler treats the items as one group and queues
            # them, so a worker holds only the item it runs when it dies.
            return client.submit(
                _run_on_worker,
                key,
                blob,
                fn,
                items[index],
                key=f"gristmill-{token}-{index:06d}-{attempt}",
                pure=False,
                resources=needed,
            )

        futures = {submit(i, 0): (i, 0) for i in range(len(items))}
        pending = as_completed(futures)
        for future in pending:
            index, attempt = futures.pop(future)
            try:
                outcome = future.result()
            except KilledWorker:
                if attempt < self.retries:
                    retry = submit(index, attempt + 1)
                    futures[retry] = (index, attempt + 1)
                    pending.add(retry)
                    future.release()
                    continue
                outcome = worker_died(attempt + 1)
            except Exception as error:  # noqa: BLE001 - reported, and the other items go on
                outcome = Lost(f"{type(error).__name__}: {error}")
            future.release()
            outcomes[index] = outcome
            if on_done is not None:
                on_done(index, outcome)
