"""Stage ``pack_instructions``: keep a random subset of each document's pairs within its tokens.

FineInstructions trains token-for-token against the corpus it came from: a document's pairs
may use at most as many tokens as the document has. Per document, the surviving pairs of
``fi_pairs`` are shuffled with a seed drawn from the stage's ``seed`` and the document's
``id`` (the same shuffle whatever the batching, worker or run), then taken in that order
while the running total of their rendered tokens (``Instruction: {instruction}\\n\\nAnswer:
{answer}``) stays within the document's token count plus the budget carried from earlier
documents; the first pair that does not fit ends the document's packing. What the document
leaves unused is carried to the next one, as in the paper, but only within a task (one input
file or row-group range): every task starts from zero, so shards stay independent and a
resumed run packs exactly as an uninterrupted one.

The document's token count is its ``token_count`` column (the ``tokens`` stage) when present
and not null, else counted here; pairs are always counted here, with ``tokenizer`` (default:
the ``tokens`` stage's default, so the two agree; give both the same file otherwise).

It writes ``fi_packed``, the packed pairs in packed order, each rendered as one training
text with its template id, slot, judge score and token count, and ``fi_packed_tokens``, their
total. The document's own ``text`` and every other column stay as they are: a pipeline that
trains on the pairs alone exports ``fi_packed`` (one example per entry); one that mixes both
keeps the documents too.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pyarrow as pa
from pydantic import Field

from gristmill.core import columns
from gristmill.core.columns import with_column
from gristmill.core.phase import TaskInfo
from gristmill.core.registry import register_stage
from gristmill.core.stage import Stage, StageParams
from gristmill.instructions.generation import PAIRS
from gristmill.stages.taggers.token_counting import token_counter
from gristmill.stages.taggers.tokens import load_tokenizer

PACKED = "fi_packed"
PACKED_TOKENS = "fi_packed_tokens"
TOKEN_COUNT = "token_count"
RENDER = "Instruction: {instruction}\n\nAnswer: {answer}"

PACKED_TYPE = pa.struct(
    [
        pa.field("template_id", pa.int64()),
        pa.field("slot", pa.int8()),
        pa.field("judge_score", pa.float32()),
        pa.field("text", pa.string()),
        pa.field("tokens", pa.int32()),
    ]
)


class PackParams(StageParams):
    tokenizer: str | None = Field(
        default=None,
        description="tokenizer.json (or its folder) that counts tokens; default: the MiniLM "
        "tokenizer, as the tokens stage",
    )
    seed: int = Field(default=0, description="with each document's id, seeds its shuffle")
    carry: bool = Field(
        default=True, description="carry unused budget to the next documents of the task"
    )


def render(instruction: str, answer: str) -> str:
    """One pair as the pre-training text FineInstructions trains on."""
    return RENDER.format(instruction=instruction, answer=answer)


def document_seed(seed: int, key: str) -> int:
    """A shuffle seed that depends only on the stage's seed and the document (not on Python's
    per-process string hashing, nor on the batch)."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


def pack(order: list[int], tokens: list[int], budget: int) -> list[int]:
    """The pairs taken, in ``order``, while their running token total stays within budget."""
    taken: list[int] = []
    used = 0
    for index in order:
        if used + tokens[index] > budget:
            break
        taken.append(index)
        used += tokens[index]
    return taken


@register_stage
class PackInstructions(Stage):
    """FineInstructions packing: per document, a seeded random subset of ``fi_pairs`` whose
    rendered tokens fit in the document's token count plus what earlier documents of the task
    left unused; adds ``fi_packed`` (the rendered pairs) and ``fi_packed_tokens``."""

    name = "pack_instructions"
    Params = PackParams  # type: ignore[assignment]
    params: PackParams
    requires = (PAIRS,)

    def __init__(self, params: Any = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._tokenizer: Any = None
        self._carry = 0

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (pa.field(PACKED, pa.list_(PACKED_TYPE)), pa.field(PACKED_TOKENS, pa.int64()))

    def setup(self) -> None:
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.params.tokenizer)

    def start_task(self, task: TaskInfo) -> None:
        """The carried budget is per task: every task (shard) starts from zero."""
        self._carry = 0

    def _document_tokens(self, batch: pa.Table) -> list[int]:
        texts = batch.column(columns.TEXT).to_pylist()
        given: list[Any] = [None] * batch.num_rows
        if TOKEN_COUNT in batch.column_names and not pa.types.is_null(
            batch.schema.field(TOKEN_COUNT).type
        ):
            given = batch.column(TOKEN_COUNT).to_pylist()
        rows = batch.column(PAIRS).to_pylist()
        # Without the carry, a document with no pair to pack needs no count.
        missing = [
            i for i, n in enumerate(given) if n is None and (self.params.carry or _valid(rows[i]))
        ]
        counted = token_counter(self._tokenizer).count([texts[i] for i in missing])
        for i, n in zip(missing, counted, strict=True):
            given[i] = n
        self.stats.count("documents_counted_here", len(missing))
        return [max(0, int(n or 0)) for n in given]

    def process(self, batch: pa.Table) -> pa.Table:
        self.setup()
        rows = batch.column(PAIRS).to_pylist() if batch.num_rows else []
        budgets = self._document_tokens(batch) if batch.num_rows else []
        ids = batch.column(columns.ID).to_pylist() if columns.ID in batch.column_names else []
        texts = batch.column(columns.TEXT).to_pylist()
        rendered = [
            [render(p["instruction"], p["answer"]) for p in _valid(pairs)] for pairs in rows
        ]
        flat = [t for doc in rendered for t in doc]
        counts = iter(token_counter(self._tokenizer).count(list(flat)))
        packed: list[list[dict[str, Any]]] = []
        totals: list[int] = []
        for row, pairs in enumerate(rows):
            valid = _valid(pairs)
            tokens = [next(counts) for _ in valid]
            key = ids[row] if row < len(ids) and ids[row] is not None else texts[row] or ""
            order = list(range(len(valid)))
            random.Random(document_seed(self.params.seed, str(key))).shuffle(order)
            budget = budgets[row] + (self._carry if self.params.carry else 0)
            taken = pack(order, tokens, budget)
            used = sum(tokens[i] for i in taken)
            self._carry = budget - used
            packed.append(
                [
                    {
                        "template_id": valid[i].get("template_id"),
                        "slot": valid[i].get("slot"),
                        "judge_score": valid[i].get("judge_score"),
                        "text": rendered[row][i],
                        "tokens": tokens[i],
                    }
                    for i in taken
                ]
            )
            totals.append(used)
            self.stats.count("pairs_in", len(valid))
            self.stats.count("pairs_packed", len(taken))
            self.stats.count("pairs_over_budget", len(valid) - len(taken))
            self.stats.count("document_tokens", budgets[row])
            self.stats.count("packed_tokens", used)
        out = with_column(batch, PACKED, pa.array(packed, pa.list_(PACKED_TYPE)))
        return with_column(out, PACKED_TOKENS, pa.array(totals, pa.int64()))


def _valid(pairs: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The pairs that can be rendered (a pair without both texts is not a training text)."""
    return [p for p in pairs or () if p and p.get("instruction") and p.get("answer")]
