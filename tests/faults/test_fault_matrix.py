"""The provider and network fault matrix, each cell against a real loopback server.

For every fault: with attempts to spare each prompt ends ``ok`` (the fault hits each prompt's
first request only), and with one attempt and the fault always on each prompt ends as an
error record with the status and a readable message, and the run exits 1 saying how many
failed. A huge body, and a slow one that beats the timeout, are answers: they end ``ok``.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lm_deluge_cli.errors import EXIT_SOME_FAILED
from tests.cli_runner import run_cli
from tests.faults.support import (
    MODEL,
    Finished,
    expected_completion,
    read_records,
    write_prompts,
)
from tests.loopback import Loopback

PROMPTS = 4
# Short, so the cells that end in a timeout take a second, not a minute.
TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Cell:
    """One fault: the mock settings that act it out, and the error record it must end in."""

    name: str
    settings: dict[str, Any]
    error_type: str
    status_code: int | None
    # Part of the error message (a tuple: one of them, as each HTTP client words it).
    says: str | tuple[str, ...]
    # Extra job settings for this cell.
    job: dict[str, Any] = field(default_factory=dict)


CELLS = [
    Cell("429", {"faults": {"429": 1.0}}, "rate_limit", 429, "429: Rate limit reached"),
    Cell(
        "429-no-retry-after",
        {"faults": {"429": 1.0}, "retry_after": False},
        "rate_limit",
        429,
        "429: Rate limit reached",
    ),
    Cell(
        "500",
        {"faults": {"500": 1.0}},
        "server_error",
        500,
        "500: The server had an error while processing your request",
    ),
    Cell("502", {"faults": {"502": 1.0}}, "server_error", 502, "502: HTML page: 502 Bad Gateway"),
    Cell(
        "503",
        {"faults": {"503": 1.0}},
        "server_error",
        503,
        "503: The engine is currently overloaded",
    ),
    Cell("529", {"faults": {"529": 1.0}}, "overloaded", 529, "529: Overloaded"),
    Cell("408", {"faults": {"408": 1.0}}, "request_timeout", 408, "408: Request Timeout"),
    Cell(
        "reset-mid-body",
        {"faults": {"reset_mid_body": 1.0}},
        "connection_error",
        None,
        "connection failed: the connection broke before the whole response arrived",
    ),
    Cell(
        "dropped-before-answer",
        {"faults": {"drop": 1.0}},
        "connection_error",
        None,
        "connection failed: Server disconnected",
    ),
    Cell(
        "never-answers",
        {"faults": {"hang": 1.0}},
        "timeout",
        None,
        f"no response within {TIMEOUT_S:g}s",
        {"request_timeout": TIMEOUT_S},
    ),
    Cell(
        "truncated-json",
        {"faults": {"truncated_json": 1.0}},
        "invalid_response",
        200,
        "unreadable chat completion (JSONDecodeError",
    ),
    Cell(
        "200-html",
        {"faults": {"html": 1.0}},
        "invalid_response",
        200,
        "body starts 'HTML page: Just a moment...",
    ),
    Cell(
        "200-missing-fields",
        {"faults": {"missing_fields": 1.0}},
        "invalid_response",
        200,
        "unreadable chat completion (KeyError: 'choices')",
    ),
    Cell(
        "very-slow-body",
        {"faults": {"slow_body": 1.0}, "slow_body_s": 3 * TIMEOUT_S},
        "timeout",
        None,
        f"no response within {TIMEOUT_S:g}s",
        {"request_timeout": TIMEOUT_S},
    ),
]


def ids_of(finished: Finished) -> list[str]:
    return [record["id"] for record in finished.records]


def assert_every_prompt_ok(finished: Finished, attempts: int | None = None) -> None:
    assert sorted(ids_of(finished)) == sorted(f"p{i}" for i in range(PROMPTS))
    for record in finished.records:
        assert record["status"] == "ok", record["error"]
        assert record["completion"] == expected_completion(int(record["id"][1:]))
        if attempts is not None:
            assert record["attempts"] == attempts, record
    assert finished.report.exit_code == 0
    assert finished.summary["ok"] == PROMPTS
    assert finished.summary["failed"] == 0


@pytest.mark.parametrize("cell", CELLS, ids=[c.name for c in CELLS])
def test_with_attempts_to_spare_every_prompt_ends_ok(
    cell: Cell, loopback: Callable[..., Loopback], run_against: Callable[..., Finished]
) -> None:
    # Each prompt's first request meets the fault; its retry is answered.
    server = loopback(**cell.settings, fault_first_n=PROMPTS)
    finished = run_against(server.url, prompts=PROMPTS, max_attempts=5, **cell.job)
    assert_every_prompt_ok(finished, attempts=2)
    assert finished.summary["retries"] == PROMPTS
    assert server.stats()["requests_seen"] == 2 * PROMPTS


@pytest.mark.parametrize(
    ("retry_after", "at_least_s", "under_s"),
    # The server asks for 0.5 s; without a retry-after the run pauses for 1 s.
    [(True, 0.5, 0.95), (False, 1.0, 3.0)],
)
def test_a_429_waits_as_long_as_the_server_asked_or_a_second(
    retry_after: bool,
    at_least_s: float,
    under_s: float,
    loopback: Callable[..., Loopback],
    run_against: Callable[..., Finished],
) -> None:
    server = loopback(faults={"429": 1.0}, retry_after=retry_after, fault_first_n=PROMPTS)
    finished = run_against(server.url, prompts=PROMPTS, max_attempts=3)
    assert_every_prompt_ok(finished, attempts=2)
    assert finished.summary["rate_limited"] == PROMPTS
    assert at_least_s <= finished.seconds < under_s


@pytest.fixture(params=["aiohttp", "httpx"])
def http_client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each HTTP client the transport seam offers."""
    client: str = request.param
    monkeypatch.setenv("LM_DELUGE_HTTP_CLIENT", client)
    return client


@pytest.mark.parametrize("cell", CELLS, ids=[c.name for c in CELLS])
def test_with_one_attempt_every_prompt_ends_as_an_error_record(
    cell: Cell,
    http_client: str,
    loopback: Callable[..., Loopback],
    run_against: Callable[..., Finished],
) -> None:
    server = loopback(**cell.settings)
    finished = run_against(server.url, prompts=PROMPTS, max_attempts=1, **cell.job)
    assert_every_prompt_failed(finished, cell.error_type, cell.status_code, cell.says)
    assert server.stats()["requests_seen"] == PROMPTS


def assert_every_prompt_failed(
    finished: Finished, error_type: str, status_code: int | None, says: str | tuple[str, ...]
) -> None:
    assert sorted(ids_of(finished)) == sorted(f"p{i}" for i in range(PROMPTS))
    for record in finished.records:
        assert record["status"] == "error"
        assert record["completion"] is None
        assert record["attempts"] == 1
        error = record["error"]
        assert (error["type"], error["status_code"]) == (error_type, status_code), error
        alternatives = (says,) if isinstance(says, str) else says
        assert any(text in error["message"] for text in alternatives), error
        # One readable line: no markup, no line breaks, no raw bytes.
        assert "\n" not in error["message"] and "<" not in error["message"]
        assert len(error["message"]) <= 600
    assert finished.report.exit_code == EXIT_SOME_FAILED
    assert (finished.summary["ok"], finished.summary["failed"]) == (0, PROMPTS)


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [("502", "server_error"), ("reset_mid_body", "connection_error"), ("html", "invalid_response")],
)
def test_the_command_exits_1_and_its_summary_counts_the_failures(
    fault: str,
    error_type: str,
    loopback: Callable[..., Loopback],
    cli_env: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> None:
    server = loopback(faults={fault: 1.0})
    write_prompts(tmp_path / "in.jsonl", PROMPTS)
    command = ["run", "-m", MODEL, "-i", "in.jsonl"]
    command += ["-o", "out.jsonl", "--no-cache", "--max-attempts", "1"]
    command += ["--max-requests-per-minute", "0", "--max-tokens-per-minute", "0"]
    env = cli_env(OPENAI_BASE_URL=server.url)
    shown = run_cli(*command, env=env)
    assert shown.returncode == EXIT_SOME_FAILED, shown.stderr.decode()
    assert f"done: 0 ok, {PROMPTS} failed ({PROMPTS} {error_type})" in shown.stderr.decode()
    records = read_records(tmp_path / "out.jsonl")
    assert [r["error"]["type"] for r in records] == [error_type] * PROMPTS

    # Run again: the failed ids are retried, and the --json summary says the same.
    command += ["--json", "--quiet"]
    again = run_cli(*command, env=env)
    assert again.returncode == EXIT_SOME_FAILED
    summary = json.loads(again.stdout)
    assert (summary["exit_code"], summary["ok"], summary["failed"]) == (1, 0, PROMPTS)
    assert summary["errors_by_type"] == {error_type: PROMPTS}
    assert summary["requests"] == PROMPTS
    status = run_cli("status", "out.jsonl", env=env)
    assert f"failed: {PROMPTS}" in status.stdout.decode()
    assert f"  {error_type}: {PROMPTS}" in status.stdout.decode()


# --- connection refused and a server that accepts but never reads ----------------------


def test_connection_refused_with_one_attempt_is_an_error_record(
    http_client: str, closed_port: int, run_against: Callable[..., Finished]
) -> None:
    url = f"http://127.0.0.1:{closed_port}/v1"
    finished = run_against(url, prompts=PROMPTS, max_attempts=1)
    says = ("connection failed: Cannot connect to host", "connection failed: All connection")
    assert_every_prompt_failed(finished, "connection_error", None, says)


def test_connection_refused_until_the_provider_comes_up_ends_ok(
    loopback: Callable[..., Loopback], run_against: Callable[..., Finished]
) -> None:
    server = loopback()
    server.suspend()
    timer = _after(1.0, server.resume)
    finished = run_against(server.url, prompts=PROMPTS, max_attempts=8)
    timer.join()
    assert_every_prompt_ok(finished)
    assert all(record["attempts"] > 1 for record in finished.records)
    assert finished.seconds >= 1.0


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port whose connections the kernel accepts and nobody ever reads or answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def test_accepted_and_never_answered_times_out_into_error_records(
    http_client: str, silent_listener: int, run_against: Callable[..., Finished]
) -> None:
    url = f"http://127.0.0.1:{silent_listener}/v1"
    finished = run_against(url, prompts=PROMPTS, max_attempts=1, request_timeout=TIMEOUT_S)
    assert_every_prompt_failed(finished, "timeout", None, f"no response within {TIMEOUT_S:g}s")
    # Each request is cut at the timeout; all four wait at once.
    assert TIMEOUT_S <= finished.seconds < TIMEOUT_S + 2


# --- bodies that are slow or huge but whole --------------------------------------------


def test_a_slow_body_within_the_timeout_is_read_whole(
    loopback: Callable[..., Loopback], run_against: Callable[..., Finished]
) -> None:
    server = loopback(faults={"slow_body": 1.0}, slow_body_s=0.5)
    finished = run_against(server.url, prompts=PROMPTS, max_attempts=1, request_timeout=5)
    assert_every_prompt_ok(finished, attempts=1)
    assert finished.seconds >= 0.5


def test_a_huge_body_is_an_ok_record_written_whole(
    loopback: Callable[..., Loopback], run_against: Callable[..., Finished]
) -> None:
    size = 20_000_000
    server = loopback(faults={"huge_body": 1.0}, huge_body_bytes=size, fault_first_n=1)
    finished = run_against(server.url, prompts=2, max_attempts=1)
    huge = [r for r in finished.records if len(r["completion"]) == size]
    assert len(huge) == 1
    assert huge[0]["status"] == "ok"
    assert huge[0]["attempts"] == 1
    index = int(huge[0]["id"][1:])
    # The mock's answer, padded; the whole record is one valid line of the output.
    assert huge[0]["completion"].startswith(expected_completion(index) + " ")
    assert huge[0]["usage"]["output_tokens"] == size // 4
    others = [r for r in finished.records if r is not huge[0]]
    assert [r["completion"] for r in others] == [expected_completion(int(others[0]["id"][1:]))]
    assert finished.report.exit_code == 0


def test_one_huge_answer_does_not_stall_the_run_under_the_default_token_limit(
    loopback: Callable[..., Loopback], run_against: Callable[..., Finished]
) -> None:
    server = loopback(faults={"huge_body": 1.0}, huge_body_bytes=2_000_000, fault_first_n=1)
    finished = run_against(
        server.url,
        prompts=PROMPTS,
        max_attempts=1,
        max_tokens_per_minute=100_000,
        max_concurrent_requests=1,
        deadline_s=3,
    )
    assert [r["status"] for r in finished.records] == ["ok"] * PROMPTS


# --- faults at a rate, mixed --------------------------------------------------------------


def test_a_mix_of_faults_at_a_rate_costs_retries_not_records(
    loopback: Callable[..., Loopback], run_against: Callable[..., Finished]
) -> None:
    faults = {
        "502": 0.04,
        "503": 0.04,
        "408": 0.03,
        "reset_mid_body": 0.04,
        "truncated_json": 0.03,
        "html": 0.03,
        "missing_fields": 0.02,
        "drop": 0.02,
    }
    server = loopback(faults=faults, seed=7)
    prompts = 30
    finished = run_against(server.url, prompts=prompts, max_attempts=12)
    assert len(finished.records) == prompts
    assert all(r["status"] == "ok" for r in finished.records)
    stats = server.stats()
    failed_requests = stats["errors"] + stats["malformed"] + stats["dropped"]
    assert failed_requests > 0
    # Every failed request was retried, and nothing else was.
    assert sum(r["attempts"] - 1 for r in finished.records) == failed_requests
    assert stats["requests_seen"] == prompts + failed_requests


def _after(seconds: float, action: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer
