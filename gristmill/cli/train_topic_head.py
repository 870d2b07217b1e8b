"""``gristmill train-topic-head``: a topic head over any encoders, from labelled documents.

It writes the head (``.npz``) and, beside it, a ``.metrics.json`` with the settings and, when
``--eval`` is given, the held-out accuracy per topic, so a head always comes with the numbers
that judged it. ``--select`` only cross-validates the settings on the training documents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from gristmill.cli.errors import reported
from gristmill.cli.options import list_options_command

#: Options that take several values after one flag (a shell glob gives many).
TrainTopicHeadCommand = list_options_command("--train", "--eval", "--encoder")


def train_topic_head_command(
    train: Annotated[
        list[str],
        typer.Option("--train", help="Parquet/JSONL files, dirs or globs of labelled documents"),
    ],
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="head file (.npz) to write")
    ] = None,
    encoder: Annotated[
        Optional[list[str]],
        typer.Option(
            help="static, minilm, or an encoder mapping in YAML "
            "('{backend: vllm, path: /models/gte}'); repeat for several side by side "
            "(default: static)"
        ),
    ] = None,
    topics: Annotated[
        Optional[Path], typer.Option(help="topics YAML (default: the bundled 18 topics)")
    ] = None,
    evaluate: Annotated[
        Optional[list[str]],
        typer.Option("--eval", help="held-out labelled files to measure the head on"),
    ] = None,
    text_column: Annotated[str, typer.Option(help="the column holding the text")] = "text",
    label_column: Annotated[str, typer.Option(help="the column holding the topic")] = "topic",
    c: Annotated[float, typer.Option("--c", min=0.0, help="inverse regularisation")] = 3.0,
    descriptions: Annotated[
        bool, typer.Option(help="add each topic's description as a training document")
    ] = True,
    select: Annotated[
        bool, typer.Option(help="only print 5-fold cross-validated accuracy of the settings")
    ] = False,
) -> None:
    """Train a topic head on labelled documents ({text, topic} rows) over one or more encoders.

    The head reads each encoder's L2-normalised vector side by side; use it with
    `topic: {head: OUTPUT}` (a local model's head also needs `encoder:`).

    docs/topic.md has the recipe and the bundled heads' figures.
    """
    from gristmill.classifiers.topic_head import (
        cross_validate,
        encoder_config,
        evaluate_head,
        read_labelled,
        train_head,
    )
    from gristmill.stages.taggers.topic import load_topics

    console = Console()
    with reported():
        configs = [encoder_config(spec) for spec in encoder or ["static"]]
        topic_list = load_topics(topics)
        labelled = read_labelled(train, text_column, label_column)
        if select:
            for with_descriptions, value, accuracy in cross_validate(labelled, topic_list, configs):
                console.print(
                    f"descriptions={with_descriptions} C={value}: {accuracy:.3f} "
                    "(5-fold on the training documents)",
                    highlight=False,
                )
            return
        if output is None:
            raise typer.BadParameter("where to write the head", param_hint="--output")
        head = train_head(labelled, topic_list, configs, c=c, descriptions=descriptions)
        metrics: dict[str, object] = {
            "encoders": head.describe(),
            "fingerprint": head.fingerprint(),
            "C": c,
            "with_topic_descriptions": descriptions,
            "train_documents": len(labelled.texts),
        }
        held_out = None
        if evaluate:
            rows = read_labelled(evaluate, text_column, label_column)
            held_out = evaluate_head(head, rows, configs)
            metrics["held_out"] = held_out
        output.parent.mkdir(parents=True, exist_ok=True)
        head.save(output)
        metrics_path = output.with_name(output.name.removesuffix(".npz") + ".metrics.json")
        metrics_path.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        console.print(f"head: {output} ({len(head.labels)} topics, {head.describe()})")
        if held_out is not None:
            console.print(f"held-out accuracy: {held_out['accuracy']:.3f}", highlight=False)
        console.print(f"metrics: {metrics_path}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``train-topic-head`` to a Typer app (the main app, or a test's)."""
    app.command("train-topic-head", cls=TrainTopicHeadCommand)(train_topic_head_command)
