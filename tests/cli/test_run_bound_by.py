"""`lm-deluge run` says which limit held it back: the summary, and `bound_by` in --json.

The user's case at small scale: 3,000 requests/min allowed, but each request holds all of
max_new_tokens against the default 100,000 tokens/min until it is answered, so tokens/min
binds while few tokens are actually used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from lm_deluge_cli.cli.app import app

JOB = """\
input = "in.jsonl"
output = "out.jsonl"
[[models]]
name = "mock:standard"
mock = { latency_s = 0.05, latency_jitter_s = 0 }
[limits]
max_requests_per_minute = 3000
[sampling]
max_new_tokens = 4096
"""


@pytest.fixture
def job(tmp_path: Path) -> Path:
    rows = [{"id": f"p{i}", "prompt": f"question number {i}"} for i in range(5)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp_path / "job.toml"
    path.write_text(JOB)
    return path


def run(job: Path, *flags: str) -> Result:
    # No cache: each run sends its own requests.
    args = ["run", str(job), "--no-cache", "--fresh", *flags]
    result = CliRunner().invoke(app, args, env={"LM_DELUGE_TOKENIZER": "heuristic"})
    assert result.exit_code == 0, result.output
    return result


def test_the_json_summary_names_tokens_per_minute_and_what_lifts_it(job: Path) -> None:
    summary: dict[str, Any] = json.loads(run(job, "--json").stdout)
    assert summary["ok"] == 5
    bound = summary["bound_by"]
    assert bound["limit"] == "tokens_per_minute" and bound["model"] is None, bound
    assert 0.5 <= bound["waited_fraction"] <= 1.0
    assert "100,000 tokens/min" in bound["detail"]
    assert "each request holds ~4,1" in bound["detail"]  # its prompt and max_new_tokens
    assert "--max-tokens-per-minute" in bound["detail"] and "--max-new-tokens" in bound["detail"]


def test_the_summary_names_tokens_per_minute(job: Path) -> None:
    stderr = run(job).stderr
    assert "held back by tokens/min: requests waited on it" in stderr
    assert "raise --max-tokens-per-minute" in stderr


def test_without_the_token_limit_nothing_holds_the_run_back(job: Path) -> None:
    # The same run with tokens/min unlimited: five requests fit in the requests/min burst.
    summary = json.loads(run(job, "--json", "--max-tokens-per-minute", "0").stdout)
    assert summary["ok"] == 5
    assert summary["bound_by"] is None
    assert "held back by: nothing" in run(job, "--max-tokens-per-minute", "0").stderr
