"""A Typer app holding one command module, for testing that command alone."""

from __future__ import annotations

from collections.abc import Callable

import typer


def command_app(register: Callable[[typer.Typer], None]) -> typer.Typer:
    """An app with the module's commands registered, kept sub-commands as in the main app (a
    Typer app with one command and no callback would run it without its name)."""
    application = typer.Typer()
    register(application)

    @application.callback()
    def _group() -> None:
        """Sub-commands, as in the main app."""

    return application
