"""Fixtures of the bad-input suite: run a job over raw input bytes, in process, on mock:fast."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from lm_deluge_cli.config import JobOverrides, load_job
from lm_deluge_cli.runner import run_job


@dataclass(frozen=True)
class Ran:
    """A finished in-process run: its exit code and every output record."""

    exit_code: int
    records: list[dict[str, Any]]


def run_bytes(data: bytes, **overrides: Any) -> Ran:
    """Write `data` as the input file and run it to the end on mock:fast (no cache)."""
    with tempfile.TemporaryDirectory() as folder:
        source, output = Path(folder) / "in.jsonl", Path(folder) / "out.jsonl"
        source.write_bytes(data)
        settings: dict[str, Any] = {
            "input": str(source),
            "output": str(output),
            "models": ["mock:fast"],
            "no_cache": True,
            # What a line becomes is the subject here, not pacing.
            "max_requests_per_minute": 0,
            "max_tokens_per_minute": 0,
            **overrides,
        }
        job = load_job(None, JobOverrides(**settings))
        report = anyio.run(run_job, job)
        records = [json.loads(line) for line in output.read_bytes().splitlines()]
    return Ran(report.exit_code, records)


@pytest.fixture
def run_input() -> Callable[..., Ran]:
    """``run_input(data, **JobOverrides fields)`` runs raw input bytes in process."""
    return run_bytes
