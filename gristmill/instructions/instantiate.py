"""Stage ``instantiate``: fill each matched template from its document, with an excerpted answer.

For every entry of ``fi_matches`` (the ``template_match`` stage's column) the instantiator
model gets one user message, a JSON object with ``instruction_template`` and ``document``
(the released ``fineinstructions/template_instantiator``'s input contract), and answers with
a JSON object holding the instruction (the template with its ``<fi>`` variables filled) and
the answer, quoting the document through ``<excerpt>`` markers; or with ``null`` when the
template does not fit the document. Its output field names are not published; by default the
parser accepts ``instantiated_instruction`` or ``instruction`` for the instruction and
``answer`` for the answer (the released pairs dataset's names), and both lists are parameters.

Every pair is counted under exactly one outcome (``stats.json``): ``pairs_out`` (kept),
``null_outputs`` (the model declined), ``generation_errors`` (no output), ``malformed``
(not one JSON object with both fields as non-empty strings), ``unfilled_variables`` (``<fi>``
tags left in the instruction), ``excerpt_missing`` / ``excerpt_ambiguous`` /
``excerpt_malformed`` (a marker with no unique span, see ``excerpts``) and
``low_excerpt_ratio`` (answer less than ``min_excerpt_ratio`` document text). Documents are
never dropped here, only pairs: a document with none gets an empty ``fi_pairs`` list.

Long documents are cut to ``max_document_chars`` characters (at the last whitespace before the
limit) before they go in the prompt, and excerpts are resolved in that same cut: characters,
not tokens, so the cut is the same whatever the engine and tokenizer. A prompt that still
does not fit the model's context is a counted generation error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pydantic import Field

from gristmill.core import columns
from gristmill.core.columns import with_column
from gristmill.core.registry import register_stage
from gristmill.instructions.excerpts import expand_excerpts
from gristmill.instructions.generation import (
    MATCHES,
    PAIRS_FIELD,
    GeneratingParams,
    GeneratingStage,
    json_message,
)

_FENCE = re.compile(r"\A```(?:json)?\s*\n(.*?)\n?```\Z", re.S)
_FI_TAG = re.compile(r"</?fi>")


class InstantiateParams(GeneratingParams):
    min_excerpt_ratio: float = Field(
        default=0.80,
        ge=0.0,
        le=1.0,
        description="least share of the answer quoted from the document",
    )
    max_document_chars: int = Field(
        default=12_000, gt=0, description="documents are cut to this many characters first"
    )
    instruction_keys: tuple[str, ...] = Field(
        default=("instantiated_instruction", "instruction"),
        min_length=1,
        description="output fields read as the instruction, first present wins",
    )
    answer_keys: tuple[str, ...] = Field(
        default=("answer",), min_length=1, description="output fields read as the answer"
    )


@dataclass(frozen=True, slots=True)
class Parsed:
    """One generation read as a pair, or why it is not one (``outcome``)."""

    outcome: str
    instruction: str = ""
    answer: str = ""


def truncate_document(text: str, limit: int) -> str:
    """The document as the model sees it: at most ``limit`` characters, cut at whitespace."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = max(cut.rfind(" "), cut.rfind("\n"), cut.rfind("\t"))
    return cut[:space] if space > limit // 2 else cut


def parse_output(
    text: str,
    instruction_keys: Sequence[str] = ("instantiated_instruction", "instruction"),
    answer_keys: Sequence[str] = ("answer",),
) -> Parsed:
    """Read one instantiator output strictly as JSON (a Markdown code fence is allowed).

    ``null`` is the model declining the pair; anything but one object with a non-empty string
    instruction and answer is ``malformed``. Nothing is ever evaluated as code.
    """
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        value = json.loads(body)
    except ValueError:
        return Parsed("malformed")
    if value is None:
        return Parsed("null_outputs")
    if not isinstance(value, dict):
        return Parsed("malformed")
    instruction = next((value[k] for k in instruction_keys if k in value), None)
    answer = next((value[k] for k in answer_keys if k in value), None)
    if instruction is None and answer is None and all(v is None for v in value.values()):
        return Parsed("null_outputs")  # {"instruction": null, "answer": null}
    if not isinstance(instruction, str) or not isinstance(answer, str):
        return Parsed("malformed")
    if not instruction.strip() or not answer.strip():
        return Parsed("malformed")
    return Parsed("ok", instruction.strip(), answer)


@register_stage
class Instantiate(GeneratingStage):
    """FineInstructions instantiation: each matched template filled from its document,
    answered mostly with verbatim excerpts; adds ``fi_pairs`` (pairs only, never documents,
    are dropped: null outputs, malformed JSON, unresolved excerpts, low excerpt ratio)."""

    name = "instantiate"
    Params = InstantiateParams  # type: ignore[assignment]
    params: InstantiateParams
    requires = (columns.TEXT, MATCHES)

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (PAIRS_FIELD,)

    def process(self, batch: pa.Table) -> pa.Table:
        texts = batch.column(columns.TEXT).to_pylist()
        matches = batch.column(MATCHES).to_pylist() if batch.num_rows else []
        documents: list[str] = []
        jobs: list[tuple[int, dict[str, Any]]] = []  # (row, match)
        messages: list[str] = []
        for row, (text, found) in enumerate(zip(texts, matches, strict=True)):
            document = truncate_document(text or "", self.params.max_document_chars)
            documents.append(document)
            if not document.strip():
                continue
            for match in found or ():
                template = (match or {}).get("template")
                if not template:
                    self.stats.count("matches_without_template")
                    continue
                jobs.append((row, match))
                messages.append(json_message(instruction_template=template, document=document))
        self.stats.count("pairs_in", len(jobs))
        cut = sum(len(t or "") > len(d) for t, d in zip(texts, documents, strict=True))
        self.stats.count("truncated_documents", cut)
        done = self._complete(messages)
        pairs: list[list[dict[str, Any]]] = [[] for _ in range(batch.num_rows)]
        for (row, match), completion in zip(jobs, done, strict=True):
            if not completion.ok:
                continue  # counted as generation_errors
            pair, outcome = read_pair(completion.text, documents[row], match, self.params)
            self.stats.count(outcome)
            if pair is not None:
                pairs[row].append(pair)
        self.stats.count_values("pairs_per_document", (len(p) for p in pairs))
        return with_column(batch, PAIRS_FIELD, pa.array(pairs, PAIRS_FIELD.type))


def read_pair(
    output: str, document: str, match: dict[str, Any], params: InstantiateParams
) -> tuple[dict[str, Any] | None, str]:
    """One generation as a ``fi_pairs`` entry, or None; with the counter of its outcome.

    ``document`` is the document as the model saw it (cut); excerpts resolve in it.
    """
    parsed = parse_output(output, params.instruction_keys, params.answer_keys)
    if parsed.outcome != "ok":
        return None, parsed.outcome
    instruction = expand_excerpts(parsed.instruction, document)
    if not instruction.ok:
        return None, instruction.status.value
    if _FI_TAG.search(instruction.text):
        return None, "unfilled_variables"
    answer = expand_excerpts(parsed.answer, document)
    if not answer.ok:
        return None, answer.status.value
    if not answer.text or answer.ratio < params.min_excerpt_ratio:
        return None, "low_excerpt_ratio"
    pair = {
        "template_id": match.get("template_id"),
        "slot": match.get("slot"),
        "instruction": instruction.text,
        "answer": answer.text,
        "excerpt_ratio": answer.ratio,
        "judge_score": None,
    }
    return pair, "pairs_out"
