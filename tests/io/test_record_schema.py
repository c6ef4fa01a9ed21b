"""configs/record.schema.json describes the records the tool writes: every kind of record,
and the records of real runs, validate; records that break its promises do not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest

from lm_deluge_cli.config import JobOverrides, load_job
from lm_deluge_cli.engine.agent_loop import Loop, loop_result
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.records import bad_line_result, error_result, from_json, ok_result, to_json
from lm_deluge_cli.results import Answer, Completion, Reasoning, ToolCall, Usage
from lm_deluge_cli.runner import run_job
from lm_deluge_cli.types import Prompt

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "configs" / "record.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
PROMPT = Prompt(id="q1", line=3, messages=[], metadata={"k": 1})


def problems(record: dict[str, Any]) -> list[str]:
    return [error.message for error in VALIDATOR.iter_errors(record)]


def ok(*answers: Answer, usage: Usage | None = None) -> dict[str, Any]:
    completion = Completion(answers, usage or Usage(10, 5))
    return to_json(ok_result(PROMPT, completion, model="m", attempts=1, latency_s=0.2))


def agent_record() -> dict[str, Any]:
    call = ok(Answer(None, (ToolCall("c1", "add", {"a": 1}),), finish_reason="tool_calls"))
    final = ok(Answer("2", finish_reason="stop"))
    loop = Loop(Prompt(id="a", line=1, messages=[{"role": "user", "content": "1+1?"}]))
    loop.rounds = [from_json(call), from_json(final)]
    return to_json(loop_result(loop))


def test_the_schema_is_a_valid_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize(
    "record",
    [
        ok(Answer("hello", finish_reason="stop", provider_finish_reason="end_turn")),
        ok(
            Answer(
                None,
                (ToolCall("c1", "f", {"x": 1}), ToolCall("c2", "g", None, "{bad")),
                Reasoning("thought", ({"format": "anthropic_messages", "block": {}},)),
                finish_reason="tool_calls",
            ),
            usage=Usage(100, 5, 80, 0, 20, 20),
        ),
        ok(Answer(refusal="No.", finish_reason="refusal")),
        ok(Answer("a"), Answer("b", logprobs=[{"token": "b", "logprob": -0.1}])),
        to_json(
            error_result(
                PROMPT, model="m", error_type="rate_limit", message="slow", status_code=429
            )
        ),
        to_json(bad_line_result(BadLine(4, "line 4: not valid JSON"))),
        agent_record(),
    ],
)
def test_every_kind_of_record_validates(record: dict[str, Any]) -> None:
    assert problems(record) == []


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"completion": None}, "an ok record says something"),
        ({"completion": ""}, "an empty text is no answer"),
        ({"finish_reason": "end_turn"}, "finish reasons are ours"),
        ({"status": "maybe"}, "two statuses"),
        ({"usage": {"input_tokens": -1, "output_tokens": 0}}, "counts are not negative"),
        ({"tool_calls": [{"id": "c", "name": "f"}]}, "a call has its arguments"),
    ],
)
def test_records_that_break_a_promise_do_not_validate(change: dict[str, Any], why: str) -> None:
    record = {**ok(Answer("hello", finish_reason="stop")), **change}
    assert problems(record), why


def test_the_records_of_a_real_run_validate(tmp_path: Path) -> None:
    lines: list[Any] = [
        {"id": "plain", "prompt": "Hello there"},
        {"id": "again", "prompt": "Hello there"},  # identical: shares the answer
        {"id": "three", "prompt": "Name three colours.", "samples": 3},
        {"id": "meta", "messages": [{"role": "user", "content": "Hi"}], "metadata": [1, 2]},
        "not json",
        {"id": 7, "prompt": ""},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join((json.dumps(line) if isinstance(line, dict) else line) + "\n" for line in lines)
    )
    for run in range(2):  # the second run: from the cache and resumed
        job = load_job(
            None,
            JobOverrides(
                input=str(source),
                output=str(tmp_path / f"out{run}.jsonl"),
                models=["mock:fast"],
                cache=str(tmp_path / "cache"),
            ),
        )

        anyio.run(run_job, job)
        records = [
            json.loads(line) for line in (tmp_path / f"out{run}.jsonl").read_text().splitlines()
        ]
        assert len(records) == len(lines)
        for record in records:
            assert problems(record) == [], record
        if run == 1:
            assert any(r["cached"] for r in records)
