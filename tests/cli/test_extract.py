"""`lm-deluge extract` end to end on the in-process mock: valid data, retried schema
violations, error records naming the broken rule, and schemas refused up front."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lm_deluge_cli.schema import violation
from tests.cli_runner import CliResult, RunCli

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "email": {"type": "string"},
    },
    "required": ["name", "age", "email"],
    "additionalProperties": False,
}
FAST = ["--max-requests-per-minute", "0", "--max-tokens-per-minute", "0", "--no-cache"]


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def summary(proc: CliResult) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return result


def write_inputs(tmp_path: Path, count: int) -> None:
    rows = [
        {"id": f"t{i}", "text": f"Contact {i}: Ann, {20 + i}, ann{i}@example.com"}
        for i in range(count)
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))


def job_with_faults(tmp_path: Path, rate: float, attempts: int) -> Path:
    job = tmp_path / "job.toml"
    job.write_text(
        'input = "in.jsonl"\noutput = "out.jsonl"\n'
        '[[models]]\nname = "mock:standard"\n'
        "mock = { latency_s = 0.0, latency_jitter_s = 0.0, "
        f"faults = {{ schema_violation = {rate} }} }}\n"
        f"[limits]\nmax_attempts = {attempts}\n"
        'max_requests_per_minute = "unlimited"\nmax_tokens_per_minute = "unlimited"\n'
    )
    return job


def test_200_lines_every_record_holds_data_that_matches_the_schema(
    run_cli: RunCli, tmp_path: Path
) -> None:
    write_inputs(tmp_path, 200)
    proc = run_cli(
        "extract",
        "--schema",
        "schema.json",
        "-i",
        "in.jsonl",
        "-o",
        "out.jsonl",
        "-m",
        "mock:fast",
        "-q",
        "--json",
        *FAST,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    result = summary(proc)
    assert (result["ok"], result["tool"], result["schema_failures"]) == (200, "extract", 0)
    found = records(tmp_path / "out.jsonl")
    assert len(found) == 200
    for record in found:
        assert record["status"] == "ok"
        assert violation(record["data"], SCHEMA) is None
        assert record["data"] == json.loads(record["completion"])
        assert {"id", "line", "model", "usage", "cost_usd", "attempts", "cached"} <= set(record)


def test_answers_that_break_the_schema_are_retried_until_they_match(
    run_cli: RunCli, tmp_path: Path
) -> None:
    write_inputs(tmp_path, 200)
    job = job_with_faults(tmp_path, 0.3, attempts=12)
    proc = run_cli("extract", str(job), "--schema", "schema.json", "-q", "--json", *FAST)
    assert proc.returncode == 0, proc.stderr.decode()
    result = summary(proc)
    assert result["ok"] == 200 and result["retries"] > 0
    found = records(tmp_path / "out.jsonl")
    assert all(violation(r["data"], SCHEMA) is None for r in found)
    assert any(r["attempts"] > 1 for r in found)


def test_with_one_attempt_every_violation_is_an_error_naming_the_rule(
    run_cli: RunCli, tmp_path: Path
) -> None:
    write_inputs(tmp_path, 200)
    job = job_with_faults(tmp_path, 1.0, attempts=1)
    proc = run_cli("extract", str(job), "--schema", "schema.json", "--no-cache")
    assert proc.returncode == 1, proc.stderr.decode()
    assert b"200 answers still broke the schema" in proc.stderr
    found = records(tmp_path / "out.jsonl")
    assert len(found) == 200
    for record in found:
        assert record["status"] == "error" and record["data"] is None
        assert record["error"]["type"] == "schema_mismatch"
        message = record["error"]["message"]
        assert message.startswith("the answer does not match the json_schema: $")
        assert message.endswith(("(required)", "(type)", "(minimum)", "(additionalProperties)"))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"type": "object", "properties": {"a": {"type": "text"}}}', '"text" is not a JSON type'),
    ],
)
def test_a_bad_schema_exits_2_before_anything_runs(
    run_cli: RunCli, tmp_path: Path, content: str, problem: str
) -> None:
    write_inputs(tmp_path, 3)
    (tmp_path / "schema.json").write_text(content)
    proc = run_cli(
        "extract", "--schema", "schema.json", "-i", "in.jsonl", "-o", "out.jsonl", "-m", "mock:fast"
    )
    assert proc.returncode == 2
    assert problem in proc.stderr.decode()
    assert not (tmp_path / "out.jsonl").exists()


def test_no_schema_at_all_is_a_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    write_inputs(tmp_path, 1)
    proc = run_cli("extract", "-i", "in.jsonl", "-o", "out.jsonl", "-m", "mock:fast")
    assert proc.returncode == 2 and b"give --schema FILE" in proc.stderr


def test_run_lines_with_images_are_extracted_too(run_cli: RunCli, tmp_path: Path) -> None:
    from PIL import Image as PILImage

    PILImage.new("RGB", (16, 16), (0, 99, 0)).save(tmp_path / "card.png")
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    row = {
        "id": "img",
        "messages": [{"role": "user", "content": [{"type": "image", "path": "card.png"}]}],
    }
    (tmp_path / "in.jsonl").write_text(json.dumps(row) + "\n")
    proc = run_cli(
        "extract", "--schema", "schema.json", "-i", "in.jsonl", "-o", "out.jsonl", "-m", "mock:fast"
    )
    assert proc.returncode == 0, proc.stderr.decode()
    [record] = records(tmp_path / "out.jsonl")
    assert violation(record["data"], SCHEMA) is None
