"""`--max-concurrent-requests`: a huge value costs nothing until lines use it, and a value
that is not a positive integer is refused naming the flag."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import RunCli

MB = 1024 * 1024


def _limit_memory() -> None:
    # Far above what a short run needs: a run that builds a million of anything dies here.
    resource.setrlimit(resource.RLIMIT_AS, (2048 * MB, 2048 * MB))


def test_a_huge_concurrency_limit_runs_a_short_input_at_once(
    tmp_path: Path,
    write_prompts: Callable[..., list[dict[str, Any]]],
    cli_env: Callable[..., dict[str, str]],
) -> None:
    write_prompts(tmp_path / "in.jsonl", 3)
    args = ["run", "-i", "in.jsonl", "-o", "out.jsonl", "-m", "mock:fast", "--no-cache", "-q"]
    done = subprocess.run(
        [sys.executable, "-m", "lm_deluge_cli", *args, "--max-concurrent-requests", "1000000"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        # Before, 100,000 took 14 s and 930 MB for 3 lines, and 1,000,000 never wrote one.
        timeout=60,
        preexec_fn=_limit_memory,
    )
    assert done.returncode == 0, done.stderr.decode()
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == ["p0", "p1", "p2"]
    assert all(r["status"] == "ok" for r in records)


@pytest.mark.parametrize("value", ["0", "-5", "1.5", "many"])
def test_a_concurrency_that_is_not_a_positive_integer_is_refused_naming_the_flag(
    tmp_path: Path,
    write_prompts: Callable[..., list[dict[str, Any]]],
    run_cli: RunCli,
    value: str,
) -> None:
    write_prompts(tmp_path / "in.jsonl", 1)
    out = tmp_path / "out.jsonl"
    done = run_cli(
        "run", "-i", str(tmp_path / "in.jsonl"), "-o", str(out), "-m", "mock:fast",
        f"--max-concurrent-requests={value}",
    )  # fmt: skip
    assert done.returncode == 2
    assert b"--max-concurrent-requests" in done.stderr
    assert not out.exists()
