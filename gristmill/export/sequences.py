"""One training sequence per document: ``[BOS] + tok(prefix) + tok(text) + [EOS]``.

Prefix and text are tokenised apart and concatenated (as MeCo does), so a document's tokens
are the same whether it carries a prefix (conditioning) or not (cooldown), and the prefix
ends exactly where the mask says. The mask is 0 on BOS and prefix (no loss there: training on
the metadata slightly hurts: Gao et al., 2025, §2) and 1 on the document and EOS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from gristmill.errors import ConfigError
from gristmill.stages.taggers.tokens import encode_texts

#: Usual names of a language model's BOS and EOS. BERT's ``[CLS]`` and ``[SEP]`` are not
#: among them: a tokenizer that has only those was not made for a language model, and an
#: export with it needs ``--bos-token``/``--eos-token`` said out loud.
BOS_CANDIDATES = ("<|begin_of_text|>", "<s>", "<bos>", "<|endoftext|>")
EOS_CANDIDATES = ("<|end_of_text|>", "</s>", "<eos>", "<|endoftext|>")


@dataclass
class Sequence:
    """A document's token ids and mask; ``prefix_len`` counts the prefix tokens, BOS excluded."""

    doc_id: str
    ids: np.ndarray
    mask: np.ndarray
    prefix_len: int


def _configured_token(tokenizer_file: Path | None, key: str) -> str | None:
    """The BOS/EOS a Hugging Face tokenizer_config.json beside the tokenizer names, if any."""
    if tokenizer_file is None:
        return None
    config = tokenizer_file.parent / "tokenizer_config.json"
    if not config.exists():
        return None
    try:
        value = json.loads(config.read_text(encoding="utf-8")).get(key)
    except ValueError:
        return None
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def special_token_id(
    tokenizer: Tokenizer,
    given: str | None,
    *,
    kind: str,
    tokenizer_file: Path | None,
    candidates: tuple[str, ...],
) -> int:
    """The id of the BOS or EOS token: the one given, the configured one, or a usual name."""
    configured = _configured_token(tokenizer_file, f"{kind}_token")
    names = [given] if given else [n for n in (configured, *candidates) if n]
    for name in names:
        token_id = tokenizer.token_to_id(name)
        if token_id is not None:
            return int(token_id)
    tried = ", ".join(repr(n) for n in names)
    raise ConfigError(
        f"the tokenizer has no {kind.upper()} token (tried {tried}); "
        f"pass --{kind}-token with a token of its vocabulary"
    )


def build_sequences(
    tokenizer: Tokenizer,
    doc_ids: list[str],
    texts: list[str | None],
    prefixes: list[str | None],
    *,
    bos_id: int,
    eos_id: int,
) -> list[Sequence]:
    """Sequences for a batch of documents, tokenised with two ``encode_batch`` calls."""
    text_ids = encode_texts(tokenizer, texts)
    prefix_ids = encode_texts(tokenizer, prefixes)
    sequences = []
    for doc_id, body, prefix in zip(doc_ids, text_ids, prefix_ids, strict=True):
        ids = np.asarray([bos_id, *prefix, *body, eos_id], dtype=np.uint32)
        mask = np.ones(len(ids), dtype=np.uint8)
        mask[: 1 + len(prefix)] = 0
        sequences.append(Sequence(doc_id, ids, mask, len(prefix)))
    return sequences
