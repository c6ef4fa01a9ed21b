"""Fixtures of the crash and fault suites (helpers live in `support.py`)."""

from __future__ import annotations

import functools
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from lm_deluge_cli.config import JobOverrides, load_job
from lm_deluge_cli.runner import JobReport, run_job
from tests.cli_runner import cli_env as command_env
from tests.faults.support import KEY, MODEL, Finished, read_records, write_prompts


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def run_against(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Finished]:
    """``run_against(base_url, prompts=3, max_attempts=1, …)``: write `prompts` prompts and run
    them with `lm_deluge_cli.runner.run_job` (no cache, no rate limits, concurrency 8) against
    an OpenAI-compatible base URL; other keywords are `JobOverrides` fields. A run still
    going after `deadline_s` seconds is cancelled with TimeoutError."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    def run(
        base_url: str, prompts: int = 3, deadline_s: float = 60.0, **overrides: Any
    ) -> Finished:
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
        if not source.exists():
            write_prompts(source, prompts)
        settings: dict[str, Any] = {
            "input": str(source),
            "output": str(output),
            "models": [MODEL],
            "max_requests_per_minute": 0,
            "max_tokens_per_minute": 0,
            "max_concurrent_requests": 8,
            "no_cache": True,
            **overrides,
        }
        job = load_job(None, JobOverrides(**settings))

        async def within_deadline() -> JobReport:
            with anyio.fail_after(deadline_s):
                return await run_job(job)

        started = time.monotonic()
        report = anyio.run(within_deadline)
        return Finished(report, read_records(output), time.monotonic() - started)

    return run


@pytest.fixture
def cli_env() -> Callable[..., dict[str, str]]:
    """``cli_env(**extra)``: a command's environment (tests/cli_runner.py's) holding the
    loopback provider's key."""
    return functools.partial(command_env, OPENAI_API_KEY=KEY)
