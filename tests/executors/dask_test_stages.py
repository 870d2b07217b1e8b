"""Real stages the Dask executor tests run on workers; a module (not a test file) so that the
workers, which start from a clean interpreter, import it by name."""

from __future__ import annotations

import os

import pyarrow as pa
from pydantic import Field

from gristmill.core.resources import Resources
from gristmill.core.stage import Stage, StageParams


class SetupLogParams(StageParams):
    path: str = Field(description="file each setup() appends its process id to")


class RecordSetup(Stage):
    """Appends its worker's process id to a file in ``setup``: counts model loads."""

    name = "test_record_setup"
    Params = SetupLogParams

    def setup(self) -> None:
        with open(self.params.path, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")

    def process(self, batch: pa.Table) -> pa.Table:
        return batch


class VictimParams(StageParams):
    victim_source: str


class KillWorkerAlways(Stage):
    """Kills its worker process on every batch holding ``victim_source``: a poisonous task."""

    name = "test_kill_worker_always"
    Params = VictimParams

    def process(self, batch: pa.Table) -> pa.Table:
        if self.params.victim_source in set(batch.column("source").to_pylist()):
            os._exit(137)
        return batch


class WorkerName(Stage):
    """Adds ``dask_worker``: the name of the Dask worker that ran the batch."""

    name = "test_worker_name"

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (pa.field("dask_worker", pa.string()),)

    def process(self, batch: pa.Table) -> pa.Table:
        from distributed import get_worker

        name = str(get_worker().name)
        return batch.append_column("dask_worker", pa.array([name] * batch.num_rows, pa.string()))


class GpuWorkerName(WorkerName):
    """The same, declared as needing a GPU, so it may only run on GPU workers."""

    name = "test_gpu_worker_name"
    resources = Resources(gpus=1)


class MidWriteParams(StageParams):
    victim_source: str
    sentinel: str = Field(description="written at the kill: the temporary files present then")
    output: str = Field(description="the run's output directory")


class KillWorkerMidWrite(Stage):
    """Kills its worker once, on the second batch of ``victim_source``: after the task's first
    batch is already in its temporary output file. The sentinel lists the temporaries."""

    name = "test_kill_worker_mid_write"
    Params = MidWriteParams

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._victim_batches = 0

    def process(self, batch: pa.Table) -> pa.Table:
        if self.params.victim_source not in set(batch.column("source").to_pylist()):
            return batch
        self._victim_batches += 1
        if self._victim_batches >= 2 and not os.path.exists(self.params.sentinel):
            temporaries = [
                os.path.join(root, name)
                for root, _dirs, names in os.walk(self.params.output)
                for name in names
                if name.startswith(".tmp-")
            ]
            with open(self.params.sentinel, "w", encoding="utf-8") as handle:
                handle.write("\n".join(temporaries))
            os._exit(137)
        return batch
