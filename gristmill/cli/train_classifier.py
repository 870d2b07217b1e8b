"""``gristmill train-classifier``: a fastText classifier from positive and negative sets.

It prints precision, recall and ROC AUC on a seeded held-out split, and can write them as
JSON beside the model, so a committed model always comes with the numbers that judged it.

``--positive`` and ``--negative`` take one or more paths each, after one flag
(``--positive a.parquet b.parquet``, what a shell glob gives) or repeated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console

from gristmill.cli.errors import reported
from gristmill.cli.options import list_options_command

if TYPE_CHECKING:
    from gristmill.classifiers.train import TrainingResult

#: Options that take several values after one flag.
TrainClassifierCommand = list_options_command("--positive", "-p", "--negative", "-n")


def train_classifier_command(
    positive: Annotated[
        list[str],
        typer.Option(
            "--positive", "-p", help="Parquet/JSONL files, dirs or globs of good docs (one or more)"
        ),
    ],
    negative: Annotated[
        list[str],
        typer.Option(
            "--negative", "-n", help="Parquet/JSONL files, dirs or globs of bad docs (one or more)"
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="model file; .ftz is saved quantized")
    ],
    text_column: Annotated[str, typer.Option(help="the column holding the text")] = "text",
    positive_label: Annotated[str, typer.Option(help="label of the positive class")] = "hq",
    negative_label: Annotated[str, typer.Option(help="label of the negative class")] = "cc",
    holdout: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="fraction of each class held out")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="seed of the sampling and of fastText")] = 0,
    balance: Annotated[
        bool, typer.Option(help="downsample the majority class to the minority's size")
    ] = True,
    epochs: Annotated[int, typer.Option(min=1, help="training epochs")] = 5,
    lr: Annotated[float, typer.Option(min=0.0, help="learning rate")] = 0.1,
    dim: Annotated[int, typer.Option(min=1, help="embedding size")] = 64,
    word_ngrams: Annotated[int, typer.Option(min=1, help="word n-grams (2: bigrams)")] = 2,
    bucket: Annotated[int, typer.Option(min=1, help="hash buckets for the n-grams")] = 200_000,
    min_count: Annotated[int, typer.Option(min=1, help="drop words seen fewer times")] = 1,
    quantize: Annotated[
        Optional[bool], typer.Option(help="quantize before saving (default: if output is .ftz)")
    ] = None,
    cutoff: Annotated[
        int, typer.Option(min=0, help="with quantization, keep this many rows (0: all)")
    ] = 100_000,
    metrics: Annotated[
        Optional[Path], typer.Option(help="also write the held-out metrics to this JSON file")
    ] = None,
) -> None:
    """Train a fastText classifier (word bigrams, balanced classes) and report held-out metrics.

    DCLM's recipe: ~200k documents of what you want more of (DCLM: OpenHermes instructions,
    top ELI5 answers) as --positive, as many random documents of your raw crawl as
    --negative, --word-ngrams 2, then `quality: {model_path: ..., positive_label: hq}`.
    Judge it on labels it never saw too; docs/quality.md walks through it.
    """
    # Imported here: every `gristmill` process (and local worker) imports the command line.
    from gristmill.classifiers.train import ClassifierConfig, train_classifier
    from gristmill.models.fasttext_model import TrainingOptions

    config = ClassifierConfig(
        positive=tuple(positive),
        negative=tuple(negative),
        output=output,
        text_column=text_column,
        positive_label=positive_label,
        negative_label=negative_label,
        holdout=holdout,
        seed=seed,
        balance=balance,
        training=TrainingOptions(
            epoch=epochs,
            lr=lr,
            dim=dim,
            word_ngrams=word_ngrams,
            bucket=bucket,
            min_count=min_count,
            seed=seed,
        ),
        quantize=quantize,
        cutoff=cutoff,
    )
    with reported():
        result = train_classifier(config)
        report(result, Console())
        if metrics is not None:
            metrics.parent.mkdir(parents=True, exist_ok=True)
            metrics.write_text(json.dumps(summary_dict(result), indent=2) + "\n")


def summary_dict(result: TrainingResult) -> dict[str, object]:
    return {
        "model": result.model_path.name,
        "positives_read": result.positives_read,
        "negatives_read": result.negatives_read,
        "train_examples": result.train_examples,
        "held_out": result.metrics.to_dict() if result.metrics else None,
    }


def report(result: TrainingResult, console: Console) -> None:
    size_kb = result.model_path.stat().st_size / 1024
    console.print(
        f"model: {result.model_path} ({size_kb:,.0f} KiB); read {result.positives_read} "
        f"positive and {result.negatives_read} negative documents; trained on "
        f"{result.train_examples}",
        highlight=False,
    )
    if result.metrics is None:
        console.print("held-out: none (holdout 0)")
        return
    m = result.metrics
    console.print(f"precision: {m.precision:.4f}", highlight=False)
    console.print(f"recall: {m.recall:.4f}", highlight=False)
    console.print(f"roc_auc: {m.roc_auc:.4f}", highlight=False)
    console.print(m.summary(), highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``train-classifier`` to a Typer app (the main app, or a test's)."""
    app.command("train-classifier", cls=TrainClassifierCommand)(train_classifier_command)
