"""The local executor: a process pool on this machine, or this process when ``workers=1``.

Workers are started with ``spawn`` (safe next to threads, CUDA and vLLM) and live for the
whole session, so a worker sets a stage chain up once and reuses it for every item of every
pass. Each worker watches the process that started it and exits when it is gone: a driver
killed with ``kill -9`` leaves no worker behind to go on writing. A worker that dies (killed,
out of memory) breaks the pool; its unfinished items are retried one by one in fresh pools,
so that an item that keeps killing workers is found and reported while every other completes.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import pickle
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from gristmill.core.resources import Resources
from gristmill.executors.base import (
    DoneCallback,
    Executor,
    Lost,
    MapFunction,
    call,
    worker_died,
)
from gristmill.executors.shared import digest, release_all, shared_object

#: How often a worker checks that the process that started it is still there.
PARENT_CHECK_SECONDS = 0.5


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != parent:
            os._exit(1)  # the driver is gone: nothing of its run may go on writing


def _exit_without_teardown() -> None:
    """End a worker without the interpreter's teardown, which frees every module and object
    one by one: 0.1-0.3 s a worker, paid by every pool shutdown (every run).

    Registered when the worker starts, so it runs after every exit handler registered later
    (they run last in, first out: a model library's own shutdown hooks still run). Work is
    done by then (a task's files are committed before its result is sent back), and
    multiprocessing has flushed standard output and error. What is left is done here: the
    worker's stage chains are torn down (an inference engine is shut down by its stage, not
    by garbage collection) and log handlers are flushed.
    """
    try:
        release_all()
    except Exception:  # the worker ends either way; say what failed
        logging.getLogger(__name__).exception("tearing down this worker's stages failed")
    logging.shutdown()
    os._exit(0)


def _start_worker(parent: int) -> None:
    atexit.register(_exit_without_teardown)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _run_in_worker(key: str, blob: bytes, fn: MapFunction, item: Any) -> Any:
    return call(fn, shared_object(key, blob, pickle.loads), item)


class LocalExecutor(Executor):
    """Runs items on this machine; ``retries`` bounds how often an item may kill a worker."""

    def __init__(self, workers: int = 1, *, retries: int = 1) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.retries = retries
        self._pool: ProcessPoolExecutor | None = None
        self._in_session = False

    @property
    def spawns_processes(self) -> bool:  # type: ignore[override]
        return self.workers > 1

    # -- the pool's lifetime -------------------------------------------------------------
    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(os.getpid(),),
        )

    @contextmanager
    def session(self) -> Iterator[None]:
        if self._in_session:
            yield
            return
        self._in_session = True
        try:
            yield
        finally:
            self._in_session = False
            self._close_pool()

    def _session_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = self._new_pool(self.workers)
        return self._pool

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # -- mapping -------------------------------------------------------------------------
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
        if self.workers == 1:
            for index, item in enumerate(items):
                outcomes[index] = call(fn, shared, item)
                if on_done is not None:
                    on_done(index, outcomes[index])
            return outcomes
        if not items:
            return outcomes
        blob = pickle.dumps(shared)
        work = (digest(blob), blob, fn)
        with self.session():
            crashed = self._pool_pass(
                self._session_pool(), work, items, range(len(items)), outcomes, on_done
            )
            if crashed:
                self._close_pool()  # broken: the next map starts a fresh one
        for index in crashed:
            for _attempt in range(self.retries):
                with self._new_pool(1) as alone:
                    if not self._pool_pass(alone, work, items, [index], outcomes, on_done):
                        break
            else:
                outcomes[index] = worker_died(self.retries + 1)
                if on_done is not None:
                    on_done(index, outcomes[index])
        return outcomes

    def _pool_pass(
        self,
        pool: ProcessPoolExecutor,
        work: tuple[str, bytes, MapFunction],
        items: Sequence[Any],
        indices: Sequence[int],
        outcomes: list[Any],
        on_done: DoneCallback | None,
    ) -> list[int]:
        """Run items in a pool; return the indices of those whose worker died."""
        key, blob, fn = work
        try:
            futures: dict[Future[Any], int] = {
                pool.submit(_run_in_worker, key, blob, fn, items[i]): i for i in indices
            }
        except BrokenProcessPool:
            return list(indices)
        crashed: list[int] = []
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = futures[future]
                try:
                    outcomes[index] = future.result()
                except BrokenProcessPool:
                    crashed.append(index)
                    continue
                except Exception as error:  # noqa: BLE001 - e.g. an unpicklable outcome
                    outcomes[index] = Lost.from_exception(error)
                if on_done is not None:
                    on_done(index, outcomes[index])
        return sorted(crashed)
