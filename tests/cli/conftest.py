"""Helpers shared by the `lm-deluge run` tests: write prompts (the command itself is run by
`run_cli` and `run_cli_process`, from tests/cli_runner.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def _write_prompts(path: Path, count: int, start: int = 0) -> list[dict[str, Any]]:
    rows = [{"id": f"p{i}", "prompt": f"question number {i}"} for i in range(start, start + count)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


@pytest.fixture
def write_prompts() -> Callable[..., list[dict[str, Any]]]:
    """Write `count` numbered prompts to `path` as JSONL and return them."""
    return _write_prompts
