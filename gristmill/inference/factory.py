"""``create_generator``: one place that turns a ``GeneratorConfig`` into a live backend.

Backends are imported only when asked for, so torch, transformers and vLLM stay optional
extras: a CPU pipeline without model stages never imports them.
"""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from gristmill.errors import ConfigError
from gristmill.inference.base import Generator, GeneratorConfig


def _options(config: GeneratorConfig, model: type[BaseModel]) -> object:
    try:
        return model.model_validate(config.options)
    except ValidationError as error:
        problems = "; ".join(
            f"'{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"generator '{config.backend}' options: {problems}") from None


def create_generator(config: GeneratorConfig) -> Generator:
    """Build the backend ``config`` names; load its model now (call from ``setup``)."""
    if config.backend == "transformers":
        from gristmill.inference.transformers import TransformersGenerator, TransformersOptions

        return TransformersGenerator(config.model, _options(config, TransformersOptions))  # type: ignore[arg-type]
    if config.backend == "vllm":
        from gristmill.inference.vllm import VLLMGenerator, VLLMOptions

        return VLLMGenerator(config.model, _options(config, VLLMOptions))  # type: ignore[arg-type]
    if config.backend == "openai":
        from gristmill.inference.openai import OpenAIGenerator, OpenAIOptions

        return OpenAIGenerator(config.model, _options(config, OpenAIOptions))  # type: ignore[arg-type]
    raise ConfigError(f"unknown generator backend {config.backend!r}")


def check_options(config: GeneratorConfig) -> None:
    """Validate ``options`` without loading anything, so a typo fails before data flows."""
    from gristmill.inference.openai import OpenAIOptions
    from gristmill.inference.transformers import TransformersOptions
    from gristmill.inference.vllm import VLLMOptions

    models: dict[str, type[BaseModel]] = {
        "transformers": TransformersOptions,
        "vllm": VLLMOptions,
        "openai": OpenAIOptions,
    }
    _options(config, models[config.backend])
