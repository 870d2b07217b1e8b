"""``gristmill export``: a curated output → token sequences with a loss mask, for training.

Writes ``sequences.parquet`` and the memory-mapped ``tokens.bin`` / ``loss_mask.bin`` /
``index.npy`` / ``meta.json`` (format in ``gristmill.export.writer``). The tokenisation runs
on the chosen executor (a local process pool, or Dask); a rerun of the same command resumes
an interrupted export and does nothing for a complete one.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

import typer

from gristmill.cli import options
from gristmill.cli.errors import console, fail, reported

PHASES = ("all", "conditioning", "cooldown")


def export(
    inputs: Annotated[list[str], typer.Argument(help="curated output directories or files")],
    output: Annotated[str, typer.Option("--output", "-o", help="export directory (or URL)")],
    tokenizer: Annotated[
        Optional[str],
        typer.Option(
            help="tokenizer.json (or its folder) of the model to train; default: gristmill's "
            "byte-level BPE (8,192 tokens, trained on data_samples/), for models trained "
            "from scratch"
        ),
    ] = None,
    bos_token: Annotated[
        Optional[str],
        typer.Option(help="BOS token (default: tokenizer_config.json's, or a usual name)"),
    ] = None,
    eos_token: Annotated[
        Optional[str],
        typer.Option(help="EOS token (default: tokenizer_config.json's, or a usual name)"),
    ] = None,
    seq_len: Annotated[
        Optional[int], typer.Option(min=2, help="pack to this length (default: no packing)")
    ] = None,
    pack_mode: Annotated[
        str,
        typer.Option(
            help="split: documents that overflow a row continue in the next (no token lost); "
            "truncate: every row starts at a document start, overflow dropped; repeat_prefix: "
            "as split, but a continued document starts its new row with its BOS and MeCo "
            "prefix again (masked), so no conditioning row starts without its prefix"
        ),
    ] = "split",
    phase: Annotated[
        str,
        typer.Option(
            help="all | conditioning | cooldown; all writes them in training order, "
            "conditioning first, cooldown last (MeCo trains them in turn)"
        ),
    ] = "all",
    executor_type: options.ExecutorType = None,
    workers: options.Workers = None,
    scheduler: options.Scheduler = None,
    slurm: options.Slurm = False,
    overwrite: options.Overwrite = False,
    quiet: options.Quiet = False,
) -> None:
    """Tokenise [BOS] + meco_prefix + text + [EOS], mask BOS and prefix out of the loss."""
    # Imported here, not with the command line: every `gristmill` process (and every local
    # worker it spawns) imports the command line, and the exporter is heavy.
    from gristmill.export import ExportOptions, export_corpus
    from gristmill.export.pack import PACK_MODES, PackMode

    if quiet:
        options.silence_third_party()  # before any worker starts
    if phase not in PHASES:
        raise fail(f"--phase must be all, conditioning or cooldown, not {phase!r}")
    if pack_mode not in PACK_MODES:
        raise fail(f"--pack-mode must be {' or '.join(PACK_MODES)}, not {pack_mode!r}")
    chosen: Literal["all", "conditioning", "cooldown"] = phase  # type: ignore[assignment]
    mode: PackMode = pack_mode  # type: ignore[assignment]
    settings = ExportOptions(
        tokenizer=tokenizer,
        bos_token=bos_token,
        eos_token=eos_token,
        seq_len=seq_len,
        pack_mode=mode,
        phase=chosen,
    )
    with reported():
        executor = options.chosen_executor(None, executor_type, workers, scheduler, slurm)
        summary = export_corpus(
            list(inputs),
            output,
            settings,
            executor=executor,
            overwrite=overwrite,
            progress=not quiet,
            console=console,
        )
    if quiet:
        return
    if summary.already_complete:
        done = f"already complete ({summary.tasks} input tasks)"
    elif summary.tasks_run < summary.tasks:
        done = f"{summary.tasks_run} of {summary.tasks} input tasks tokenised now, the rest before"
    else:
        done = f"{summary.tasks} input tasks tokenised"
    console.print(
        f"{output}: {summary.documents} documents → {summary.sequences} sequences, "
        f"{summary.tokens} of {summary.tokens_in} tokens written "
        f"({summary.tokens_dropped} dropped by packing); {done}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``gristmill export`` to the main app."""
    app.command("export")(export)
