"""What the model stages of FineInstructions share: the engine, chat prompts, the pair column.

``instantiate`` and ``judge`` both send one user message per pair to an instruction-tuned
model (the released instantiator is a Llama-3.2 chat model, Flow Judge a Phi-3.5 one), so
both render it with the tokenizer's chat template into token ids, sent as they are: a text
prompt would make the engine add a second BOS in front of the template's own. A tokenizer
without a chat template (a base model, the tests' tiny Llama) gets the message as plain text.
The engine is created once per worker in ``setup``; every prompt of a batch goes to one
``complete`` call so that vLLM's continuous batching sees the whole batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from pydantic import Field, model_validator

from gristmill.core.resources import Resources
from gristmill.core.stage import Stage, StageParams
from gristmill.errors import ConfigError
from gristmill.inference.base import (
    Completion,
    GenerationParams,
    Generator,
    GeneratorConfig,
    Prompt,
)
from gristmill.inference.factory import check_options, create_generator

MATCHES = "fi_matches"
PAIRS = "fi_pairs"

#: One instruction-answer pair as ``instantiate`` writes it and ``judge`` scores it.
PAIR_TYPE = pa.struct(
    [
        pa.field("template_id", pa.int64()),
        pa.field("slot", pa.int8()),
        pa.field("instruction", pa.string()),
        pa.field("answer", pa.string()),
        pa.field("excerpt_ratio", pa.float32()),
        pa.field("judge_score", pa.float32()),
    ]
)
PAIRS_FIELD = pa.field(PAIRS, pa.list_(PAIR_TYPE))


class GeneratingParams(StageParams):
    """Parameters of a stage that asks a model through a ``Generator``."""

    generator: GeneratorConfig = Field(description="the model and backend (vllm on a GPU)")
    tokenizer: str | None = Field(
        default=None,
        description="tokenizer whose chat template renders the prompts; default: the "
        "generator's own (the openai backend has none: give one, or prompts go as plain text)",
    )
    max_new_tokens: int = Field(default=1024, gt=0, description="generation cap per pair")

    @model_validator(mode="after")
    def _options_valid(self) -> GeneratingParams:
        check_options(self.generator)
        return self


def load_tokenizer(path: str) -> Any:
    """A Hugging Face tokenizer (for its chat template), loaded from a local path."""
    try:
        from transformers import AutoTokenizer
    except ImportError as error:  # pragma: no cover - depends on the extras installed
        raise ConfigError("chat prompts need transformers for the tokenizer") from error
    return AutoTokenizer.from_pretrained(path)


def chat_prompts(tokenizer: Any, messages: Sequence[str]) -> list[Prompt]:
    """Each user message as the model's chat prompt: token ids, or plain text without one."""
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return list(messages)
    prompts: list[Prompt] = []
    for message in messages:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": message}], add_generation_prompt=True, tokenize=True
        )
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):  # BatchEncoding
            ids = ids["input_ids"]
        prompts.append([int(i) for i in ids])
    return prompts


def json_message(**fields: str) -> str:
    """A user message that is one JSON object (the released models' input contract)."""
    return json.dumps(fields, ensure_ascii=False)


class GeneratingStage(Stage):
    """A tagger that owns one engine per worker: set-up, sharing, release and the call."""

    params: GeneratingParams

    def __init__(self, params: Any = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.generator: Generator | None = None
        self.tokenizer: Any = None

    @property
    def resources(self) -> Resources:  # type: ignore[override]
        on_gpu = self.params.generator.backend == "vllm"
        return Resources(cpus=1.0, gpus=1.0 if on_gpu else 0.0)

    def setup(self) -> None:
        """Load the model once per worker; reuse the engine's tokenizer when it has one."""
        if self.generator is not None:
            return
        self.generator = create_generator(self.params.generator)
        own = getattr(self.generator, "tokenizer", None)
        self.tokenizer = load_tokenizer(self.params.tokenizer) if self.params.tokenizer else own

    def attach(self, generator: Generator, tokenizer: Any = None) -> None:
        """Use an engine created elsewhere (shared between stages) instead of loading one."""
        self.generator = generator
        own = getattr(generator, "tokenizer", None)
        self.tokenizer = tokenizer if tokenizer is not None else own

    def teardown(self) -> None:
        if self.generator is not None:
            self.generator.close()
        self.generator, self.tokenizer = None, None

    def _complete(self, messages: Sequence[str], stop: tuple[str, ...] = ()) -> list[Completion]:
        """Every message of the batch in one engine call, greedy; failures are counted."""
        if not messages:
            return []
        self.setup()
        assert self.generator is not None
        params = GenerationParams(max_tokens=self.params.max_new_tokens, temperature=0.0, stop=stop)
        done = self.generator.complete(chat_prompts(self.tokenizer, messages), params)
        self.stats.count("prompts", len(done))
        self.stats.count("generation_errors", sum(1 for c in done if not c.ok))
        return done
