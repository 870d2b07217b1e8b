"""``templatize`` end to end through the transformers backend on a tiny model the test builds.

The model is the session's tiny Llama taught three real queries (``support.templatizer_model``):
one answer is a valid template, one has a broken tag, one copies its query; every other query
gets the random model's garbage. The stage must keep every row, fill the template columns for
the valid answer only, and count each failure by its reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from support.templatizer_model import (
    TAUGHT,
    check_templatized,
    teach_templatizer,
    templatizer_queries,
)

from gristmill.core.registry import get_stage_class
from gristmill.instructions.templatize import (
    ERROR,
    TEMPLATE,
    Templatize,
    parse_templatizer_output,
)

GOOD = json.dumps(
    {
        "template": "what effects does <fi>a medical condition</fi> have?",
        "compatible_document_description": "A health article about a condition.",
    }
)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty output"),
        ("Sure! Here is the template: what effects", "not JSON"),
        ('["what effects does <fi>x</fi> have?"]', "not a JSON object"),
        ('{"compatible_document_description": "a"}', "no 'template' string"),
        ('{"template": "what <fi>x</fi>"}', "no 'compatible_document_description' string"),
        ('{"template": "what <fi>x", "compatible_document_description": "a"}', "never closed"),
        ('{"template": "what is x", "compatible_document_description": "a"}', "no <fi>"),
        ('{"template": "what <fi>x</fi>", "compatible_document_description": " "}', "empty"),
        (GOOD + " trailing words", "not JSON"),
        ("__import__('os').system('true')", "not JSON"),
    ],
)
def test_malformed_answers_are_reasons_not_exceptions(text: str, reason: str) -> None:
    parsed = parse_templatizer_output(text, "what effects does stress have?")
    assert isinstance(parsed, str) and reason in parsed


def test_a_valid_answer_parses_also_inside_a_markdown_fence() -> None:
    expected = (
        "what effects does <fi>a medical condition</fi> have?",
        "A health article about a condition.",
    )
    assert parse_templatizer_output(GOOD, "what effects does stress have?") == expected
    fenced = f"```json\n{GOOD}\n```"
    assert parse_templatizer_output(fenced, "what effects does stress have?") == expected
    copied = parse_templatizer_output(GOOD, "What effects does <fi>a medical condition</fi> have?")
    assert isinstance(copied, str) and "identical" in copied


@pytest.fixture(scope="module")
def templatizer_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return teach_templatizer(tiny_model_dir, tmp_path_factory.mktemp("templatizer"))


def test_templatize_through_transformers(templatizer_dir: Path, data_dir: Path) -> None:
    assert get_stage_class("templatize") is Templatize
    stage = Templatize(
        generator={"backend": "transformers", "model": str(templatizer_dir)},
        max_new_tokens=160,
    )
    sent = templatizer_queries(data_dir)
    try:
        out = stage.process(pa.table({"text": sent}))
    finally:
        stage.teardown()
    check_templatized(out, sent, stage)
    assert stage.stats.counters["generation_errors"] == 0


def test_templatize_reads_the_query_column_it_is_told(templatizer_dir: Path) -> None:
    stage = Templatize(
        generator={"backend": "transformers", "model": str(templatizer_dir)},
        query_column="query",
        max_new_tokens=160,
        max_query_chars=40,
    )
    assert stage.requires == ("query",)
    table = pa.table({"query": [TAUGHT[0][0], "x" * 41]})
    try:
        out = stage.process(table)
    finally:
        stage.teardown()
    assert out.column(TEMPLATE)[0].as_py() is not None
    assert out.column(ERROR).to_pylist() == [None, "query too long"]
