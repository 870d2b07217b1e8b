"""Exit codes and error reporting shared by every command: one clear line, never a traceback.

Exit codes: 0 success; 1 the work ran but something failed (tasks, a step; the rest is
done); 2 the configuration, the input or the output is wrong and nothing ran; 75 (EX_TEMPFAIL)
a file the next step needs is not written yet, try again later; 130 interrupted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from gristmill.errors import (
    ConfigError,
    GristmillError,
    InputError,
    NotReadyError,
    PipelineValidationError,
)

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_WAITING = 75
EXIT_INTERRUPTED = 130

console = Console(stderr=True, soft_wrap=True)


@contextmanager
def reported() -> Iterator[None]:
    """Turn gristmill's own errors (and OS errors on the user's files) into one line and an
    exit code; a programming error still shows its traceback."""
    try:
        yield
    except NotReadyError as error:
        console.print(f"waiting: {escape(str(error))}", highlight=False)
        raise typer.Exit(EXIT_WAITING) from None
    except (ConfigError, PipelineValidationError, InputError) as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
        raise typer.Exit(EXIT_CONFIG) from None
    except GristmillError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        message = escape(f"{where}{error.strerror or error}")
        console.print(f"[red]error:[/red] {message}", highlight=False)
        raise typer.Exit(EXIT_CONFIG) from None
    except KeyboardInterrupt:
        console.print("interrupted: a rerun of the same command resumes", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def fail(message: str, code: int = EXIT_CONFIG) -> typer.Exit:
    """Print one error line and give the exit to raise (for checks a command makes itself)."""
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)
