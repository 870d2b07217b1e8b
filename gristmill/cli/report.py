"""``gristmill report``: a run's output directory → one self-contained HTML page.

The page (``OUTPUT/_run/report.html`` unless ``--output`` says otherwise) shows the curation
funnel, the score distributions with their cuts, data age, the domain, source and language mix,
ProX's edits, dedup clusters, MeCo's phases and samples of what each stage removed; it needs no
network to view. The path goes to stdout, so that ``xdg-open "$(gristmill report out)"`` works.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gristmill.cli.errors import reported


def report(
    output_dir: Annotated[str, typer.Argument(help="the output directory of a run")],
    output: Annotated[
        Optional[str],
        typer.Option("--output", "-o", help="where to write the page (default: OUTPUT_DIR/_run/)"),
    ] = None,
    samples: Annotated[
        int, typer.Option(min=0, max=50, help="documents shown per stage and drop reason")
    ] = 3,
) -> None:
    """Write the run's HTML report: funnel, score histograms, data age, mix, ProX edits,
    dedup clusters, MeCo phases and samples of the dropped documents."""
    from gristmill.report import write_report

    with reported():
        path = write_report(output_dir, output, samples=samples)
    typer.echo(path)


def register(app: typer.Typer) -> None:
    """Add ``gristmill report`` to the main app."""
    app.command("report")(report)
