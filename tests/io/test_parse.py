"""parse_line: each accepted line shape → Prompt, Anthropic-style lines, stop and json_schema."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from lm_deluge_cli.io.parse import BadLine, parse_line
from lm_deluge_cli.types import SAMPLING_FIELDS, Prompt

USER_HI = [{"role": "user", "content": "hi"}]


def _parse(obj: Any, line_no: int = 7) -> Prompt | BadLine:
    return parse_line(line_no, orjson.dumps(obj))


def _ok(obj: Any, line_no: int = 7) -> Prompt:
    result = _parse(obj, line_no)
    assert isinstance(result, Prompt), result
    return result


# ---------------------------------------------------------------------------- shapes


def test_prompt_shape() -> None:
    p = _ok({"prompt": "hi"})
    assert p.id == 7
    assert p.line == 7
    assert p.messages == USER_HI
    assert p.model is None
    assert p.metadata is None
    assert p.sampling == {}
    assert p.extra_body == {}


def test_prompt_with_system() -> None:
    p = _ok({"prompt": "hi", "system": "be brief"})
    assert p.messages == [{"role": "system", "content": "be brief"}, *USER_HI]


def test_messages_shape_with_system_prepended() -> None:
    messages = [
        {"role": "developer", "content": "d"},
        {"role": "user", "content": [{"type": "text", "text": "look"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
        {"role": "tool", "content": "42", "tool_call_id": "c1"},
    ]
    p = _ok({"messages": messages, "system": "s"})
    assert p.messages == [{"role": "system", "content": "s"}, *messages]


def test_optional_fields() -> None:
    p = _ok(
        {
            "id": "row-1",
            "prompt": "hi",
            "model": "gpt-4o-mini",
            "metadata": {"source": [1, 2, None]},
            "temperature": 1,
            "top_p": 0.5,
            "max_new_tokens": 100,
            "json_mode": True,
            "logprobs": True,
            "top_logprobs": 5,
            "reasoning_effort": "low",
            "extra_column": "ignored",
            "system": None,
        }
    )
    assert p.id == "row-1"
    assert p.key == '"row-1"'
    assert p.model == "gpt-4o-mini"
    assert p.metadata == {"source": [1, 2, None]}
    assert p.sampling == {
        "temperature": 1.0,
        "top_p": 0.5,
        "max_new_tokens": 100,
        "json_mode": True,
        "logprobs": True,
        "top_logprobs": 5,
        "reasoning_effort": "low",
    }
    assert set(p.sampling) <= set(SAMPLING_FIELDS)


def test_nullable_sampling_fields_may_be_null() -> None:
    p = _ok({"prompt": "hi", "reasoning_effort": None, "top_logprobs": None})
    assert p.sampling == {"reasoning_effort": None, "top_logprobs": None}


def test_integer_id_and_null_model() -> None:
    p = _ok({"id": 12, "prompt": "hi", "model": None})
    assert p.id == 12
    assert p.key == "12"
    assert p.model is None


def test_batch_api_line() -> None:
    line = {
        "custom_id": "req-1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o",
            "messages": USER_HI,
            "temperature": 0.2,
            "top_p": None,
            "max_tokens": 50,
            "response_format": {"type": "json_object"},
            "logprobs": True,
            "top_logprobs": 3,
            "reasoning_effort": "high",
            "seed": 9,
            "stop": ["\n"],
            "stream": True,
        },
    }
    p = _ok(line)
    assert p.id == "req-1"
    assert p.model == "gpt-4o"
    assert p.messages == USER_HI
    assert p.sampling == {
        "temperature": 0.2,
        "max_new_tokens": 50,
        "json_mode": True,
        "logprobs": True,
        "top_logprobs": 3,
        "reasoning_effort": "high",
        "stop": ("\n",),
    }
    assert p.extra_body == {"seed": 9}


def test_batch_max_completion_tokens_wins_and_json_schema_becomes_sampling() -> None:
    schema = {"type": "object", "required": ["a"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}
    body = {
        "messages": USER_HI,
        "max_tokens": 10,
        "max_completion_tokens": 20,
        "response_format": fmt,
    }
    p = _ok({"custom_id": "a", "body": body})
    assert p.sampling == {"max_new_tokens": 20, "json_schema": schema}
    assert p.extra_body == {}
    assert p.model is None


def test_top_level_overrides_win_over_batch_body() -> None:
    body = {"model": "a", "messages": USER_HI, "temperature": 0.1}
    p = _ok({"custom_id": "x", "body": body, "model": "b", "temperature": 0.9})
    assert p.model == "b"
    assert p.sampling == {"temperature": 0.9}


def test_id_wins_over_custom_id() -> None:
    assert _ok({"id": "i", "custom_id": "c", "prompt": "hi"}).id == "i"


def test_body_column_does_not_hide_prompt() -> None:
    # A data file may well have a "body" column next to its prompt.
    p = _ok({"prompt": "summarize", "body": "the email text"})
    assert p.messages == [{"role": "user", "content": "summarize"}]


def _data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def test_anthropic_style_lines_are_converted(
    _png: Callable[..., bytes],
) -> None:
    png = _png()
    source = {"type": "base64", "media_type": "image/png", "data": base64.b64encode(png).decode()}
    p = _ok(
        {
            "system": "be brief",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is it?"},
                        {"type": "image", "source": source},
                    ],
                },
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42"}],
                },
            ],
        }
    )
    call = {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    assert p.messages == [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is it?"},
                {"type": "image_url", "image_url": {"url": _data_url(png)}},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "t1", "content": "42"},
    ]


def test_prompt_cache_breakpoints_of_anthropic_lines_are_kept() -> None:
    ephemeral = {"type": "ephemeral"}
    p = _ok(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "A long document.", "cache_control": ephemeral},
                        {"type": "text", "text": "Question?"},
                    ],
                },
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": "42",
                            "cache_control": ephemeral,
                        }
                    ],
                },
            ]
        }
    )
    assert p.messages[0]["content"][0] == {
        "type": "text",
        "text": "A long document.",
        "cache_control": ephemeral,
    }
    assert p.messages[2] == {
        "role": "tool",
        "tool_call_id": "t1",
        "content": "42",
        "cache_control": ephemeral,
    }


def test_openai_lines_without_local_media_are_left_alone(
    _png: Callable[..., bytes],
) -> None:
    messages = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": _data_url(_png((5000, 10)))}}],
        }
    ]
    assert _ok({"messages": messages}).messages == messages


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ({"prompt": "hi", "stop": "END"}, ("END",)),
        ({"prompt": "hi", "stop": ["a", "b"]}, ("a", "b")),
        ({"prompt": "hi", "stop": None}, None),
        ({"custom_id": "c", "body": {"messages": USER_HI, "stop": "\n"}}, ("\n",)),
        ({"custom_id": "c", "body": {"messages": USER_HI, "stop": ["x", "y"]}}, ("x", "y")),
    ],
)
def test_stop_on_a_line_and_in_a_batch_body(line: dict[str, Any], expected: Any) -> None:
    p = _ok(line)
    assert p.sampling["stop"] == expected
    assert "stop" not in p.extra_body


def test_a_stop_that_is_not_strings_is_a_bad_line() -> None:
    result = _parse({"prompt": "hi", "stop": [1]})
    assert isinstance(result, BadLine)
    assert "'stop' must be a non-empty string" in result.reason


def test_json_schema_on_a_line() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert _ok({"prompt": "hi", "json_schema": schema}).sampling == {"json_schema": schema}


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ({"prompt": "hi", "json_schema": "schema.json"}, "'json_schema' must be a JSON Schema"),
        (
            {
                "body": {
                    "messages": USER_HI,
                    "response_format": {"type": "json_schema", "json_schema": {"name": "x"}},
                }
            },
            "'body.response_format.json_schema.schema' must be a JSON Schema object, got null",
        ),
        (
            {"body": {"messages": USER_HI, "response_format": {"type": "yaml"}}},
            "'body.response_format.type' must be text, json_object or json_schema",
        ),
    ],
)
def test_bad_json_schemas_are_bad_lines(line: dict[str, Any], says: str) -> None:
    result = _parse(line)
    assert isinstance(result, BadLine)
    assert says in result.reason


# ---------------------------------------------------------------------------- tools


WEATHER_TOOL = {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}


def test_tools_and_tool_choice_on_a_line_travel_with_its_request() -> None:
    p = _ok(
        {
            "prompt": "Weather in Paris?",
            "tools": [WEATHER_TOOL],
            "tool_choice": "get_weather",
            "prompt_cache_key": "weather-v1",
        }
    )
    assert p.extra_body == {
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {"type": "object", "properties": {}},
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "prompt_cache_key": "weather-v1",
    }
    # A choice without tools of its own names one of the job's, checked when it is sent.
    alone = _ok({"messages": USER_HI, "tool_choice": "required"})
    assert alone.extra_body == {"tool_choice": "required"}


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ({"prompt": "x", "tools": {"name": "f"}}, "'tools' must be a list"),
        ({"prompt": "x", "tools": [{"name": "f g"}]}, "'tools'[0].name must be 1 to 64"),
        ({"prompt": "x", "tools": [WEATHER_TOOL], "tool_choice": "other"}, "names 'other'"),
        ({"prompt": "x", "tool_choice": 5}, "'tool_choice' must be one of"),
        ({"prompt": "x", "prompt_cache_key": ""}, "'prompt_cache_key' must be a non-empty"),
    ],
)
def test_bad_tools_are_bad_lines(line: dict[str, Any], says: str) -> None:
    bad = _parse(line)
    assert isinstance(bad, BadLine)
    assert says in bad.reason and bad.reason.startswith("line 7: ")


@pytest.mark.parametrize(
    ("line", "samples"),
    [
        ({"prompt": "x", "samples": 3}, 3),
        ({"prompt": "x", "n": 4}, 4),
        ({"prompt": "x", "n": 4, "samples": 2}, 2),
        ({"body": {"messages": USER_HI, "n": 5}}, 5),
    ],
)
def test_samples_or_n_on_a_line(line: dict[str, Any], samples: int) -> None:
    p = _ok(line)
    assert p.sampling["samples"] == samples
    assert "n" not in p.extra_body


def test_too_many_samples_is_a_bad_line() -> None:
    bad = _parse({"prompt": "x", "n": 129})
    assert isinstance(bad, BadLine) and "'n' must be an integer from 1 to 128" in bad.reason


_READ_ONE_LINE = """
import sys
from lm_deluge_cli.io.parse import parse_line
from lm_deluge_cli.io.reader import InputReader
prompt = parse_line(1, b'{"id": "a", "messages": [{"role": "user", "content": "hi"}]}')
assert prompt.id == "a", prompt
loaded = sorted(m for m in sys.modules if m.startswith("lm_deluge_cli."))
print("\\n".join(loaded))
"""


def test_reading_a_line_loads_no_adapter_engine_or_transport() -> None:
    # The import contracts see the imports written; this sees what a fresh process loads,
    # package __init__ files included.
    done = subprocess.run(
        [sys.executable, "-c", _READ_ONE_LINE], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.split()
    assert "lm_deluge_cli.io.parse" in loaded
    heavy = ("providers", "engine", "transport", "cache", "mock", "client", "retrieval")
    assert [m for m in loaded if m.split(".")[1] in heavy] == []
