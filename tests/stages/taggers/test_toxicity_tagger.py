"""The toxicity scorer on real comments and tweets: document and sentence units, fastText
models with their labels read from the file, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gristmill.errors import ConfigError
from gristmill.stages.taggers.scoring import BUNDLED_MODELS
from gristmill.stages.taggers.sentences import sentence_spans
from gristmill.stages.taggers.toxicity import (
    SPAN_TYPE,
    TOXICITY_SCORE,
    TOXICITY_SPANS,
    ToxicityScorer,
)

SAMPLES = Path(__file__).resolve().parents[3] / "data_samples"


@pytest.fixture(scope="module")
def comments() -> pa.Table:
    return pq.read_table(SAMPLES / "toxic-mixed-0000.parquet")


def test_document_scores_are_probabilities(comments: pa.Table) -> None:
    stage = ToxicityScorer()
    out = stage.process(comments)
    scores = out[TOXICITY_SCORE].to_numpy()
    assert out.schema.field(TOXICITY_SCORE).type == pa.float32()
    assert TOXICITY_SPANS not in out.column_names
    assert np.all((scores >= 0) & (scores <= 1))
    # Davidson's sample is mostly offensive tweets, Jigsaw's mostly civil comments.
    sources = np.array(out["source"].to_pylist())
    assert scores[sources == "davidson"].mean() > scores[sources == "jigsaw"].mean() + 0.3


def test_sentence_mode_spans_point_at_the_toxic_sentences(comments: pa.Table) -> None:
    stage = ToxicityScorer(unit="sentence", span_threshold=0.5)
    # Every fourth row: both sources, and few enough to rescore sentence by sentence below.
    comments = comments.take(list(range(0, comments.num_rows, 4)))
    out = stage.process(comments)
    assert out.schema.field(TOXICITY_SPANS).type == SPAN_TYPE
    texts = out["text"].to_pylist()
    scores = out[TOXICITY_SCORE].to_pylist()
    spans = out[TOXICITY_SPANS].to_pylist()
    with_spans = 0
    for text, score, doc_spans in zip(texts, scores, spans, strict=True):
        sentences = [text[a:b] for a, b in sentence_spans(text)]
        best = max(stage.score_texts(sentences)) if sentences else 0.0
        assert score == pytest.approx(best, abs=1e-6)  # the document is its worst sentence
        for span in doc_spans:
            assert span["score"] >= 0.5
            piece = text[span["start"] : span["end"]]
            assert piece and piece == piece.strip()
            assert stage.score_texts([piece])[0] == pytest.approx(span["score"], abs=1e-6)
        with_spans += bool(doc_spans)
    assert with_spans > 10
    assert stage.stats.counters["sentences_scored"] >= comments.num_rows


def test_fasttext_model_label_is_read_from_the_model(comments: pa.Table) -> None:
    stage = ToxicityScorer(model="fasttext")
    out = stage.process(comments)
    assert np.all(np.isfinite(out[TOXICITY_SCORE].to_numpy()))
    inverted = ToxicityScorer(model="fasttext", label="non_toxic").process(comments)
    np.testing.assert_allclose(
        out[TOXICITY_SCORE].to_numpy() + inverted[TOXICITY_SCORE].to_numpy(), 1.0, atol=1e-4
    )
    with pytest.raises(ConfigError, match="which label means toxic"):
        ToxicityScorer(
            model="fasttext", model_path=str(BUNDLED_MODELS / "quality_default.ftz")
        ).setup()


def test_bad_input_has_defined_scores() -> None:
    # 10 MB in 10,000 long sentences.
    big = ("thanks for the edit " * 50 + "it reads much better now. ") * 10_000
    assert len(big) > 10_000_000
    table = pa.table({"id": list("abcde"), "text": [None, "", " \n ", "\x00\x01\ufffd\x7f", big]})
    for unit in ("document", "sentence"):
        out = ToxicityScorer(unit=unit).process(table)
        scores = out[TOXICITY_SCORE].to_pylist()
        assert scores[:3] == [0.0, 0.0, 0.0], unit
        assert all(0.0 <= s <= 1.0 for s in scores), unit
        if unit == "sentence":
            assert out[TOXICITY_SPANS].to_pylist()[:3] == [[], [], []]


def test_sentence_spans() -> None:
    text = "  First one. Second?  Third!\n\nFourth line\r\nno stop 。下一句。 "
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == [
        "First one.",
        "Second?",
        "Third!",
        "Fourth line",
        "no stop 。",
        "下一句。",
    ]
    assert sentence_spans("") == [] and sentence_spans(" \n ") == []
