"""ProX prompts, rendered by hand so they match what the released refining models saw.

The refining checkpoints ship no chat template and recent ``transformers`` no longer falls
back to Llama-2's, so the layout is written out here. Every number below is
a compatibility constant, not a tuning knob: the models were trained and run with them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gristmill.refiners.prox.tokens import as_encoder, token_counts

SYSTEM_PROMPT = "You are a helpful, respectful and honest assistant."
CONTEXT_LENGTH = 2048
DOC_MAX_PROMPT_TOKENS = 2000
DOC_MAX_NEW_TOKENS = 2000
CHUNK_TOKEN_BUDGET = 1500
CHUNK_MAX_NEW_TOKENS = 256
LINE_NUMBER_DIGITS = 3


def llama2_prompt(user: str, system: str = SYSTEM_PROMPT) -> str:
    """Render one system+user turn the way Llama-2's official chat template does.

    The template strips the combined ``<<SYS>>`` + user block, which can only remove
    trailing whitespace of the user text (the block starts with ``<<SYS>>``); leading
    whitespace of a document survives, as upstream.
    """
    return f"{llama2_opening(system)}{user.rstrip()} [/INST]"


def llama2_opening(system: str = SYSTEM_PROMPT) -> str:
    """What precedes the user text in :func:`llama2_prompt`."""
    return f"<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n"


@dataclass(frozen=True, slots=True)
class DocPrompt:
    """A document-level prompt, ready for an engine that accepts token ids.

    ``token_ids`` is what upstream fed the model: the prompt encoded without an added BOS
    (the literal ``<s>`` supplies it) and right-truncated, so for long documents the model
    sees the head of the text and no closing ``[/INST]``. ``truncated`` records that, since
    the decision is then based on a prefix only.
    """

    prompt: str
    token_ids: tuple[int, ...]
    truncated: bool

    def max_new_tokens(self, context: int = CONTEXT_LENGTH, cap: int = DOC_MAX_NEW_TOKENS) -> int:
        """The generation budget upstream ends up with: what the context leaves, at most 2000."""
        return max(0, min(cap, context - len(self.token_ids)))


def build_doc_prompts(
    texts: Iterable[str], tokenizer: Any, max_tokens: int = DOC_MAX_PROMPT_TOKENS
) -> list[DocPrompt]:
    """Build document-level prompts for a batch, encoding them in one tokenizer call.

    For id parity with upstream pass a tokenizer with the doc level's prefix rule
    (:func:`gristmill.refiners.prox.llama.with_prefix_rule` with ``legacy=False``): upstream
    used the slow tokenizer, which renders ``[INST]`` after ``<s>`` without a ``▁``.
    """
    encoder = as_encoder(tokenizer)
    prompts = [llama2_prompt(text) for text in texts]
    encoded = encoder.encode_batch(prompts, add_special_tokens=False)
    return [
        DocPrompt(prompt=p, token_ids=tuple(ids[:max_tokens]), truncated=len(ids) > max_tokens)
        for p, ids in zip(prompts, encoded, strict=True)
    ]


def build_doc_prompt(
    text: str, tokenizer: Any, max_tokens: int = DOC_MAX_PROMPT_TOKENS
) -> DocPrompt:
    """Single-document convenience wrapper around :func:`build_doc_prompts`."""
    return build_doc_prompts([text], tokenizer, max_tokens)[0]


# The two numbers below are speed settings only: no id depends on them.

#: Ids tokenized past the truncation point when only a prefix of a document is tokenized.
#: Cutting the text changes only the tokens next to the cut (the pre-token it splits, a merge
#: or two), so the first ``max_tokens`` ids of a prefix that yields this many more are those
#: of the whole document. The tests cut real and adversarial text (long words, base64, CJK,
#: whitespace runs, special tokens) character by character: 8 ids always sufficed.
PREFIX_MARGIN_TOKENS = 256
#: First guess of characters per token (English web text, Llama-2's vocabulary), replaced by
#: what the documents themselves show once a batch has been built.
CHARS_PER_TOKEN = 4.0
#: Characters-per-token ratios of the last documents cut that the estimate is taken from.
RATIOS_KEPT = 256


class DocPromptBuilder:
    """Doc-level prompts, equal to :func:`build_doc_prompts`, tokenizing only what is kept.

    Upstream tokenizes whole documents and keeps the first ``max_tokens`` ids, so a
    70,000-character page costs a 70,000-character tokenization for 2000 ids. Here each
    document is tokenized up to a character prefix that yields at least
    ``max_tokens + margin`` ids, or whole when it is shorter than that prefix; the ids kept
    are the same (see :data:`PREFIX_MARGIN_TOKENS`), and so is ``truncated``.

    The prefix length is ``(max_tokens + margin) * chars_per_token``. A prefix that yields
    too few ids is grown from its own characters-per-token ratio and tokenized again, so a
    wrong estimate costs time, never ids. After each batch the estimate becomes the 90th
    percentile of the ratios of the last documents cut, so that most long documents of the
    next batch need a single pass without tokenizing much more than they keep.
    """

    def __init__(
        self,
        tokenizer: Any,
        max_tokens: int = DOC_MAX_PROMPT_TOKENS,
        margin: int = PREFIX_MARGIN_TOKENS,
        chars_per_token: float = CHARS_PER_TOKEN,
    ) -> None:
        if max_tokens <= 0 or margin <= 0 or chars_per_token <= 0:
            raise ValueError("max_tokens, margin and chars_per_token must be > 0")
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.needed = max_tokens + margin
        self.chars_per_token = chars_per_token
        self.tokenized_chars = 0  # of document text, all passes and batches together
        self._ratios: deque[float] = deque(maxlen=RATIOS_KEPT)
        self._encoder = as_encoder(tokenizer)

    def build(self, texts: Sequence[str]) -> list[DocPrompt]:
        """The prompts of ``texts``, in order: one batched tokenizer call per pass."""
        first = math.ceil(self.needed * self.chars_per_token)
        ends = [min(len(t), first) for t in texts]
        ids: list[list[int]] = [[] for _ in texts]
        ratios: list[float] = []
        todo = list(range(len(texts)))
        while todo:
            heads = [self._head(texts[i], ends[i]) for i in todo]
            self.tokenized_chars += sum(ends[i] for i in todo)
            retry = []
            encoded = self._encoder.encode_batch(heads, add_special_tokens=False)
            for i, row in zip(todo, encoded, strict=True):
                whole = ends[i] >= len(texts[i])
                if whole or len(row) >= self.needed:
                    ids[i] = row
                    if not whole:
                        ratios.append(ends[i] / len(row))
                else:
                    ends[i] = self._grown(ends[i], len(row), len(texts[i]))
                    retry.append(i)
            todo = retry
        self._learn(ratios)
        return [
            DocPrompt(
                prompt=llama2_prompt(text),
                token_ids=tuple(row[: self.max_tokens]),
                truncated=len(row) > self.max_tokens,
            )
            for text, row in zip(texts, ids, strict=True)
        ]

    @staticmethod
    def _head(text: str, end: int) -> str:
        """The prompt of ``text`` cut at ``end``: only the cut text follows the opening.

        Neither ``rstrip`` nor the closing ``[/INST]`` comes after a cut: in the whole
        prompt they come after the rest of the text, and counting their ids would eat
        into the margin.
        """
        if end >= len(text):
            return llama2_prompt(text)
        return llama2_opening() + text[:end]

    def _grown(self, end: int, got: int, length: int) -> int:
        """A longer prefix: the ratio seen so far, 10% and 64 characters to spare."""
        estimate = math.ceil(end * self.needed / max(got, 1) * 1.1) + 64
        return min(length, max(estimate, end + 64))

    def _learn(self, ratios: list[float]) -> None:
        """The 90th percentile of the last documents cut (one odd page moves it little)."""
        if ratios:
            self._ratios.extend(ratios)
            recent = sorted(self._ratios)
            self.chars_per_token = recent[(len(recent) - 1) * 9 // 10]


def number_line(index: int, line: str) -> str:
    """Prefix a line with its global, zero-padded index and no space: ``[007]text``.

    Indices are global across the document so that every chunk program addresses the same
    line numbers the executor uses; more digits appear once the index reaches 1000.
    """
    return f"[{index:0{LINE_NUMBER_DIGITS}d}]{line}"


def chunk_prompt(body: str) -> str:
    """Wrap numbered lines the way the chunk-level model expects them.

    Upstream let the engine tokenize this text with the fast tokenizer and add its own BOS,
    which yields two BOS tokens; :attr:`Chunk.token_ids` are those ids, so the engine's own
    tokenizer (and its ``transformers`` version) no longer decides them.
    """
    return llama2_prompt(f"[doc]\n{body}\n[/doc]")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk of a document: which lines it covers and the prompt that shows them.

    ``first_line``/``last_line`` are inclusive global line indices, like the
    ``remove_lines`` arguments, so a chunk doubles as the span a strict executor confines
    that chunk's program to. ``n_tokens`` is the sum of the per-line costs used for packing
    (one BOS per line included, as upstream). ``oversized`` marks a single line that alone
    exceeds the budget: upstream still sends it, and an engine whose context it overflows
    should treat its output as the empty program. ``token_ids`` is the prompt as upstream's
    engine saw it: encoded with the special tokens added (the engine's BOS, then the literal
    ``<s>``).
    """

    index: int
    first_line: int
    last_line: int
    n_tokens: int
    body: str
    prompt: str
    oversized: bool = False
    token_ids: tuple[int, ...] = ()

    @property
    def lines(self) -> range:
        return range(self.first_line, self.last_line + 1)


def pack_lines(
    costs: Sequence[int], budget: int = CHUNK_TOKEN_BUDGET
) -> list[tuple[int, int, int]]:
    """Greedy packing of line costs into ``(first, last, tokens)`` groups.

    The rule is upstream's ``trunc_text``: a line joins the current group while the total stays
    within the budget, otherwise it starts a new one; a line whose cost alone exceeds the budget
    becomes its own group and is not split. Kept separate from tokenization so the packing rule
    can be checked on plain numbers.
    """
    groups: list[tuple[int, int, int]] = []
    start, running = 0, 0
    for i, cost in enumerate(costs):
        if running + cost <= budget:
            running += cost
            continue
        if i > start:
            groups.append((start, i - 1, running))
        if cost > budget:
            groups.append((i, i, cost))
            start, running = i + 1, 0
        else:
            start, running = i, cost
    if len(costs) > start:
        groups.append((start, len(costs) - 1, running))
    return groups


def build_chunk_prompts_batch(
    texts: Sequence[str], tokenizer: Any, budget: int = CHUNK_TOKEN_BUDGET
) -> list[list[Chunk]]:
    """Chunk a batch of documents with one tokenizer call over all their lines.

    An empty document yields no chunks (its program is ``""``); upstream never sees one
    because the reader skips empty texts.
    """
    encoder = as_encoder(tokenizer)
    numbered_docs = [
        [number_line(i, line) for i, line in enumerate(text.split("\n"))] if text else []
        for text in texts
    ]
    flat = [line for doc in numbered_docs for line in doc]
    lengths = token_counts(encoder, flat, add_special_tokens=True)
    packed: list[list[tuple[int, int, int, str]]] = []
    offset = 0
    for numbered in numbered_docs:
        costs = lengths[offset : offset + len(numbered)]
        offset += len(numbered)
        packed.append(
            [(f, la, n, "\n".join(numbered[f : la + 1])) for f, la, n in pack_lines(costs, budget)]
        )
    prompts = [chunk_prompt(body) for groups in packed for *_, body in groups]
    encoded = zip(prompts, encoder.encode_batch(prompts, add_special_tokens=True), strict=True)
    out: list[list[Chunk]] = []
    for groups in packed:
        chunks = []
        for index, (first, last, tokens, body) in enumerate(groups):
            prompt, ids = next(encoded)
            chunks.append(
                Chunk(
                    index=index,
                    first_line=first,
                    last_line=last,
                    n_tokens=tokens,
                    body=body,
                    prompt=prompt,
                    oversized=tokens > budget,
                    token_ids=tuple(ids),
                )
            )
        out.append(chunks)
    return out


def build_chunk_prompts(text: str, tokenizer: Any, budget: int = CHUNK_TOKEN_BUDGET) -> list[Chunk]:
    """Chunk one document; see :func:`build_chunk_prompts_batch`."""
    return build_chunk_prompts_batch([text], tokenizer, budget)[0]
