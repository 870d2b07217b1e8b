"""``judge``: scores read from judge-shaped outputs, and the stage on the tiny random Llama."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from gristmill.errors import ConfigError
from gristmill.instructions.generation import PAIRS_FIELD
from gristmill.instructions.judge import Judge, judge_prompt, parse_score

FLOW_SHAPED = (
    "<feedback>\nThe response answers the question directly, quoting the passage that "
    "explains why Alice was tired. It stays on topic and does not repeat itself, though "
    "the opening sentence adds little.\n</feedback>\n\n<score>\n4\n</score>"
)


@pytest.mark.parametrize(
    ("text", "score"),
    [
        (FLOW_SHAPED, 4),
        ("<feedback>Off topic.</feedback><score>1</score>", 1),
        ("<score> 5 </score>", 5),
        ("<SCORE>3</SCORE>", 3),
        ("<feedback>Mentions <score>2</score> as an example.</feedback><score>5</score>", 5),
        ("The answer is relevant.\nScore: 4", 4),
        ("Feedback: fine.\nscore = **3**", 3),
        ("5", 5),
        (" 2\n", 2),
        ("<score>4.0</score>", 4),
    ],
)
def test_scores_are_read_from_judge_outputs(text: str, score: int):
    assert parse_score(text) == score


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<feedback>The answer is good.</feedback>",  # no score given
        "<score>6</score>",  # off the scale
        "<score>0</score>",
        "<score>3.5</score>",
        "<score>four</score>",
        "I would rate this highly, maybe 4 or 5.",
        "<score>",
    ],
)
def test_unparseable_scores(text: str):
    assert parse_score(text) is None


def test_the_prompt_carries_the_pair_and_the_rubric():
    prompt = judge_prompt("Why was Alice {tired}?", "Because <she> had nothing to do.")
    assert "<user_input>\nWhy was Alice {tired}?\n</user_input>" in prompt
    assert "<output>\nBecause <she> had nothing to do.\n</output>" in prompt
    assert "Score 1:" in prompt and "Score 5:" in prompt and "<score>" in prompt


def test_threshold_is_checked():
    with pytest.raises(ConfigError, match="threshold"):
        Judge(generator={"model": "m"}, threshold=6)


def pairs_batch() -> pa.Table:
    pair = {
        "template_id": 3,
        "slot": 0,
        "instruction": "Why was Alice tired?",
        "answer": "Alice was beginning to get very tired of sitting by her sister on the bank.",
        "excerpt_ratio": 1.0,
        "judge_score": None,
    }
    broken = {**pair, "answer": None}
    return pa.table(
        {
            "id": ["a", "b", "c", "d"],
            "text": ["doc a", "doc b", "doc c", None],
            "fi_pairs": pa.array([[pair, pair], [], None, [broken, pair]], PAIRS_FIELD.type),
        }
    )


@pytest.mark.parametrize("keep_all", [False, True])
def test_garbage_judgements_remove_pairs_never_documents(tiny_model_dir: Path, keep_all: bool):
    stage = Judge(
        generator={"backend": "transformers", "model": str(tiny_model_dir)},
        max_new_tokens=12,
        keep_all=keep_all,
    )
    batch = pairs_batch()
    try:
        out = stage.process(batch)
    finally:
        stage.teardown()
    assert out.column("id").to_pylist() == ["a", "b", "c", "d"]
    assert out.schema.field("fi_pairs").type == PAIRS_FIELD.type
    counters = stage.stats.counters
    assert counters["pairs_in"] == 3 and counters["prompts"] == 3
    assert counters["invalid_pairs"] == 1  # the pair without an answer is never sent
    kept = [p for row in out.column("fi_pairs").to_pylist() for p in row]
    assert counters.get("pairs_out", 0) == len(kept)
    if keep_all:
        assert len(kept) == 3
    else:
        outcomes = ("unparseable", "generation_errors", "below_threshold", "pairs_out")
        assert sum(counters.get(k, 0) for k in outcomes) == 3
    for pair in kept:  # a pair kept without keep_all was scored at least the threshold
        assert keep_all or pair["judge_score"] >= 4
    json.dumps(stage.stats.to_dict())
