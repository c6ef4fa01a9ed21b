"""`lm-deluge run` with the result cache, and `lm-deluge cache`: a rerun costs nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.cli_runner import CliResult, RunCli

# These runs are about what the cache holds, not pacing: no limiter to wait on.
UNPACED = ["--max-requests-per-minute", "0", "--max-tokens-per-minute", "0"]


def summary(proc: CliResult) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr.decode()
    result: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return result


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def job(tmp_path: Path, write_prompts: Callable[..., Any]) -> list[str]:
    write_prompts(tmp_path / "in.jsonl", 40)
    return ["run", "-m", "mock:fast", "-i", "in.jsonl", "--quiet", "--json", *UNPACED]


def test_a_repeated_run_sends_nothing_and_changes_send_everything(
    job: list[str], run_cli: RunCli, tmp_path: Path
) -> None:
    first = summary(run_cli(*job, "-o", "a.jsonl"))
    assert (first["requests"], first["cached"]) == (40, 0)
    assert first["cache"]["backend"] == "sqlite"
    assert first["cache"]["location"] == str(tmp_path / ".lm-deluge-cache" / "results.sqlite")
    again = summary(run_cli(*job, "-o", "b.jsonl"))
    assert (again["requests"], again["cached"], again["cost_usd"]) == (0, 40, 0.0)
    a, b = records(tmp_path / "a.jsonl"), records(tmp_path / "b.jsonl")
    assert [r["completion"] for r in a] == [r["completion"] for r in b]
    assert all(r["cached"] for r in b) and not any(r["cached"] for r in a)
    # Another model or temperature is another request.
    other = summary(run_cli(*job, "-o", "c.jsonl", "--temperature", "0.5"))
    assert (other["requests"], other["cached"]) == (40, 0)
    model = summary(run_cli(*[a.replace("mock:fast", "mock:standard") for a in job], "-o", "d"))
    assert (model["requests"], model["cached"]) == (40, 0)


@pytest.mark.parametrize(
    ("flags", "requests", "cached"),
    [
        (["--no-cache"], 40, 0),
        (["--refresh-cache"], 40, 0),
        (["--cache-read-only"], 0, 40),
    ],
)
def test_cache_flags(
    job: list[str], run_cli: RunCli, flags: list[str], requests: int, cached: int
) -> None:
    summary(run_cli(*job, "-o", "first.jsonl"))
    result = summary(run_cli(*job, "-o", "second.jsonl", *flags))
    assert (result["requests"], result["cached"]) == (requests, cached)


def test_identical_lines_share_one_request(run_cli: RunCli, tmp_path: Path) -> None:
    lines = [{"id": i, "prompt": f"the same {i % 10}"} for i in range(1000)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(row) + "\n" for row in lines))
    result = summary(
        run_cli(
            "run",
            "-m",
            "mock:fast",
            "-i",
            "in.jsonl",
            "-o",
            "out",
            "-q",
            "--json",
            "--no-cache",
            *UNPACED,
        )
    )
    assert (result["ok"], result["requests"], result["deduplicated"]) == (1000, 10, 990)
    assert result["cache"] is None


def test_a_sqlite_cache_and_the_cache_command(job: list[str], run_cli: RunCli) -> None:
    summary(run_cli(*job, "-o", "a.jsonl", "--cache", "answers.sqlite"))
    again = summary(run_cli(*job, "-o", "b.jsonl", "--cache", "answers.sqlite"))
    assert (again["cached"], again["cache"]["backend"]) == (40, "sqlite")
    stats = run_cli("cache", "stats", "--cache", "answers.sqlite", "--json")
    assert json.loads(stats.stdout)["entries"] == 40
    cleared = run_cli("cache", "clear", "--cache", "answers.sqlite", "--json")
    assert json.loads(cleared.stdout)["removed"] == 40
    after = summary(run_cli(*job, "-o", "c.jsonl", "--cache", "answers.sqlite"))
    assert after["requests"] == 40


def test_the_default_cache_is_where_cache_path_says(run_cli: RunCli, tmp_path: Path) -> None:
    shown = run_cli("cache", "path").stdout.decode().strip()
    assert shown == str(tmp_path / ".lm-deluge-cache" / "results.sqlite")


def test_a_cache_that_cannot_be_opened_warns_once_and_the_run_goes_on(
    job: list[str], run_cli: RunCli, tmp_path: Path
) -> None:
    (tmp_path / "not-a-dir").write_text("a file where the cache directory would go")
    proc = run_cli(*job, "-o", "out.jsonl", "--cache", "not-a-dir/cache")
    result = summary(proc)
    assert (result["ok"], result["requests"]) == (40, 40)
    assert result["cache"]["available"] is False
    warnings = [line for line in proc.stderr.decode().splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "continues without a cache" in warnings[0]


def test_shards_together_run_every_line_once(
    run_cli: RunCli, tmp_path: Path, write_prompts: Callable[..., Any]
) -> None:
    rows = write_prompts(tmp_path / "in.jsonl", 60)
    base = ["run", "-m", "mock:fast", "-i", "in.jsonl", "-q", "--json", "--no-cache", *UNPACED]
    parts = [summary(run_cli(*base, "-o", f"part{k}.jsonl", "--shard", f"{k}/3")) for k in range(3)]
    ids = [r["id"] for k in range(3) for r in records(tmp_path / f"part{k}.jsonl")]
    assert sorted(ids) == sorted(row["id"] for row in rows)
    assert sum(p["ok"] for p in parts) == 60 and all(p["ok"] > 5 for p in parts)
    plan = run_cli(*base[:5], "--dry-run", "--json", "--shard", "1/3")
    assert json.loads(plan.stdout)["total"]["requests"] == parts[1]["ok"]


WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.mark.parametrize("flags", [[], ["--samples", "3", "--logprobs"]], ids=["one", "samples"])
def test_a_rerun_writes_the_records_the_first_run_wrote_but_for_their_cost(
    run_cli: RunCli, tmp_path: Path, flags: list[str]
) -> None:
    lines: list[dict[str, Any]] = [
        {"id": i, "prompt": f"question {i} \u00e9\u2028", "metadata": {"n": [i, None, "x"]}}
        for i in range(30)
    ]
    lines += [{"id": f"s{i}", "prompt": f'and "{i}"'} for i in range(10)]
    lines += [
        {
            "id": f"t{i}",
            "messages": [{"role": "user", "content": f"weather {i}?"}],
            "tools": [WEATHER],
        }
        for i in range(10)
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    job = ["run", "-m", "mock:fast", "-i", "in.jsonl", "--quiet", "--json", *flags, *UNPACED]
    assert summary(run_cli(*job, "-o", "first.jsonl"))["requests"] > 0
    assert summary(run_cli(*job, "-o", "again.jsonl"))["requests"] == 0

    def by_id(name: str) -> dict[Any, bytes]:
        return {
            json.loads(line)["id"]: line for line in (tmp_path / name).read_bytes().splitlines()
        }

    first, again = by_id("first.jsonl"), by_id("again.jsonl")
    assert first.keys() == again.keys() and len(again) == len(lines)
    assert any(b'"tool_calls"' in line for line in again.values())
    free = {"cost_usd": 0.0, "attempts": 0, "latency_s": 0.0, "cached": True}
    for id_, line in first.items():
        # Byte for byte what the first run wrote, key order and number spelling included,
        # but for what the line cost this time.
        assert again[id_] == orjson.dumps({**orjson.loads(line), **free}), id_
