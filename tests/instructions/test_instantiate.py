"""``instantiate``: the output parser and pair checks on model-shaped outputs, and the stage end
to end through the transformers backend on the tiny random Llama (garbage out, nothing lost)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from support.fineinstructions_rows import MATCH_TYPE, bank_matches, real_documents

from gristmill.errors import ConfigError
from gristmill.instructions.generation import PAIRS_FIELD, chat_prompts, json_message
from gristmill.instructions.instantiate import (
    Instantiate,
    InstantiateParams,
    parse_output,
    read_pair,
    truncate_document,
)

#: Every outcome a pair is counted under; they add up to ``pairs_in``.
OUTCOMES = (
    "pairs_out",
    "null_outputs",
    "malformed",
    "generation_errors",
    "unfilled_variables",
    "excerpt_missing",
    "excerpt_ambiguous",
    "excerpt_malformed",
    "low_excerpt_ratio",
)

TEMPLATE = "Why did <fi>a character</fi> feel <fi>a feeling</fi> at the start of <fi>a story</fi>?"
MATCH = {"template_id": 7, "template": TEMPLATE, "score": 0.9, "slot": 2, "n_fi": 3}


@pytest.fixture(scope="module")
def chapter(data_dir: Path) -> str:
    book = (data_dir / "sources" / "books_gutenberg_11_alice_in_wonderland.txt").read_text(
        encoding="utf-8"
    )
    start = book.index("CHAPTER I. Down the Rabbit-Hole")
    return book[start : start + 3000]


def params(**overrides) -> InstantiateParams:
    return InstantiateParams(generator={"model": "unused"}, **overrides)


def output(instruction: str, answer: str, key: str = "instantiated_instruction") -> str:
    """What the instantiator writes: one JSON object."""
    return json.dumps({key: instruction, "answer": answer})


# -- the parser on model-shaped strings ------------------------------------------------------


def test_a_well_formed_output_becomes_a_pair(chapter: str):
    text = output(
        "Why did Alice feel tired at the start of Alice's Adventures in Wonderland?",
        "Because she had nothing to do: <excerpt>Alice was beginning to<...>nothing to do:"
        "</excerpt> <excerpt>once or twice she had peeped into the<...>pictures or\n"
        "conversation?'</excerpt>",
    )
    pair, outcome = read_pair(text, chapter, MATCH, params())
    assert outcome == "pairs_out" and pair is not None
    assert pair["template_id"] == 7 and pair["slot"] == 2 and pair["judge_score"] is None
    assert pair["instruction"].startswith("Why did Alice feel tired")
    assert pair["answer"].startswith("Because she had nothing to do: Alice was beginning")
    assert "<excerpt>" not in pair["answer"] and pair["answer"].endswith("conversation?'")
    assert 0.8 <= pair["excerpt_ratio"] < 1.0
    # The pair fits the column's type.
    (stored,) = pa.array([[pair]], PAIRS_FIELD.type).to_pylist()[0]  # fits the column
    assert stored["answer"] == pair["answer"]
    assert stored["excerpt_ratio"] == pytest.approx(pair["excerpt_ratio"])


def test_fenced_json_and_the_instruction_key(chapter: str):
    body = output("Why was Alice tired?", "<excerpt>sitting by her sister</excerpt>", "instruction")
    pair, outcome = read_pair(f"```json\n{body}\n```", chapter, MATCH, params())
    assert outcome == "pairs_out" and pair["answer"] == "sitting by her sister"
    assert pair["excerpt_ratio"] == 1.0


@pytest.mark.parametrize("text", ["null", " null\n", "```json\nnull\n```", '{"answer": null}'])
def test_null_means_the_template_does_not_fit(text: str):
    assert parse_output(text).outcome == "null_outputs"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Sure! Here is the JSON:",
        '{"instantiated_instruction": "Why?", "answer": "Because."',  # cut by max_tokens
        '{"instantiated_instruction": "Why?", "answer": "x"} trailing words',
        '["Why?", "Because."]',
        '"Why?"',
        '{"instantiated_instruction": "Why?"}',
        '{"instantiated_instruction": "Why?", "answer": 42}',
        '{"instantiated_instruction": "  ", "answer": "Because."}',
        "{'instantiated_instruction': 'Why?', 'answer': 'x'}",  # a Python dict, not JSON
        "__import__('os').system('true')",
    ],
)
def test_anything_else_is_malformed(text: str):
    assert parse_output(text).outcome == "malformed"


@pytest.mark.parametrize(
    ("instruction", "answer", "expected"),
    [
        (
            "Why did <fi>a character</fi> feel tired?",
            "<excerpt>sitting by her sister</excerpt>",
            "unfilled_variables",
        ),
        ("Why was Alice tired?", "<excerpt>the Cheshire Cat</excerpt>", "excerpt_missing"),
        ("Why was Alice tired?", "<excerpt>Alice<...>Rabbit</excerpt>", "excerpt_ambiguous"),
        ("Why was Alice tired?", "<excerpt>sitting by her sister", "excerpt_malformed"),
        (
            "Why was Alice tired?",
            "She was bored because there was nothing interesting to do "
            "on the river bank that afternoon: <excerpt>sitting by her sister</excerpt>",
            "low_excerpt_ratio",
        ),
        ("Why was Alice tired?", "She was bored.", "low_excerpt_ratio"),
    ],
)
def test_pairs_that_are_rejected_and_why(chapter: str, instruction: str, answer: str, expected):
    pair, outcome = read_pair(output(instruction, answer), chapter, MATCH, params())
    assert pair is None and outcome == expected


def test_the_excerpt_ratio_floor_is_a_parameter(chapter: str):
    text = output("Why was Alice tired?", "Mostly: <excerpt>sitting by her sister</excerpt>")
    assert read_pair(text, chapter, MATCH, params())[1] == "low_excerpt_ratio"
    pair, outcome = read_pair(text, chapter, MATCH, params(min_excerpt_ratio=0.5))
    assert outcome == "pairs_out" and pair["excerpt_ratio"] == pytest.approx(21 / 29)


def test_truncation_cuts_at_whitespace_and_excerpts_resolve_in_the_cut(chapter: str):
    cut = truncate_document(chapter, 200)
    assert len(cut) <= 200 and chapter.startswith(cut) and chapter[len(cut)].isspace()
    assert truncate_document(chapter, 10**6) == chapter
    late = output("Why?", "<excerpt>a White Rabbit with pink eyes</excerpt>")
    assert read_pair(late, chapter, MATCH, params())[1] == "pairs_out"
    assert read_pair(late, cut, MATCH, params())[1] == "excerpt_missing"


def test_parameters_are_checked():
    with pytest.raises(ConfigError, match="min_excerpt_ratio"):
        Instantiate(generator={"model": "m"}, min_excerpt_ratio=1.5)
    with pytest.raises(ConfigError, match="generator"):
        Instantiate()
    with pytest.raises(ConfigError, match="nonsense"):
        Instantiate(generator={"backend": "vllm", "model": "m", "options": {"nonsense": 1}})


# -- prompts ---------------------------------------------------------------------------------


def test_the_user_message_is_the_released_json_contract():
    message = json_message(instruction_template=TEMPLATE, document="Ünïcode «text»\n")
    assert json.loads(message) == {"instruction_template": TEMPLATE, "document": "Ünïcode «text»\n"}
    assert "Ünïcode" in message  # not escaped: fewer tokens


@pytest.fixture(scope="module")
def chat_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama with a chat template in its tokenizer config, as instruct models have."""
    directory = tmp_path_factory.mktemp("tiny_chat") / "model"
    shutil.copytree(tiny_model_dir, directory)
    config_file = directory / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["chat_template"] = (
        "{% for m in messages %}<s>[INST] {{ m['content'] }} [/INST]{% endfor %}"
    )
    config_file.write_text(json.dumps(config))
    return directory


def test_chat_prompts_are_token_ids_with_one_bos(chat_model_dir: Path, tiny_model_dir: Path):
    from transformers import AutoTokenizer

    chat = AutoTokenizer.from_pretrained(chat_model_dir)
    (ids,) = chat_prompts(chat, ['{"a": 1}'])
    assert isinstance(ids, list) and ids[0] == chat.bos_token_id and ids[1] != chat.bos_token_id
    assert chat.decode(ids) == '<s>[INST] {"a": 1} [/INST]'
    plain = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert chat_prompts(plain, ["text"]) == ["text"]  # no template: the engine's own BOS
    assert chat_prompts(None, ["text"]) == ["text"]


# -- the stage on the tiny random model ------------------------------------------------------


def tiny(model: Path, **overrides) -> Instantiate:
    return Instantiate(
        generator={"backend": "transformers", "model": str(model), "options": {"batch_size": 8}},
        max_new_tokens=16,
        max_document_chars=800,
        **overrides,
    )


def check_counts(stage: Instantiate, matches: int) -> dict[str, float]:
    counters = stage.stats.counters
    assert counters["pairs_in"] == matches
    assert sum(counters.get(k, 0) for k in OUTCOMES) == matches, counters
    json.dumps(stage.stats.to_dict())
    return counters


@pytest.mark.parametrize("model", ["tiny_model_dir", "chat_model_dir"])
def test_garbage_generations_are_counted_and_documents_all_come_out(
    request: pytest.FixtureRequest, samples_dir: Path, model: str
):
    documents = real_documents(samples_dir, 4)
    batch = documents.append_column("fi_matches", bank_matches(documents, 2))
    # A document with no text, one with no matches and one whose matches are null.
    odd = pa.table(
        {
            "id": ["empty", "none", "null"],
            "text": ["", documents.column("text")[0].as_py(), "Some text."],
            "source": ["x", "x", "x"],
            "fi_matches": pa.array([[dict(MATCH)], [], None], MATCH_TYPE),
        }
    )
    batch = pa.concat_tables([batch, odd.cast(batch.schema)])
    stage = tiny(request.getfixturevalue(model))
    stage.setup()
    try:
        out = stage.process(batch)
    finally:
        stage.teardown()
    assert out.column("id").to_pylist() == batch.column("id").to_pylist()
    assert out.column("text").equals(batch.column("text"))
    assert out.schema.field("fi_pairs").type == PAIRS_FIELD.type
    pairs = out.column("fi_pairs").to_pylist()
    assert all(isinstance(p, list) for p in pairs)  # never null
    assert pairs[-3:] == [[], [], []]
    counters = check_counts(stage, 8)  # 4 documents x 2 templates; the odd rows send none
    assert counters["prompts"] == 8
    for row in pairs:  # whatever a random model got through is a well-formed pair
        for pair in row:
            assert pair["instruction"] and pair["answer"] and "<fi>" not in pair["instruction"]
            assert pair["excerpt_ratio"] >= 0.8 and pair["judge_score"] is None
