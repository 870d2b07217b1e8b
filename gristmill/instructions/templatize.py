"""``templatize``: turn raw user queries into FineInstructions templates with a model.

The released templatizer (``fineinstructions/query_templatizer``, a Llama-3.2-1B chat model)
takes the bare query as the user message, with nothing around it, and answers with one JSON
object holding at least ``template`` and ``compatible_document_description``. This stage keeps
that contract with any ``Generator`` (vLLM, an OpenAI-compatible server, transformers): the
query goes through the tokenizer's chat template where there is one, every query of the batch
goes to one engine call, and the answer is parsed strictly (``json.loads``, never eval) and
checked with the bank's validator against its own query.

A query is never dropped: a row whose output is unusable gets null template columns and the
reason in ``fi_templatize_error``, counted in the stage's stats by kind, so a run over millions
of queries reports how many failed and why instead of crashing on the first bad generation.
Rows that succeeded can be written as a bank (``load_bank`` reads ``template`` and
``compatible_document_description`` columns) after renaming the two columns.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pyarrow as pa
from pydantic import Field

from gristmill.core.columns import TEXT, with_column
from gristmill.core.registry import register_stage
from gristmill.instructions.bank import count_variables, validate_description, validate_template
from gristmill.instructions.generation import GeneratingParams, GeneratingStage

TEMPLATE = "fi_template"
DESCRIPTION = "fi_document_description"
N_FI = "fi_n_fi"
ERROR = "fi_templatize_error"

#: A small model sometimes wraps its JSON in a Markdown fence; that much is forgiven.
_FENCE = re.compile(r"\A```(?:json)?\s*\n?(.*?)\n?```\Z", re.S)


class TemplatizeParams(GeneratingParams):
    """Parameters of ``templatize``."""

    query_column: str = Field(default=TEXT, description="the column holding the raw query")
    max_new_tokens: int = Field(
        default=512, gt=0, description="generation cap per query (a template and a paragraph)"
    )
    max_query_chars: int = Field(
        default=4000,
        gt=0,
        description="longer queries are not sent (counted as 'query too long'): the released "
        "templatizer was trained on single user turns",
    )


def parse_templatizer_output(text: str, query: str | None) -> tuple[str, str] | str:
    """``(template, description)`` from one generation, or the reason it is unusable.

    Strict on purpose: exactly one JSON object (optionally in a Markdown fence), both fields
    strings, the template valid for its query. Anything else is a counted failure.
    """
    body = text.strip()
    if not body:
        return "empty output"
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return "not JSON"
    if not isinstance(value, dict):
        return "not a JSON object"
    template = value.get("template")
    description = value.get("compatible_document_description")
    if not isinstance(template, str):
        return "no 'template' string"
    if not isinstance(description, str):
        return "no 'compatible_document_description' string"
    reason = validate_template(template, query) or validate_description(description)
    if reason is not None:
        return reason
    return template.strip(), " ".join(description.split())


def _kind(reason: str) -> str:
    """A reason without positions, so the stats count kinds, not characters."""
    return re.sub(r" at character \d+", "", reason)


@register_stage
class Templatize(GeneratingStage):
    """Make raw user queries generic with a templatizer model.

    Adds fi_template, fi_document_description, fi_n_fi, and fi_templatize_error
    (null when the row succeeded). The query is the whole user message, as the
    released templatizer expects; the answer must be one JSON object with
    `template` (balanced <fi>description</fi> variables, at least one, not the
    query unchanged) and `compatible_document_description`. Failed generations
    and malformed answers are counted by reason and never drop the row.
    """

    name = "templatize"
    Params = TemplatizeParams
    params: TemplatizeParams

    @property
    def requires(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.params.query_column,)

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (
            pa.field(TEMPLATE, pa.string()),
            pa.field(DESCRIPTION, pa.string()),
            pa.field(N_FI, pa.int32()),
            pa.field(ERROR, pa.string()),
        )

    def process(self, batch: pa.Table) -> pa.Table:
        queries: list[Any] = batch.column(self.params.query_column).to_pylist()
        templates: list[str | None] = [None] * len(queries)
        descriptions: list[str | None] = [None] * len(queries)
        errors: list[str | None] = [None] * len(queries)
        sent: list[int] = []
        for row, query in enumerate(queries):
            if not isinstance(query, str) or not query.strip():
                errors[row] = "empty query"
            elif len(query) > self.params.max_query_chars:
                errors[row] = "query too long"
            else:
                sent.append(row)
        done = self._complete([queries[row].strip() for row in sent])
        for row, completion in zip(sent, done, strict=True):
            if not completion.ok:
                errors[row] = "generation failed"
                continue
            parsed = parse_templatizer_output(completion.text, queries[row])
            if isinstance(parsed, str):
                errors[row] = _kind(parsed)
            else:
                templates[row], descriptions[row] = parsed
        ok = sum(1 for t in templates if t is not None)
        self.stats.count("templates", ok)
        for reason in errors:
            if reason is not None:
                self.stats.count(f"failed: {reason}")
        fields = self.produced_fields()
        columns = [
            pa.array(templates, pa.string()),
            pa.array(descriptions, pa.string()),
            pa.array([None if t is None else count_variables(t) for t in templates], pa.int32()),
            pa.array(errors, pa.string()),
        ]
        for field, values in zip(fields, columns, strict=True):
            batch = with_column(batch, field, values)
        return batch
