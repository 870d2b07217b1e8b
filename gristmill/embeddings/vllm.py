"""Embedding through vLLM's pooling runner: token states on a GPU, batched by the engine.

vLLM (>= 0.11 ``runner="pooling"``) gives per-token hidden states with the ``token_embed``
pooling task, which is what Gaussian pooling needs; older releases only give one pooled vector
per text and are refused here with that reason. ``use_activation=False`` keeps the states raw
(the task would otherwise normalise each token). The global vector is the masked mean of the
same states, as for every other backend, not the model's own pooler (BGE-M3's is its CLS token).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gristmill.embeddings.base import Encoder, TokenStates
from gristmill.errors import ConfigError


class VllmEncoder(Encoder):
    """An offline ``vllm.LLM`` in pooling mode over a local model folder, once per worker."""

    def __init__(
        self,
        path: str,
        *,
        batch_size: int = 256,
        max_tokens: int | None = None,
        gpu_memory_utilization: float = 0.5,
        options: dict[str, Any] | None = None,
    ) -> None:
        try:
            from vllm import LLM, PoolingParams
            from vllm.config import PoolerConfig
        except ImportError:
            raise ConfigError("encoder backend vllm needs the package vllm") from None
        options = dict(options or {})
        engine_args = options.pop("engine_args", {})
        if max_tokens is not None:
            options.setdefault("max_model_len", max_tokens)
        # The engine serves one pooling task; ours is per-token states, raw (not normalised).
        options.setdefault("pooler_config", PoolerConfig(task="token_embed", use_activation=False))
        self.llm = LLM(
            model=path,
            runner="pooling",
            gpu_memory_utilization=gpu_memory_utilization,
            **options,
            **engine_args,
        )
        if "token_embed" not in self.llm.supported_tasks:
            raise ConfigError(
                f"vLLM gives no token states for {path!r} (supported: "
                f"{sorted(self.llm.supported_tasks)}); Gaussian pooling needs token_embed"
            )
        self._params = PoolingParams(use_activation=False)
        config = self.llm.llm_engine.model_config
        self.dim = int(config.hf_config.hidden_size)
        self.max_tokens = int(config.max_model_len)
        self.batch_size = batch_size
        self.name = f"vllm:{path}"

    def token_states(self, texts: Sequence[str]) -> TokenStates:
        outputs = self.llm.encode(
            [self.clip(t) or " " for t in texts],
            pooling_params=self._params,
            pooling_task="token_embed",
            use_tqdm=False,
            tokenization_kwargs={"truncation": True, "max_length": self.max_tokens},
        )
        states = [np.asarray(o.outputs.data.float().cpu().numpy()) for o in outputs]
        longest = max((len(s) for s in states), default=0)
        out = np.zeros((len(states), longest, self.dim), np.float32)
        mask = np.zeros((len(states), longest), bool)
        for row, (text, value) in enumerate(zip(texts, states, strict=True)):
            if self.clip(text):  # an empty text was sent as one space: it has no tokens
                out[row, : len(value)] = value
                mask[row, : len(value)] = True
        return TokenStates(out, mask)

    def close(self) -> None:
        self.llm = None  # type: ignore[assignment]
