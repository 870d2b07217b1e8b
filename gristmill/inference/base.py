"""``Generator``: ``generate(prompts, params) -> list[str]`` over a whole batch of prompts.

Stages hand every prompt of a batch to one call, so an engine with continuous batching (vLLM)
keeps the accelerator full. A prompt that fails or is too long yields an empty string and is
counted in ``errors``; it never fails the task. Backends also report *which* prompts failed
(``complete``), so a stage can attribute failures to documents.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

#: A prompt is either text (the engine tokenizes it, adding its BOS) or token ids (sent as is).
Prompt = str | Sequence[int]

log = logging.getLogger(__name__)


class GenerationParams(BaseModel):
    """Sampling settings shared by every backend (greedy by default: refinement is not art)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = Field(default=256, gt=0)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: tuple[str, ...] = ()
    seed: int | None = None


class GeneratorConfig(BaseModel):
    """Which backend and model a stage uses; part of the stage's parameters in YAML.

    ``options`` are checked by the backend's own options model when the generator is
    created (see ``VLLMOptions``, ``OpenAIOptions``, ``TransformersOptions``), so a typo
    fails at set-up with the option's name rather than being silently ignored.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["vllm", "openai", "transformers"] = "transformers"
    model: str = Field(description="a local path or hub id (nothing is downloaded in tests)")
    options: dict[str, Any] = Field(default_factory=dict, description="backend-specific options")


@dataclass(frozen=True, slots=True)
class Completion:
    """One prompt's outcome: the generated text, or ``""`` and why it failed."""

    text: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class Generator(Protocol):
    """What every backend provides. ``errors`` counts prompts that yielded no output."""

    errors: int

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[str]: ...

    def complete(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Completion]: ...

    def complete_stream(
        self, batches: Iterable[Sequence[Prompt]], params: GenerationParams
    ) -> list[Completion]: ...

    def close(self) -> None: ...


class BaseGenerator:
    """Shared bookkeeping: backends implement ``_complete``; failures are counted here.

    An exception escaping a backend's batch call is turned into one failed completion per
    prompt, because one broken batch must cost its documents' refinement, not the task.
    """

    def __init__(self) -> None:
        self.errors = 0
        self.prompts = 0

    def _complete(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Completion]:
        raise NotImplementedError

    def complete(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Completion]:
        if not prompts:
            return []
        try:
            out = self._complete(prompts, params)
        except Exception as error:  # noqa: BLE001 - isolate engine failures from the task
            log.warning(
                "%s: batch of %d prompts failed: %s", type(self).__name__, len(prompts), error
            )
            reason = f"{type(error).__name__}: {error}"
            out = [Completion("", reason) for _ in prompts]
        if len(out) != len(prompts):
            raise RuntimeError(
                f"{type(self).__name__} returned {len(out)} outputs for {len(prompts)}"
            )
        return self._account(out)

    def complete_stream(
        self, batches: Iterable[Sequence[Prompt]], params: GenerationParams
    ) -> list[Completion]:
        """``complete`` over the prompts of every batch, in order, as the batches come.

        For callers that build prompts as they go: an engine that runs beside the caller
        (vLLM) starts on the first batch while the next ones are still being built. Here,
        for engines that cannot, every batch is gathered first and completed in one call.
        An exception raised while building a batch propagates: it is a bug, not a failed
        generation.
        """
        return self.complete([p for batch in batches for p in batch], params)

    def _account(self, out: list[Completion]) -> list[Completion]:
        """Count the prompts and the failures of one call."""
        self.prompts += len(out)
        self.errors += sum(1 for c in out if not c.ok)
        return out

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[str]:
        return [c.text for c in self.complete(prompts, params)]

    def close(self) -> None:
        """Release the engine; backends with resources override this."""


def apply_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the first stop string, for engines that cannot stop on strings."""
    cut = len(text)
    for s in stop:
        if s:
            found = text.find(s)
            if found != -1:
                cut = min(cut, found)
    return text[:cut]


def token_budget(prompt_len: int, max_tokens: int, context: int | None) -> int:
    """New tokens a prompt may get: ``max_tokens`` capped by what the context leaves.

    Returns 0 when the prompt alone fills the context: such a prompt is not sent at all
    (upstream ProX treats it as producing the empty program).
    """
    if context is None:
        return max_tokens
    return max(0, min(max_tokens, context - prompt_len))


def too_long(prompt_len: int, context: int | None) -> str:
    return f"prompt of {prompt_len} tokens leaves no room in the {context}-token context"
