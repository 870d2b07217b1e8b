"""Rebuild the bundled topic heads from their recipes, and measure them on the held-out set.

The heads (``gristmill.stages.taggers.topic_head.BUNDLED_HEADS``): ``wordllama``, the default,
over WordLlama's static table (256 tokens), and ``wordllama+minilm``, the same beside
all-MiniLM-L6-v2 (128 tokens). Both are trained by ``gristmill.classifiers.topic_head`` (what
``gristmill train-topic-head`` runs on your labels) on ``tests/data/topic/train.jsonl.gz``,
labelled by reading (see ``tests/data/SOURCES.md``), with C = 3 and the topic descriptions as
extra documents. The held-out set (``tests/data/topic/eval.jsonl.gz``: other files than the
training set for the web part, disjoint documents for the rest) is only measured, never
fitted: its accuracy goes to the ``.metrics.json`` beside each head. ``--select`` prints the
5-fold cross-validated accuracy *on the training set* of the settings we chose between; the
recipes' settings are its best, picked without looking at the held-out set.

    python scripts/train_topic_head.py [--head wordllama|wordllama+minilm] [--select]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gristmill.classifiers.topic_head import (
    DEFAULT_C,
    Labelled,
    cross_validate,
    encoder_config,
    evaluate_head,
    read_labelled,
    train_head,
)
from gristmill.stages.taggers.topic import load_topics
from gristmill.stages.taggers.topic_head import BUNDLED_HEADS, TopicHead

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT / "tests" / "data" / "topic"
MODELS = REPO_ROOT / "gristmill" / "models"
#: The encoders each bundled head reads, by ``BUNDLED_HEADS`` name.
RECIPES: dict[str, tuple[str, ...]] = {
    "wordllama": ("static",),
    "wordllama+minilm": ("static", "minilm"),
}


def train(head: str = "wordllama", labelled: Labelled | None = None) -> TopicHead:
    """The bundled head ``head`` as its recipe trains it (on ``labelled``, read once by the
    caller, or on the training set)."""
    configs = [encoder_config(spec) for spec in RECIPES[head]]
    labelled = labelled or read_labelled([str(DATA / "train.jsonl.gz")])
    return train_head(labelled, load_topics(), configs, c=DEFAULT_C)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", choices=[*RECIPES, "all"], default="all")
    parser.add_argument("--select", action="store_true", help="cross-validate the settings")
    args = parser.parse_args()
    names = list(RECIPES) if args.head == "all" else [args.head]
    training = read_labelled([str(DATA / "train.jsonl.gz")])
    for name in names:
        configs = [encoder_config(spec) for spec in RECIPES[name]]
        if args.select:
            print(f"{name}:")
            for descriptions, c, accuracy in cross_validate(training, load_topics(), configs):
                print(f"  descriptions={descriptions} C={c}: {accuracy:.3f} (5-fold, training set)")
            continue
        head = train(name, training)
        out = MODELS / BUNDLED_HEADS[name]
        head.save(out)
        metrics = {
            "encoders": head.describe(),
            "fingerprint": head.fingerprint(),
            "C": DEFAULT_C,
            "with_topic_descriptions": True,
            "train_documents": len(training.texts),
            "held_out": evaluate_head(head, read_labelled([str(DATA / "eval.jsonl.gz")])),
        }
        text = json.dumps(metrics, indent=2) + "\n"
        out.with_name(out.name.removesuffix(".npz") + ".metrics.json").write_text(text)
        print(text)


if __name__ == "__main__":
    main()
