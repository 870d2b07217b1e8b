"""Batches that once crashed a heuristic filter, found by ``tests/stages/test_every_stage.py``;
each must now get datatrove's verdict."""

from __future__ import annotations

import pyarrow as pa
import pytest
from datatrove.pipeline.filters import GopherRepetitionFilter

from gristmill.adapters.datatrove_in_gristmill import DatatroveStep
from gristmill.stages.filters.heuristics.gopher_repetition import GopherRepetition

#: No row with a non-empty line: ``np.bincount`` of no pieces is int64, and adding a float64
#: statistic to it in place raised ``UFuncTypeError`` (``["", "x"]`` always worked).
NO_NONEMPTY_LINE = {
    "empty_text": [""],
    "null_text": [None],
    "only_newline": ["\n"],
    "empty_and_newline": ["", "\n"],
    "blank_lines": ["\n\n\n", "\n"],
    "empty_batch": [],
}


@pytest.mark.parametrize("texts", NO_NONEMPTY_LINE.values(), ids=NO_NONEMPTY_LINE.keys())
def test_gopher_repetition_judges_a_batch_without_one_nonempty_line(texts: list[str | None]):
    rows = pa.table(
        {
            "id": pa.array([f"row-{i}" for i in range(len(texts))], pa.string()),
            "text": pa.array(texts, pa.string()),
        }
    )
    stage = GopherRepetition()
    verdict = stage.judge(rows)
    oracle = DatatroveStep(GopherRepetitionFilter()).judge(rows)
    assert verdict.keep.to_pylist() == oracle.keep.to_pylist() == [False] * len(texts)
    reasons = verdict.reasons.to_pylist()  # type: ignore[union-attr]
    expected = oracle.reasons.to_pylist()  # type: ignore[union-attr]
    assert [f"GopherRepetitionFilter:{r}" for r in reasons] == expected
    assert stage.run_batch(rows).table.num_rows == 0
