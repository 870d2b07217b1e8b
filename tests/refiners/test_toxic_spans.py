"""toxic_spans: Dolma's span removal from the toxicity stage's sentence spans, on real text."""

from __future__ import annotations

import math
from pathlib import Path

import model_pools
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from gristmill.refiners.toxic_spans import CHARS_REMOVED, ToxicSpans, remove_spans, valid_spans
from gristmill.stages.taggers.toxicity import TOXICITY_SPANS, ToxicityScorer


@pytest.fixture(scope="module")
def sentences(data_dir: Path) -> tuple[list[str], list[str]]:
    """Held-out Davidson tweets as single sentences: (toxic, clean), 20 of each."""
    rows = model_pools.toxicity_categories(data_dir)
    rows = rows.filter(pc.equal(rows["source"], "davidson"))
    held = [model_pools.is_toxicity_held_out(i) for i in rows["id"].to_pylist()]
    rows = rows.filter(pa.array(held, pa.bool_()))

    def one_sentence(text: str) -> str:
        return " ".join(text.replace("!", " ").replace("?", " ").replace(".", " ").split()) + "."

    toxic = [
        one_sentence(t)
        for t, y in zip(rows["text"].to_pylist(), rows["toxic"].to_pylist(), strict=True)
        if y
    ]
    clean = [
        one_sentence(t)
        for t, y in zip(rows["text"].to_pylist(), rows["toxic"].to_pylist(), strict=True)
        if not y
    ]
    return toxic[:20], clean[:20]


def test_removes_the_toxic_sentences_of_real_documents(
    sentences: tuple[list[str], list[str]], data_dir: Path
) -> None:
    toxic, clean = sentences
    constitution = (data_dir / "sources" / "legal_us_constitution.txt").read_text()
    prose = " ".join(constitution.split()[:60]).rstrip(".") + "."
    documents = [f"{prose} {bad} {good}" for bad, good in zip(toxic, clean, strict=True)]
    tagged = ToxicityScorer(unit="sentence", span_threshold=0.4).process(
        pa.table({"id": [str(i) for i in range(len(documents))], "text": documents})
    )
    stage = ToxicSpans(threshold=0.4)
    result = stage.run_batch(tagged)
    out = result.table
    removed = out[CHARS_REMOVED].to_pylist()
    texts = out["text"].to_pylist()
    found = sum(bad not in text for bad, text in zip(toxic, texts, strict=True))
    kept = sum(good in text for good, text in zip(clean, texts, strict=True))
    print(
        f"\ntoxic_spans: {found} of {len(toxic)} held-out toxic tweets removed from documents, "
        f"{kept} of {len(clean)} clean ones kept, {sum(removed)} characters in all; "
        f"counters {stage.stats.counters}"
    )
    assert out.num_rows == len(documents)  # something is always left: the constitution
    assert found >= 0.8 * len(toxic)
    assert kept >= 0.5 * len(clean)
    for before, after, count in zip(documents, texts, removed, strict=True):
        assert len(before) - len(after) == count
        assert "  " not in after
    assert stage.stats.counters["chars_removed"] == sum(removed)
    # The legal prose survives in every document.
    assert all(text.startswith(prose[:200]) for text in texts)


def test_a_document_with_only_toxic_text_goes_to_the_rejects_as_it_came(
    sentences: tuple[list[str], list[str]],
) -> None:
    toxic, _ = sentences
    text = " ".join(toxic[:3])
    batch = pa.table(
        {
            "id": ["all-toxic"],
            "text": [text],
            TOXICITY_SPANS: pa.array(
                [[{"start": 0, "end": len(text), "score": 0.9}]],
                pa.list_(
                    pa.struct([("start", pa.int32()), ("end", pa.int32()), ("score", pa.float32())])
                ),
            ),
        }
    )
    result = ToxicSpans().run_batch(batch)
    assert result.table.num_rows == 0
    assert result.rejected is not None
    assert result.rejected["text"].to_pylist() == [text]
    assert result.reasons.to_pylist() == ["toxic_spans"]


def test_spans_that_do_not_fit_are_skipped_and_counted() -> None:
    text = "One. Two. Three."
    raw = [
        {"start": 5, "end": 9, "score": 0.9},  # "Two."
        {"start": 7, "end": 9, "score": 0.5},  # overlaps it
        {"start": -1, "end": 3, "score": 0.9},
        {"start": 10, "end": 99, "score": 0.9},
        {"start": 9, "end": 9, "score": 0.9},
        {"start": 0, "end": 4, "score": math.nan},
        {"start": 0, "end": 4, "score": 0.1},
        {"start": None, "end": 4, "score": 0.9},
        None,
    ]
    spans, invalid = valid_spans(raw, len(text), 0.4)
    assert spans == [(5, 9)]
    assert invalid == 5
    assert remove_spans(text, spans) == "One. Three."
    assert remove_spans(text, [(0, 4), (10, 16)]) == "Two. "
