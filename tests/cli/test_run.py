"""`lm-deluge run` end to end, in process, against the loopback mock server; a real process
where stdin is a device, and for the mock-server command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from lm_deluge_cli.mock.simulator import mock_completion
from tests.cli_runner import RunCli

KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def server_stats(url: str) -> dict[str, int]:
    stats: dict[str, int] = httpx.get(url.removesuffix("/v1") + "/stats").json()
    return stats


def expected_completion(prompt: str, model: str) -> str:
    return mock_completion([{"role": "user", "content": prompt}], model)


def test_flags_only_run_on_mock(
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    rows = write_prompts(tmp_path / "in.jsonl", 25)
    result = run_cli("run", "-m", "mock:fast", "-i", "in.jsonl", "-o", "out.jsonl")
    assert result.returncode == 0, result.stderr.decode()
    records = read_records(tmp_path / "out.jsonl")
    assert sorted(r["id"] for r in records) == sorted(r["id"] for r in rows)
    by_id = {r["id"]: r for r in records}
    first = by_id["p0"]
    assert first["status"] == "ok"
    assert first["completion"] == expected_completion("question number 0", "fast")
    assert set(first) >= {
        "id",
        "status",
        "model",
        "completion",
        "finish_reason",
        "usage",
        "cost_usd",
        "attempts",
        "latency_s",
        "cached",
        "error",
        "metadata",
    }
    assert first["usage"]["input_tokens"] > 0
    assert first["cost_usd"] > 0
    assert b"results: out.jsonl" in result.stderr


def test_job_file_against_loopback_server_honours_limits(
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
    start_mock_server: Callable[..., tuple[str, Callable[[], None]]],
) -> None:
    url, _ = start_mock_server(requests_per_minute=1200, burst_s=1.0, api_key=KEY)
    write_prompts(tmp_path / "prompts.jsonl", 60)
    (tmp_path / "job.toml").write_text(
        f"""
input = "prompts.jsonl"
output = "results.jsonl"
[[models]]
name = "openai:gpt-4.1-mini"
base_url = "{url}"
[limits]
max_requests_per_minute = 1200
max_tokens_per_minute = "unlimited"
max_concurrent_requests = 32
"""
    )
    started = time.monotonic()
    result = run_cli("run", "job.toml", "--json", env=cli_env(OPENAI_API_KEY=KEY))
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stdout)
    assert summary["ok"] == 60 and summary["failed"] == 0
    stats = server_stats(url)
    assert stats["rate_limited"] == 0
    assert stats["requests_seen"] == 60
    # 60 requests at 20/s with half a second of burst cannot finish much faster than 2.5 s.
    assert elapsed > 2.0
    assert KEY.encode() not in (tmp_path / "results.jsonl").read_bytes()
    assert KEY.encode() not in result.stderr + result.stdout


def test_bad_lines_become_error_records_with_line_numbers(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_bytes(
        b'{"id": "a", "prompt": "fine"}\n'
        b"not json at all\n"
        b"\n"
        b'{"id": "b", "messages": []}\n'
        b'{"id": "a", "prompt": "duplicate"}\n'
        b'{"id": "c", "prompt": "also fine"}'
    )
    result = run_cli("run", "-m", "mock:fast", "-i", "in.jsonl", "-o", "out.jsonl")
    assert result.returncode == 1
    records = read_records(tmp_path / "out.jsonl")
    ok = {r["id"] for r in records if r["status"] == "ok"}
    assert ok == {"a", "c"}
    bad = {r["line"]: r for r in records if r["status"] == "error"}
    assert set(bad) == {2, 4, 5}
    assert all(r["error"]["type"] == "invalid_input" for r in bad.values())
    assert "line 2" in bad[2]["error"]["message"]
    assert "duplicate" in bad[5]["error"]["message"]
    # A rerun reports nothing twice and sends nothing; the bad lines' records still count.
    again = run_cli("run", "-m", "mock:fast", "-i", "in.jsonl", "-o", "out.jsonl", "--json")
    assert again.returncode == 1
    assert json.loads(again.stdout)["requests"] == 0
    assert len(read_records(tmp_path / "out.jsonl")) == len(records)


def test_stdin_to_stdout(run_cli: RunCli, tmp_path: Path) -> None:
    lines = b"".join(
        json.dumps({"id": i, "prompt": f"piped {i}"}).encode() + b"\n" for i in range(10)
    )
    result = run_cli("run", "-m", "mock:fast", "-i", "-", "-o", "-", stdin=lines)
    assert result.returncode == 0, result.stderr.decode()
    records = [json.loads(x) for x in result.stdout.splitlines()]
    assert sorted(r["id"] for r in records) == list(range(10))
    assert all(r["status"] == "ok" for r in records)


def test_wrong_key_fails_fast_with_exit_3(
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
    start_mock_server: Callable[..., tuple[str, Callable[[], None]]],
) -> None:
    url, _ = start_mock_server(api_key="sk-the-right-one-123456")
    write_prompts(tmp_path / "in.jsonl", 2000)
    result = run_cli(
        "run",
        "-m",
        "openai:gpt-4.1-mini",
        "-i",
        "in.jsonl",
        "-o",
        "out.jsonl",
        "--max-requests-per-minute",
        "0",
        "--max-concurrent-requests",
        "8",
        env=cli_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=url),
    )
    assert result.returncode == 3, result.stderr.decode()
    assert b"check OPENAI_API_KEY" in result.stderr
    records = read_records(tmp_path / "out.jsonl")
    assert records and all(r["error"]["status_code"] == 401 for r in records)
    assert all(r["error"]["type"] == "authentication_error" for r in records)
    # Doomed requests stop at once: only what was in flight was sent.
    assert server_stats(url)["requests_seen"] <= 16
    assert KEY.encode() not in result.stderr + (tmp_path / "out.jsonl").read_bytes()


def test_missing_key_is_a_usage_error_before_any_request(
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    write_prompts(tmp_path / "in.jsonl", 3)
    result = run_cli("run", "-m", "openai:gpt-4.1-mini", "-i", "in.jsonl", "-o", "out.jsonl")
    assert result.returncode == 2
    assert b"OPENAI_API_KEY" in result.stderr
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    ("job", "needle"),
    [
        (
            'input = "in.jsonl"\noutput = "o.jsonl"\n[[models]]\nname = "mock:fast"\n'
            "[limits]\nmax_rpm = 5\n",
            b"limits.max_rpm",
        ),
        (
            'input = "in.jsonl"\noutput = "o.jsonl"\n[[models]]\nname = "mock:fast"\n'
            '[limits]\nmax_attempts = "five"\n',
            b"max_attempts",
        ),
        (
            'input = "missing.jsonl"\noutput = "o.jsonl"\n[[models]]\nname = "mock:fast"\n',
            b"missing.jsonl",
        ),
        ('input = "in.jsonl"\noutput = "o.jsonl"\n[[models]]\nname = "nope:x"\n', b"nope"),
    ],
)
def test_config_errors_exit_2_naming_the_problem(
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
    job: str,
    needle: bytes,
) -> None:
    write_prompts(tmp_path / "in.jsonl", 1)
    (tmp_path / "job.toml").write_text(job)
    result = run_cli("run", "job.toml")
    assert result.returncode == 2, result.stderr.decode()
    assert needle in result.stderr
    assert b"Traceback" not in result.stderr
    assert not (tmp_path / "o.jsonl").exists()


def test_keys_are_read_from_dotenv_in_the_working_directory(
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
    start_mock_server: Callable[..., tuple[str, Callable[[], None]]],
) -> None:
    url, _ = start_mock_server(api_key=KEY)
    write_prompts(tmp_path / "in.jsonl", 3)
    (tmp_path / ".env").write_text(f"OPENAI_API_KEY={KEY}\nOPENAI_BASE_URL={url}\n")
    result = run_cli("run", "-m", "openai:gpt-4.1-mini", "-i", "in.jsonl", "-o", "out.jsonl")
    assert result.returncode == 0, result.stderr.decode()
    assert all(r["status"] == "ok" for r in read_records(tmp_path / "out.jsonl"))


def test_plain_progress_lines_when_not_a_terminal(
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    write_prompts(tmp_path / "in.jsonl", 12)
    (tmp_path / "job.toml").write_text(
        'input = "in.jsonl"\noutput = "out.jsonl"\n[[models]]\nname = "mock:slow"\n'
        "mock = { latency_s = 0.2 }\n[limits]\nmax_concurrent_requests = 1\n"
    )
    result = run_cli("run", "job.toml", env=cli_env(LM_DELUGE_PROGRESS_INTERVAL="0.5"))
    assert result.returncode == 0
    lines = [x for x in result.stderr.decode().splitlines() if x.startswith("progress:")]
    assert len(lines) >= 3
    assert "/12 ok=" in lines[-1]
    quiet = run_cli("run", "-m", "mock:fast", "-i", "in.jsonl", "-o", "q.jsonl", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == b""


def test_empty_and_device_inputs(
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    # A real process: its stdin is the device's own file descriptor.
    with open(os.devnull, "rb") as devnull:
        piped = subprocess.run(
            [
                sys.executable,
                "-m",
                "lm_deluge_cli",
                "run",
                "-m",
                "mock:fast",
                "-i",
                "-",
                "-o",
                "a.jsonl",
                "--json",
            ],
            env=cli_env(),
            stdin=devnull,
            capture_output=True,
            timeout=60,
        )
    assert piped.returncode == 0, piped.stderr.decode()
    assert json.loads(piped.stdout)["ok"] == 0
    direct = run_cli("run", "-m", "mock:fast", "-i", os.devnull, "-o", "b.jsonl")
    assert direct.returncode == 0, direct.stderr.decode()


def test_bad_mock_settings_fail_before_the_output_is_touched(
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    write_prompts(tmp_path / "in.jsonl", 3)
    (tmp_path / "job.toml").write_text(
        'input = "in.jsonl"\noutput = "out.jsonl"\n[[models]]\nname = "mock:x"\n'
        "mock = { latncy_s = 1 }\n"
    )
    result = run_cli("run", "job.toml")
    assert result.returncode == 2
    assert b"latncy_s" in result.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_against_the_mock_server_command_as_a_subprocess(
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lm_deluge_cli",
            "mock-server",
            "--port",
            "0",
            "--rpm",
            "1200",
            "--burst-seconds",
            "1",
        ],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline().decode().strip()
        assert banner.startswith("listening on http://127.0.0.1:"), banner
        url = banner.removeprefix("listening on ")
        write_prompts(tmp_path / "in.jsonl", 40)
        result = run_cli(
            "run",
            "-m",
            "openai:gpt-4.1-mini",
            "-i",
            "in.jsonl",
            "-o",
            "out.jsonl",
            "--json",
            "--max-requests-per-minute",
            "1200",
            "--max-tokens-per-minute",
            "0",
            env=cli_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=url),
        )
        assert result.returncode == 0, result.stderr.decode()
        assert json.loads(result.stdout)["ok"] == 40
        stats = server_stats(url)
        assert stats["requests_seen"] == 40 and stats["rate_limited"] == 0
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)


def test_job_registry_entries_price_a_model(
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    write_prompts(tmp_path / "in.jsonl", 5)
    (tmp_path / "job.toml").write_text(
        'input = "in.jsonl"\noutput = "out.jsonl"\n'
        '[[models]]\nname = "house"\n'
        '[[registry]]\nid = "mock:priced"\naliases = ["house"]\n'
        "input_per_mtok = 1000.0\noutput_per_mtok = 2000.0\n"
    )
    result = run_cli("run", "job.toml", "--quiet")
    assert result.returncode == 0, result.stderr.decode()
    for record in read_records(tmp_path / "out.jsonl"):
        usage = record["usage"]
        expected = (usage["input_tokens"] * 1000 + usage["output_tokens"] * 2000) / 1e6
        assert record["cost_usd"] == pytest.approx(expected)
    (tmp_path / "job.toml").write_text(
        'input = "in.jsonl"\noutput = "o2.jsonl"\n[[models]]\nname = "mock:fast"\n'
        '[[registry]]\nid = "mock:bad"\ninput_per_mtok = -1.0\n'
    )
    bad = run_cli("run", "job.toml")
    assert bad.returncode == 2
    assert b"mock:bad" in bad.stderr
    assert not (tmp_path / "o2.jsonl").exists()
