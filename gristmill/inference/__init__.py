"""The one interface every model-driven stage uses to generate text, and its backends."""

from gristmill.inference.base import (
    BaseGenerator,
    Completion,
    GenerationParams,
    Generator,
    GeneratorConfig,
    Prompt,
)
from gristmill.inference.factory import check_options, create_generator

__all__ = [
    "BaseGenerator",
    "Completion",
    "GenerationParams",
    "Generator",
    "GeneratorConfig",
    "Prompt",
    "check_options",
    "create_generator",
]
