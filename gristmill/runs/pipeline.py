"""A pipeline: a reader, stages in order and a writer, run by the run driver.

The same object runs in this process, in a process pool or on Dask; ``run`` is the short way
for Python users, and the command line builds the same object from a YAML file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console

from gristmill.core.chain import StageChain
from gristmill.core.stage import Stage
from gristmill.errors import ConfigError
from gristmill.executors.base import Executor
from gristmill.executors.local import LocalExecutor
from gristmill.io.base import Reader, Writer
from gristmill.runs.passes import PipelineRun
from gristmill.runs.report import RunReport


class Pipeline(StageChain):
    """A reader, stages in order, and a writer; ``rejects`` keeps dropped rows beside the output.

    Run it from a script under ``if __name__ == "__main__":`` (worker processes import the
    script again)::

        if __name__ == "__main__":
            Pipeline([...], reader=ParquetReader("in/*.parquet"),
                     writer=ParquetWriter("out")).run(workers=2)
    """

    def __init__(
        self,
        stages: Sequence[Stage],
        *,
        reader: Reader | None = None,
        writer: Writer | None = None,
        rejects: bool = True,
        name: str = "pipeline",
    ) -> None:
        super().__init__(stages)
        self.reader = reader
        self.writer = writer
        self.rejects = rejects
        self.name = name

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, **super().spec()}

    def run(
        self,
        *,
        workers: int = 1,
        executor: Executor | None = None,
        limit: int | None = None,
        overwrite: bool = False,
        progress: bool = False,
        console: Console | None = None,
    ) -> RunReport:
        """Run over the reader's inputs: ``workers`` local processes, or any ``executor``.

        A rerun resumes: completed tasks (and completed steps of corpus-wide phases) are
        skipped; ``overwrite`` starts over. Returns the report; failed tasks are listed in
        it (the others completed), errors in the configuration raise ``GristmillError``.
        """
        if self.reader is None or self.writer is None:
            raise ConfigError("the pipeline needs a reader and a writer to run")
        chosen = executor if executor is not None else LocalExecutor(workers=workers)
        job = PipelineRun(
            self,
            self.reader,
            self.writer,
            rejects=self.rejects,
            spec=self.spec(),
            limit=limit,
        )
        return job.run(chosen, overwrite=overwrite, progress=progress, console=console)
