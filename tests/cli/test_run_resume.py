"""`lm-deluge run` resuming: kill and resume, refused and moved-aside outputs, status and export."""

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

import pytest

from lm_deluge_cli.mock.simulator import mock_completion
from tests.cli_runner import RunCli

KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"

# Prompts for a first run that outlasts the checks made beside it (0.5 s a request, two
# at a time: 100 seconds).
LONG_RUN = 400


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def expected_completion(prompt: str, model: str) -> str:
    return mock_completion([{"role": "user", "content": prompt}], model)


def test_sigkill_then_resume_ends_with_every_id_ok_once(
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
    start_mock_server: Callable[..., tuple[str, Callable[[], None]]],
) -> None:
    url, _ = start_mock_server(latency_s=0.02)
    rows = write_prompts(tmp_path / "in.jsonl", 400)
    env = cli_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=url)
    args = [
        "run",
        "-m",
        "openai:gpt-4.1-mini",
        "-i",
        "in.jsonl",
        "-o",
        "out.jsonl",
        "--max-requests-per-minute",
        "6000",
        "--max-tokens-per-minute",
        "0",
        "--max-concurrent-requests",
        "8",
        "--quiet",
    ]
    proc = subprocess.Popen([sys.executable, "-m", "lm_deluge_cli", *args], env=env)
    out = tmp_path / "out.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 5_000):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = out.read_bytes().count(b"\n")
    assert 0 < partial < 400
    result = run_cli(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stdout)
    assert summary["skipped_already_done"] >= partial - 1
    records = read_records(out)
    ids = [r["id"] for r in records]
    assert sorted(set(ids)) == sorted(r["id"] for r in rows)
    assert len(ids) == len(set(ids)), "an id was written twice"
    assert all(r["status"] == "ok" for r in records)
    assert all(
        r["completion"] == expected_completion(f"question number {r['id'][1:]}", "gpt-4.1-mini")
        for r in records
    )


def test_second_run_on_same_output_is_refused(
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
    start_mock_server: Callable[..., tuple[str, Callable[[], None]]],
) -> None:
    url, _ = start_mock_server(latency_s=0.5)
    # Far more than the test needs: the first run must still be going when the second
    # starts, however loaded the machine (it is stopped with SIGTERM).
    write_prompts(tmp_path / "in.jsonl", LONG_RUN)
    env = cli_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=url)
    args = [
        "run",
        "-m",
        "openai:x",
        "-i",
        "in.jsonl",
        "-o",
        "out.jsonl",
        "--quiet",
        "--max-concurrent-requests",
        "2",
    ]
    first = subprocess.Popen([sys.executable, "-m", "lm_deluge_cli", *args], env=env)
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "out.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = run_cli(*args, env=env)
        assert second.returncode == 2
        assert b"another run" in second.stderr.lower()
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 130


def test_runs_on_other_names_for_the_output_are_refused(
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
    start_mock_server: Callable[..., tuple[str, Callable[[], None]]],
) -> None:
    url, _ = start_mock_server(latency_s=0.5)
    write_prompts(tmp_path / "in.jsonl", LONG_RUN)
    env = cli_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=url)
    args = ["run", "-m", "openai:x", "-i", "in.jsonl", "--quiet", "--max-concurrent-requests", "2"]
    out = tmp_path / "out.jsonl"
    first = subprocess.Popen(
        [sys.executable, "-m", "lm_deluge_cli", *args, "-o", "out.jsonl"], env=env
    )
    try:
        deadline = time.monotonic() + 20
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        (tmp_path / "link.jsonl").symlink_to("out.jsonl")
        (tmp_path / "other").mkdir()
        os.link(out, tmp_path / "other" / "same.jsonl")
        for name in ("link.jsonl", "other/same.jsonl"):
            second = run_cli(*args, "-o", name, env=env)
            assert second.returncode == 2, second.stderr.decode()
            assert b"another run is writing" in second.stderr
            assert f"process {first.pid}".encode() in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 130
    ids = [r["id"] for r in read_records(out)]
    assert len(ids) == len(set(ids)), "an id was written twice"


def test_fresh_moves_old_output_aside(
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    write_prompts(tmp_path / "in.jsonl", 3)
    args = ("run", "-m", "mock:fast", "-i", "in.jsonl", "-o", "out.jsonl", "--quiet")
    assert run_cli(*args).returncode == 0
    result = run_cli(*args, "--fresh", "--json")
    assert result.returncode == 0
    summary = json.loads(result.stdout)
    assert summary["ok"] == 3
    moved = Path(summary["moved_aside"])
    assert moved.exists() and len(read_records(moved)) == 3


def test_status_and_export(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text(
        "".join(json.dumps({"id": f"x{i}", "prompt": f"p{i}"}) + "\n" for i in range(5))
        + "{broken\n"
    )
    assert run_cli("run", "-m", "mock:fast", "-i", "in.jsonl", "-o", "out.jsonl").returncode == 1
    status = run_cli("status", "out.jsonl", "--json")
    assert status.returncode == 0, status.stderr.decode()
    report = json.loads(status.stdout)
    assert report["ids_ok"] == 5
    assert report["remaining"] == 0
    exported = run_cli("export", "out.jsonl", "-o", "final.jsonl")
    assert exported.returncode == 0, exported.stderr.decode()
    final = read_records(tmp_path / "final.jsonl")
    # One record per input line, in input order; the broken line keeps its error record.
    assert [r["id"] for r in final] == [*(f"x{i}" for i in range(5)), None]
    assert final[-1]["line"] == 6 and final[-1]["error"]["type"] == "invalid_input"


def test_a_rerun_exits_with_what_the_output_holds(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text(
        '{"id": "a", "prompt": "p"}\n{broken\n{"id": "b", "prompt": "q"}\n[1]\n'
    )
    args = ("run", "-m", "mock:fast", "-i", "in.jsonl", "-o", "out.jsonl")
    assert run_cli(*args).returncode == 1
    # Nothing left to do, but two lines' records are errors: still 1, and said so.
    again = run_cli(*args)
    assert again.returncode == 1, again.stderr.decode()
    assert b"done: 0 ok, 0 failed, 4 already done earlier (2 of them failed)" in again.stderr
    summary = json.loads(run_cli(*args, "--json").stdout)
    assert (summary["exit_code"], summary["skipped_failed"]) == (1, 2)
    manifest = json.loads((tmp_path / "out.jsonl.run.json").read_text())
    assert manifest["last_run"]["exit_code"] == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("-i", "in.jsonl", "-o", "in.jsonl"), b"same file"),
        (("-i", "in.jsonl", "-o", "missing-dir/out.jsonl"), b"missing-dir"),
    ],
)
def test_unusable_output_is_refused(
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    tmp_path: Path,
    args: tuple[str, ...],
    needle: bytes,
) -> None:
    write_prompts(tmp_path / "in.jsonl", 3)
    before = (tmp_path / "in.jsonl").read_bytes()
    result = run_cli("run", "-m", "mock:fast", *args)
    assert result.returncode == 2
    assert needle in result.stderr
    assert (tmp_path / "in.jsonl").read_bytes() == before
