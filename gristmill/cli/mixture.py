"""``gristmill mixture``: drive a Skill-It schedule from the shell, one round at a time.

Every command is a short, restartable step over files in ``output_dir`` (state, mixtures,
manifests, the trainer's ``eval_losses.json``), so a trainer or a cron-like loop can call them
without a long-lived process; the logic lives in ``gristmill.mixing.loop``, and docs/skillit.md
shows the loop. Exit codes are those of ``gristmill.cli.errors``: 0 done, 1 failed, 2 a config
or input problem, 75 the trainer's losses are not written yet (poll and retry).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from gristmill.cli import options
from gristmill.cli.errors import console, reported

mixture_app = typer.Typer(
    help="Skill-It data mixing: init a schedule, compute the next mixture, sample a round.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

ConfigArg = Annotated[
    Path, typer.Argument(help="mixture config (YAML or JSON)", exists=True, dir_okay=False)
]


@mixture_app.command()
def init(
    config: ConfigArg,
    force: Annotated[bool, typer.Option(help="replace an existing schedule in output_dir")] = False,
) -> None:
    """Start a schedule: write round_0001/mixture.json (p_1; the only one in static mode)."""
    from gristmill.mixing import loop  # here: the mixing code (and polars) is heavy to import

    with reported():
        payload = loop.init_schedule(loop.load_config(config), force=force)
    typer.echo(json.dumps(payload, indent=2))


@mixture_app.command("next")
def next_mixture(config: ConfigArg) -> None:
    """Read the trainer's eval_losses.json, write and print the next round's mixture.

    Exits with 75 while the needed eval_losses.json is not there yet, so a loop can poll.
    """
    from gristmill.mixing import loop

    with reported():
        payload = loop.advance_schedule(loop.load_config(config))
    typer.echo(json.dumps(payload, indent=2))


@mixture_app.command()
def sample(
    config: ConfigArg,
    round_index: Annotated[
        Optional[int],
        typer.Option("--round", min=1, help="round to materialise; default: the latest mixture"),
    ] = None,
    executor_type: options.ExecutorType = None,
    workers: options.Workers = None,
    scheduler: options.Scheduler = None,
    slurm: options.Slurm = False,
    overwrite: options.Overwrite = False,
    quiet: options.Quiet = False,
) -> None:
    """Materialise a round: round_NNNN/part-XXXXX.parquet, then manifest.json.

    A round interrupted part-way resumes when the same command runs again: only the parts
    that are missing are written.
    """
    from gristmill.mixing import loop
    from gristmill.mixing.sampler import round_dir

    if quiet:
        options.silence_third_party()  # before any worker starts
    with reported():
        settings = loop.load_config(config)
        executor = options.chosen_executor(
            settings.executor, executor_type, workers, scheduler, slurm
        )
        manifest = loop.sample_scheduled_round(
            settings,
            round_index,
            executor=executor,
            overwrite=overwrite,
            progress=not quiet,
            console=console,
        )
    directory = round_dir(settings.output_dir, manifest["round"])
    summary = {k: manifest[k] for k in ("round", "counts", "repeats")}
    summary["parts"] = len(manifest["parts"])
    summary["directory"] = str(directory)
    typer.echo(json.dumps(summary, indent=2))
    if not quiet:
        console.print(
            f"round {manifest['round']}: {directory}  "
            f"({summary['parts']} parts; manifest: {directory / 'manifest.json'})",
            highlight=False,
        )


@mixture_app.command()
def graph(
    runs: Annotated[
        Path,
        typer.Argument(help="losses of the short runs (YAML or JSON)", exists=True, dir_okay=False),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="where to write the graph JSON")],
) -> None:
    """Build the skills graph A from single-skill (Alg. 3) or pair (Alg. 2) runs + provenance."""
    from gristmill.mixing import loop

    with reported():
        built = loop.build_graph(runs)
        built.save(out)
    typer.echo(
        json.dumps({"graph": str(out), "hash": built.hash, "shape": list(built.matrix.shape)})
    )
