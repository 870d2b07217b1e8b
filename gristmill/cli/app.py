"""The ``gristmill`` command: run, validate, stages, inspect (and the sub-apps of later stages).

Exit codes (``cli.errors``): 0 success, 1 some tasks failed (the others completed), 2 a
configuration, input or output error stopped the run before any data flowed.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from gristmill.cli import options
from gristmill.cli.errors import EXIT_CONFIG, EXIT_FAILED, console, reported
from gristmill.io.base import unreadable_inputs

app = typer.Typer(
    name="gristmill",
    help="Turn raw pretraining text into a curated corpus, as streaming stages over Parquet.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.command()
def run(
    pipeline: Annotated[Path, typer.Argument(help="pipeline YAML file")],
    input: Annotated[
        Optional[list[str]], typer.Option("--input", "-i", help="input paths or globs (repeatable)")
    ] = None,
    output: Annotated[
        Optional[str], typer.Option("--output", "-o", help="output directory")
    ] = None,
    workers: options.Workers = None,
    executor_type: options.ExecutorType = None,
    scheduler: options.Scheduler = None,
    slurm: options.Slurm = False,
    limit: Annotated[
        Optional[int], typer.Option(min=1, help="read at most N documents from each task")
    ] = None,
    overwrite: options.Overwrite = False,
    quiet: options.Quiet = False,
    write_report: Annotated[
        bool,
        typer.Option("--report", help="write the HTML report (OUTPUT/_run/report.html) at the end"),
    ] = False,
) -> None:
    """Run a pipeline; a rerun resumes, skipping the tasks that completed."""
    if quiet:
        options.silence_third_party()  # before any worker starts or model library loads
    from gristmill.runs.config import load_pipeline

    with reported():
        config = load_pipeline(pipeline)
        if input:
            config.input = config.input.model_copy(update={"paths": list(input)})
        if output:
            config.output = config.output.model_copy(update={"path": output})
        built = config.build()
        executor = options.chosen_executor(
            config.executor, executor_type, workers, scheduler, slurm
        )
        report = built.run(
            executor=executor, limit=limit, overwrite=overwrite, progress=not quiet, console=console
        )
        if write_report:
            from gristmill.report import write_report as write_page

            typer.echo(write_page(report.output))  # the page's path, on stdout
    if not report.ok:
        if not quiet:
            console.print(
                f"incomplete: {report.output} holds the output of the tasks that succeeded; "
                "fix or remove the failed inputs and run the same command again to finish",
                highlight=False,
            )
        raise typer.Exit(EXIT_FAILED)
    if not quiet:
        console.print(
            f"output: {report.output}  (stats: {report.output}/_run/stats.json)", highlight=False
        )


@app.command()
def validate(pipeline: Annotated[Path, typer.Argument(help="pipeline YAML file")]) -> None:
    """Check a pipeline file, its stages and parameters, and every input file: that it can be
    opened (a Parquet footer, a JSON Lines file's first lines) and has the columns needed."""
    from gristmill.runs.config import load_pipeline
    from gristmill.runs.passes import validate_inputs

    with reported():
        config = load_pipeline(pipeline)
        built = config.build()
        assert built.reader is not None
        tasks = built.reader.plan()
        unreadable = unreadable_inputs(built.reader, tasks)
        validate_inputs(built, built.reader, tasks)
    if unreadable:
        for problem in unreadable:
            console.print(f"[red]unreadable[/red] {problem}", highlight=False)
        console.print(
            f"{len(unreadable)} of {len({t.url for t in tasks})} input files cannot be read; "
            "a run would fail their tasks and complete the others",
            highlight=False,
        )
        raise typer.Exit(EXIT_CONFIG)
    console.print(
        f"[green]ok[/green]: {pipeline}: {len(built.stages)} stages, {len(tasks)} tasks over "
        f"{len({t.url for t in tasks})} input files"
    )


@app.command()
def stages(name: Annotated[Optional[str], typer.Argument(help="a stage name")] = None) -> None:
    """List every stage, or show one stage's parameters, types, defaults and docs."""
    from gristmill.cli.stages import print_stages

    with reported():
        print_stages(name, Console())


@app.command()
def inspect(
    path: Annotated[str, typer.Argument(help="a Parquet or JSONL file, directory or glob")],
    show: Annotated[int, typer.Option(min=0, help="documents to show per file")] = 3,
) -> None:
    """Schema, row count, null counts and a few documents of each file."""
    from gristmill.cli.inspect import inspect_path

    with reported():
        inspect_path(path, show=show, console=Console())


def _mount_subcommands() -> None:
    """Commands that live in their own modules: each module's ``register`` adds its own."""
    from gristmill.cli.mixture import mixture_app

    app.add_typer(mixture_app, name="mixture", help="Skill-It mixture schedules and sampling.")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(app)


#: Modules that add top-level commands through ``register(app)``.
COMMAND_MODULES: tuple[str, ...] = (
    "gristmill.cli.export",
    "gristmill.cli.meco",
    "gristmill.cli.report",
    "gristmill.cli.train_classifier",
    "gristmill.cli.train_topic_head",
)

_mount_subcommands()


def main() -> None:
    app()
