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
import pytest

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


# Runs the CLI with one function wrapped to send this process SIGTERM when it is called (or,
# given "atexit", once the process shuts down; "teardown", once it tears its modules down):
# a signal at an exact moment outside the run's own signal handling.
_SIGNAL_AT = """
import atexit, os, signal, sys, importlib
def kill():
    os.kill(os.getpid(), signal.SIGTERM)
class Teardown:
    def __del__(self):
        kill()
if sys.argv[1] == "atexit":
    atexit.register(kill)
elif sys.argv[1] == "teardown":
    teardown = Teardown()
else:
    module, name = sys.argv[1].rsplit(".", 1)
    target = importlib.import_module(module)
    original = getattr(target, name)
    def wrapped(*args, **kwargs):
        kill()
        return original(*args, **kwargs)
    setattr(target, name, wrapped)
from lm_deluge_cli.cli.app import main
sys.argv = ["lm-deluge", *sys.argv[2:]]
main()
"""

_ONE_RUN = ("run", "-m", "mock:fast", "-i", "in.jsonl", "-o", "out.jsonl")


def _run_signalled_at(
    where: str, tmp_path: Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[bytes], dict[str, Any] | None]:
    (tmp_path / "in.jsonl").write_text('{"id": "a", "prompt": "p"}\n')
    proc = subprocess.run(
        [sys.executable, "-c", _SIGNAL_AT, where, *_ONE_RUN],
        env=env,
        capture_output=True,
        timeout=60,
    )
    manifest = tmp_path / "out.jsonl.run.json"
    return proc, json.loads(manifest.read_text()) if manifest.exists() else None


def test_sigterm_after_the_run_exits_with_the_code_the_manifest_records(
    cli_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    # The run is over and recorded; only its summary was left to print.
    proc, manifest = _run_signalled_at(
        "lm_deluge_cli.cli.execute._print_summary", tmp_path, cli_env()
    )
    assert manifest is not None and manifest["last_run"]["exit_code"] == 0
    assert proc.returncode == 0, proc.stderr.decode()


@pytest.mark.parametrize(
    "where",
    [
        "lm_deluge_cli.cli.run.load_job",  # reading the job, before the command runs it
        "lm_deluge_cli.runner.resolve_endpoints",  # in the event loop, before it listens
    ],
)
def test_sigterm_before_the_run_listens_exits_130_having_written_nothing(
    cli_env: Callable[..., dict[str, str]], tmp_path: Path, where: str
) -> None:
    proc, manifest = _run_signalled_at(where, tmp_path, cli_env())
    assert proc.returncode == 130, proc.stderr.decode()
    assert manifest is None and not (tmp_path / "out.jsonl").exists()
    assert b"Traceback" not in proc.stderr


@pytest.mark.parametrize("moment", ["atexit", "teardown"])
def test_sigterm_while_the_process_shuts_down_keeps_the_exit_code(
    cli_env: Callable[..., dict[str, str]], tmp_path: Path, moment: str
) -> None:
    (tmp_path / "in.jsonl").write_text('{"id": "a", "prompt": "p"}\n{broken\n')
    proc = subprocess.run(
        [sys.executable, "-c", _SIGNAL_AT, moment, *_ONE_RUN, "--json"],
        env=cli_env(),
        capture_output=True,
        timeout=60,
    )
    manifest = json.loads((tmp_path / "out.jsonl.run.json").read_text())
    assert manifest["last_run"]["exit_code"] == 1
    assert proc.returncode == 1, proc.stderr.decode()
    assert json.loads(proc.stdout)["exit_code"] == 1  # what was printed is kept
