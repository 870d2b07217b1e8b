"""Token counts per text, the same as the tokenizer's, without tokenizing where it can.

A count needs none of what ``tokenizers`` builds per token (ids, strings, offsets, character
alignments), and that bookkeeping is most of its cost: with the default MiniLM tokenizer it was
the slowest stage of the default pipeline. For uncased WordPiece tokenizers (BERT's and
MiniLM's) the compiled counter in ``gristmill/native/wordpiece.c`` counts ASCII text by hand;
the chunks it cannot (those holding non-ASCII code points) go to the real tokenizer, each
distinct chunk once per process. Every other tokenizer, and any text that spells out one of
the tokenizer's added tokens, is counted by ``tokenizers`` itself. The counts are equal either
way; the tests check it on every sample document and on the corners of the normaliser.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

from tokenizers import Tokenizer

from gristmill.native.wordpiece import Vocab

#: Distinct non-ASCII chunks remembered per tokenizer before the memory starts over, and the
#: longest one worth remembering (a word with a curly quote or an accent recurs; a paragraph of
#: Chinese, which has no spaces to split it, does not): at most some tens of MB per process.
MAX_REMEMBERED_CHUNKS = 100_000
MAX_REMEMBERED_CHUNK_CHARS = 64


def tokenizer_counts(tokenizer: Tokenizer, texts: list[str]) -> list[int]:
    """Token counts from the tokenizer itself (no special tokens)."""
    encodings = tokenizer.encode_batch_fast(texts, add_special_tokens=False)
    return [len(encoding.ids) for encoding in encodings]


class TokenCounter:
    """Counts tokens as ``tokenizer`` would, without special tokens; a null text counts 0."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._vocab, self._added_tokens = _ascii_wordpiece(tokenizer)
        self._chunk_counts: dict[str, int] = {}

    @property
    def counts_ascii_natively(self) -> bool:
        """Whether ASCII text is counted by the compiled counter rather than by ``tokenizers``."""
        return self._vocab is not None

    def count(self, texts: list[str | None]) -> list[int]:
        if self._vocab is None:
            return self._tokenizer_counts(texts)
        spelled = self._added_tokens
        routed = [i for i, text in enumerate(texts) if text and spelled and spelled.search(text)]
        native = list(texts)
        for i in routed:
            native[i] = None
        counts, foreign = self._vocab.count(native)
        for i, n in zip(routed, self._tokenizer_counts([texts[i] for i in routed]), strict=True):
            counts[i] = n
        if foreign:
            chunks = [texts[i][start:end] for i, start, end in foreign]  # type: ignore[index]
            for (i, _, _), n in zip(foreign, self._chunk_token_counts(chunks), strict=True):
                counts[i] += n
        return counts

    def _tokenizer_counts(self, texts: list[str | None]) -> list[int]:
        present = [text if text is not None else "" for text in texts]
        counts = tokenizer_counts(self._tokenizer, present)
        return [n if text is not None else 0 for n, text in zip(counts, texts, strict=True)]

    def _chunk_token_counts(self, chunks: list[str]) -> list[int]:
        """Counts of non-ASCII chunks, each distinct one tokenised once per process. Lookups
        use ``get`` alone, so a thread clearing the memory under another changes no count."""
        known = self._chunk_counts
        found: dict[str, int] = {}
        unseen: list[str] = []
        for chunk in set(chunks):
            n = known.get(chunk)
            if n is None:
                unseen.append(chunk)
            else:
                found[chunk] = n
        fresh = dict(zip(unseen, tokenizer_counts(self._tokenizer, unseen), strict=True))
        found.update(fresh)
        worth = {c: n for c, n in fresh.items() if len(c) <= MAX_REMEMBERED_CHUNK_CHARS}
        if len(known) + len(worth) > MAX_REMEMBERED_CHUNKS:
            known.clear()
        if len(worth) <= MAX_REMEMBERED_CHUNKS:
            known.update(worth)
        return [found[chunk] for chunk in chunks]


@lru_cache(maxsize=8)
def token_counter(tokenizer: Tokenizer) -> TokenCounter:
    """One counter per tokenizer object, so what it remembers lasts the whole process."""
    return TokenCounter(tokenizer)


def _ascii_wordpiece(tokenizer: Tokenizer) -> tuple[Vocab | None, re.Pattern[str] | None]:
    """The compiled vocabulary where the tokenizer is an uncased BERT-style WordPiece, and a
    pattern that finds its added tokens spelled out in a text; (None, None) otherwise."""
    spec = json.loads(tokenizer.to_str())
    normalizer = spec.get("normalizer") or {}
    model = spec.get("model") or {}
    pre_tokenizer = spec.get("pre_tokenizer") or {}
    added = spec.get("added_tokens") or []
    eligible = (
        normalizer.get("type") == "BertNormalizer"
        and normalizer.get("lowercase") is True
        and normalizer.get("clean_text") is True
        and pre_tokenizer.get("type") == "BertPreTokenizer"
        and model.get("type") == "WordPiece"
        and spec.get("truncation") is None
        # a normalised added token with a space or a non-ASCII character could match across
        # the chunks the counter splits text into
        and not any(
            token.get("normalized")
            and not (token["content"].isascii() and token["content"].isalnum())
            for token in added
        )
    )
    if not eligible:
        return None, None
    vocab: dict[str, int] = model["vocab"]
    prefix: str = model.get("continuing_subword_prefix") or "##"
    compiled = Vocab(
        list(vocab),
        [entry[len(prefix) :] for entry in vocab if entry.startswith(prefix)],
        int(model.get("max_input_chars_per_word") or 100),
    )
    contents = sorted({re.escape(token["content"]) for token in added if token["content"]})
    spelled = re.compile("|".join(contents), re.IGNORECASE) if contents else None
    return compiled, spelled
