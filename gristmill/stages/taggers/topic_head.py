"""The ``head`` topic mode: document vectors from one or more encoders, and a linear head.

Why a trained head: no encoder knows our topics by itself (zero-shot nearest-description on
WordLlama's static table scored 0.51 on the held-out set, on MiniLM 0.54), while a linear
softmax head trained on documents labelled by hand (``gristmill train-topic-head``) maps an
embedding to a topic far better (``docs/topic.md`` has each figure).

Why several encoders: they trade speed for accuracy, and the head can read any of them, or
several side by side. WordLlama's static token table (``l2_supercat`` 256-d, in the ``wordllama``
wheel) costs a tokenizer pass and one gather, thousands of documents per second on one core,
which is what keeps the default head in the CPU pipeline. MiniLM's contextual vectors beside
it are more accurate at MiniLM's speed (tens of documents per second on a CPU core, thousands
on a GPU), and a user's own embedding model (a local folder through transformers, or vLLM's
pooling runner on a GPU) is read the same way. A head file records which encoders it read and
how many tokens of each, so it is never applied to another model's vectors.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from gristmill.embeddings import Encoder, EncoderConfig, load_encoder
from gristmill.embeddings.static import NAME as STATIC_ENCODER_NAME
from gristmill.errors import ConfigError

#: The heads bundled with gristmill, by the name ``head:`` takes (package data, found without
#: a path into the repository); the first is the default.
BUNDLED_HEADS: dict[str, str] = {
    "wordllama": "topic_head.npz",
    "wordllama+minilm": "topic_head_minilm.npz",
}
DEFAULT_HEAD: Traversable = resources.files("gristmill.models").joinpath("topic_head.npz")
#: The encoders a head may name without an ``encoder:`` block: they ship in packages.
BUILT_IN_BACKENDS = ("static", "minilm")
#: How heads written before a head could read several encoders named WordLlama's table.
LEGACY_STATIC_NAME = "wordllama/l2_supercat_256"


@dataclass(frozen=True)
class HeadInput:
    """One encoder a head reads: its ``Encoder.name`` and how many tokens of each text."""

    encoder: str
    max_tokens: int


def model_identity(encoder_name: str) -> str:
    """What must agree between the encoder a head was trained on and the one that runs it.

    The packaged encoders by their name; a local model folder by the folder's name, so a head
    trained through transformers on a CPU runs through vLLM on a GPU (the same weights) and the
    folder may move.
    """
    backend, _, location = encoder_name.partition(":")
    if backend in ("transformers", "vllm"):
        return f"model:{PurePath(location.rstrip('/')).name}"
    return encoder_name


def built_in_config(encoder_name: str) -> EncoderConfig | None:
    """The config that rebuilds a packaged encoder from its name; None for a local model."""
    backend = encoder_name.partition(":")[0]
    if backend in BUILT_IN_BACKENDS:
        return EncoderConfig.model_validate({"backend": backend})
    return None


class TopicHead:
    """A linear softmax classifier over document vectors: ``softmax(x @ W.T + b)``, where ``x``
    is each input encoder's L2-normalised vector of the text, side by side.

    Stored as ``.npz`` of plain arrays (``weights``, ``bias``, ``labels``, ``encoders``,
    ``max_tokens``), read with ``allow_pickle=False``: a head file is data, never code.
    """

    def __init__(
        self, weights: np.ndarray, bias: np.ndarray, labels: list[str], inputs: list[HeadInput]
    ) -> None:
        if weights.ndim != 2 or weights.shape[0] != len(labels) or bias.shape != (len(labels),):
            raise ValueError("expected one weight row and one bias per label")
        if not inputs:
            raise ValueError("a head reads at least one encoder")
        self.weights = np.asarray(weights, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.labels = list(labels)
        self.inputs = list(inputs)

    @classmethod
    def load(cls, head: str | Path | None = None) -> TopicHead:
        """A bundled head by name (``wordllama``, ``wordllama+minilm``), or a head file."""
        source: Traversable | Path
        if head is None:
            source = DEFAULT_HEAD
        elif str(head) in BUNDLED_HEADS:
            source = resources.files("gristmill.models").joinpath(BUNDLED_HEADS[str(head)])
        else:
            source = Path(head)
        try:
            with source.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
                return cls(
                    data["weights"],
                    data["bias"],
                    [str(label) for label in data["labels"]],
                    _stored_inputs(data),
                )
        except (OSError, KeyError, ValueError) as error:
            raise ConfigError(f"{source}: not a topic head file ({error})") from None

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(
                handle,
                weights=self.weights,
                bias=self.bias,
                labels=np.array(self.labels, dtype=np.str_),
                encoders=np.array([i.encoder for i in self.inputs], dtype=np.str_),
                max_tokens=np.array([i.max_tokens for i in self.inputs], dtype=np.int64),
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

    def describe(self) -> str:
        return " + ".join(f"{i.encoder} ({i.max_tokens} tokens)" for i in self.inputs)


def _stored_inputs(data: Any) -> list[HeadInput]:
    """The inputs of a head file; a file from before several encoders names one, WordLlama's."""
    if "encoders" in data:
        names = [str(name) for name in data["encoders"]]
        tokens = [int(n) for n in np.atleast_1d(data["max_tokens"])]
        if len(names) != len(tokens):
            raise ValueError("one max_tokens per encoder expected")
        return [HeadInput(name, n) for name, n in zip(names, tokens, strict=True)]
    name = str(data["encoder"])
    if name == LEGACY_STATIC_NAME:
        name = STATIC_ENCODER_NAME
    return [HeadInput(name, int(data["max_tokens"]))]


class HeadFeatures:
    """The vectors a head reads, computed by the encoders it was trained on.

    ``inputs`` are the head's (``TopicHead.inputs``), ``width`` the length of its weight rows
    (None while training one). ``configs`` are the encoders to run, in the head's order; None
    rebuilds the packaged ones from the head's record (a head on a local model needs its
    config: where the folder is, and whether transformers or vLLM runs it). ``max_tokens``
    overrides every input's token count.
    """

    def __init__(
        self,
        inputs: list[HeadInput],
        configs: list[EncoderConfig] | None = None,
        *,
        width: int | None = None,
        max_tokens: int | None = None,
        source: str = "the head",
    ) -> None:
        if configs is None:
            built = [built_in_config(i.encoder) for i in inputs]
            missing = [i.encoder for i, c in zip(inputs, built, strict=True) if c is None]
            if missing:
                raise ConfigError(
                    f"{source} was trained on {', '.join(missing)}: give encoder: with the "
                    "backend (transformers or vllm) and the local path of that model"
                )
            configs = [c for c in built if c is not None]
        if len(configs) != len(inputs):
            raise ConfigError(
                f"{source} reads {len(inputs)} encoder(s) ({', '.join(i.encoder for i in inputs)})"
                f", encoder: gives {len(configs)}"
            )
        self.inputs = [HeadInput(i.encoder, max_tokens or i.max_tokens) for i in inputs]
        self.configs = [
            c.model_copy(update={"max_tokens": i.max_tokens})
            for c, i in zip(configs, self.inputs, strict=True)
        ]
        self.source = source
        self.width = width
        self._encoders: list[Encoder] | None = None

    def load(self) -> None:
        """Load every encoder (once per process) and check each is the model the head read."""
        encoders = [load_encoder(config) for config in self.configs]
        for wanted, encoder in zip(self.inputs, encoders, strict=True):
            if model_identity(encoder.name) != model_identity(wanted.encoder):
                raise ConfigError(
                    f"{self.source} was trained on {wanted.encoder!r} embeddings, "
                    f"encoder: gives {encoder.name!r}"
                )
        dims = sum(encoder.dim for encoder in encoders)
        if self.width is not None and dims != self.width:
            raise ConfigError(
                f"{self.source} has weights for {self.width}-wide vectors, its encoders give {dims}"
            )
        self._encoders = encoders

    def vectors(self, texts: list[str]) -> np.ndarray:
        """``[len(texts), sum of the encoders' dims]``: each encoder's L2-normalised vector."""
        if self._encoders is None:
            self.load()
        assert self._encoders is not None
        parts = [encoder.encode(texts) for encoder in self._encoders]
        return np.hstack(parts) if len(parts) > 1 else parts[0]
