"""`lm-deluge run` limits: auto rate limits learned from headers, and the --max-cost cap."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli_runner import RunCli

KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def server_stats(url: str) -> dict[str, int]:
    stats: dict[str, int] = httpx.get(url.removesuffix("/v1") + "/stats").json()
    return stats


def test_auto_limits_are_learned_from_the_headers_and_paced_at(
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
    start_mock_server: Callable[..., tuple[str, Callable[[], None]]],
) -> None:
    url, _ = start_mock_server(requests_per_minute=1200, burst_s=1, latency_s=0.2)
    write_prompts(tmp_path / "in.jsonl", 100)
    result = run_cli(
        "run",
        "-m",
        "openai:gpt-4.1-mini",
        "-i",
        "in.jsonl",
        "-o",
        "out.jsonl",
        "--max-requests-per-minute",
        "auto",
        "--max-tokens-per-minute",
        "auto",
        "--max-concurrent-requests",
        "32",
        "--json",
        env=cli_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=url),
    )
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stdout)
    assert summary["ok"] == 100
    # The mock server reports a requests limit only: tokens are not limited.
    assert summary["learned_limits"] == {
        "openai:gpt-4.1-mini": {
            "requests_per_minute": 1200.0,
            "tokens_per_minute": None,
            "source": "headers",
        }
    }
    stderr = result.stderr.decode()
    assert stderr.count("learned limits for openai:gpt-4.1-mini: 1,200 requests/min") == 1
    stats = server_stats(url)
    assert stats["rate_limited"] == 0 and stats["requests_seen"] == 100
    # The server admits a second's burst (20) and then 20/s: 4 s plus one latency at best.
    # One request at a time would take 20 s; unlimited would have drawn 429s.
    ideal = (100 - 20) / 20 + 0.2
    assert summary["wall_time_s"] < ideal * 1.6, summary["wall_time_s"]


def test_auto_limits_without_headers_fall_back_to_the_default_and_say_so(
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    write_prompts(tmp_path / "in.jsonl", 3)
    result = run_cli(
        "run",
        "-m",
        "mock:fast",
        "-i",
        "in.jsonl",
        "-o",
        "out.jsonl",
        "--max-requests-per-minute",
        "auto",
        "--json",
    )
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stdout)
    assert summary["learned_limits"] == {
        "mock:fast": {"requests_per_minute": 60.0, "source": "default"}
    }
    assert result.stderr.decode().count("sends no rate-limit headers") == 1


def test_max_cost_stops_the_run_and_a_higher_cap_resumes(
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    write_prompts(tmp_path / "in.jsonl", 200)
    (tmp_path / "job.toml").write_text(
        'input = "in.jsonl"\noutput = "out.jsonl"\n'
        '[[models]]\nname = "mock:standard"\nmock = { latency_s = 0.02 }\n'
        "[limits]\nmax_cost = 0.0005\nmax_concurrent_requests = 8\n"
        'max_requests_per_minute = "unlimited"\nmax_tokens_per_minute = "unlimited"\n'
        "[sampling]\nmax_new_tokens = 64\n"
    )
    first = run_cli("run", "job.toml", "--json")
    # Stopped with lines left: never 0, whatever was written is ok.
    assert first.returncode == 4, first.stderr.decode()
    summary = json.loads(first.stdout)
    assert summary["exit_code"] == 4
    assert summary["cost_cap_reached"] is True
    assert summary["interrupted"] is False
    assert summary["max_cost_usd"] == 0.0005
    assert 0 < summary["ok"] < 200
    assert summary["cost_toward_cap_usd"] <= 0.0005
    assert summary["remaining"] == 200 - summary["ok"]
    assert b"resume with a higher --max-cost" in first.stderr
    records = read_records(tmp_path / "out.jsonl")
    assert len(records) == summary["ok"]
    assert sum(r["cost_usd"] for r in records) == pytest.approx(summary["cost_usd"], abs=1e-6)

    # The cap counts what earlier runs spent: the same cap sends nothing more.
    again = run_cli("run", "job.toml")
    assert again.returncode == 4, again.stderr.decode()
    assert b"stopped by the spending cap" in again.stderr
    assert b"requests: 0 " in again.stderr
    assert b"resume with a higher --max-cost" in again.stderr
    assert json.loads((tmp_path / "out.jsonl.run.json").read_text())["last_run"]["exit_code"] == 4
    assert len(read_records(tmp_path / "out.jsonl")) == len(records)

    higher = run_cli("run", "job.toml", "--max-cost", "1", "--json")
    assert higher.returncode == 0, higher.stderr.decode()
    final = json.loads(higher.stdout)
    assert final["cost_cap_reached"] is False
    assert final["ok"] + final["skipped_already_done"] == 200
    ids = [r["id"] for r in read_records(tmp_path / "out.jsonl")]
    assert sorted(ids) == sorted(f"p{i}" for i in range(200))


def test_max_cost_with_an_unpriced_model_is_refused_before_any_request(
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
    start_mock_server: Callable[..., tuple[str, Callable[[], None]]],
) -> None:
    url, _ = start_mock_server()
    write_prompts(tmp_path / "in.jsonl", 3)
    result = run_cli(
        "run",
        "-m",
        "mock:fast",
        "-m",
        "openai:house-model",
        "-i",
        "in.jsonl",
        "-o",
        "out.jsonl",
        "--max-cost",
        "5",
        env=cli_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=url),
    )
    assert result.returncode == 2
    assert b"openai:house-model" in result.stderr
    assert b"max-cost" in result.stderr
    assert b"Traceback" not in result.stderr
    assert server_stats(url)["requests_seen"] == 0
    assert not (tmp_path / "out.jsonl").exists()


def test_a_line_that_can_never_fit_the_tokens_per_minute_is_refused_and_holds_nothing_up(
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    # 25,000 tokens at 20,000 tokens/min: sent, it put the limiter so deep in debt that the
    # small lines behind it waited over a minute, the progress showing 0 requests/min.
    rows = [{"id": "big", "prompt": "abcd" * 25_000}]
    rows += [{"id": f"small{i}", "prompt": f"question {i}"} for i in range(5)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out.jsonl"
    result = run_cli(
        "run",
        "-m",
        "mock:fast",
        "-i",
        str(tmp_path / "in.jsonl"),
        "-o",
        str(out),
        "--max-tokens-per-minute",
        "20000",
        "--no-cache",
        env=cli_env(),
        timeout=30,
    )
    assert result.returncode == 1, result.stderr.decode()
    records = {record["id"]: record for record in read_records(out)}
    assert all(records[f"small{i}"]["status"] == "ok" for i in range(5))
    big = records["big"]
    assert big["status"] == "error" and big["attempts"] == 0
    assert big["error"]["type"] == "invalid_input"
    message = big["error"]["message"]
    assert "~25," in message and "20,000 tokens/min" in message
    assert "--max-tokens-per-minute" in message and "shorten the line" in message
    assert "1 invalid_input" in result.stderr.decode()


def test_answers_longer_than_the_context_window_are_refused_and_not_priced(
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    # gpt-4o's context window is 128,000 tokens: every request was sent and refused, and the
    # dry run priced 100 million output tokens a line.
    write_prompts(tmp_path / "in.jsonl", 3)
    args = [
        "-m",
        "openai:gpt-4o",
        "-i",
        str(tmp_path / "in.jsonl"),
        "--max-new-tokens",
        "100000000",
    ]
    dry = run_cli("run", *args, "--dry-run", "--json", env=cli_env())
    assert dry.returncode == 2, dry.stdout.decode()
    assert dry.stdout == b""
    env = cli_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    run = run_cli("run", *args, "-o", str(tmp_path / "out.jsonl"), env=env)
    assert run.returncode == 2
    for stderr in (dry.stderr.decode(), run.stderr.decode()):
        assert "100,000,000" in stderr and "context window" in stderr and "128,000" in stderr
        assert "lower max_new_tokens" in stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_a_line_taking_much_of_a_minute_s_tokens_is_named_in_the_progress(
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    # 12,000 tokens of 20,000 tokens/min fit, but the lines after it would wait ~38 s with
    # 0 requests/min and nothing said; the progress names it while its answer is awaited.
    (tmp_path / "in.jsonl").write_text(json.dumps({"id": "big", "prompt": "abcd" * 12_000}) + "\n")
    (tmp_path / "job.toml").write_text(
        'input = "in.jsonl"\noutput = "out.jsonl"\n[[models]]\nname = "mock:slow"\n'
        "mock = { latency_s = 1.5, latency_jitter_s = 0 }\n"
        "[limits]\nmax_tokens_per_minute = 20000\n"
    )
    result = run_cli(
        "run", str(tmp_path / "job.toml"), env=cli_env(LM_DELUGE_PROGRESS_INTERVAL="0.2")
    )
    assert result.returncode == 0, result.stderr.decode()
    lines = [x for x in result.stderr.decode().splitlines() if x.startswith("progress:")]
    named = [x for x in lines if " big_line=1:" in x]
    assert named, lines
    assert named[0].split(" big_line=")[1].startswith("1:12")
    assert "/20000tpm:" in named[0] and named[0].endswith("s")
