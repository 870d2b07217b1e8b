"""Where a run keeps its files, beside its output data.

```
OUTPUT/*.parquet                       one file per task (named after its input)
OUTPUT/_rejects/*.parquet              rows the last pass dropped, with the stage and reason
OUTPUT/_rejects/pass-NN/*.parquet      rows an earlier pass dropped (or could not read)
OUTPUT/_run/run.json                   what made the output: spec, fingerprints, decisions
OUTPUT/_run/stats.json                 per-stage figures of every completed task, and phases
OUTPUT/_run/failures.json              what failed in the last run, with the file and error
OUTPUT/_run/lock.json                  the run writing here now (see runs.lock)
OUTPUT/_run/markers/STEP/UNIT.json     completion marker of each unit of each step
OUTPUT/_run/passes/NN/*.parquet        an earlier pass's output (removed once the run is whole)
OUTPUT/_run/phases/LABEL/              a corpus-wide phase: map/, reduce/, results/, decision
```

Bookkeeping lives under names starting with ``_`` so that readers pointed at OUTPUT see the
data files only. A marker is written last, after what its unit wrote is in place: its presence
under the step's current fingerprint means the unit is done.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from gristmill.io.filesystem import (
    filesystem,
    join,
    read_json,
    remove_stale_temporaries,
    write_json_atomically,
)

LOCK_NAME = "lock.json"


@dataclass(frozen=True)
class OutputLayout:
    root: str

    # -- places ----------------------------------------------------------------------------
    @property
    def run_dir(self) -> str:
        return join(self.root, "_run")

    @property
    def rejects(self) -> str:
        return join(self.root, "_rejects")

    def pass_rejects(self, number: int) -> str:
        return join(self.rejects, f"pass-{number:02d}")

    def pass_dir(self, number: int) -> str:
        return join(self.run_dir, "passes", f"{number:02d}")

    @property
    def passes_dir(self) -> str:
        return join(self.run_dir, "passes")

    def phase_dir(self, label: str) -> str:
        return join(self.run_dir, "phases", label)

    @property
    def lock_path(self) -> str:
        return join(self.run_dir, LOCK_NAME)

    @property
    def stats_path(self) -> str:
        return join(self.run_dir, "stats.json")

    @property
    def failures_path(self) -> str:
        return join(self.run_dir, "failures.json")

    @property
    def run_path(self) -> str:
        return join(self.run_dir, "run.json")

    def markers_dir(self, step: str) -> str:
        return join(self.run_dir, "markers", step)

    def marker_path(self, step: str, unit: str) -> str:
        return join(self.markers_dir(step), posixpath.normpath(unit) + ".json")

    # -- markers ---------------------------------------------------------------------------
    def completed(self, step: str, unit: str, fingerprint: str) -> dict[str, Any] | None:
        """What a unit recorded when it completed under this fingerprint, else None."""
        marker = read_json(self.marker_path(step, unit))
        if not isinstance(marker, dict) or marker.get("fingerprint") != fingerprint:
            return None
        value = marker.get("value")
        return value if isinstance(value, dict) else {}

    # -- run files -------------------------------------------------------------------------
    def previous_run(self) -> dict[str, Any] | None:
        found = read_json(self.run_path)
        return found if isinstance(found, dict) else None

    def write_run(self, record: dict[str, Any]) -> None:
        write_json_atomically(self.run_path, record)

    def write_stats(self, stats: dict[str, Any]) -> None:
        write_json_atomically(self.stats_path, stats)

    def write_failures(self, failures: list[dict[str, Any]]) -> None:
        write_json_atomically(self.failures_path, failures)

    def clear(self) -> None:
        """Remove everything a previous run wrote here (``--overwrite``), except the lock of
        the run that is clearing it."""
        fs, root = filesystem(self.root)
        if not fs.exists(root):
            return
        lock = filesystem(self.lock_path)[1]
        for path in fs.ls(root, detail=False):
            if path.rstrip("/") == filesystem(self.run_dir)[1].rstrip("/"):
                for inner in fs.ls(path, detail=False):
                    if inner != lock:
                        fs.rm(inner, recursive=True)
            else:
                fs.rm(path, recursive=True)

    def remove_temporaries(self) -> int:
        return remove_stale_temporaries(self.root)
