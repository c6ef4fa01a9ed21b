"""The `lm-deluge` command run by tests: in this process (`run_cli`), or as a real process
(`run_cli_process`) where signals, kills, locks or the process's own start are the point.

Registered as a pytest plugin by the shared conftest. In process, a command gets what a
fresh process would: its own argv, environment, stdin, stdout and stderr, an unresolved
tokenizer and the CLI's logging set up anew; all of it is put back afterwards.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from lm_deluge_cli import tokens
from lm_deluge_cli.cli.app import run_argv

__all__ = ["CliResult", "RunCli", "cli_env", "run_cli", "run_cli_process"]

# Seconds a command may take before the test fails (in process: the worker is ended, with
# every thread's traceback, so a hang never stalls the suite).
TIMEOUT_S = 60


@dataclass(frozen=True)
class CliResult:
    """A finished command: its exit code and what it wrote, as a process's would be."""

    returncode: int
    stdout: bytes
    stderr: bytes


RunCli = Callable[..., CliResult]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a command: this one without provider keys or base URLs, token
    estimates without tiktoken (which would try the network), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env["LM_DELUGE_TOKENIZER"] = "heuristic"
    env.update(extra)
    return env


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    timeout: float = TIMEOUT_S,
) -> CliResult:
    """``lm-deluge *args`` in this process, with `env` as its whole environment (default:
    `cli_env()`) and `stdin` as its input."""
    environment = cli_env() if env is None else env
    changes: dict[str, str | None] = {name: None for name in os.environ if name not in environment}
    changes.update(environment)
    with _as_a_fresh_process(args), CliRunner().isolation(input=stdin, env=changes) as streams:
        out, err, _ = streams
        # To fd 2, this process's stderr: the command's is captured.
        faulthandler.dump_traceback_later(timeout, exit=True, file=2)
        try:
            code = run_argv()
        finally:
            faulthandler.cancel_dump_traceback_later()
            sys.stdout.flush()
            sys.stderr.flush()
        if code is not None and not isinstance(code, int):
            # What Python does with `sys.exit("message")`.
            print(code, file=sys.stderr, flush=True)
            code = 1
        return CliResult(code or 0, out.getvalue(), err.getvalue())


def run_cli_process(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    timeout: float = TIMEOUT_S,
) -> subprocess.CompletedProcess[bytes]:
    """``python -m lm_deluge_cli *args`` as a process, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "lm_deluge_cli", *args],
        env=cli_env() if env is None else env,
        input=stdin,
        capture_output=True,
        timeout=timeout,
    )


@contextlib.contextmanager
def _as_a_fresh_process(args: tuple[str, ...]) -> Iterator[None]:
    """What a command changes or reads once per process, as a new process has it, and put
    back afterwards: argv, the environment (./.env adds to it), the working directory,
    the tokenizer choice, the CLI's loggers, warnings and excepthook, the stop signals."""
    argv, environ, cwd = sys.argv, dict(os.environ), os.getcwd()
    hooks = (warnings.showwarning, sys.excepthook)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    loggers = {name: _logger_state(name) for name in _cli_loggers()}
    tokenizer = (tokens._encoder, tokens._resolved)
    sys.argv = ["lm-deluge", *args]
    tokens._encoder, tokens._resolved = None, False
    try:
        yield
    finally:
        tokens._encoder, tokens._resolved = tokenizer
        for name in _cli_loggers():
            logger = logging.getLogger(name)
            logger.handlers, logger.level, logger.propagate = loggers.get(
                name, ([], logging.NOTSET, True)
            )
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        warnings.showwarning, sys.excepthook = hooks
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
        sys.argv = argv


def _cli_loggers() -> list[str]:
    names = logging.Logger.manager.loggerDict
    return [n for n in names if n == "lm_deluge_cli" or n.startswith("lm_deluge_cli.")]


def _logger_state(name: str) -> tuple[list[logging.Handler], int, bool]:
    logger = logging.getLogger(name)
    return list(logger.handlers), logger.level, logger.propagate


@pytest.fixture(name="cli_env")
def _cli_env_fixture() -> Callable[..., dict[str, str]]:
    """``cli_env(**extra)``: a command's environment, without provider keys, plus `extra`."""
    return cli_env


@pytest.fixture(name="run_cli")
def _run_cli_fixture() -> RunCli:
    """``run_cli(*args, env=, stdin=)`` runs ``lm-deluge *args`` in this process."""
    return run_cli


@pytest.fixture(name="run_cli_process")
def _run_cli_process_fixture() -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """``run_cli_process(*args, env=, stdin=)`` runs ``python -m lm_deluge_cli *args``."""
    return run_cli_process
