"""`lm-deluge run` started with stdin, stdout or stderr closed (``<&-``, ``>&-``, ``2>&-``).

A closed stream is not one redirected from /dev/null (``stdin=subprocess.DEVNULL``): the
process starts without that file descriptor at all, so the shell closes it here.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

RUN = [sys.executable, "-m", "lm_deluge_cli", "run", "-m", "mock:fast", "--no-cache"]


def _run_closed(redirections: str, *args: str, env: dict[str, str]) -> tuple[int, list[str]]:
    """Run the CLI with `redirections` (e.g. ``<&-``) applied by a shell; exit code and
    stderr's lines."""
    result = subprocess.run(
        ["sh", "-c", f'exec "$@" {redirections}', "sh", *RUN, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=60,
    )
    return result.returncode, result.stderr.decode().splitlines()


@pytest.mark.parametrize(
    ("redirections", "args", "message"),
    [
        (
            "<&-",
            ("-i", "-", "-o", "out.jsonl"),
            "error: cannot read prompts from stdin: it is closed; pipe the prompts in, "
            "or give -i FILE",
        ),
        (
            ">&-",
            ("-i", "in.jsonl", "-o", "-"),
            "error: cannot write results: stdout is closed; give -o FILE",
        ),
    ],
)
def test_a_closed_stdin_or_stdout_is_one_line_and_exit_2(
    cli_env: Callable[..., dict[str, str]],
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
    redirections: str,
    args: tuple[str, ...],
    message: str,
) -> None:
    write_prompts(tmp_path / "in.jsonl", 3)
    code, stderr = _run_closed(redirections, *args, "--quiet", env=cli_env())
    assert (code, stderr) == (2, [message])


def test_a_run_with_every_standard_stream_closed_still_runs(
    cli_env: Callable[..., dict[str, str]],
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    # The next files opened would take numbers 0-2; the event loop must not trip on them.
    write_prompts(tmp_path / "in.jsonl", 3)
    code, _ = _run_closed("<&- >&- 2>&-", "-i", "in.jsonl", "-o", "out.jsonl", env=cli_env())
    assert code == 0
    assert len((tmp_path / "out.jsonl").read_bytes().splitlines()) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--dry-run",),
            "error: cannot print the dry run's plan: stdout is closed; leave stdout open",
        ),
        (
            ("--dry-run", "--json"),
            "error: cannot print the dry run's plan: stdout is closed; leave stdout open",
        ),
        (
            ("-o", "out.jsonl", "--json"),
            "error: cannot print the --json summary: stdout is closed; drop --json, or leave "
            "stdout open",
        ),
    ],
)
def test_what_would_print_on_a_closed_stdout_is_refused_before_anything_is_sent(
    cli_env: Callable[..., dict[str, str]],
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
    args: tuple[str, ...],
    message: str,
) -> None:
    write_prompts(tmp_path / "in.jsonl", 3)
    code, stderr = _run_closed(">&-", "-i", "in.jsonl", *args, "--quiet", env=cli_env())
    assert (code, stderr) == (2, [message])
    assert not (tmp_path / "out.jsonl").exists()


def test_a_run_writing_to_a_file_with_stdout_closed_ends_cleanly(
    cli_env: Callable[..., dict[str, str]],
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    write_prompts(tmp_path / "in.jsonl", 3)
    code, stderr = _run_closed(">&-", "-i", "in.jsonl", "-o", "out.jsonl", env=cli_env())
    assert code == 0, stderr
    assert not [line for line in stderr if "Traceback" in line or "Exception" in line]
    assert len((tmp_path / "out.jsonl").read_bytes().splitlines()) == 3
