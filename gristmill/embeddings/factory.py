"""Build an encoder from its config; one loaded model per config per worker process."""

from __future__ import annotations

from functools import lru_cache

from gristmill.embeddings.base import Encoder, EncoderConfig
from gristmill.errors import ConfigError


def create_encoder(config: EncoderConfig) -> Encoder:
    """A freshly loaded encoder (see ``load_encoder`` for the per-process shared one)."""
    if config.backend == "minilm":
        from gristmill.embeddings.transformers import TransformersEncoder, minilm_path

        return TransformersEncoder(
            config.path or minilm_path(),
            device=config.device,
            batch_size=config.batch_size,
            max_tokens=config.max_tokens,
            threads=config.threads,
            name="minilm:all-MiniLM-L6-v2" if config.path is None else None,
        )
    if config.backend == "static":
        from gristmill.embeddings.static import StaticEncoder

        return StaticEncoder(batch_size=max(config.batch_size, 256), max_tokens=config.max_tokens)
    if config.path is None:
        raise ConfigError(f"encoder backend {config.backend!r} needs path: a local model folder")
    if config.backend == "transformers":
        from gristmill.embeddings.transformers import TransformersEncoder

        return TransformersEncoder(
            config.path,
            device=config.device,
            batch_size=config.batch_size,
            max_tokens=config.max_tokens,
            threads=config.threads,
        )
    from gristmill.embeddings.vllm import VllmEncoder

    return VllmEncoder(
        config.path,
        batch_size=config.batch_size,
        max_tokens=config.max_tokens,
        gpu_memory_utilization=config.gpu_memory_utilization,
        options=config.options,
    )


@lru_cache(maxsize=4)
def _cached(key: str) -> Encoder:
    return create_encoder(EncoderConfig.model_validate_json(key))


def load_encoder(config: EncoderConfig) -> Encoder:
    """The encoder for ``config``, loaded once per process and shared by every stage in it."""
    return _cached(config.model_dump_json())
