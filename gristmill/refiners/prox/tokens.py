"""A minimal tokenizer interface for ProX prompt building.

Prompt building needs token *counts* and, at document level, token ids. Depending on one
tokenizer library would tie the refiner to it, so any object with an ``encode`` method is
accepted and adapted once: a ``tokenizers.Tokenizer`` (whose ``encode`` returns an
``Encoding``), a Hugging Face ``transformers`` tokenizer (whose ``encode`` returns ids), or
anything that already satisfies :class:`TokenEncoder`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class TokenEncoder(Protocol):
    """What prompt building needs from a tokenizer.

    ``add_special_tokens`` matters: upstream ProX counts the BOS that ``encode`` adds in the
    per-line chunk budget, but encodes the document prompt with the literal ``<s>`` and no
    extra BOS.
    """

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]: ...

    def encode_batch(
        self, texts: Sequence[str], add_special_tokens: bool = True
    ) -> list[list[int]]: ...


def _ids(encoded: Any) -> list[int]:
    """Accept both plain id sequences and ``tokenizers.Encoding``-like objects."""
    ids = getattr(encoded, "ids", encoded)
    return list(ids)


class _TokenizersEncoder:
    """Adapter for ``tokenizers.Tokenizer``: uses its parallel Rust batch encoder."""

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=add_special_tokens).ids)

    def encode_batch(
        self, texts: Sequence[str], add_special_tokens: bool = True
    ) -> list[list[int]]:
        if not texts:
            return []
        # The fast variant skips computing character offsets, which prompts never need.
        encode = getattr(self._tok, "encode_batch_fast", self._tok.encode_batch)
        encodings = encode(list(texts), add_special_tokens=add_special_tokens)
        return [e.ids for e in encodings]

    def count_batch(self, texts: Sequence[str], add_special_tokens: bool = True) -> list[int]:
        """Token counts, without building a list of ids per text (chunk packing needs no ids)."""
        if not texts:
            return []
        encode = getattr(self._tok, "encode_batch_fast", self._tok.encode_batch)
        return [len(e) for e in encode(list(texts), add_special_tokens=add_special_tokens)]


class _HFEncoder:
    """Adapter for ``transformers`` tokenizers, whose batch API is ``__call__``.

    A fast tokenizer's batches go straight to its Rust backend, which ``__call__`` would use
    anyway, without building a ``BatchEncoding`` around the ids.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self._backend = _TokenizersEncoder(backend) if backend is not None else None

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return _ids(self._tok.encode(text, add_special_tokens=add_special_tokens))

    def encode_batch(
        self, texts: Sequence[str], add_special_tokens: bool = True
    ) -> list[list[int]]:
        if not texts:
            return []
        if self._backend is not None:
            return self._backend.encode_batch(texts, add_special_tokens=add_special_tokens)
        out = self._tok(list(texts), add_special_tokens=add_special_tokens)
        return [list(ids) for ids in out["input_ids"]]

    def count_batch(self, texts: Sequence[str], add_special_tokens: bool = True) -> list[int]:
        if self._backend is not None:
            return self._backend.count_batch(texts, add_special_tokens=add_special_tokens)
        return [len(ids) for ids in self.encode_batch(texts, add_special_tokens)]


class _GenericEncoder:
    """Fallback for any object with ``encode(text, add_special_tokens=...)``."""

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return _ids(self._tok.encode(text, add_special_tokens=add_special_tokens))

    def encode_batch(
        self, texts: Sequence[str], add_special_tokens: bool = True
    ) -> list[list[int]]:
        return [self.encode(t, add_special_tokens=add_special_tokens) for t in texts]


def token_counts(
    encoder: TokenEncoder, texts: Sequence[str], add_special_tokens: bool = True
) -> list[int]:
    """How many tokens each text encodes to; cheaper than ids where the adapter can tell."""
    count = getattr(encoder, "count_batch", None)
    if callable(count):
        return list(count(texts, add_special_tokens=add_special_tokens))
    return [len(ids) for ids in encoder.encode_batch(texts, add_special_tokens=add_special_tokens)]


def as_encoder(tokenizer: Any) -> TokenEncoder:
    """Wrap ``tokenizer`` once so the prompt builders can treat every library alike.

    Raises ``TypeError`` for objects without ``encode``: a wrong argument should fail at
    set-up, not half-way through a shard.
    """
    if isinstance(tokenizer, (_TokenizersEncoder, _HFEncoder, _GenericEncoder)):
        return tokenizer
    try:
        from tokenizers import Tokenizer
    except ImportError:  # pragma: no cover - tokenizers is a dependency of the test suite
        Tokenizer = None  # type: ignore[assignment,misc]  # noqa: N806
    if Tokenizer is not None and isinstance(tokenizer, Tokenizer):
        return _TokenizersEncoder(tokenizer)
    if callable(tokenizer) and hasattr(tokenizer, "convert_tokens_to_ids"):
        return _HFEncoder(tokenizer)
    if isinstance(tokenizer, TokenEncoder):
        return tokenizer
    if callable(getattr(tokenizer, "encode", None)):
        return _GenericEncoder(tokenizer)
    raise TypeError(f"expected a tokenizer with an encode() method, got {type(tokenizer).__name__}")
