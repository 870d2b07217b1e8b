"""``gristmill export``: a curated output → token sequences with a loss mask, for training.

Writes ``sequences.parquet`` and the memory-mapped ``tokens.bin`` / ``loss_mask.bin`` /
``index.npy`` / ``meta.json`` (format in ``gristmill.export.writer``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer
from rich.console import Console

from gristmill.errors import GristmillError
from gristmill.export import ExportOptions, export_corpus
from gristmill.export.pack import PACK_MODES, PackMode

EXIT_CONFIG = 2


def export(
    inputs: Annotated[list[str], typer.Argument(help="curated output directories or files")],
    output: Annotated[Path, typer.Option("--output", "-o", help="export directory")],
    tokenizer: Annotated[
        Optional[str], typer.Option(help="tokenizer.json of the model to train")
    ] = None,
    bos_token: Annotated[Optional[str], typer.Option(help="BOS token (default: detected)")] = None,
    eos_token: Annotated[Optional[str], typer.Option(help="EOS token (default: detected)")] = None,
    seq_len: Annotated[
        Optional[int], typer.Option(min=2, help="pack to this length (default: no packing)")
    ] = None,
    pack_mode: Annotated[
        str,
        typer.Option(
            help="split: documents that overflow a row continue in the next (no token lost); "
            "truncate: every row starts at a document start, overflow dropped"
        ),
    ] = "split",
    phase: Annotated[
        str, typer.Option(help="all | conditioning | cooldown (MeCo trains them in turn)")
    ] = "all",
) -> None:
    """Tokenise [BOS] + meco_prefix + text + [EOS], mask BOS and prefix out of the loss."""
    console = Console(stderr=True)
    if phase not in ("all", "conditioning", "cooldown"):
        console.print(
            f"[red]error:[/red] --phase must be all, conditioning or cooldown, not {phase!r}"
        )
        raise typer.Exit(EXIT_CONFIG)
    if pack_mode not in PACK_MODES:
        console.print(
            f"[red]error:[/red] --pack-mode must be {' or '.join(PACK_MODES)}, not {pack_mode!r}"
        )
        raise typer.Exit(EXIT_CONFIG)
    chosen: Literal["all", "conditioning", "cooldown"] = phase  # type: ignore[assignment]
    mode: PackMode = pack_mode  # type: ignore[assignment]
    options = ExportOptions(
        tokenizer=tokenizer,
        bos_token=bos_token,
        eos_token=eos_token,
        seq_len=seq_len,
        pack_mode=mode,
        phase=chosen,
    )
    try:
        summary = export_corpus(list(inputs), output, options)
    except GristmillError as error:
        console.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(EXIT_CONFIG) from None
    console.print(
        f"{summary.output}: {summary.documents} documents → {summary.sequences} sequences, "
        f"{summary.tokens} of {summary.tokens_in} tokens written "
        f"({summary.tokens_dropped} dropped by packing)",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``gristmill export`` to the main app."""
    app.command("export")(export)
