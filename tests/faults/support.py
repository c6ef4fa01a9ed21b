"""Helpers for the crash and fault suites: the prompts they write and the answers to expect
(the loopback mock provider they run against is tests/loopback.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_deluge_cli.mock.wire import reply_text
from lm_deluge_cli.runner import JobReport

KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
MODEL = "openai:gpt-4.1-mini"
WIRE_ID = "gpt-4.1-mini"
# The job's default max_new_tokens, which the mock cuts its answers at.
MAX_NEW_TOKENS = 512


def prompt_text(i: int) -> str:
    return f"question number {i}"


def expected_completion(i: int, max_tokens: int = MAX_NEW_TOKENS) -> str:
    """What the mock answers prompt `i` (as `write_prompts` writes it) from the job's model."""
    text, _, _ = reply_text([{"role": "user", "content": prompt_text(i)}], WIRE_ID, max_tokens)
    return text


def write_prompts(path: Path, count: int) -> list[str]:
    """`count` prompts with ids p0, p1, …; returns the ids."""
    rows = [{"id": f"p{i}", "prompt": prompt_text(i)} for i in range(count)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return [row["id"] for row in rows]


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every line of an output, each of which must be valid JSON."""
    return [json.loads(line) for line in path.read_bytes().splitlines()]


@dataclass(frozen=True)
class Finished:
    """A job run to its end in this process."""

    report: JobReport
    records: list[dict[str, Any]]
    seconds: float

    @property
    def summary(self) -> dict[str, Any]:
        """The --json summary, read like the records: as JSON."""
        return self.report.to_dict()
