"""`lm-deluge score` end to end on the mock: answer and p_yes on every record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lm_deluge_cli.llm_tools.score import score_prompt
from lm_deluge_cli.mock.wire import yes_probability
from tests.cli_runner import RunCli

QUESTION = "Is this review positive?"


def write_items(path: Path, count: int) -> list[str]:
    texts = [
        f"Review {i}: the blender {'works' if i % 2 else 'broke'} after a week."
        for i in range(count)
    ]
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    return texts


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("model", ["mock:fast", "mock:standard"])
def test_every_record_has_an_answer_and_p_yes(run_cli: RunCli, tmp_path: Path, model: str) -> None:
    texts = write_items(tmp_path / "items.jsonl", 40)
    proc = run_cli(
        "score",
        "--question",
        QUESTION,
        "-i",
        "items.jsonl",
        "-o",
        "out.jsonl",
        "-m",
        model,
        "--max-requests-per-minute",
        "0",
        "--max-tokens-per-minute",
        "0",
        "--json",
        "-q",
    )
    assert proc.returncode == 0, proc.stderr.decode()
    result = json.loads(proc.stdout)
    found = records(tmp_path / "out.jsonl")
    assert len(found) == 40 and all(r["status"] == "ok" for r in found)
    assert result["yes"] + result["no"] == 40 and result["unparseable"] == 0
    assert result["yes"] == sum(r["answer"] == "yes" for r in found)
    for record in found:
        expected = yes_probability(
            [{"role": "user", "content": score_prompt(QUESTION, texts[record["id"]])}]
        )
        assert expected is not None
        assert record["answer"] == ("yes" if expected > 0.5 else "no")
        assert record["completion"].lower() == record["answer"]
        assert record["p_yes"] == pytest.approx(expected, abs=0.01)
        assert record["logprobs"][0]["top_logprobs"]


def test_without_logprobs_p_yes_is_null_and_the_summary_counts(
    run_cli: RunCli, tmp_path: Path
) -> None:
    write_items(tmp_path / "items.jsonl", 10)
    proc = run_cli(
        "score",
        "--question",
        QUESTION,
        "-i",
        "items.jsonl",
        "-o",
        "out.jsonl",
        "-m",
        "mock:fast",
        "--no-logprobs",
    )
    assert proc.returncode == 0, proc.stderr.decode()
    found = records(tmp_path / "out.jsonl")
    assert all(r["answer"] in ("yes", "no") and r["p_yes"] is None for r in found)
    yes = sum(r["answer"] == "yes" for r in found)
    assert f"answers: {yes} yes, {10 - yes} no, 0 neither".encode() in proc.stderr


def test_a_question_is_required(run_cli: RunCli, tmp_path: Path) -> None:
    write_items(tmp_path / "items.jsonl", 1)
    proc = run_cli("score", "-i", "items.jsonl", "-o", "out.jsonl", "-m", "mock:fast")
    assert proc.returncode == 2 and b"--question" in proc.stderr
