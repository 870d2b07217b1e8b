"""``gristmill meco plan``: the first pass MeCo needs over a whole run (see ``meco_plan``).

Run it on the documents that will reach the ``meco`` stage (usually a curated output), then
give the plan to the stage: ``- meco: {plan: meco_plan.json}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from gristmill.errors import GristmillError
from gristmill.export.run import curated_files
from gristmill.io.parquet import ParquetReader
from gristmill.stages.taggers.meco_plan import plan_from_reader

EXIT_CONFIG = 2

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
    console = Console(stderr=True)
    try:
        # a curated output's _rejects/ are not what the meco stage will see
        reader = ParquetReader(curated_files(list(inputs)))
        plan = plan_from_reader(
            reader, seed=seed, cooldown_fraction=cooldown_fraction, tokenizer=tokenizer
        )
        plan.save(output)
    except GristmillError as error:
        console.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(EXIT_CONFIG) from None
    console.print(
        f"{output}: {plan.docs_total} documents, {plan.tokens_total} tokens; cooldown "
        f"{plan.docs_cooldown} documents, {plan.cooldown_share:.2%} of tokens "
        f"(target {cooldown_fraction:.0%}); {len(plan.host_counts)} hosts",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``gristmill meco ...`` to the main app."""
    app.add_typer(meco_app, name="meco")
