"""`lm-deluge run --samples N`: N answers per line, and a rerun asking for more sends only the
new ones (one request for them all where the API has n, one each where it has not)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli_runner import RunCli

KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
LINES = 20


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("model", "key_env", "url_env", "suffix", "per_line_for_two"),
    [
        ("openai:gpt-4.1-mini", "OPENAI_API_KEY", "OPENAI_BASE_URL", "/v1", 1),
        (
            "anthropic:claude-haiku-4-5-20251001",
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "/anthropic",
            2,
        ),
    ],
    ids=["openai-n", "anthropic-one-each"],
)
def test_three_samples_then_five_sends_two_more_per_line(
    model: str,
    key_env: str,
    url_env: str,
    suffix: str,
    per_line_for_two: int,
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    tmp_path: Path,
    start_mock_server: Callable[..., tuple[str, Callable[[], None]]],
) -> None:
    url, _ = start_mock_server()
    root = url.removesuffix("/v1")
    env = cli_env(**{key_env: KEY, url_env: root + suffix})
    rows = [
        {"id": i, "prompt": f"Name a colour for room {i}.", "temperature": 1.0}
        for i in range(LINES)
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def run(samples: int, output: str) -> tuple[list[dict[str, Any]], int]:
        before = httpx.get(root + "/stats").json()["requests_seen"]
        result = run_cli(
            "run",
            "-m",
            model,
            "-i",
            "in.jsonl",
            "-o",
            output,
            "--samples",
            str(samples),
            "--max-requests-per-minute",
            "0",
            "--max-tokens-per-minute",
            "0",
            "--quiet",
            env=env,
        )
        assert result.returncode == 0, result.stderr.decode()
        sent = httpx.get(root + "/stats").json()["requests_seen"] - before
        return sorted(read_records(tmp_path / output), key=lambda r: r["id"]), sent

    three, sent = run(3, "three.jsonl")
    assert sent == LINES * (1 if per_line_for_two == 1 else 3)
    for record in three:
        assert record["status"] == "ok"
        assert len(record["completions"]) == 3 and record["completion"] == record["completions"][0]
        assert len(record["samples"]) == 3

    five, sent = run(5, "five.jsonl")
    assert sent == LINES * per_line_for_two  # only the two new samples of each line
    for before, after in zip(three, five, strict=True):
        assert after["completions"][:3] == before["completions"]
        assert len(after["completions"]) == 5
        assert not after["cached"]
