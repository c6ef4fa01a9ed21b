"""Output records: stable keys and order, the three kinds, and encoding."""

from __future__ import annotations

import orjson

from lm_deluge_cli.errors import RateLimitError
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.records import (
    INVALID_INPUT,
    RECORD_FIELDS,
    api_error_record,
    bad_line_record,
    encode,
    error_record,
    ok_record,
)
from lm_deluge_cli.types import Completion, Prompt, Usage

PROMPT = Prompt(id="row-1", line=4, messages=[], metadata={"k": [1, 2]})


def test_ok_record() -> None:
    completion = Completion(text="hello", finish_reason="stop", usage=Usage(10, 3, 4, 1))
    record = ok_record(
        PROMPT, completion, model="gpt-4o-mini", attempts=2, latency_s=1.23456, cost_usd=0.0012
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


def test_ok_record_cached_and_logprobs() -> None:
    completion = Completion(text="x", finish_reason="stop", usage=Usage(), logprobs=[{"t": -0.1}])
    record = ok_record(PROMPT, completion, model="m", attempts=0, latency_s=0, cached=True)
    fields = list(record)
    assert fields.index("logprobs") == fields.index("finish_reason") + 1
    assert record["logprobs"] == [{"t": -0.1}]
    assert record["cached"] is True
    assert record["cost_usd"] is None


def test_error_record() -> None:
    record = error_record(
        PROMPT,
        model="m",
        error_type="rate_limit",
        message="slow down",
        status_code=429,
        attempts=5,
        latency_s=0.5004,
    )
    assert list(record) == list(RECORD_FIELDS)
    assert record["status"] == "error"
    assert record["completion"] is None
    assert record["usage"] is None
    assert record["latency_s"] == 0.5
    assert record["error"] == {"type": "rate_limit", "message": "slow down", "status_code": 429}
    assert record["metadata"] == {"k": [1, 2]}


def test_api_error_record_from_exceptions() -> None:
    api = api_error_record(
        PROMPT, RateLimitError("too many", status_code=429), model="m", attempts=3
    )
    assert api["error"] == {"type": "rate_limit", "message": "too many", "status_code": 429}
    other = api_error_record(PROMPT, KeyError("choices"), model=None, attempts=1)
    assert other["error"] == {
        "type": "internal_error",
        "message": "KeyError: 'choices'",
        "status_code": None,
    }


def test_bad_line_record() -> None:
    record = bad_line_record(BadLine(9, "line 9: not valid JSON (x at column 1)"))
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
    assert bad_line_record(BadLine(3, "line 3: …", "a"))["id"] == "a"


def test_encode_is_one_compact_line() -> None:
    record = bad_line_record(BadLine(1, "line 1: a\nb"))
    data = encode(record)
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 1
    assert orjson.loads(data) == record


def test_encode_replaces_lone_surrogates() -> None:
    completion = Completion(text="bad \ud800 char", finish_reason="stop", usage=Usage())
    data = encode(ok_record(PROMPT, completion, model="m", attempts=1, latency_s=0))
    assert orjson.loads(data)["completion"] == "bad ? char"
