"""A run killed mid-way: the output holds every record it wrote, whole, and the cache
is a readable store that lost at most the entries of its last unwritten batch."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lm_deluge_cli.cache.write_behind import DEFAULT_BATCH_SIZE
from tests.cli_runner import RunCli

KEY = "sk-canary-0c1d2e3f4a5b6c7d8e9f"


def test_a_killed_run_keeps_its_records_and_a_readable_cache(
    cli_env: Callable[..., dict[str, str]],
    run_cli: RunCli,
    write_prompts: Callable[..., list[dict[str, Any]]],
    start_mock_server: Callable[..., tuple[str, Callable[[], None]]],
    tmp_path: Path,
) -> None:
    url, _ = start_mock_server(latency_s=0.05)
    rows = write_prompts(tmp_path / "in.jsonl", 3000)
    cache = tmp_path / "cache.sqlite"
    env = cli_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=url)
    args = ["run", "-m", "openai:gpt-4.1-mini", "-i", "in.jsonl", "--cache", str(cache)]
    args += ["--max-requests-per-minute", "0", "--max-tokens-per-minute", "0"]
    args += ["--max-concurrent-requests", "20", "--quiet"]
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lm_deluge_cli", *args, "-o", "out.jsonl"], env=env, cwd=tmp_path
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 400_000):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    # The output: whole records only, every one of them ok.
    text = out.read_text()
    assert text.endswith("\n")
    written = [json.loads(line) for line in text.splitlines()]
    assert 0 < len(written) < len(rows)
    assert all(r["status"] == "ok" for r in written)

    # The cache: an intact store holding all but at most its last batch.
    with sqlite3.connect(cache) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (entries,) = conn.execute("SELECT count(*) FROM cache_entries").fetchone()
    assert len(written) - DEFAULT_BATCH_SIZE <= entries

    # Readable: the same lines into another output are answered from it.
    again = run_cli(*args, "-o", str(tmp_path / "again.jsonl"), "--json", env=env)
    assert again.returncode == 0, again.stderr.decode()
    summary = json.loads(again.stdout)
    assert summary["cached"] == entries
    assert summary["requests"] == len(rows) - entries
    assert summary["ok"] == len(rows)
