"""`lm-deluge run --dry-run` end to end: nothing sent, no keys, a plan per model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import run_cli


def write_lines(path: Path, rows: list[dict[str, Any] | str]) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


ROWS: list[dict[str, Any] | str] = [
    *({"id": i, "prompt": f"question {i}"} for i in range(8)),
    {"id": "pinned", "prompt": "to the small one", "model": "mock:fast", "max_new_tokens": 10},
    "not json",
    {"id": 3, "prompt": "a duplicate id"},
    {"id": "stray", "prompt": "pinned elsewhere", "model": "openai:gpt-4o"},
]


def test_json_plan_without_keys_sends_nothing_and_writes_nothing(tmp_path: Path) -> None:
    write_lines(tmp_path / "in.jsonl", ROWS)
    (tmp_path / "job.toml").write_text(
        'input = "in.jsonl"\noutput = "out.jsonl"\n'
        '[[models]]\nname = "openai:gpt-4.1-mini"\nweight = 3\n'
        '[[models]]\nname = "mock:fast"\n'
        "[sampling]\nmax_new_tokens = 100\n"
    )
    result = run_cli("run", "job.toml", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr.decode()
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True
    by_model = {m["model"]: m for m in plan["models"]}
    # 8 unpinned lines spread by weight (3:1, as the run draws them), plus the line pinned
    # to mock:fast with its own max_new_tokens.
    to_mock = 8 - by_model["openai:gpt-4.1-mini"]["requests"]
    assert by_model["mock:fast"]["requests"] == to_mock + 1
    assert by_model["mock:fast"]["max_output_tokens"] == to_mock * 100 + 10
    assert all(m["input_tokens"] > 0 and m["estimated_cost_usd"] > 0 for m in plan["models"])
    total = plan["total"]
    assert total["requests"] == 9
    assert total["input_tokens"] == sum(m["input_tokens"] for m in plan["models"])
    assert total["estimated_cost_usd"] == pytest.approx(
        sum(m["estimated_cost_usd"] for m in plan["models"]), abs=2e-6
    )
    assert plan["lines"] == 12
    assert plan["bad_lines"] == 3
    assert any("line 10" in reason for reason in plan["bad_line_examples"])
    assert any("duplicate" in reason for reason in plan["bad_line_examples"])
    assert any("openai:gpt-4o" in reason for reason in plan["bad_line_examples"])
    # Nothing was written: no output, no lock, no manifest.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "job.toml"]


def test_text_plan_is_a_table_on_stdout(tmp_path: Path) -> None:
    write_lines(tmp_path / "in.jsonl", ROWS[:8])
    result = run_cli(
        "run",
        "--dry-run",
        "-m",
        "mock:fast",
        "-m",
        "openai:house-model",
        "-i",
        "in.jsonl",
        "--max-cost",
        "1",
    )
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    lines = out.splitlines()
    assert lines[0] == "dry run: nothing was sent; 8 input lines read"
    assert lines[1].split() == ["model", "requests", "input", "tokens", "max", "output", "tokens",
                                "est.", "cost"]  # fmt: skip
    fast = next(line for line in lines if line.startswith("mock:fast"))
    assert fast.split()[1] == "4"
    house = next(line for line in lines if line.startswith("openai:house-model"))
    assert house.split()[-1] == "unknown"
    total = next(line for line in lines if line.startswith("total"))
    assert total.split()[1] == "8" and total.endswith("+?")
    assert "no price known for openai:house-model" in out
    assert "--max-cost $1.0000: the estimate is within the cap" in out
    assert not (tmp_path / "out.jsonl").exists()


def test_reads_stdin(tmp_path: Path) -> None:
    stdin = b"".join(json.dumps({"prompt": f"p{i}"}).encode() + b"\n" for i in range(5))
    result = run_cli("run", "--dry-run", "--json", "-m", "mock:fast", "-i", "-", stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["total"]["requests"] == 5


def test_prompts_done_in_the_output_are_not_counted_unless_fresh(tmp_path: Path) -> None:
    write_lines(tmp_path / "in.jsonl", ROWS[:8])
    args = ("run", "-m", "mock:fast", "-i", "in.jsonl", "-o", "out.jsonl")
    head = "\n".join(json.dumps(r) for r in ROWS[:3]) + "\n"
    assert run_cli(*args, "--quiet", "-i", "-", stdin=head.encode()).returncode == 0
    before = (tmp_path / "out.jsonl").read_bytes()
    plan = json.loads(run_cli(*args, "--dry-run", "--json").stdout)
    assert (plan["already_done"], plan["total"]["requests"]) == (3, 5)
    fresh = json.loads(run_cli(*args, "--dry-run", "--json", "--fresh").stdout)
    assert (fresh["already_done"], fresh["total"]["requests"]) == (0, 8)
    assert (tmp_path / "out.jsonl").read_bytes() == before


def test_an_unknown_provider_is_still_a_usage_error(tmp_path: Path) -> None:
    write_lines(tmp_path / "in.jsonl", ROWS[:1])
    result = run_cli("run", "--dry-run", "-m", "nope:x", "-i", "in.jsonl")
    assert result.returncode == 2
    assert b"nope" in result.stderr
    missing = run_cli("run", "--dry-run", "-m", "mock:fast", "-i", "missing.jsonl")
    assert missing.returncode == 2
    assert b"missing.jsonl" in missing.stderr


def test_help_says_no_keys_are_needed() -> None:
    result = run_cli("run", "--help")
    text = " ".join(result.stdout.decode().split())  # help text wraps to the terminal
    assert "--dry-run Send nothing" in text
    assert "Needs no API keys" in text
