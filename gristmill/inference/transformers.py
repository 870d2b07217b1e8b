"""Backend on Hugging Face ``transformers``: batched ``generate`` on CPU or GPU.

For machines without vLLM, and for the tests, which build a tiny random model. Prompts are
sorted by length and left-padded in sub-batches, so padding stays small and every row's
new tokens start at the same column. torch and transformers are imported only here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gristmill.errors import ConfigError
from gristmill.inference.base import (
    BaseGenerator,
    Completion,
    GenerationParams,
    Prompt,
    apply_stop,
    token_budget,
    too_long,
)


class TransformersOptions(BaseModel):
    """``options`` of a ``transformers`` generator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str = Field(
        default="auto", description="'auto' (cuda when present), 'cpu', 'cuda', 'cuda:1'"
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        default="auto", description="auto: float32 on CPU, bfloat16 on GPU"
    )
    batch_size: int = Field(default=16, gt=0, description="prompts per generate call")
    context_length: int | None = Field(
        default=None, gt=0, description="default: the model's max_position_embeddings"
    )
    tokenizer: str | None = Field(default=None, description="default: the model path")


def _import_torch() -> Any:
    try:
        import torch
        import transformers
    except ImportError as error:  # pragma: no cover - depends on the extras installed
        raise ConfigError(
            "the 'transformers' generator needs torch and transformers "
            "(pip install 'gristmill[transformers]')"
        ) from error
    del transformers
    return torch


class TransformersGenerator(BaseGenerator):
    """Greedy (or sampled) batched generation with a causal LM loaded once."""

    def __init__(self, model: str, options: TransformersOptions | None = None) -> None:
        super().__init__()
        self.options = options or TransformersOptions()
        torch = _import_torch()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        device = self.options.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        dtype_name = self.options.dtype
        if dtype_name == "auto":
            dtype_name = "float32" if self.device.type == "cpu" else "bfloat16"
        self.tokenizer = AutoTokenizer.from_pretrained(self.options.tokenizer or model)
        self.tokenizer.padding_side = "left"
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.tokenizer.eos_token_id
        if self.pad_id is None:
            self.pad_id = 0
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype_name))
        self.model.to(self.device).eval()
        self.context = self.options.context_length or getattr(
            self.model.config, "max_position_embeddings", None
        )

    def encode(self, prompts: Sequence[Prompt]) -> list[list[int]]:
        """Token ids of every prompt; text is encoded as the engine would (BOS added)."""
        texts = [(i, p) for i, p in enumerate(prompts) if isinstance(p, str)]
        ids: list[list[int]] = [[] if isinstance(p, str) else [int(t) for t in p] for p in prompts]
        if texts:
            encoded = self.tokenizer([p for _, p in texts], add_special_tokens=True)["input_ids"]
            for (i, _), row in zip(texts, encoded, strict=True):
                ids[i] = list(row)
        return ids

    def _complete(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Completion]:
        ids = self.encode(prompts)
        out: list[Completion | None] = [None] * len(prompts)
        ready = []
        for i, row in enumerate(ids):
            if not row:
                out[i] = Completion("", "empty prompt")
            elif token_budget(len(row), params.max_tokens, self.context) == 0:
                out[i] = Completion("", too_long(len(row), self.context))
            else:
                ready.append(i)
        ready.sort(key=lambda i: len(ids[i]))
        size = self.options.batch_size
        for start in range(0, len(ready), size):
            group = ready[start : start + size]
            try:
                texts = self._generate_group([ids[i] for i in group], params)
                for i, text in zip(group, texts, strict=True):
                    out[i] = Completion(text)
            except Exception as error:  # noqa: BLE001 - a failed group costs only its prompts
                for i in group:
                    out[i] = Completion("", f"{type(error).__name__}: {error}")
        return [c if c is not None else Completion("", "not generated") for c in out]

    def _generate_group(self, rows: list[list[int]], params: GenerationParams) -> list[str]:
        torch = self._torch
        width = max(len(r) for r in rows)
        budget = token_budget(width, params.max_tokens, self.context)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, row in enumerate(rows):
            input_ids[k, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[k, width - len(row) :] = 1
        sampling: dict[str, Any] = {"do_sample": params.temperature > 0}
        if params.temperature > 0:
            sampling.update(temperature=params.temperature, top_p=params.top_p)
            if params.seed is not None:
                torch.manual_seed(params.seed)
        else:
            sampling.update(temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            generated = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                max_new_tokens=budget,
                pad_token_id=self.pad_id,
                eos_token_id=self.tokenizer.eos_token_id,
                **sampling,
            )
        new = generated[:, width:].tolist()
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [apply_stop(t, params.stop) for t in texts]

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
        if self.device.type == "cuda":
            self._torch.cuda.empty_cache()
