"""The `lm-deluge` command: one Typer app, and the one edge where errors become exit codes."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings
from typing import Any, TextIO

import typer
from dotenv import load_dotenv
from rich.console import Console
from typer.core import TyperGroup

from lm_deluge_cli.cli.stop_signals import FinalCode, exit_on_signal
from lm_deluge_cli.errors import EXIT_INTERRUPTED, LMDelugeError

__all__ = ["app", "main", "run_argv"]

_HELP = "Run very large batches of prompts through LLM APIs within their rate limits, resumably."
# name → (module, function, shows help when given no arguments), in the order `--help`
# lists them. A command's module is imported when the command runs (or `--help` lists
# it): `lm-deluge run` does not load the toolkit, embeddings or the mock server.
_COMMANDS: dict[str, tuple[str, str, bool]] = {
    "run": ("run", "run", True),
    "status": ("status", "status", False),
    "export": ("export", "export", False),
    "models": ("models", "models", False),
    "cache": ("cache", "cache", True),
    "mock-server": ("mock_server", "mock_server", False),
    # The toolkit: each runs a task through the same engine as run.
    "extract": ("extract", "extract", True),
    "translate": ("translate", "translate", True),
    "score": ("score", "score", True),
    # Many texts per request: vectors and relevance scores.
    "embed": ("embed", "embed", True),
    "rerank": ("rerank", "rerank", True),
}


def _typer(**settings: Any) -> typer.Typer:
    return typer.Typer(
        add_completion=False,
        # Locals in tracebacks can hold API keys.
        pretty_exceptions_show_locals=False,
        rich_markup_mode=None,
        **settings,
    )


class _Commands(TyperGroup):
    """The commands, each built from its module when first asked for."""

    # (Typer's click types are its own private copy's: `Any` stands for them here.)
    def list_commands(self, ctx: Any) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in _COMMANDS:
            return None
        module, function, help_when_bare = _COMMANDS[cmd_name]
        one = _typer()
        target = getattr(importlib.import_module(f"lm_deluge_cli.cli.{module}"), function)
        one.command(cmd_name, no_args_is_help=help_when_bare)(target)
        command = typer.main.get_command(one)
        command.name = cmd_name
        return command


app = _typer(name="lm-deluge", help=_HELP, no_args_is_help=True, cls=_Commands)


@app.callback()
def _root() -> None:
    """Run very large batches of prompts through LLM APIs within their rate limits, resumably."""


class _LowercaseLevel(logging.Formatter):
    """``warning: …``, ``error: …``: the style of every message the CLI prints itself."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.message}"


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LowercaseLevel())
    root = logging.getLogger("lm_deluge_cli")
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    root.propagate = False
    # A library's own warnings (Pillow's about a huge image, …) print in the same style,
    # without the file and line they came from.
    warnings.showwarning = _show_warning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    logging.getLogger("lm_deluge_cli").warning("%s", message)


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


def _fill_closed_standard_fds() -> None:
    """Put /dev/null where a standard stream was closed (``<&-``, ``>&-``).

    Otherwise the next file opened takes its number: the event loop (libuv) aborts when it
    closes one of its own there, and what is meant for that stream lands in the file.
    ``sys.stdin`` / ``sys.stdout`` stay None, so ``-i -`` and ``-o -`` still say it is closed.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def main() -> None:
    """Console-script entry point."""
    _fill_closed_standard_fds()
    final = FinalCode()
    # Until a command handles them itself, Ctrl-C and SIGTERM end it with 130 (not click's
    # "Aborted!" and 1, nor SIGTERM's silent 143).
    exit_on_signal(EXIT_INTERRUPTED)
    code = run_argv()
    # The outcome is decided (and a run's manifest records it): a signal while the
    # process ends must not turn it into another code.
    final.keep(code)
    sys.exit(code)


def run_argv() -> int | str | None:
    """Run the command line in ``sys.argv`` to its exit code (a SystemExit code), our errors
    printed as one line. The process around it (its signals, its final code) is `main`'s,
    so tests run commands through this in their own process."""
    # Keys may live in ./.env; real environment variables win.
    load_dotenv(dotenv_path=".env", override=False)
    _configure_logging()
    try:
        app()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except SystemExit as exc:
        return exc.code
    except BaseException as exc:
        error = _find_error(exc)
        if error is None:
            raise
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"error: {error}", markup=False)
        return error.exit_code
    return 0
