"""Stage ``judge``: score every instruction-answer pair 1-5 with a judge model, keep the good.

FineInstructions scores its pairs with Flow Judge (``flowaicom/Flow-Judge-v0.1``) on a
five-point rubric, from 1 (the answer is irrelevant to the instruction) to 5 (it answers it
fully, with nothing extraneous, vague or repeated), and keeps pairs scoring at least 4. The
prompt here follows Flow Judge's layout (the input, the output, the criteria and rubric, then
a request for feedback in ``<feedback>`` tags and the score in ``<score>`` tags); the
rubric's wording is ours, the paper gives only its ends.

The score is read from the last ``<score>N</score>``; failing that, from a last
``score: N`` (or ``Score = N``), or from an output that is only the digit. Anything else,
or a number outside 1-5, is a counted ``unparseable`` error, and its pair goes (it was not
shown to be good). ``keep_all`` keeps every pair with its score (null when unparseable) for
consumers who choose their own cut, as the released pairs dataset does.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
from pydantic import Field

from gristmill.core.columns import with_column
from gristmill.core.registry import register_stage
from gristmill.instructions.generation import (
    PAIRS,
    PAIRS_FIELD,
    GeneratingParams,
    GeneratingStage,
)

_SCORE_TAG = re.compile(r"<score>\s*(\d+(?:\.\d+)?)\s*</score>", re.I)
_SCORE_LINE = re.compile(r"\bscore\s*[:=]\s*\**\s*(\d+(?:\.\d+)?)", re.I)
_ONLY_NUMBER = re.compile(r"\A\s*(\d+(?:\.\d+)?)\s*\Z")

RUBRIC = """\
- Score 1: The answer is irrelevant to the instruction or does not address it at all.
- Score 2: The answer touches the instruction's topic but misses what was asked, or is \
mostly unrelated material.
- Score 3: The answer addresses the instruction in part, or buries the answer in \
extraneous, vague or repeated content.
- Score 4: The answer addresses the instruction well, with little extraneous, vague or \
repeated content.
- Score 5: The answer fully addresses the instruction, with no extraneous, vague or \
repeated content."""

PROMPT = """\
# GOAL
You are grading how well a response answers a user's instruction. Read the instruction and \
the response, then grade the response against the criteria and rubric below.

# INSTRUCTION
<user_input>
{instruction}
</user_input>

# RESPONSE
<output>
{answer}
</output>

# CRITERIA
<evaluation_criteria>
Does the response answer the instruction directly and completely, without content that is \
off-topic, vague or repeated?
</evaluation_criteria>

<scoring_rubric>
{rubric}
</scoring_rubric>

# WHAT TO WRITE
First explain your reasoning in a few sentences between <feedback> and </feedback>, then \
give one whole number from 1 to 5 between <score> and </score>."""


class JudgeParams(GeneratingParams):
    threshold: int = Field(default=4, ge=1, le=5, description="least score a pair keeps")
    keep_all: bool = Field(
        default=False, description="score every pair but remove none (unparseable: null score)"
    )
    max_new_tokens: int = Field(default=512, gt=0, description="feedback and score per pair")


def parse_score(text: str) -> int | None:
    """The 1-5 score of one judge output, or None when it gives none or an impossible one."""
    found = _SCORE_TAG.findall(text) or _SCORE_LINE.findall(text)
    if not found:
        only = _ONLY_NUMBER.match(text)
        found = [only.group(1)] if only else []
    if not found:
        return None
    value = float(found[-1])
    if not value.is_integer() or not 1 <= value <= 5:
        return None
    return int(value)


def judge_prompt(instruction: str, answer: str) -> str:
    return PROMPT.format(instruction=instruction, answer=answer, rubric=RUBRIC)


@register_stage
class Judge(GeneratingStage):
    """FineInstructions judging: a judge model scores each pair of ``fi_pairs`` 1-5 (Flow
    Judge's rubric); pairs below ``threshold`` or with an unparseable score are removed.
    Documents are never dropped."""

    name = "judge"
    Params = JudgeParams  # type: ignore[assignment]
    params: JudgeParams
    requires = (PAIRS,)

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (PAIRS_FIELD,)

    def process(self, batch: pa.Table) -> pa.Table:
        rows = batch.column(PAIRS).to_pylist() if batch.num_rows else []
        jobs: list[tuple[int, dict[str, Any]]] = []
        messages: list[str] = []
        for row, pairs in enumerate(rows):
            for pair in pairs or ():
                if not pair or not pair.get("instruction") or not pair.get("answer"):
                    self.stats.count("invalid_pairs")
                    continue
                jobs.append((row, pair))
                messages.append(judge_prompt(pair["instruction"], pair["answer"]))
        self.stats.count("pairs_in", len(jobs))
        done = self._complete(messages)
        kept: list[list[dict[str, Any]]] = [[] for _ in range(batch.num_rows)]
        for (row, pair), completion in zip(jobs, done, strict=True):
            score = parse_score(completion.text) if completion.ok else None
            if completion.ok and score is None:
                self.stats.count("unparseable")
            if score is not None:
                self.stats.count_values("score", [score])
            passed = score is not None and score >= self.params.threshold
            if score is not None and not passed:
                self.stats.count("below_threshold")
            if passed or self.params.keep_all:
                kept[row].append({**pair, "judge_score": None if score is None else float(score)})
                self.stats.count("pairs_out")
        return with_column(batch, PAIRS_FIELD, pa.array(kept, PAIRS_FIELD.type))
