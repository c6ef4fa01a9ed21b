"""`lm-deluge run --tools-module`: a batch of conversations runs its tool calls with Python
functions, round after round; killed mid-way and run again, it pays for no round twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.cli_runner import RunCli

KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
CONCURRENT = 8
TOOLS = '''
def get_weather(city: str) -> dict:
    """The weather in a city now.

    Args:
        city: The city's name.
    """
    return {"city": city, "temperature": len(city) + 10}


def convert_currency(amount: float, currency: str) -> str:
    """Convert an amount of money to euros."""
    return f"{amount} {currency} is {round(amount * 0.9, 2)} EUR"
'''


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def requests_seen(url: str) -> int:
    seen: int = httpx.get(url.removesuffix("/v1") + "/stats").json()["requests_seen"]
    return seen


def test_agent_loops_run_to_the_end_and_a_killed_run_pays_no_round_twice(
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    tmp_path: Path,
    start_mock_server: Callable[..., tuple[str, Callable[[], None]]],
) -> None:
    # Each conversation calls tools in 1 to 3 rounds, then answers.
    url, _ = start_mock_server(latency_s=0.03, tool_rounds=3)
    (tmp_path / "tools.py").write_text(TOOLS)
    rows = [
        {"id": f"c{i}", "prompt": f"Task {i}: check the weather and the prices for trip {i}."}
        for i in range(100)
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = cli_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=url)
    args = [
        "run",
        "-m",
        "openai:gpt-4.1-mini",
        "-i",
        "in.jsonl",
        "-o",
        "out.jsonl",
        "--tools-module",
        "tools.py",
        "--max-rounds",
        "5",
        "--max-requests-per-minute",
        "0",
        "--max-tokens-per-minute",
        "0",
        "--max-concurrent-requests",
        str(CONCURRENT),
        "--quiet",
    ]
    proc = subprocess.Popen([sys.executable, "-m", "lm_deluge_cli", *args], env=env)
    out = tmp_path / "out.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 25):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first_requests = requests_seen(url)
    finished_first = out.read_bytes().count(b"\n")
    assert 0 < finished_first < 100

    result = run_cli(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stdout)
    records = read_records(out)
    ids = [r["id"] for r in records]
    assert sorted(ids) == sorted(r["id"] for r in rows) and len(ids) == len(set(ids))

    rounds_in_all = 0
    for record in records:
        assert record["status"] == "ok", record["error"]
        rounds = record["rounds"]
        assert 2 <= len(rounds) <= 4  # 1 to 3 rounds of tool calls, then the answer
        assert [r["tool_calls"] > 0 for r in rounds] == [True] * (len(rounds) - 1) + [False]
        transcript = record["transcript"]
        calls = [
            c for m in transcript if m["role"] == "assistant" for c in m.get("tool_calls") or []
        ]
        answered = {m["tool_call_id"] for m in transcript if m["role"] == "tool"}
        assert {c["id"] for c in calls} == answered, "every call has its tool's result"
        tool_messages = [m for m in transcript if m["role"] == "tool"]
        assert all(not m["content"].startswith("Error") for m in tool_messages)
        assert transcript[-1] == {"role": "assistant", "content": record["completion"]}
        assert record["usage"]["input_tokens"] == sum(r["usage"]["input_tokens"] for r in rounds)
        rounds_in_all += len(rounds)

    second_requests = requests_seen(url) - first_requests
    # Rounds answered before the kill came from the cache; only those in flight were sent
    # twice, and those answered while their cache batch was being stored (each loop waits
    # for its round's entry before asking the next): at most one of each per slot.
    assert summary["cached"] > 0
    assert second_requests == summary["requests"]
    assert first_requests + second_requests <= rounds_in_all + 2 * CONCURRENT
