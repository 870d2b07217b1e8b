"""The language tagger on real multilingual text, held-out HPLT labels and bad input."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import labelled
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from support.data import sample_table

from gristmill.core.config import StageEntry, build_stage
from gristmill.runs.pipeline import Pipeline
from gristmill.stages.filters.language import LanguageFilter
from gristmill.stages.taggers.language import LANGUAGE, LANGUAGE_SCORE, LanguageTagger

#: Measured 0.959 on the held-out HPLT rows in tests/data (0.967 on every held-out row).
ACCURACY_FLOOR = 0.93


@pytest.fixture(scope="module")
def tagger() -> LanguageTagger:
    stage = LanguageTagger()
    stage.setup()
    return stage


def test_accuracy_on_held_out_hplt_rows(tagger: LanguageTagger, data_dir: Path) -> None:
    """HPLT rows a person marked 'language correct' and that are not in data_samples/."""
    rows = labelled.held_out(labelled.hplt_table(data_dir))
    rows = rows.filter(pc.equal(rows["language_correct"], 1))
    predicted, _scores = tagger.identify(rows["text"])
    correct = np.array(predicted.to_pylist(), dtype=object) == np.array(
        rows["lid_language"].to_pylist(), dtype=object
    )
    languages = np.array(rows["hplt_language"].to_pylist())
    accuracy = float(correct.mean())
    print(f"\nlanguage ID accuracy on {rows.num_rows} held-out HPLT rows: {accuracy:.4f}")
    for language in sorted(set(languages)):
        mask = languages == language
        print(f"  {language}: {correct[mask].mean():.3f} ({mask.sum()} rows)")
    assert accuracy >= ACCURACY_FLOOR


def test_tags_the_samples(tagger: LanguageTagger) -> None:
    table = sample_table()
    out = tagger.process(table)
    assert out.schema.field(LANGUAGE).type == pa.string()
    assert out.schema.field(LANGUAGE_SCORE).type == pa.float32()
    assert out.num_rows == table.num_rows
    by_source = {
        source: Counter(out.filter(pc.equal(out["source"], source))[LANGUAGE].to_pylist())
        for source in ("c4", "luxun", "shakespeare")
    }
    assert by_source["c4"].most_common(1)[0][0] == "en"
    assert by_source["luxun"].most_common(1)[0][0] == "zh"
    assert by_source["shakespeare"].most_common(1)[0][0] == "en"
    assert tagger.stats.histograms[LANGUAGE]["en"] > 1000
    scores = out[LANGUAGE_SCORE].to_numpy()
    assert np.all((scores >= 0) & (scores <= 1))


def test_bad_input_has_defined_results(tagger: LanguageTagger) -> None:
    big = "The committee met again on Tuesday to discuss the budget. " * 175_000
    assert len(big) > 10_000_000
    table = pa.table(
        {
            "id": ["null", "empty", "blank", "garbage", "big"],
            "text": [None, "", " \n\t ", "\x00\x01\x02\x7f\ufffd\u200b", big],
        }
    )
    out = tagger.process(table)
    assert out[LANGUAGE].to_pylist()[:3] == [None, None, None]
    assert out[LANGUAGE_SCORE].to_pylist()[:3] == [0.0, 0.0, 0.0]
    assert out[LANGUAGE].to_pylist()[4] == "en"
    assert all(0.0 <= s <= 1.0 for s in out[LANGUAGE_SCORE].to_pylist())


def test_runs_from_yaml_names_before_its_filter() -> None:
    tag = build_stage(StageEntry("language", {}))
    keep = build_stage(StageEntry("language_filter", {"languages": ["en"], "threshold": 0.65}))
    assert isinstance(keep, LanguageFilter)
    pipeline = Pipeline([tag, keep])
    schema = pipeline.validate(sample_table().schema)
    assert {LANGUAGE, LANGUAGE_SCORE} <= set(schema.names)
    table = sample_table().slice(0, 400)
    pipeline.setup()
    out, rejected = pipeline.apply(table)
    assert set(out[LANGUAGE].to_pylist()) == {"en"}
    assert min(out[LANGUAGE_SCORE].to_pylist()) >= 0.65
    assert out.num_rows + sum(r.table.num_rows for r in rejected) == table.num_rows
