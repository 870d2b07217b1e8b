"""The language filter on tagged sample documents: languages, threshold, drop reasons."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from support.data import sample_table

from gristmill.errors import PipelineValidationError
from gristmill.runs.pipeline import Pipeline
from gristmill.stages.filters.language import (
    LOW_SCORE,
    NO_LANGUAGE,
    WRONG_LANGUAGE,
    LanguageFilter,
)
from gristmill.stages.taggers.language import LANGUAGE, LANGUAGE_SCORE, LanguageTagger


@pytest.fixture(scope="module")
def tagged() -> pa.Table:
    table = sample_table()
    table = table.filter(pc.is_in(table["source"], pa.array(["hplt", "c4", "luxun"])))
    table = pa.concat_tables(
        [
            table,
            pa.table({"id": ["empty"], "text": [""]}).cast(table.select(["id", "text"]).schema),
        ],
        promote_options="default",
    )
    return LanguageTagger().process(table)


def test_keeps_wanted_languages_above_threshold_and_says_why_others_go(tagged: pa.Table) -> None:
    stage = LanguageFilter(languages=["en", "zh"], threshold=0.8)
    result = stage.run_batch(tagged)
    kept = result.table
    assert set(kept[LANGUAGE].to_pylist()) <= {"en", "zh"}
    assert min(kept[LANGUAGE_SCORE].to_pylist()) >= 0.8
    assert result.rejected is not None and result.reasons is not None
    reasons = Counter(result.reasons.to_pylist())
    print(f"\ndrop reasons: {dict(reasons)}")
    assert set(reasons) == {WRONG_LANGUAGE, LOW_SCORE, NO_LANGUAGE}
    assert reasons[NO_LANGUAGE] == 1
    for row, reason in zip(result.rejected.to_pylist(), result.reasons.to_pylist(), strict=True):
        if reason == WRONG_LANGUAGE:
            assert row[LANGUAGE] not in ("en", "zh")
        elif reason == LOW_SCORE:
            assert row[LANGUAGE] in ("en", "zh") and row[LANGUAGE_SCORE] < 0.8
    assert stage.stats.dropped == reasons
    assert kept.num_rows + result.rejected.num_rows == tagged.num_rows


def test_no_languages_means_any_language(tagged: pa.Table) -> None:
    result = LanguageFilter(threshold=0.0).run_batch(tagged)
    assert result.table.num_rows == tagged.num_rows - 1
    assert result.reasons is not None and result.reasons.to_pylist() == [NO_LANGUAGE]


def test_annotate_mode_marks_and_keeps_everything(tagged: pa.Table) -> None:
    stage = LanguageFilter(languages=["en"], mode="annotate")
    out = stage.process(tagged)
    assert out.num_rows == tagged.num_rows
    expected = [
        lang == "en" and score >= 0.65
        for lang, score in zip(
            out[LANGUAGE].to_pylist(), out[LANGUAGE_SCORE].to_pylist(), strict=True
        )
    ]
    assert out["keep_language_filter"].to_pylist() == expected


def test_needs_the_tagger_first() -> None:
    with pytest.raises(PipelineValidationError, match="language"):
        Pipeline([LanguageFilter()]).validate(sample_table().schema)


@pytest.mark.parametrize("languages", [[], ["en"]], ids=["any", "listed"])
def test_a_language_column_of_type_null_is_no_language(languages: list[str]) -> None:
    # Found by tests/stages/test_every_stage.py: a column of type null (a Parquet file with no
    # language at all) made pc.is_in fail ("null vs string") when languages were listed.
    batch = pa.table(
        {"id": ["a", "b"], "text": ["x", "y"], LANGUAGE: pa.nulls(2), LANGUAGE_SCORE: pa.nulls(2)}
    )
    verdict = LanguageFilter(languages=languages).judge(batch)
    assert verdict.keep.to_pylist() == [False, False]
    assert verdict.reasons is not None and verdict.reasons.to_pylist() == [NO_LANGUAGE] * 2
