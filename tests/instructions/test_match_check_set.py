"""The labelled check set: real documents, each with a fitting and an unfitting template.

Per shipped encoder, prints how often the matcher's score (best cosine over the document's
Gaussian-pooled vectors) ranks the fitting template's description above the unfitting one, and
above the fitting template of another document from the same source (the hard case); enforces
a floor on both, and checks that the encoder's default threshold separates fitting from
unfitting pairs it was not calibrated on (odd items; calibration used the even ones).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.embeddings import EncoderConfig, create_encoder
from gristmill.instructions.calibrate import evaluate, load_check_set
from gristmill.instructions.match import DEFAULT_THRESHOLDS

#: Written for gristmill (not copied data): each row names a document of tests/data by file and
#: row, and gives a fitting and an unfitting FineInstructions template with its description.
CHECK_SET = Path(__file__).with_name("match_check.jsonl")

#: Floors, a little under the measured rates (docs/fineinstructions.md, "Matching").
FLOORS = {"minilm": (0.95, 0.9), "static": (0.95, 0.9)}


@pytest.mark.parametrize("backend", ["minilm", "static"])
def test_the_fitting_template_ranks_first(backend: str, data_dir: Path) -> None:
    items = load_check_set(CHECK_SET, data_dir)
    assert len(items) >= 40
    report = evaluate(create_encoder(EncoderConfig(backend=backend)), items)
    print(
        f"\n{backend}: fitting ranked first {report.ranked_first:.3f} "
        f"(hard, same-source template {report.ranked_first_hard:.3f}) over {report.items} "
        f"documents; calibrated threshold {report.threshold:.3f}, held-out accuracy "
        f"{report.heldout_accuracy:.3f}"
    )
    easy, hard = FLOORS[backend]
    assert report.ranked_first >= easy
    assert report.ranked_first_hard >= hard
    threshold = DEFAULT_THRESHOLDS[backend]
    assert abs(threshold - report.threshold) < 0.02, "recalibrate DEFAULT_THRESHOLDS"
    odd_fit, odd_unfit = report.fit_scores[1::2], report.unfit_scores[1::2]
    right = sum(s >= threshold for s in odd_fit) + sum(s < threshold for s in odd_unfit)
    assert right / (len(odd_fit) + len(odd_unfit)) >= 0.9
