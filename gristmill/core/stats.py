"""Counters every stage keeps, mergeable across batches, tasks and workers into ``stats.json``.

Everything here is plain numbers in dicts so that merging is a sum and the JSON form is the
whole truth: a resumed run rebuilds its totals from the completion markers of earlier runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageStats:
    """Documents and characters in and out of one stage, drops by reason, and its own figures."""

    name: str
    docs_in: int = 0
    docs_out: int = 0
    chars_in: int = 0
    chars_out: int = 0
    seconds: float = 0.0
    dropped: Counter[str] = field(default_factory=Counter)
    counters: dict[str, float] = field(default_factory=dict)
    histograms: dict[str, Counter[str]] = field(default_factory=dict)

    def count(self, key: str, amount: float = 1) -> None:
        """Add to a stage-specific counter (program errors, model calls, ...)."""
        self.counters[key] = self.counters.get(key, 0) + amount

    def count_values(self, key: str, values: Iterable[object]) -> None:
        """Add observations to a categorical histogram (years, languages, score bins)."""
        histogram = self.histograms.setdefault(key, Counter())
        histogram.update(str(value) for value in values)

    def merge(self, other: StageStats) -> None:
        """Fold another task's figures for the same stage into these."""
        self.docs_in += other.docs_in
        self.docs_out += other.docs_out
        self.chars_in += other.chars_in
        self.chars_out += other.chars_out
        self.seconds += other.seconds
        self.dropped.update(other.dropped)
        for key, value in other.counters.items():
            self.count(key, value)
        for key, histogram in other.histograms.items():
            self.histograms.setdefault(key, Counter()).update(histogram)

    @property
    def docs_dropped(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "docs_in": self.docs_in,
            "docs_out": self.docs_out,
            "chars_in": self.chars_in,
            "chars_out": self.chars_out,
            "seconds": round(self.seconds, 6),
            "dropped": dict(sorted(self.dropped.items())),
            "counters": dict(sorted(self.counters.items())),
            "histograms": {
                key: dict(sorted(hist.items())) for key, hist in sorted(self.histograms.items())
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageStats:
        return cls(
            name=data["name"],
            docs_in=int(data.get("docs_in", 0)),
            docs_out=int(data.get("docs_out", 0)),
            chars_in=int(data.get("chars_in", 0)),
            chars_out=int(data.get("chars_out", 0)),
            seconds=float(data.get("seconds", 0.0)),
            dropped=Counter(data.get("dropped", {})),
            counters=dict(data.get("counters", {})),
            histograms={k: Counter(v) for k, v in data.get("histograms", {}).items()},
        )


@dataclass
class PipelineStats:
    """The per-stage stats of one task or of a whole run, keyed by the stage's position label."""

    stages: dict[str, StageStats] = field(default_factory=dict)
    tasks: int = 0
    #: Input rows no reader could read (invalid UTF-8, malformed JSON): set aside in the rejects.
    unreadable: int = 0

    def merge(self, other: PipelineStats) -> None:
        self.tasks += other.tasks
        self.unreadable += other.unreadable
        for key, stats in other.stages.items():
            if key in self.stages:
                self.stages[key].merge(stats)
            else:
                merged = StageStats(name=stats.name)
                merged.merge(stats)
                self.stages[key] = merged

    @classmethod
    def merged(cls, parts: Iterable[PipelineStats]) -> PipelineStats:
        total = cls()
        for part in parts:
            total.merge(part)
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "unreadable": self.unreadable,
            "stages": {k: s.to_dict() for k, s in self.stages.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineStats:
        return cls(
            stages={k: StageStats.from_dict(v) for k, v in data.get("stages", {}).items()},
            tasks=int(data.get("tasks", 0)),
            unreadable=int(data.get("unreadable", 0)),
        )
