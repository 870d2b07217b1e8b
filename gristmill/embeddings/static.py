"""A static token-embedding encoder: WordLlama's table, shipped inside the ``wordllama`` wheel.

Each token's vector is a row of a 32,000 x 256 table (distilled from large LLMs' input
embeddings), so a token's "state" does not depend on its neighbours: no attention, no matrix
multiply per layer, tens of times faster than MiniLM on a CPU. Gaussian pooling still works on
it (a window average of static vectors is a bag of the window's words); what it loses in
accuracy against MiniLM is measured on the check set (``docs/fineinstructions.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from gristmill.embeddings.base import CHARS_PER_TOKEN, Encoder, TokenStates, normalise
from gristmill.errors import ConfigError

#: The wordllama package's default model: its table and tokenizer are package data.
WEIGHTS = "weights/l2_supercat_256.safetensors"
TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
DEFAULT_MAX_TOKENS = 512
#: Characters a token read on the first try (``token_ids``): above the ~4.2 of English web
#: text, below the ``CHARS_PER_TOKEN`` bound that the second try reads.
FIRST_CUT_CHARS_PER_TOKEN = 5
#: Tokens wanted beyond the limit before the first cut is trusted: the last tokens before a
#: cut may be merged differently from the whole text's.
CUT_MARGIN_TOKENS = 16


@lru_cache(maxsize=1)
def wordllama_table() -> tuple[np.ndarray, Any]:
    """WordLlama's token table (float32) and its tokenizer, read from the installed package
    once per process. We read the two files ourselves: ``WordLlama.load`` looks for a cache
    and may try the network first. The topic tagger's static mode reads them through here
    too."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    try:
        root = resources.files("wordllama")
    except ModuleNotFoundError:
        raise ConfigError(
            "the static encoder's table comes from the package wordllama, which is not "
            "installed; install it or use backend: minilm"
        ) from None
    weights, config = root.joinpath(WEIGHTS), root.joinpath(TOKENIZER)
    if not weights.is_file() or not config.is_file():
        raise ConfigError(f"the wordllama package has no {WEIGHTS} / {TOKENIZER}: reinstall it")
    table = load_file(str(weights))["embedding.weight"].astype(np.float32)
    tokenizer = Tokenizer.from_file(str(config))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return table, tokenizer


class StaticEncoder(Encoder):
    """Token states looked up in a static table; special tokens (BOS) are not added."""

    def __init__(self, *, batch_size: int = 256, max_tokens: int | None = None) -> None:
        self.table, self.tokenizer = wordllama_table()
        self.dim = int(self.table.shape[1])
        self.max_tokens = max_tokens or DEFAULT_MAX_TOKENS
        self.batch_size = batch_size
        self.name = f"static:wordllama/{WEIGHTS}"

    def token_ids(self, texts: Sequence[str], max_tokens: int | None = None) -> list[np.ndarray]:
        """Each text's first ``max_tokens`` (default: the encoder's) token ids.

        Tokenising is most of this encoder's time, and it grows with the characters read, so
        each text is first cut to ``FIRST_CUT_CHARS_PER_TOKEN`` characters a token (English
        averages about four); only the texts whose cut gives too few tokens, with a margin that
        keeps the last kept tokens clear of the cut, are tokenised again from the wider
        ``CHARS_PER_TOKEN`` cut. A 10 MB document costs no more than a short one either way.
        """
        limit = max_tokens or self.max_tokens
        ids = self._encode(texts, limit * FIRST_CUT_CHARS_PER_TOKEN)
        short = [
            row
            for row, (text, found) in enumerate(zip(texts, ids, strict=True))
            if len(found) < limit + CUT_MARGIN_TOKENS
            and len(text or "") > limit * FIRST_CUT_CHARS_PER_TOKEN
        ]
        if short:
            wider = self._encode([texts[row] for row in short], limit * CHARS_PER_TOKEN)
            for row, found in zip(short, wider, strict=True):
                ids[row] = found
        return [np.asarray(found[:limit], dtype=np.int64) for found in ids]

    def _encode(self, texts: Sequence[str], cut: int) -> list[list[int]]:
        """Token ids of each text's first ``cut`` characters, as one batch (the tokenizer's own
        threads; no offsets, which nothing here reads)."""
        encodings = self.tokenizer.encode_batch_fast(
            [(text or "")[:cut] for text in texts], add_special_tokens=False
        )
        return [e.ids for e in encodings]

    def token_states(self, texts: Sequence[str]) -> TokenStates:
        ids = self.token_ids(texts)
        longest = max((len(i) for i in ids), default=0)
        states = np.zeros((len(ids), longest, self.dim), dtype=np.float32)
        mask = np.zeros((len(ids), longest), dtype=bool)
        for row, tokens in enumerate(ids):
            states[row, : len(tokens)] = self.table[tokens]
            mask[row, : len(tokens)] = True
        return TokenStates(states, mask)

    def mean_vectors(self, texts: Sequence[str], max_tokens: int | None = None) -> np.ndarray:
        """L2-normalised mean token vectors, ``[len(texts), dim]`` (zero rows for empty texts).

        The same vectors as ``encode`` without padding a batch to its longest text: a static
        table needs no batch, so this is the path for throughput (the topic head's input).
        """
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, ids in enumerate(self.token_ids(texts, max_tokens)):
            if ids.size:
                vectors[row] = self.table[ids].mean(axis=0)
        return normalise(vectors)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.mean_vectors(texts)
