"""`lm-deluge run --prompt-cache`: breakpoints reach Anthropic's (the mock's) prompt cache,
usage and cost count its reads and writes, and warm-up makes one request write it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lm_deluge_cli.providers.registry import load_registry
from lm_deluge_cli.results import Usage
from tests.cli_runner import RunCli

KEY = "sk-ant-canary-7f3a9c1e5b2d4f6a8c0e"
MODEL = "anthropic:claude-sonnet-4-5"
SYSTEM = " ".join(f"Rule {i}: be exact, brief and kind to the reader." for i in range(150))


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(("warmup", "writers"), [("30", 1), ("0", 40)], ids=["warm-up", "none"])
def test_lines_sharing_a_system_prompt_write_the_cache_once_with_warm_up(
    warmup: str,
    writers: int,
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    tmp_path: Path,
    start_mock_server: Callable[..., tuple[str, Callable[[], None]]],
) -> None:
    url, _ = start_mock_server(latency_s=0.2)
    env = cli_env(ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=url.removesuffix("/v1") + "/anthropic")
    rows = [{"id": i, "system": SYSTEM, "prompt": f"Question {i}?"} for i in range(40)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_cli(
        "run", "-m", MODEL, "-i", "in.jsonl", "-o", "out.jsonl", "--prompt-cache", "system",
        "--prompt-cache-warmup", warmup, "--max-concurrent-requests", "64",
        "--max-requests-per-minute", "0", "--max-tokens-per-minute", "0", "--json",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stdout)
    records = read_records(tmp_path / "out.jsonl")
    wrote = [r for r in records if r["usage"].get("cache_write_tokens")]
    read = [r for r in records if r["usage"].get("cached_input_tokens")]
    assert len(wrote) == writers and len(read) == 40 - writers
    assert summary["cache_write_tokens"] == sum(r["usage"]["cache_write_tokens"] for r in wrote)
    assert summary["cache_read_tokens"] == sum(r["usage"]["cached_input_tokens"] for r in read)
    # Each record's cost prices its reads and writes by the registry.
    model = load_registry().lookup(MODEL)
    for record in records:
        expected = model.cost(Usage.from_record(record["usage"]))
        assert record["cost_usd"] == pytest.approx(expected)
    if writers == 1:
        (writer,) = wrote
        assert writer["cost_usd"] > max(r["cost_usd"] for r in read)
