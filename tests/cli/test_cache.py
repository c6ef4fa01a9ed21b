"""`lm-deluge cache stats|clear` on a cache damaged on disk: a message saying what to do, and
`clear` starting it over."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import RunCli


@pytest.fixture
def job(tmp_path: Path, write_prompts: Callable[..., Any]) -> list[str]:
    write_prompts(tmp_path / "in.jsonl", 20)
    unpaced = ["--max-requests-per-minute", "0", "--max-tokens-per-minute", "0"]
    return ["run", "-m", "mock:fast", "-i", "in.jsonl", "--quiet", "--json", *unpaced]


def _spoil(path: Path) -> None:
    with path.open("r+b") as f:  # SQLite's header stays; the pages after it do not
        f.seek(100)
        f.write(b"\xff" * 8000)


@pytest.mark.parametrize("spec", [None, "answers-dir"])
def test_a_damaged_cache_is_named_by_stats_and_started_over_by_clear(
    job: list[str],
    run_cli: RunCli,
    run_cli_process: Callable[..., Any],
    tmp_path: Path,
    spec: str | None,
) -> None:
    flags = [] if spec is None else ["--cache", spec]
    # A process: its cache's SQLite connections (one per thread) close when it ends, which
    # folds their write-ahead log into the file damaged below.
    assert run_cli_process(*job, "-o", "a.jsonl", *flags).returncode == 0
    where = Path(json.loads(run_cli("cache", "path", "--json", *flags).stdout)["location"])
    _spoil(where / "cache.db" if where.is_dir() else where)

    stats = run_cli("cache", "stats", *flags)
    message = stats.stderr.decode()
    assert stats.returncode == 2 and message.count("\n") == 1, message
    clear_command = " ".join(["lm-deluge cache clear", *flags])
    assert "is damaged" in message and f"`{clear_command}`" in message

    run = run_cli(*job, "-o", "b.jsonl", *flags)
    assert run.returncode == 0
    warning = [line for line in run.stderr.decode().splitlines() if "cache clear" in line]
    assert len(warning) == 1 and warning[0].startswith("warning: "), run.stderr.decode()

    cleared = run_cli("cache", "clear", "--json", *flags)
    assert cleared.returncode == 0, cleared.stderr.decode()
    assert json.loads(cleared.stdout)["files_removed"]
    first = json.loads(run_cli(*job, "-o", "c.jsonl", *flags).stdout)
    again = json.loads(run_cli(*job, "-o", "d.jsonl", *flags).stdout)
    assert (first["requests"], again["requests"], again["cached"]) == (20, 0, 20)
    counted = json.loads(run_cli("cache", "stats", "--json", *flags).stdout)
    assert counted["entries"] == 20


def test_clear_leaves_a_file_that_is_not_a_cache_and_says_how_to_remove_it(
    run_cli: RunCli, tmp_path: Path
) -> None:
    mine = tmp_path / "results.db"
    mine.write_text('{"id": 1}\n' * 100)
    cleared = run_cli("cache", "clear", "--cache", "results.db")
    assert cleared.returncode == 2
    assert f"delete it: rm {mine}" in cleared.stderr.decode()
    assert mine.read_text() == '{"id": 1}\n' * 100


def test_logged_warnings_share_the_cli_style(
    job: list[str], run_cli: RunCli, tmp_path: Path
) -> None:
    (tmp_path / "not-a-dir").write_text("a file where the cache directory would go")
    proc = run_cli(*job, "-o", "out.jsonl", "--cache", "not-a-dir/cache")
    lines = proc.stderr.decode().splitlines()
    assert any(line.startswith("warning: cannot open the result cache") for line in lines)
    assert not any(line.startswith(("WARNING", "ERROR", "INFO")) for line in lines)
