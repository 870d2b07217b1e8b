"""Rebuild the fastText models shipped in ``gristmill/models/`` from the origin data.

Each model has a recipe beside it (``gristmill/models/<name>.yaml``). This script turns the
recipe into a positive and a negative Parquet set, runs ``gristmill train-classifier`` on them
(the command users run), and writes the held-out metrics next to the model as
``<name>.metrics.json``. Training is seeded and single-threaded, so a rebuild gives the same
model. Run::

    python scripts/train_default_models.py [--data DATA_ROOT] [MODEL ...]

MODEL is one of ``ALL_MODELS`` (default: all). ``DATA_ROOT`` is the directory of the origin
data (default: the data folder beside the checkout): labels of the HPLT and toxicity rows
come from there (the samples drop them), and so do the wider pools of ``model_pools.py``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import labelled  # beside this script
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import typer
import yaml

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "gristmill" / "models"
SAMPLES = REPO / "data_samples"
ALL_MODELS = ("quality_default", "toxicity_fasttext", "toxicity_hate", "toxicity_nsfw")
DATA_ROOT = labelled.DEFAULT_DATA_ROOT


def sample_table() -> pa.Table:
    tables = [pq.read_table(path) for path in sorted(SAMPLES.glob("*.parquet"))]
    return pa.concat_tables(tables).sort_by("id")


def pool_sets(recipe: dict[str, Any], data: Path) -> tuple[pa.Table, pa.Table]:
    """The pools of ``model_pools.py``: quality from every source at hand, toxicity from
    every labelled row outside the held-out slice."""
    import model_pools

    if recipe["pools"] == "quality":
        good, bad = model_pools.quality_pools(sample_table(), data)
        return (
            pa.table({"id": [f"p{i}" for i in range(len(good))], "text": good}),
            pa.table({"id": [f"n{i}" for i in range(len(bad))], "text": bad}),
        )
    rows = model_pools.toxicity_train(model_pools.toxicity_categories(data))
    label = rows[recipe["pools"]]
    return rows.filter(label), rows.filter(pc.invert(label))


def train(name: str, data: Path = DATA_ROOT) -> None:
    from gristmill.cli.train_classifier import register

    recipe = yaml.safe_load((MODELS / f"{name}.yaml").read_text())
    positives, negatives = pool_sets(recipe, data)
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


def main(args: list[str]) -> None:
    data = DATA_ROOT
    if "--data" in args:
        at = args.index("--data")
        data = Path(args[at + 1])
        args = args[:at] + args[at + 2 :]
    for name in args or ALL_MODELS:
        if name not in ALL_MODELS:
            sys.exit(f"unknown model {name!r}; known: {', '.join(ALL_MODELS)}")
        train(name, data)


if __name__ == "__main__":
    main(sys.argv[1:])
