"""Rebuild the fastText models shipped in ``gristmill/models/`` from ``data_samples/``.

Each model has a recipe beside it (``gristmill/models/<name>.yaml``). This script turns the
recipe into a positive and a negative Parquet set, runs ``gristmill train-classifier`` on them
(the command users run), and writes the held-out metrics next to the model as
``<name>.metrics.json``. Training is seeded and single-threaded, so a rebuild gives the same
model. Run::

    python scripts/train_default_models.py [quality_default] [toxicity_fasttext]

Labels of the HPLT and toxicity rows come from ``shared/data`` (the samples drop them), so
that directory must sit beside the repository, as it does in a checkout.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import typer
import yaml

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "gristmill" / "models"
SAMPLES = REPO / "data_samples"
ALL_MODELS = ("quality_default", "toxicity_fasttext")


def sample_table() -> pa.Table:
    tables = [pq.read_table(path) for path in sorted(SAMPLES.glob("*.parquet"))]
    return pa.concat_tables(tables).sort_by("id")


def quality_sets(recipe: dict[str, Any]) -> tuple[pa.Table, pa.Table]:
    """Curated sources (capped per source) against noisy crawl, as the recipe says."""
    from labelled import hplt_table, in_samples

    samples = sample_table()
    positive = recipe["positive"]
    parts = []
    for source in positive["sources"]:
        rows = samples.filter(pc.equal(samples["source"], source))
        parts.append(rows.slice(0, positive.get("max_per_source", rows.num_rows)))
    positives = pa.concat_tables(parts)

    negative = recipe["negative"]
    chosen = pc.is_in(samples["source"], pa.array(negative["sources"]))
    excluded = pc.is_in(samples["id"], pa.array(negative.get("exclude_ids", []), pa.string()))
    negatives = samples.filter(pc.and_(chosen, pc.invert(excluded)))
    if negative.get("hplt_unnatural"):
        hplt = in_samples(hplt_table())
        unnatural = hplt.filter(hplt["unnatural"]).column("id")
        negatives = pa.concat_tables(
            [negatives, samples.filter(pc.is_in(samples["id"], unnatural))]
        )
    return positives, negatives


def toxicity_sets() -> tuple[pa.Table, pa.Table]:
    """The labelled toxicity rows that are in the samples, split by their label."""
    from labelled import in_samples, toxicity_table

    rows = in_samples(toxicity_table()).select(["id", "text", "source", "toxic"])
    return rows.filter(rows["toxic"]), rows.filter(pc.invert(rows["toxic"]))


def train(name: str) -> None:
    from gristmill.cli.train_classifier import register

    recipe = yaml.safe_load((MODELS / f"{name}.yaml").read_text())
    if recipe.get("toxicity_samples"):
        positives, negatives = toxicity_sets()
    else:
        positives, negatives = quality_sets(recipe)
    options = recipe["train"]
    with tempfile.TemporaryDirectory(prefix="gristmill-default-models-") as scratch:
        positive_file = Path(scratch) / "positive.parquet"
        negative_file = Path(scratch) / "negative.parquet"
        pq.write_table(positives.select(["id", "text"]), positive_file)
        pq.write_table(negatives.select(["id", "text"]), negative_file)
        args = [
            "train-classifier",
            "--positive", str(positive_file),
            "--negative", str(negative_file),
            "--output", str(MODELS / recipe["model"]),
            "--positive-label", recipe["positive_label"],
            "--negative-label", recipe["negative_label"],
            "--epochs", str(options["epochs"]),
            "--lr", str(options["lr"]),
            "--dim", str(options["dim"]),
            "--word-ngrams", str(options["word_ngrams"]),
            "--bucket", str(options["bucket"]),
            "--min-count", str(options["min_count"]),
            "--holdout", str(options["holdout"]),
            "--seed", str(options["seed"]),
            "--cutoff", str(options["cutoff"]),
            "--balance" if options.get("balance", True) else "--no-balance",
            "--metrics", str(MODELS / f"{name}.metrics.json"),
        ]  # fmt: skip
        print(f"== {name}: {positives.num_rows} positive, {negatives.num_rows} negative")
        print("gristmill " + " ".join(args))
        app = typer.Typer()
        register(app)

        @app.callback()
        def _group() -> None:
            """Keeps train-classifier a named sub-command, as in the main app."""

        app(args, standalone_mode=False)


def main(names: list[str]) -> None:
    for name in names or ALL_MODELS:
        if name not in ALL_MODELS:
            sys.exit(f"unknown model {name!r}; known: {', '.join(ALL_MODELS)}")
        train(name)


if __name__ == "__main__":
    main(sys.argv[1:])
