"""The toxicity scorers on held-out labelled rows that no bundled fastText model trained on.

Held out (``model_pools.is_toxicity_held_out``, fixed before training): the Jigsaw and Davidson
rows outside data_samples/ that tests/data keeps: all 131 such Jigsaw comments and 1,480
Davidson tweets (a hash of the id picks them). The bundled fastText models trained on every
other row. Measured on this slice: fastText 0.958, profanity_check 0.991, their mean (the
default) 0.989; hate 0.778, NSFW 0.905. profanity_check was trained on the full Davidson and
Jigsaw sets, so its figure (and the mean's) is not a held-out figure; the fastText one is.
"""

from __future__ import annotations

from pathlib import Path

import model_pools
import numpy as np
import pyarrow as pa
import pytest

from gristmill.classifiers.metrics import roc_auc
from gristmill.models.fasttext_model import one_line
from gristmill.stages.taggers.toxicity import ToxicityParams, ToxicityScorer

#: The issue's floor for toxicity on labelled rows the model never saw.
AUC_FLOOR = 0.87
#: A little under what the category models measure, so a clearly worse retrain fails.
HATE_FLOOR = 0.74
NSFW_FLOOR = 0.87


@pytest.fixture(scope="module")
def held_out(data_dir: Path) -> pa.Table:
    rows = model_pools.toxicity_categories(data_dir)
    held = [model_pools.is_toxicity_held_out(i) for i in rows["id"].to_pylist()]
    return rows.filter(pa.array(held, pa.bool_()))


def _texts(rows: pa.Table) -> list[str]:
    return [one_line(t or "") for t in rows["text"].to_pylist()]


def test_held_out_rows_are_outside_the_training_rule(held_out: pa.Table) -> None:
    sources = held_out["source"].to_pylist()
    assert sources.count("jigsaw") == 131
    assert sources.count("davidson") > 1000


def test_toxicity_scorers_on_held_out_rows(held_out: pa.Table) -> None:
    texts = _texts(held_out)
    toxic = np.array(held_out["toxic"].to_pylist())
    sources = np.array(held_out["source"].to_pylist())
    print(f"\ntoxicity ROC AUC on {len(texts)} held-out rows ({toxic.sum()} toxic):")
    aucs = {}
    for name in ("fasttext", "profanity_check", "mean"):
        values = ToxicityScorer(model=name, categories=False).score_texts(texts)
        aucs[name] = roc_auc(toxic, values)
        parts = ", ".join(
            f"{source} {roc_auc(toxic[sources == source], values[sources == source]):.4f}"
            for source in ("jigsaw", "davidson")
        )
        print(f"  {name}: {aucs[name]:.4f} ({parts})")
    assert ToxicityParams.model_fields["model"].default == "mean"
    # The fastText model never saw these rows: the honest held-out figure.
    assert aucs["fasttext"] >= AUC_FLOOR
    assert aucs["mean"] >= AUC_FLOOR


def test_hate_and_nsfw_scores_on_held_out_rows(held_out: pa.Table) -> None:
    hate, nsfw = ToxicityScorer().category_scores(_texts(held_out))
    hate_labels = np.array(held_out["hate"].to_pylist())
    nsfw_labels = np.array(held_out["nsfw"].to_pylist())
    hate_auc, nsfw_auc = roc_auc(hate_labels, hate), roc_auc(nsfw_labels, nsfw)
    print(
        f"\nheld-out ROC AUC: hate {hate_auc:.4f} ({hate_labels.sum()} hateful), "
        f"NSFW {nsfw_auc:.4f} ({nsfw_labels.sum()} NSFW)"
    )
    assert hate_auc >= HATE_FLOOR
    assert nsfw_auc >= NSFW_FLOOR
