"""Error types that the CLI turns into one clear line instead of a traceback."""

from __future__ import annotations


class GristmillError(Exception):
    """Base class for every error gristmill raises on purpose."""


class ConfigError(GristmillError):
    """A pipeline file or a stage's parameters are wrong; raised before any data flows."""


class PipelineValidationError(GristmillError):
    """The stages cannot run on this input (a required column is missing, say)."""


class InputError(GristmillError):
    """An input file cannot be read: corrupt, wrong format, or missing a required column.

    The message always names the file, so that one bad shard among thousands is easy to find.
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class NotReadyError(GristmillError):
    """A file the next step needs has not been written yet (by a trainer, say): not a
    failure, the same command succeeds once it is there (the CLI exits with 75, EX_TEMPFAIL)."""
