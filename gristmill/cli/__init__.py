"""The ``gristmill`` command line (Typer)."""

from gristmill.cli.app import app, main

__all__ = ["app", "main"]
