"""What a stage needs from the machine, so executors can place it (GPU stages on GPU workers)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resources:
    """Per-worker resources a stage asks for; the Dask executor maps them to worker resources."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_gb: float | None = None

    def combine(self, other: Resources) -> Resources:
        """The resources of a pipeline are the largest request of any of its stages."""
        memory = [m for m in (self.memory_gb, other.memory_gb) if m is not None]
        return Resources(
            cpus=max(self.cpus, other.cpus),
            gpus=max(self.gpus, other.gpus),
            memory_gb=max(memory) if memory else None,
        )
