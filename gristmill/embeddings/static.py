"""A static token-embedding encoder: WordLlama's table, shipped inside the ``wordllama`` wheel.

Each token's vector is a row of a 32,000 x 256 table (distilled from large LLMs' input
embeddings), so a token's "state" does not depend on its neighbours: no attention, no matrix
multiply per layer, tens of times faster than MiniLM on a CPU. Gaussian pooling still works on
it (a window average of static vectors is a bag of the window's words); what it loses in
accuracy against MiniLM is measured on the check set (``docs/fineinstructions.md``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any, ClassVar

import numpy as np

from gristmill.embeddings.base import CHARS_PER_TOKEN, Encoder, TokenStates, normalise
from gristmill.errors import ConfigError

#: The wordllama package's default model: its table and tokenizer are package data.
WEIGHTS = "weights/l2_supercat_256.safetensors"
#: ``Encoder.name`` of the static encoder (index fingerprints and topic heads record it).
NAME = f"static:wordllama/{WEIGHTS}"
TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
DEFAULT_MAX_TOKENS = 512
#: Characters a token read on the first try (``token_ids``): above the ~4.2 of English web
#: text, below the ``CHARS_PER_TOKEN`` bound that the second try reads.
FIRST_CUT_CHARS_PER_TOKEN = 5
#: Tokens wanted beyond the limit before the first cut is trusted: the last tokens before a
#: cut may be merged differently from the whole text's.
CUT_MARGIN_TOKENS = 16
#: Characters of text whose ids ``token_ids`` keeps for later calls, oldest dropped first:
#: a few of the default 2,048-document batches of web text. A longer text than
#: ``REMEMBERED_TEXT_CHARS`` is rare and not kept.
REMEMBERED_CHARS = 16_000_000
REMEMBERED_TEXT_CHARS = 100_000


class RecentTokenIds:
    """The token ids of the texts tokenised last, so that a stage wanting as many or fewer
    tokens of the same documents soon after (``topic`` after ``template_match``, both on the
    one WordLlama tokenizer) takes them instead of tokenising again.

    Keyed by the whole text: ids read from a cut are the whole text's first ids only up to
    the cut, so an entry records whether it holds every id of the text. Bounded by the
    characters of the texts it holds; safe to share between threads.
    """

    def __init__(self, max_chars: int = REMEMBERED_CHARS) -> None:
        self.max_chars = max_chars
        self._entries: OrderedDict[str, tuple[np.ndarray, bool]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def get(self, text: str, limit: int) -> np.ndarray | None:
        """The text's first ``limit`` ids, where an entry holds them: at least that many ids,
        or every id of the whole text."""
        with self._lock:
            entry = self._entries.get(text)
        if entry is None:
            return None
        ids, whole = entry
        if len(ids) >= limit:
            return ids[:limit]
        return ids if whole else None

    def put(self, text: str, ids: np.ndarray, whole: bool) -> None:
        """Keep a text's ids, replacing what is held for it (a call that read them again
        wanted more than that held)."""
        if len(text) > REMEMBERED_TEXT_CHARS:
            return
        with self._lock:
            if self._entries.pop(text, None) is None:
                self._chars += len(text)
            self._entries[text] = (ids, whole)
            while self._chars > self.max_chars:
                dropped, _ = self._entries.popitem(last=False)
                self._chars -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._chars = 0


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

    #: Ids of the texts tokenised last, shared by every instance of a process: they all read
    #: the one table and tokenizer of ``wordllama_table``.
    recent: ClassVar[RecentTokenIds] = RecentTokenIds()

    def __init__(self, *, batch_size: int = 256, max_tokens: int | None = None) -> None:
        self.table, self.tokenizer = wordllama_table()
        self.dim = int(self.table.shape[1])
        self.max_tokens = max_tokens or DEFAULT_MAX_TOKENS
        self.batch_size = batch_size
        self.name = NAME

    def token_ids(self, texts: Sequence[str], max_tokens: int | None = None) -> list[np.ndarray]:
        """Each text's first ``max_tokens`` (default: the encoder's) token ids.

        Tokenising is most of this encoder's time, and it grows with the characters read, so
        each text is first cut to ``FIRST_CUT_CHARS_PER_TOKEN`` characters a token (English
        averages about four); only the texts whose cut gives too few tokens, with a margin that
        keeps the last kept tokens clear of the cut, are tokenised again from the wider
        ``CHARS_PER_TOKEN`` cut. A 10 MB document costs no more than a short one either way.
        Texts tokenised shortly before by any instance are not tokenised again
        (``RecentTokenIds``).
        """
        limit = max_tokens or self.max_tokens
        found = [
            self.recent.get(text, limit) if text else np.empty(0, dtype=np.int64) for text in texts
        ]
        todo = [row for row, ids in enumerate(found) if ids is None]
        if todo:
            read = self._read([texts[row] for row in todo], limit)
            for row, (ids, whole) in zip(todo, read, strict=True):
                found[row] = ids
                self.recent.put(texts[row], ids, whole)
        return found  # type: ignore[return-value]

    def _encode(self, texts: Sequence[str], cut: int) -> list[list[int]]:
        """Token ids of each text's first ``cut`` characters, as one batch (the tokenizer's own
        threads; no offsets, which nothing here reads)."""
        encodings = self.tokenizer.encode_batch_fast(
            [(text or "")[:cut] for text in texts], add_special_tokens=False
        )
        return [e.ids for e in encodings]

    def _read(self, texts: Sequence[str], limit: int) -> list[tuple[np.ndarray, bool]]:
        """First ``limit`` ids of each (non-empty) text, and whether they are all of the whole
        text's."""
        first_cut = limit * FIRST_CUT_CHARS_PER_TOKEN
        ids = self._encode(texts, first_cut)
        cuts = [first_cut] * len(texts)
        short = [
            row
            for row, (text, found) in enumerate(zip(texts, ids, strict=True))
            if len(found) < limit + CUT_MARGIN_TOKENS and len(text) > first_cut
        ]
        if short:
            wider = self._encode([texts[row] for row in short], limit * CHARS_PER_TOKEN)
            for row, found in zip(short, wider, strict=True):
                ids[row] = found
                cuts[row] = limit * CHARS_PER_TOKEN
        return [
            (
                np.asarray(found[:limit], dtype=np.int64),
                len(text) <= cut and len(found) <= limit,
            )
            for text, found, cut in zip(texts, ids, cuts, strict=True)
        ]

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
