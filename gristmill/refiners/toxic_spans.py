"""``toxic_spans``: delete the toxic sentences of a document and keep the rest (Dolma's way).

Dolma does not drop a document for one toxic sentence: its ``span_replacement`` mixer deletes
the sentence spans its Jigsaw taggers scored at least 0.4 and keeps the document. This stage
does the same from the ``toxicity_spans`` column that ``toxicity`` writes with ``unit:
sentence``, so the scoring and the cut stay separate (a new threshold needs no new scoring).

Spans are character offsets into the text as the tagger saw it; a span that does not fit the
text (negative, reversed, past the end: the column was edited, or came from elsewhere) is
skipped and counted, never trusted. Overlapping spans are merged. With a span removed, the
whitespace after it goes too, so no double blanks are left. As in Dolma, a document is dropped
only when nothing but whitespace would remain; it goes to the rejects as it came (reason
``toxic_spans``), so no document is lost, and ``mode: annotate`` keeps it and marks it.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from gristmill.core import columns
from gristmill.core.filter import Filter, FilterParams, Verdict
from gristmill.core.registry import register_stage
from gristmill.stages.taggers.toxicity import TOXICITY_SPANS

CHARS_REMOVED = "toxic_chars_removed"


class ToxicSpansParams(FilterParams):
    threshold: float = Field(
        0.4,
        ge=0.0,
        le=1.0,
        description="remove spans scoring at least this (Dolma: 0.4). The tagger records only "
        "spans at or above its span_threshold, so a lower value here removes nothing more",
    )
    spans_column: str = Field(
        TOXICITY_SPANS, description="list<struct<start, end, score>> column of sentence spans"
    )


def remove_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` without the given (start, end) spans (sorted, merged, each in range), each
    with the whitespace that follows it."""
    kept: list[str] = []
    position = 0
    for start, end in spans:
        if start < position:  # overlaps the previous span (or its trailing whitespace)
            start = position
        kept.append(text[position:start])
        while end < len(text) and text[end].isspace():
            end += 1
        position = max(position, end)
    kept.append(text[position:])
    return "".join(kept)


def valid_spans(
    raw: list[dict[str, object]] | None, length: int, threshold: float
) -> tuple[list[tuple[int, int]], int]:
    """The spans at or above ``threshold`` that fit a text of ``length`` code points, sorted
    and merged, and how many spans did not fit."""
    chosen: list[tuple[int, int]] = []
    invalid = 0
    for span in raw or []:
        if span is None:
            invalid += 1
            continue
        start, end, score = span.get("start"), span.get("end"), span.get("score")
        if not isinstance(start, int) or not isinstance(end, int):
            invalid += 1
            continue
        if not 0 <= start < end <= length:
            invalid += 1
            continue
        if isinstance(score, (int, float)) and score >= threshold:  # NaN, None: not removed
            chosen.append((start, end))
    chosen.sort()
    merged: list[tuple[int, int]] = []
    for start, end in chosen:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged, invalid


@register_stage
class ToxicSpans(Filter):
    """Removes the sentence spans of toxicity_spans scoring at least `threshold` from the text
    (Dolma's span removal) and adds toxic_chars_removed; drops a document only when no text
    would remain.

    Run `toxicity` with `unit: sentence` first.
    """

    name = "toxic_spans"
    Params = ToxicSpansParams
    params: ToxicSpansParams

    @property
    def requires(self) -> tuple[str, ...]:  # type: ignore[override]
        return (columns.TEXT, self.params.spans_column)

    def produced_fields(self) -> tuple[pa.Field, ...]:
        return (*super().produced_fields(), pa.field(CHARS_REMOVED, pa.int64()))

    def judge(self, batch: pa.Table) -> Verdict:
        texts = batch.column(columns.TEXT).to_pylist()
        all_spans = batch.column(self.params.spans_column).to_pylist()
        out: list[str | None] = []
        removed: list[int] = []
        keep: list[bool] = []
        invalid_total = edited = 0
        for text, raw in zip(texts, all_spans, strict=True):
            spans, invalid = valid_spans(raw, len(text or ""), self.params.threshold)
            invalid_total += invalid
            new = remove_spans(text, spans) if text and spans else text
            if text and spans and not new.strip():
                # Nothing would remain: the row goes to the rejects as it came.
                new = text
                keep.append(False)
            else:
                keep.append(True)
            out.append(new)
            removed.append(len(text or "") - len(new or ""))
            edited += removed[-1] > 0
        self.stats.count("chars_removed", sum(removed))
        self.stats.count("documents_edited", edited)
        self.stats.count("invalid_spans", invalid_total)
        field = batch.schema.field(columns.TEXT)
        batch = columns.with_column(batch, field, pa.array(out, field.type))
        batch = columns.with_column(
            batch, pa.field(CHARS_REMOVED, pa.int64()), pa.array(removed, pa.int64())
        )
        return Verdict(pa.array(keep, pa.bool_()), edited=batch)
