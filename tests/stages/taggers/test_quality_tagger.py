"""The quality scorer and its bundled model: held-out metrics, orientation, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import labelled
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from support.data import sample_table

from gristmill.classifiers.metrics import binary_metrics, roc_auc
from gristmill.errors import ConfigError
from gristmill.stages.taggers.quality import QUALITY_SCORE, QUALITY_SPANS, QualityScorer
from gristmill.stages.taggers.scoring import BUNDLED_MODELS

# Floors a little under what the bundled model measures (DCLM's human labels, the whole set:
# 0.731 by document, 0.725 by paragraph, 0.742 by sentence; HPLT on the slice in tests/data:
# see the printed figure), so a retrained model that is clearly worse fails.
HPLT_AUC_FLOOR = 0.60
DCLM_AUC_FLOOR = 0.70
#: The issue's target on DCLM's human labels, not reached yet (docs/quality.md says why).
DCLM_AUC_TARGET = 0.80


@pytest.fixture(scope="module")
def scorer() -> QualityScorer:
    stage = QualityScorer()
    stage.setup()
    return stage


def test_bundled_model_is_small_and_has_its_recipe_and_metrics() -> None:
    model = BUNDLED_MODELS / "quality_default.ftz"
    assert model.stat().st_size < 2 * 1024 * 1024
    assert (BUNDLED_MODELS / "quality_default.yaml").is_file()
    recorded = json.loads((BUNDLED_MODELS / "quality_default.metrics.json").read_text())
    held = recorded["held_out"]
    print(
        f"\nquality_default.ftz, train-classifier held-out split: precision "
        f"{held['precision']:.3f}, recall {held['recall']:.3f}, ROC AUC {held['roc_auc']:.3f} "
        f"({held['examples']} examples)"
    )
    assert held["roc_auc"] >= 0.75


def test_held_out_human_labels(scorer: QualityScorer, data_dir: Path) -> None:
    """Two sets no model here trained on: HPLT's 'unnatural' flags on rows outside the
    samples, and DCLM's human quality votes (used nowhere else)."""
    hplt = labelled.held_out(labelled.hplt_table(data_dir))
    hplt = hplt.filter(hplt["labelled"])
    natural = ~np.array(hplt["unnatural"].to_pylist())
    hplt_auc = roc_auc(natural, scorer.score(hplt["text"]))

    texts, good = dclm_rows(data_dir)
    dclm = binary_metrics(good, scorer.score(pa.array(texts)))
    print(
        f"\nquality held-out: HPLT natural vs unnatural ROC AUC {hplt_auc:.3f} "
        f"({natural.size} rows, {(~natural).sum()} unnatural); DCLM human labels: "
        f"{dclm.summary()}"
    )
    assert hplt_auc >= HPLT_AUC_FLOOR
    assert dclm.roc_auc >= DCLM_AUC_FLOOR


def dclm_rows(data_dir: Path) -> tuple[list[str], np.ndarray]:
    lines = (data_dir / "quality" / "dclm_human_quality_disagreement.jsonl").read_text()
    rows = [json.loads(line) for line in lines.splitlines() if line.strip()]
    return [row["text"] for row in rows], np.array([row["label"] == 1 for row in rows])


@pytest.mark.xfail(strict=True, reason="the bundled model reaches 0.73, not 0.80, on DCLM")
def test_dclm_target(scorer: QualityScorer, data_dir: Path) -> None:
    texts, good = dclm_rows(data_dir)
    assert roc_auc(good, scorer.score(pa.array(texts))) >= DCLM_AUC_TARGET


@pytest.mark.parametrize("unit", ["paragraph", "sentence"])
def test_units_score_dclm_and_cover_the_text(unit: str, data_dir: Path) -> None:
    """Unit scores: spans lie inside the text and in order, and the document score is their
    length-weighted mean; DCLM's human labels measured by unit."""
    texts, good = dclm_rows(data_dir)
    stage = QualityScorer(unit=unit)
    out = stage.process(pa.table({"text": texts}))
    scores = out[QUALITY_SCORE].to_numpy()
    auc = roc_auc(good, scores)
    print(f"\nquality by {unit} on DCLM's human labels: ROC AUC {auc:.3f}")
    assert auc >= DCLM_AUC_FLOOR
    for text, spans, score in zip(texts, out[QUALITY_SPANS].to_pylist(), scores, strict=True):
        assert spans, "every DCLM document has text"
        ends = [0]
        for span in spans:
            assert ends[-1] <= span["start"] < span["end"] <= len(text)
            assert text[span["start"] : span["end"]].strip() == text[span["start"] : span["end"]]
            ends.append(span["end"])
        weights = np.array([s["end"] - s["start"] for s in spans], dtype=np.float64)
        mean = np.average([s["score"] for s in spans], weights=weights)
        assert score == pytest.approx(mean, abs=1e-5)
    assert stage.stats.counters[f"{unit}s_scored"] == sum(
        len(s) for s in out[QUALITY_SPANS].to_pylist()
    )


def test_unit_mode_gives_empty_rows_zero_and_no_spans() -> None:
    out = QualityScorer(unit="paragraph").process(
        pa.table({"text": [None, "", " \n\n ", "A line.\n\nAnother line."]})
    )
    assert out[QUALITY_SCORE].to_pylist()[:3] == [0.0, 0.0, 0.0]
    assert out[QUALITY_SPANS].to_pylist()[:3] == [[], [], []]
    assert [(s["start"], s["end"]) for s in out[QUALITY_SPANS][3].as_py()] == [(0, 7), (9, 22)]


def test_curated_sources_rank_above_raw_crawl_in_the_samples(scorer: QualityScorer) -> None:
    """In-sample (these rows were in the training pools): a sanity check of orientation."""
    table = sample_table()
    out = scorer.process(table)
    assert out.schema.field(QUALITY_SCORE).type == pa.float32()
    curated = ("wikitext", "gutenberg", "uspto", "nih", "arxiv", "constitution")
    raw = ("web_snippets", "dclm_html", "wget", "cc_wet")
    rows = out.filter(pc.is_in(out["source"], pa.array(curated + raw)))
    is_curated = np.isin(np.array(rows["source"].to_pylist()), curated)
    auc = roc_auc(is_curated, rows[QUALITY_SCORE].to_numpy())
    print(f"\ncurated vs raw crawl in the samples (in-sample): ROC AUC {auc:.3f}")
    assert auc >= 0.8
    assert sum(scorer.stats.histograms[QUALITY_SCORE].values()) == table.num_rows


def test_bad_input_scores_zero_or_a_probability(scorer: QualityScorer) -> None:
    big = "Water boils at one hundred degrees Celsius at sea level.\n" * 180_000
    table = pa.table(
        {"id": list("abcde"), "text": [None, "", "\n \n", "\x00\x01\ufffd\u202e", big]}
    )
    scores = scorer.process(table)[QUALITY_SCORE].to_pylist()
    assert scores[:3] == [0.0, 0.0, 0.0]
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_model_path_and_label_are_checked_at_setup(tmp_path: Path) -> None:
    stage = QualityScorer(model_path=str(BUNDLED_MODELS / "toxicity_fasttext.ftz"))
    with pytest.raises(ConfigError, match="no label '__label__hq'"):
        stage.setup()
    other = QualityScorer(
        model_path=str(BUNDLED_MODELS / "toxicity_fasttext.ftz"), positive_label="non_toxic"
    )
    other.setup()
    with pytest.raises(ConfigError, match="no such fastText model"):
        QualityScorer(model_path=str(tmp_path / "nope.bin")).setup()
