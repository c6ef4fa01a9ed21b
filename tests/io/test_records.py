"""Output records: stable keys and order, every kind of answer, the round trip, encoding."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import RateLimitError
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.records import (
    INVALID_INPUT,
    RECORD_FIELDS,
    api_error_result,
    bad_line_result,
    encode,
    error_result,
    from_json,
    has_answer,
    ok_result,
    to_json,
)
from lm_deluge_cli.results import Answer, Completion, Reasoning, ToolCall, Usage
from lm_deluge_cli.types import Prompt

PROMPT = Prompt(id="row-1", line=4, messages=[], metadata={"k": [1, 2]})


def _ok(*answers: Answer, usage: Usage | None = None) -> dict[str, Any]:
    completion = Completion(answers, usage or Usage())
    return to_json(ok_result(PROMPT, completion, model="m", attempts=1, latency_s=0))


def test_ok_record() -> None:
    completion = Completion.of("hello", "stop", Usage(10, 3, 4, 1))
    record = to_json(
        ok_result(
            PROMPT, completion, model="gpt-4o-mini", attempts=2, latency_s=1.23456, cost_usd=0.0012
        )
    )
    assert list(record) == list(RECORD_FIELDS)
    assert record == {
        "id": "row-1",
        "line": 4,
        "status": "ok",
        "model": "gpt-4o-mini",
        "completion": "hello",
        "finish_reason": "stop",
        "usage": {
            "input_tokens": 10,
            "output_tokens": 3,
            "cached_input_tokens": 4,
            "reasoning_tokens": 1,
        },
        "cost_usd": 0.0012,
        "attempts": 2,
        "latency_s": 1.235,
        "cached": False,
        "deduplicated": False,
        "error": None,
        "metadata": {"k": [1, 2]},
    }


def test_cache_writes_are_in_usage_when_reported() -> None:
    record = _ok(Answer("x"), usage=Usage(100, 5, cache_write_tokens=80, cache_write_1h_tokens=80))
    assert record["usage"] == {
        "input_tokens": 100,
        "output_tokens": 5,
        "cache_write_tokens": 80,
        "cache_write_1h_tokens": 80,
    }


def test_ok_record_cached_and_logprobs() -> None:
    completion = Completion.of("x", "stop", Usage(), [{"t": -0.1}])
    record = to_json(ok_result(PROMPT, completion, model="m", attempts=0, latency_s=0, cached=True))
    fields = list(record)
    assert fields.index("logprobs") == fields.index("finish_reason") + 1
    assert record["logprobs"] == [{"t": -0.1}]
    assert record["cached"] is True
    assert record["cost_usd"] is None


def test_tool_calls_reasoning_and_refusal_sit_beside_the_completion() -> None:
    answer = Answer(
        text=None,
        tool_calls=(ToolCall("call_1", "get_weather", {"city": "Paris"}),),
        reasoning=Reasoning("It asks for weather.", ({"format": "anthropic_messages"},)),
        finish_reason="tool_calls",
        provider_finish_reason="tool_use",
    )
    record = _ok(answer)
    fields = list(record)
    assert fields[: fields.index("usage")] == [
        "id",
        "line",
        "status",
        "model",
        "completion",
        "finish_reason",
        "provider_finish_reason",
        "tool_calls",
        "reasoning",
    ]
    assert record["tool_calls"] == [
        {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    ]
    assert record["reasoning"] == {
        "text": "It asks for weather.",
        "parts": [{"format": "anthropic_messages"}],
    }
    assert "refusal" not in record
    refused = _ok(Answer(refusal="I can't help with that.", finish_reason="refusal"))
    assert refused["refusal"] == "I can't help with that."
    assert "tool_calls" not in refused and "reasoning" not in refused


def test_arguments_that_are_not_json_are_kept_raw_and_said_so() -> None:
    record = _ok(Answer(tool_calls=(ToolCall("c", "f", None, '{"city": "Par'),)))
    assert record["tool_calls"] == [
        {
            "id": "c",
            "name": "f",
            "arguments": None,
            "arguments_raw": '{"city": "Par',
            "arguments_error": "not a JSON object",
        }
    ]


def test_several_samples_give_completions_and_samples() -> None:
    record = _ok(
        Answer("a", finish_reason="stop"),
        Answer(None, (ToolCall("c", "f", {}),), finish_reason="tool_calls"),
    )
    assert record["completion"] == "a"
    assert record["completions"] == ["a", None]
    assert record["samples"] == [
        {"completion": "a", "finish_reason": "stop"},
        {
            "completion": None,
            "finish_reason": "tool_calls",
            "tool_calls": [{"id": "c", "name": "f", "arguments": {}}],
        },
    ]


@pytest.mark.parametrize(
    "answers",
    [
        (Answer("plain", finish_reason="stop", provider_finish_reason="end_turn"),),
        (
            Answer(
                "x",
                (ToolCall("a", "f", {"n": 1}), ToolCall("b", "g", None, "oops")),
                Reasoning(None, ({"format": "openai_responses", "item": {"id": "rs_1"}},)),
                finish_reason="tool_calls",
                logprobs=[{"token": "x", "logprob": -0.1}],
            ),
        ),
        (Answer(refusal="no"), Answer("yes"), Answer("maybe")),
    ],
)
def test_a_record_reads_back_as_the_result_it_was_written_from(
    answers: tuple[Answer, ...],
) -> None:
    result = ok_result(
        PROMPT,
        Completion(answers, Usage(5, 6, cache_write_tokens=2)),
        model="m",
        attempts=1,
        latency_s=0.25,
        cost_usd=0.5,
    ).replace(fields={"data": {"k": 1}})
    record = orjson.loads(encode(result))
    assert record["data"] == {"k": 1}
    assert from_json(record) == result


def test_error_record() -> None:
    record = to_json(
        error_result(
            PROMPT,
            model="m",
            error_type="rate_limit",
            message="slow down",
            status_code=429,
            attempts=5,
            latency_s=0.5004,
        )
    )
    assert list(record) == list(RECORD_FIELDS)
    assert record["status"] == "error"
    assert record["completion"] is None
    assert record["usage"] is None
    assert record["latency_s"] == 0.5
    assert record["error"] == {"type": "rate_limit", "message": "slow down", "status_code": 429}
    assert record["metadata"] == {"k": [1, 2]}
    assert (
        from_json(record).error
        == error_result(
            PROMPT, model="m", error_type="rate_limit", message="slow down", status_code=429
        ).error
    )


def test_api_error_record_from_exceptions() -> None:
    api = to_json(
        api_error_result(PROMPT, RateLimitError("too many", status_code=429), model="m", attempts=3)
    )
    assert api["error"] == {"type": "rate_limit", "message": "too many", "status_code": 429}
    other = to_json(api_error_result(PROMPT, KeyError("choices"), model=None, attempts=1))
    assert other["error"] == {
        "type": "internal_error",
        "message": "KeyError: 'choices'",
        "status_code": None,
    }


def test_bad_line_record() -> None:
    record = to_json(bad_line_result(BadLine(9, "line 9: not valid JSON (x at column 1)")))
    assert list(record) == list(RECORD_FIELDS)
    assert record["id"] is None
    assert record["line"] == 9
    assert record["status"] == "error"
    assert record["attempts"] == 0
    assert record["error"] == {
        "type": INVALID_INPUT,
        "message": "line 9: not valid JSON (x at column 1)",
        "status_code": None,
    }
    assert bad_line_result(BadLine(3, "line 3: …", "a")).id == "a"


@pytest.mark.parametrize(
    ("record", "answered"),
    [
        ({"completion": "hi"}, True),
        ({"embedding": [0.5]}, True),
        ({"completion": ""}, False),
        ({"completion": None}, False),
        ({"completion": None, "tool_calls": [{"id": "c"}]}, True),
        ({"completion": None, "refusal": "no"}, True),
        ({"completion": "a", "samples": [{"completion": "a"}, {"completion": None}]}, False),
        ({"completion": "a", "samples": [{"completion": "a"}, {"refusal": "no"}]}, True),
    ],
)
def test_has_answer(record: dict[str, Any], answered: bool) -> None:
    assert has_answer(record) is answered


def test_encode_is_one_compact_line() -> None:
    result = bad_line_result(BadLine(1, "line 1: a\nb"))
    data = encode(result)
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 1
    assert orjson.loads(data) == to_json(result)


def test_encode_replaces_lone_surrogates() -> None:
    completion = Completion.of("bad \ud800 char", "stop", Usage())
    data = encode(ok_result(PROMPT, completion, model="m", attempts=1, latency_s=0))
    assert orjson.loads(data)["completion"] == "bad ? char"
