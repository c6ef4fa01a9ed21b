"""`mock-server` end to end: a real process, its one stdout line, requests, and a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
import typer
from typer.testing import CliRunner

from lm_deluge_cli.cli.mock_server import mock_server

# The command is registered on the real app elsewhere; a throwaway app runs it alone here.
LAUNCH = (
    "import typer; from lm_deluge_cli.cli.mock_server import mock_server; "
    "app = typer.Typer(); app.command()(mock_server); app()"
)
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def launch(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCH, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def ready_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("listening on http://127.0.0.1:"), line
    return line.removeprefix("listening on ").strip()


def stop(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    return process.returncode, out, err


def test_serves_until_sigterm_and_prints_one_line(processes: list[subprocess.Popen[str]]) -> None:
    process = launch("--rpm", "60", "--seed", "1")
    processes.append(process)
    url = ready_url(process)
    assert url.endswith("/v1")
    with httpx.Client(base_url=url) as client:
        assert client.post("/chat/completions", json=CHAT).status_code == 200
        refused = client.post("/chat/completions", json=CHAT)
    assert refused.status_code == 429
    code, rest_of_stdout, stderr = stop(process)
    assert code == 0
    assert rest_of_stdout == ""
    assert "served 2 requests: 1 ok, 1 rate limited" in stderr


def test_every_provider_is_served_and_listed(processes: list[subprocess.Popen[str]]) -> None:
    process = launch()
    processes.append(process)
    root = ready_url(process).removesuffix("/v1")
    message = {"model": "claude-x", "max_tokens": 50, "messages": CHAT["messages"]}
    with httpx.Client() as client:
        answered = client.post(
            f"{root}/anthropic/v1/messages",
            json=message,
            headers={"anthropic-version": "2023-06-01"},
        )
    assert answered.status_code == 200
    assert answered.json()["type"] == "message"
    code, _, stderr = stop(process)
    assert code == 0
    # Each provider's base URL, with the variable that points the provider at it.
    for provider, variable in [
        ("openai", "OPENAI_BASE_URL"),
        ("anthropic", "ANTHROPIC_BASE_URL"),
        ("gemini", "GOOGLE_GEMINI_BASE_URL"),
        ("mistral", "base_url in the job file"),
        ("cohere", "CO_API_URL"),
        ("bedrock", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"),
    ]:
        suffix = "/v1" if provider == "openai" else f"/{provider}"
        assert f"{root}{suffix}  ({variable})" in stderr


def test_faults_from_the_command_line(processes: list[subprocess.Popen[str]]) -> None:
    process = launch("--fault", "503=1", "--fault", "html=0", "--fault-first-n", "1")
    processes.append(process)
    url = ready_url(process)
    with httpx.Client(base_url=url) as client:
        statuses = [client.post("/chat/completions", json=CHAT).status_code for _ in range(2)]
    assert statuses == [503, 200]
    code, _, stderr = stop(process)
    assert code == 0
    assert "served 2 requests: 1 ok, 0 rate limited, 1 errors, 0 dropped, 0 hung" in stderr


def test_tool_rounds_and_the_cache_minimum_from_the_command_line(
    processes: list[subprocess.Popen[str]],
) -> None:
    process = launch("--tool-rounds", "0", "--prompt-cache-min-tokens", "10")
    processes.append(process)
    url = ready_url(process)
    root = url.removesuffix("/v1")
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    system = [{"type": "text", "text": "Be brief. " * 8, "cache_control": {"type": "ephemeral"}}]
    message = {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 64,
        "system": system,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with httpx.Client() as client:
        answer = client.post(f"{url}/chat/completions", json={**CHAT, "tools": tools}).json()
        headers = {"anthropic-version": "2023-06-01"}
        for _ in range(2):
            client.post(f"{root}/anthropic/v1/messages", json=message, headers=headers)
    assert answer["choices"][0]["finish_reason"] == "stop"  # tools on auto, never called
    code, _, stderr = stop(process)
    assert code == 0
    assert "prompt cache: 24 tokens read, 24 written" in stderr


def test_the_key_comes_from_the_named_variable(processes: list[subprocess.Popen[str]]) -> None:
    key = "sk-mock-server-test-key"
    process = launch("--api-key-env", "MOCK_EXPECTED_KEY", env={"MOCK_EXPECTED_KEY": key})
    processes.append(process)
    url = ready_url(process)
    with httpx.Client(base_url=url) as client:
        assert client.post("/chat/completions", json=CHAT).status_code == 401
        authorized = client.post(
            "/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"}
        )
    assert authorized.status_code == 200
    code, _, stderr = stop(process)
    assert code == 0
    assert key not in stderr


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(mock_server)
    return app


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--api-key-env", "MOCK_KEY_NOT_SET"], "MOCK_KEY_NOT_SET is not set"),
        (["--error-rate", "0.7", "--drop-rate", "0.5"], "must not exceed 1"),
        (["--error-rate", "2"], "--error-rate"),
        (["--rpm", "0"], "requests_per_minute"),
        (["--fault", "teapot=0.1"], "unknown fault 'teapot'; use an HTTP status from 400"),
        (["--fault", "502"], "'502' is not NAME=RATE (e.g. 502=0.3 or reset_mid_body=0.1)"),
        (["--fault", "502=lots"], "'502=lots' is not NAME=RATE"),
        (["--fault", "502=0.1", "--fault", "502=0.2"], "502 is given twice"),
        (["--fault", "502=0.6", "--error-rate", "0.6"], "must not exceed 1"),
        (["--fault", "302=0.5"], "status 302 is not an error status"),
        (["--fault-first-n", "-1"], "--fault-first-n"),
        (["--tool-rounds", "-1"], "--tool-rounds"),
        (["--prompt-cache-min-tokens", "-5"], "--prompt-cache-min-tokens"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 2
    # Rich draws the message in a box and wraps it; compare the words alone.
    assert message in " ".join(result.output.replace("│", " ").split())
