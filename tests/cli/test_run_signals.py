"""`lm-deluge run` under SIGTERM and SIGINT: a clean stop that says how to resume."""

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

KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"


def wait_for_requests(url: str, timeout: float = 30.0) -> None:
    """Until the mock server behind `url` has received a request."""
    deadline = time.monotonic() + timeout
    while httpx.get(url.removesuffix("/v1") + "/stats").json()["requests_seen"] == 0:
        assert time.monotonic() < deadline, "no request reached the server"
        time.sleep(0.05)


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sigterm_stops_cleanly_and_prints_resume_command(
    cli_env: Callable[..., dict[str, str]],
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
    start_mock_server: Callable[..., tuple[str, Callable[[], None]]],
) -> None:
    url, _ = start_mock_server(latency_s=0.2)
    write_prompts(tmp_path / "in.jsonl", 200)
    env = cli_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=url)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lm_deluge_cli",
            "run",
            "-m",
            "openai:x",
            "-i",
            "in.jsonl",
            "-o",
            "out.jsonl",
            "--max-concurrent-requests",
            "4",
        ],
        env=env,
        stderr=subprocess.PIPE,
    )
    out = tmp_path / "out.jsonl"
    deadline = time.monotonic() + 20
    while (not out.exists() or out.stat().st_size == 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert b"resume with: lm-deluge run -m openai:x" in stderr
    records = read_records(out)  # every line complete and valid
    assert 0 < len(records) < 200
    assert all(r["status"] == "ok" for r in records)


def test_second_sigint_stops_at_once_with_exit_130(
    cli_env: Callable[..., dict[str, str]],
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
    start_mock_server: Callable[..., tuple[str, Callable[[], None]]],
) -> None:
    url, _ = start_mock_server(latency_s=30)
    write_prompts(tmp_path / "in.jsonl", 20)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lm_deluge_cli",
            "run",
            "-m",
            "openai:x",
            "-i",
            "in.jsonl",
            "-o",
            "out.jsonl",
            "--quiet",
        ],
        env=cli_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=url),
        stderr=subprocess.PIPE,
    )
    # Once requests are in flight (they take 30 s), the first Ctrl-C waits for them…
    wait_for_requests(url)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    # …and the second stops the run at once.
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130, stderr.decode()
    assert b"resume with: lm-deluge run" in stderr
    assert b"Traceback" not in stderr
