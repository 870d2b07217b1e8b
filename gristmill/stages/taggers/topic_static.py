"""The parts of the ``static`` topic mode: a static token-embedding encoder and a linear head.

Why static: a transformer encoder (MiniLM) runs at tens of documents per second on a CPU core
and was most of the default pipeline's time. A static encoder looks each token up in a table
and averages the rows, so a document costs a tokenizer pass and one gather (thousands of
documents per second), and the result of a row never depends on its batch.

The encoder is ``gristmill.embeddings.static.StaticEncoder`` (``mean_vectors``), over WordLlama's
``l2_supercat`` 256-dimensional token embeddings (Llama-2 vocabulary, MIT licence), which ship
inside the ``wordllama`` wheel with their tokenizer; the template matcher's static backend is
the same encoder.

A static average has no notion of our topics by itself (zero-shot nearest-description on it
scored 0.51 on the held-out set), so a linear softmax head trained on labelled documents
(``scripts/train_topic_head.py``, stored as ``gristmill/models/topic_head.npz``) maps the
embedding to a topic; see ``docs/topic.md`` for the measured accuracy of each mode.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from gristmill.embeddings.static import StaticEncoder
from gristmill.errors import ConfigError

ENCODER_NAME = "wordllama/l2_supercat_256"
#: The head bundled with gristmill (package data, found without a path into the repository).
DEFAULT_HEAD = resources.files("gristmill.models").joinpath("topic_head.npz")


@lru_cache(maxsize=1)
def load_static_encoder() -> StaticEncoder:
    """The static encoder over WordLlama's table, once per process (the template matcher's
    static backend reads the same table through ``wordllama_table``)."""
    return StaticEncoder()


class TopicHead:
    """A linear softmax classifier over document embeddings: ``softmax(x @ W.T + b)``.

    Stored as ``.npz`` of plain arrays (``weights``, ``bias``, ``labels``, ``encoder``,
    ``max_tokens``), read with ``allow_pickle=False``: a head file is data, never code.
    """

    def __init__(
        self,
        weights: np.ndarray,
        bias: np.ndarray,
        labels: list[str],
        encoder: str,
        max_tokens: int,
    ) -> None:
        if weights.ndim != 2 or weights.shape[0] != len(labels) or bias.shape != (len(labels),):
            raise ValueError("expected one weight row and one bias per label")
        self.weights = np.asarray(weights, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.labels = list(labels)
        self.encoder = encoder
        self.max_tokens = int(max_tokens)

    @classmethod
    def load(cls, path: str | Path | None = None) -> TopicHead:
        source = Path(path) if path else DEFAULT_HEAD
        try:
            with source.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
                head = cls(
                    data["weights"],
                    data["bias"],
                    [str(label) for label in data["labels"]],
                    str(data["encoder"]),
                    int(data["max_tokens"]),
                )
        except (OSError, KeyError, ValueError) as error:
            raise ConfigError(f"{source}: not a topic head file ({error})") from None
        if head.encoder != ENCODER_NAME:
            raise ConfigError(
                f"{source}: the head was trained on {head.encoder!r} embeddings, "
                f"the static mode computes {ENCODER_NAME!r}"
            )
        return head

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(
                handle,
                weights=self.weights,
                bias=self.bias,
                labels=np.array(self.labels, dtype=np.str_),
                encoder=np.array(self.encoder, dtype=np.str_),
                max_tokens=np.array(self.max_tokens, dtype=np.int64),
            )

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        logits = vectors @ self.weights.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def fingerprint(self) -> str:
        """A short hash of the weights, for run reports and reproducibility checks."""
        digest = hashlib.sha256(self.weights.tobytes() + self.bias.tobytes())
        return digest.hexdigest()[:12]
