"""Train a topic head (``topic: {head: ...}``) on labelled documents, and measure it.

Recipe: embed each labelled training document (``{topic, text}`` rows; by default
``tests/data/topic/train.jsonl.gz``, labelled by reading, see ``tests/data/SOURCES.md``) with
the head's encoders over their first tokens, add the topic list's own descriptions and example
openings (``gristmill/templates/topics.yaml``, or ``--topics``) as one extra document each, and
fit a multinomial logistic regression (L-BFGS, ``C``, classes weighted by inverse frequency so
that a rare topic is not drowned by ``business``) over the encoders' L2-normalised vectors side
by side. The fit is deterministic, so a rerun writes the same head.

The bundled heads (``RECIPES``): ``wordllama`` (the default, WordLlama's static table over 256
tokens) and ``wordllama+minilm`` (the same beside all-MiniLM-L6-v2 over 128 tokens). The
held-out set (``tests/data/topic/eval.jsonl.gz``, other files than the training set for the web
part, disjoint documents for the rest) is only measured, never fitted: its accuracy goes to the
``.metrics.json`` beside the head. ``--select`` prints the 5-fold cross-validated accuracy *on
the training set* of the settings we chose between (C, with or without the topic
descriptions); the recipes' settings are its best, picked without looking at the held-out set.

    python scripts/train_topic_head.py                       # rebuild both bundled heads
    python scripts/train_topic_head.py --head wordllama --select
    python scripts/train_topic_head.py --train my_labels.jsonl.gz --topics my_topics.yaml \\
        --encoder static --encoder '{backend: vllm, path: /models/gte-base}' --out my_head.npz
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from gristmill.embeddings import EncoderConfig, load_encoder
from gristmill.stages.taggers.topic import load_topics
from gristmill.stages.taggers.topic_head import BUNDLED_HEADS, HeadFeatures, HeadInput, TopicHead

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT / "tests" / "data" / "topic"
MODELS = REPO_ROOT / "gristmill" / "models"
#: Tokens read of each document when an encoder's config does not say: the static table is
#: cheap, so it reads more; a transformer's cost grows with every token.
DEFAULT_TOKENS = {"static": 256}
OTHER_TOKENS = 128


@dataclass(frozen=True)
class Recipe:
    encoders: tuple[str, ...]
    c: float = 3.0
    descriptions: bool = True


#: The bundled heads (``BUNDLED_HEADS`` names their files); settings chosen by ``--select``.
RECIPES: dict[str, Recipe] = {
    "wordllama": Recipe(("static",)),
    "wordllama+minilm": Recipe(("static", "minilm")),
}


def read_set(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def encoder_config(spec: str) -> EncoderConfig:
    """``static``, ``minilm`` or an EncoderConfig mapping in YAML/JSON, with its token count."""
    value = yaml.safe_load(spec)
    config = EncoderConfig.model_validate({"backend": value} if isinstance(value, str) else value)
    tokens = config.max_tokens or DEFAULT_TOKENS.get(config.backend, OTHER_TOKENS)
    return config.model_copy(update={"max_tokens": tokens})


def features_for(configs: list[EncoderConfig]) -> HeadFeatures:
    inputs = [HeadInput(load_encoder(c).name, c.max_tokens or OTHER_TOKENS) for c in configs]
    return HeadFeatures(inputs, configs)


def labelled_vectors(
    features: HeadFeatures,
    rows: list[dict[str, str]],
    topics: list[tuple[str, list[str]]],
    descriptions: bool,
) -> tuple[np.ndarray, np.ndarray]:
    names = [name for name, _ in topics]
    unknown = sorted({row["topic"] for row in rows} - set(names))
    if unknown:
        raise SystemExit(f"labels not in the topic list: {unknown}")
    texts = [row["text"] for row in rows]
    labels = [names.index(row["topic"]) for row in rows]
    if descriptions:
        texts += ["\n".join(topic_texts) for _, topic_texts in topics]
        labels += list(range(len(topics)))
    return features.vectors(texts), np.array(labels)


def fit(
    vectors: np.ndarray, labels: np.ndarray, c: float, classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weights and biases for every class; a class with no document gets a bias of -30."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
    model.fit(vectors, labels)
    weights = np.zeros((classes, vectors.shape[1]), dtype=np.float32)
    bias = np.full(classes, -30.0, dtype=np.float32)
    weights[model.classes_] = model.coef_
    bias[model.classes_] = model.intercept_
    return weights, bias


def train(
    head: str = "wordllama",
    *,
    configs: list[EncoderConfig] | None = None,
    rows: list[dict[str, str]] | None = None,
    topics: list[tuple[str, list[str]]] | None = None,
    c: float | None = None,
) -> TopicHead:
    """A head from a bundled recipe, or from ``configs`` (then ``c`` defaults to 3)."""
    recipe = RECIPES.get(head, Recipe(()))
    configs = configs or [encoder_config(spec) for spec in recipe.encoders]
    if not configs:
        raise SystemExit(f"no recipe named {head!r} and no encoders given")
    rows = rows if rows is not None else read_set(DATA / "train.jsonl.gz")
    topics = topics or load_topics()
    names = [name for name, _ in topics]
    missing = set(names) - {row["topic"] for row in rows}
    if missing and not recipe.descriptions:
        raise SystemExit(f"no training document for {sorted(missing)}")
    features = features_for(configs)
    vectors, labels = labelled_vectors(features, rows, topics, recipe.descriptions)
    weights, bias = fit(vectors, labels, c or recipe.c, len(names))
    return TopicHead(weights, bias, names, features.inputs)


def evaluate(
    head: TopicHead, rows: list[dict[str, str]], configs: list[EncoderConfig] | None = None
) -> dict[str, object]:
    features = HeadFeatures(head.inputs, configs, width=head.weights.shape[1])
    probabilities = head.probabilities(features.vectors([row["text"] for row in rows]))
    predicted = [head.labels[i] for i in probabilities.argmax(axis=1)]
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for row, got in zip(rows, predicted, strict=True):
        total[row["topic"]] += 1
        right[row["topic"]] += got == row["topic"]
    return {
        "documents": len(rows),
        "accuracy": round(sum(right.values()) / len(rows), 4),
        "per_topic": {name: f"{right[name]}/{total[name]}" for name in head.labels},
    }


def select(
    configs: list[EncoderConfig],
    rows: list[dict[str, str]],
    topics: list[tuple[str, list[str]]],
) -> None:
    """5-fold cross-validation on the training set over the settings we chose between."""
    from sklearn.model_selection import StratifiedKFold

    names = [name for name, _ in topics]
    features = features_for(configs)
    documents, labels = labelled_vectors(features, rows, topics, descriptions=False)
    extra, extra_labels = labelled_vectors(features, [], topics, descriptions=True)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    # a topic with one document cannot be stratified; its fold is chosen by position
    counts = np.bincount(labels, minlength=len(names))
    strata = np.where(counts[labels] < 5, -1, labels)
    split = list(folds.split(np.zeros(len(rows)), strata))
    for descriptions in (False, True):
        for c in (1.0, 3.0, 10.0):
            scores = []
            for train_rows, test_rows in split:
                x, y = documents[train_rows], labels[train_rows]
                if descriptions:
                    x, y = np.vstack([x, extra]), np.concatenate([y, extra_labels])
                weights, bias = fit(x, y, c, len(names))
                head = TopicHead(weights, bias, names, features.inputs)
                predicted = head.probabilities(documents[test_rows]).argmax(axis=1)
                scores.append(float((predicted == labels[test_rows]).mean()))
            print(
                f"descriptions={descriptions} C={c}: {np.mean(scores):.3f} "
                "(5-fold on the training set)"
            )


def write(head: TopicHead, out: Path, metrics: dict[str, object]) -> None:
    head.save(out)
    metrics = {"encoders": head.describe(), "fingerprint": head.fingerprint(), **metrics}
    text = json.dumps(metrics, indent=2) + "\n"
    out.with_name(out.name.removesuffix(".npz") + ".metrics.json").write_text(text)
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", choices=[*RECIPES, "all"], default="all", help="bundled recipe")
    parser.add_argument(
        "--encoder",
        action="append",
        help="instead of a recipe: static, minilm, or an encoder mapping in YAML/JSON "
        "({backend: transformers|vllm, path: ..., max_tokens: ...}); repeat for several",
    )
    parser.add_argument("--train", type=Path, default=DATA / "train.jsonl.gz")
    parser.add_argument("--eval", type=Path, help="held-out {topic, text} rows to measure")
    parser.add_argument("--topics", type=Path, help="topics YAML (default: the bundled list)")
    parser.add_argument("--c", type=float, help="inverse regularisation (default: 3)")
    parser.add_argument("--select", action="store_true", help="cross-validate the settings")
    parser.add_argument("--out", type=Path, help="head file (default: the bundled one)")
    args = parser.parse_args()
    rows = read_set(args.train)
    topics = load_topics(args.topics)
    evaluation = args.eval or (DATA / "eval.jsonl.gz" if args.encoder is None else None)
    if args.encoder:
        jobs = [("custom", [encoder_config(spec) for spec in args.encoder], args.out)]
        if args.out is None and not args.select:
            raise SystemExit("--encoder needs --out: where to write the head")
    else:
        names = list(RECIPES) if args.head == "all" else [args.head]
        jobs = [
            (
                name,
                [encoder_config(spec) for spec in RECIPES[name].encoders],
                args.out or MODELS / BUNDLED_HEADS[name],
            )
            for name in names
        ]
    for name, configs, out in jobs:
        if args.select:
            print(f"{name}: {', '.join(c.backend for c in configs)}")
            select(configs, rows, topics)
            continue
        head = train(name, configs=configs, rows=rows, topics=topics, c=args.c)
        metrics: dict[str, object] = {
            "C": args.c or RECIPES.get(name, Recipe(())).c,
            "with_topic_descriptions": RECIPES.get(name, Recipe(())).descriptions,
            "train_documents": len(rows),
        }
        if evaluation is not None:
            metrics["held_out"] = evaluate(head, read_set(evaluation), configs)
        write(head, out, metrics)


if __name__ == "__main__":
    main()
