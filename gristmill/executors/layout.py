"""Where a run keeps its files, beside the output data.

```
OUTPUT/*.parquet            one file per task (named after its input)
OUTPUT/_rejects/*.parquet   dropped rows with the stage and reason that dropped them
OUTPUT/_run/markers/*.json  completion marker of each task, holding its stats
OUTPUT/_run/run.json        the pipeline spec and fingerprint the output was made with
OUTPUT/_run/stats.json      the merged stats of every completed task
OUTPUT/_run/failures.json   the tasks that failed in the last run, with their errors
```

Bookkeeping lives under names starting with ``_`` so that Parquet dataset readers pointed at
OUTPUT see the data files only.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Any

from gristmill.core.stats import PipelineStats
from gristmill.io.base import ShardTask
from gristmill.io.filesystem import (
    filesystem,
    join,
    remove_stale_temporaries,
    write_bytes_atomically,
)


def _dump(data: Any) -> bytes:
    return json.dumps(data, indent=2, sort_keys=True).encode()


@dataclass(frozen=True)
class OutputLayout:
    root: str

    @property
    def rejects(self) -> str:
        return join(self.root, "_rejects")

    @property
    def run_dir(self) -> str:
        return join(self.root, "_run")

    @property
    def stats_path(self) -> str:
        return join(self.run_dir, "stats.json")

    @property
    def failures_path(self) -> str:
        return join(self.run_dir, "failures.json")

    @property
    def run_path(self) -> str:
        return join(self.run_dir, "run.json")

    def marker_path(self, task: ShardTask) -> str:
        return join(self.run_dir, "markers", posixpath.normpath(task.task_id) + ".json")

    # -- markers -----------------------------------------------------------------------------
    def write_marker(self, task: ShardTask, fingerprint: str, stats: PipelineStats) -> None:
        """Written last, after the output is in place: its presence means the task is done."""
        marker = {
            "task": task.task_id,
            "input": task.url,
            "row_groups": list(task.row_groups) if task.row_groups else None,
            "fingerprint": fingerprint,
            "stats": stats.to_dict(),
        }
        write_bytes_atomically(self.marker_path(task), _dump(marker))

    def read_marker(self, task: ShardTask) -> dict[str, Any] | None:
        fs, path = filesystem(self.marker_path(task))
        if not fs.exists(path):
            return None
        with fs.open(path, "rb") as handle:
            marker: dict[str, Any] = json.loads(handle.read())
        return marker

    def completed_stats(self, task: ShardTask, fingerprint: str) -> PipelineStats | None:
        """The stats of a task completed by a run of the same pipeline, else None."""
        marker = self.read_marker(task)
        if marker is None or marker.get("fingerprint") != fingerprint:
            return None
        return PipelineStats.from_dict(marker["stats"])

    # -- run files -----------------------------------------------------------------------------
    def previous_fingerprint(self) -> str | None:
        fs, path = filesystem(self.run_path)
        if not fs.exists(path):
            return None
        with fs.open(path, "rb") as handle:
            return str(json.loads(handle.read()).get("fingerprint"))

    def write_run(self, spec: dict[str, Any], fingerprint: str) -> None:
        write_bytes_atomically(self.run_path, _dump({"fingerprint": fingerprint, "pipeline": spec}))

    def write_stats(self, stats: PipelineStats) -> None:
        write_bytes_atomically(self.stats_path, _dump(stats.to_dict()))

    def write_failures(self, failures: list[dict[str, Any]]) -> None:
        write_bytes_atomically(self.failures_path, _dump(failures))

    def clear(self) -> None:
        """Remove everything a previous run wrote here (``--overwrite``)."""
        fs, path = filesystem(self.root)
        if fs.exists(path):
            fs.rm(path, recursive=True)

    def remove_temporaries(self) -> int:
        return remove_stale_temporaries(self.root)
