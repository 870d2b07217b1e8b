"""The local executor: a process pool over shard tasks, or in-process when ``workers=1``.

Workers are started with ``spawn`` (safe next to threads, CUDA and vLLM); each receives the
pipeline once and sets its stages up once, then runs many tasks. A worker that dies (killed,
out of memory) breaks the pool: its unfinished tasks are retried in a fresh pool, and a task
that keeps killing workers is reported as failed while every other task completes.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from gristmill.core.pipeline import Pipeline
from gristmill.executors.base import TaskResult, run_task
from gristmill.executors.layout import OutputLayout
from gristmill.executors.progress import RunProgress
from gristmill.executors.run import Executor, Item, Outcome, PreparedRun
from gristmill.io.base import ShardTask

_worker_pipeline: Pipeline | None = None


def _init_worker(pipeline: Pipeline) -> None:
    global _worker_pipeline
    _worker_pipeline = pipeline


def _run_in_worker(
    task: ShardTask, layout: OutputLayout, fingerprint: str, limit: int | None
) -> TaskResult:
    assert _worker_pipeline is not None, "worker was not initialised with a pipeline"
    return run_task(_worker_pipeline, task, layout, fingerprint, limit)


class LocalExecutor(Executor):
    """Runs tasks on this machine; ``retries`` bounds how often a task may kill a worker."""

    def __init__(self, workers: int = 1, *, progress: bool = True, retries: int = 1) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.progress = progress
        self.retries = retries

    def map_tasks(self, fn: Callable[[Item], Outcome], items: Sequence[Item]) -> list[Outcome]:
        if self.workers == 1 or len(items) <= 1:
            return [fn(item) for item in items]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=min(self.workers, len(items)), mp_context=context
        ) as pool:
            return list(pool.map(fn, items))

    def execute(self, prepared: PreparedRun, progress: RunProgress) -> list[TaskResult]:
        if self.workers == 1 or len(prepared.pending) <= 1:
            return self._run_in_process(prepared, progress)
        return self._run_in_pool(prepared, progress)

    def _run_in_process(self, prepared: PreparedRun, progress: RunProgress) -> list[TaskResult]:
        pipeline = prepared.pipeline
        results = []
        try:
            for task in prepared.pending:
                result = run_task(
                    pipeline, task, prepared.layout, prepared.fingerprint, prepared.limit
                )
                results.append(result)
                progress.advance(result.docs_in)
        finally:
            pipeline.teardown()
        return results

    def _run_in_pool(self, prepared: PreparedRun, progress: RunProgress) -> list[TaskResult]:
        """One pool for all tasks; then each task whose worker died runs alone, to find it."""
        results: list[TaskResult] = []
        crashed = self._pool_pass(prepared, prepared.pending, results, progress, self.workers)
        for task in crashed:
            for _attempt in range(self.retries):
                if not self._pool_pass(prepared, [task], results, progress, 1):
                    break
            else:
                results.append(
                    TaskResult(
                        task.task_id,
                        task.url,
                        False,
                        error=f"{task.url}: the worker process died while running this task "
                        f"(killed, or out of memory), {self.retries + 1} times",
                    )
                )
                progress.advance(0)
        return results

    def _pool_pass(
        self,
        prepared: PreparedRun,
        tasks: list[ShardTask],
        results: list[TaskResult],
        progress: RunProgress,
        workers: int,
    ) -> list[ShardTask]:
        """Run tasks in one pool; return those whose worker died before they finished."""
        context = multiprocessing.get_context("spawn")
        crashed: list[ShardTask] = []
        with ProcessPoolExecutor(
            max_workers=min(workers, len(tasks)),
            mp_context=context,
            initializer=_init_worker,
            initargs=(prepared.pipeline,),
        ) as pool:
            futures: dict[Future[TaskResult], ShardTask] = {
                pool.submit(
                    _run_in_worker, task, prepared.layout, prepared.fingerprint, prepared.limit
                ): task
                for task in tasks
            }
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        crashed.append(futures[future])
                        continue
                    results.append(result)
                    progress.advance(result.docs_in)
        return crashed
