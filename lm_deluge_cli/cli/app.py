"""The `lm-deluge` command: one Typer app, and the one edge where errors become exit codes."""

from __future__ import annotations

import logging
import sys

import typer
from dotenv import load_dotenv
from rich.console import Console

from lm_deluge_cli.cli import cache, export, mock_server, models, run, status
from lm_deluge_cli.errors import EXIT_INTERRUPTED, LMDelugeError

__all__ = ["app", "main"]

app = typer.Typer(
    name="lm-deluge",
    help="Run very large batches of prompts through LLM APIs within their rate limits, resumably.",
    no_args_is_help=True,
    add_completion=False,
    # Locals in tracebacks can hold API keys.
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)
app.command("run", no_args_is_help=True)(run.run)
app.command("status")(status.status)
app.command("export")(export.export)
app.command("models")(models.models)
app.command("cache", no_args_is_help=True)(cache.cache)
app.command("mock-server")(mock_server.mock_server)


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("lm_deluge_cli")
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    root.propagate = False


def _find_error(exc: BaseException) -> LMDelugeError | None:
    """Our error inside an exception group (task groups wrap what their tasks raise)."""
    if isinstance(exc, LMDelugeError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find_error(inner)
            if found is not None:
                return found
    return None


def main() -> None:
    """Console-script entry point."""
    # Keys may live in ./.env; real environment variables win.
    load_dotenv(dotenv_path=".env", override=False)
    _configure_logging()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except BaseException as exc:
        error = _find_error(exc)
        if error is None:
            raise
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"error: {error}", markup=False)
        sys.exit(error.exit_code)
