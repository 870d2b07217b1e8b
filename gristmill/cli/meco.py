"""``gristmill meco plan``: MeCo's whole-run summary made ahead of a run, as a plan file.

Run it on the documents that will reach the ``meco`` stage (usually a curated output), then
give the plan to the stage: ``- meco: {plan: meco_plan.json}``; several runs can share it.
Within a pipeline the stage makes the same plan itself, as its corpus-wide phase.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gristmill.cli.errors import console, reported
from gristmill.io.formats import open_reader
from gristmill.stages.taggers.meco_plan import MecoPlan, plan_from_tables

meco_app = typer.Typer(
    help="MeCo metadata conditioning: plan the cooldown split and the host counts of a run.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@meco_app.command("plan")
def plan_command(
    inputs: Annotated[list[str], typer.Argument(help="Parquet files, directories or globs")],
    output: Annotated[Path, typer.Option("--output", "-o", help="plan JSON to write")] = Path(
        "meco_plan.json"
    ),
    cooldown_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.99, help="share of tokens in the cooldown set")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="seed of the id hash (same as the stage's)")] = 0,
    tokenizer: Annotated[
        Optional[str], typer.Option(help="tokenizer.json (default: bundled MiniLM one)")
    ] = None,
) -> None:
    """Count tokens per id-hash bin and hosts over the run; write the MeCo plan."""
    with reported():
        # a curated output's _run/ and _rejects/ are never listed as its data
        plan = plan_from_inputs(
            list(inputs), seed=seed, cooldown_fraction=cooldown_fraction, tokenizer=tokenizer
        )
        plan.save(output)
    console.print(
        f"{output}: {plan.docs_total} documents, {plan.tokens_total} tokens; cooldown "
        f"{plan.docs_cooldown} documents, {plan.cooldown_share:.2%} of tokens "
        f"(target {cooldown_fraction:.0%}); {len(plan.host_counts)} hosts",
        highlight=False,
    )


def plan_from_inputs(
    inputs: list[str], *, seed: int, cooldown_fraction: float, tokenizer: str | None
) -> MecoPlan:
    """The plan over every document of the inputs (what will reach the ``meco`` stage)."""
    reader = open_reader(inputs)
    tables = (table for task in reader.plan() for table in reader.read(task))
    return plan_from_tables(
        tables, seed=seed, cooldown_fraction=cooldown_fraction, tokenizer=tokenizer
    )


def register(app: typer.Typer) -> None:
    """Add ``gristmill meco ...`` to the main app."""
    app.add_typer(meco_app, name="meco")
