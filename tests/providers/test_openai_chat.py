"""The Chat Completions adapter against OpenAI's documented request and response payloads.

Fixtures under fixtures/openai/ are the examples in OpenAI's API reference and guides (the
chat completion object, the logprobs example).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import APIResponseValidationError
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.providers.openai_chat import OpenAIChatAdapter
from lm_deluge_cli.providers.registry import ModelInfo, load_registry
from lm_deluge_cli.results import Answer, Completion, Reasoning, ToolCall, Usage
from lm_deluge_cli.types import HttpResponse, Prompt, SamplingParams


@pytest.fixture
def endpoint(openai_endpoint: Callable[..., Endpoint]) -> Callable[..., Endpoint]:
    return openai_endpoint


FIXTURES = Path(__file__).parent / "fixtures" / "openai"


KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"


ADAPTER = OpenAIChatAdapter()


OFFICIAL = "https://api.openai.com/v1"


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def prompt(extra_body: dict[str, Any] | None = None) -> Prompt:
    return Prompt(
        id=1,
        line=1,
        messages=fixture("chat_request")["messages"],
        extra_body=dict(extra_body or {}),
    )


def body_of(request_body: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(request_body)
    return parsed


def ok(body: Any, headers: dict[str, str] | None = None) -> HttpResponse:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return HttpResponse(200, headers or {"content-type": "application/json"}, raw)


# --- build_request ---------------------------------------------------------------------


def test_build_request_matches_the_documented_example(
    endpoint: Callable[..., Endpoint],
) -> None:
    documented = fixture("chat_request")
    request = ADAPTER.build_request(endpoint(), prompt(), SamplingParams(), timeout=12.5)
    assert request.method == "POST"
    assert request.url == "https://api.openai.com/v1/chat/completions"
    assert dict(request.headers) == {
        "content-type": "application/json",
        "accept": "application/json",
        "authorization": f"Bearer {KEY}",
    }
    assert request.timeout == 12.5
    assert body_of(request.body) == {
        "model": documented["model"],
        "messages": documented["messages"],
        "max_completion_tokens": 512,
        "temperature": 0.0,
        "top_p": 1.0,
    }


def test_compatible_servers_get_max_tokens_at_their_own_url(
    endpoint: Callable[..., Endpoint],
) -> None:
    target = endpoint(
        "openai:meta-llama/Llama-3.1-8B-Instruct",
        base_url="http://127.0.0.1:8000/v1",
        compatible=True,
    )
    request = ADAPTER.build_request(target, prompt(), SamplingParams(max_new_tokens=77), 5.0)
    body = body_of(request.body)
    assert request.url == "http://127.0.0.1:8000/v1/chat/completions"
    assert body["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert body["max_tokens"] == 77
    assert "max_completion_tokens" not in body


def test_no_key_means_no_authorization_header(
    endpoint: Callable[..., Endpoint],
) -> None:
    request = ADAPTER.build_request(endpoint(key=None), prompt(), SamplingParams(), 5.0)
    assert "authorization" not in request.headers
    assert request.headers["content-type"] == "application/json"


def test_wire_id_is_sent_not_the_registry_id() -> None:
    registry = load_registry()
    target = Endpoint(
        name="alias-name",
        model=ModelInfo(id="openai:my-alias", provider="openai", wire_id="gpt-4.1-2025-04-14"),
        provider=registry.provider("openai"),
        base_url=OFFICIAL,
    )
    body = body_of(ADAPTER.build_request(target, prompt(), SamplingParams(), 5.0).body)
    assert body["model"] == "gpt-4.1-2025-04-14"


@pytest.mark.parametrize(
    ("model", "effort", "expected_effort"),
    [
        ("openai:o3", None, None),
        ("openai:o3", "high", "high"),
        ("openai:o4-mini", "low", "low"),
        ("openai:gpt-5", "minimal", "minimal"),
        ("openai:gpt-5-nano", None, None),
    ],
)
def test_reasoning_models_omit_temperature_and_top_p(
    endpoint: Callable[..., Endpoint], model: str, effort: str | None, expected_effort: str | None
) -> None:
    sampling = SamplingParams(temperature=0.9, top_p=0.5, reasoning_effort=effort)
    body = body_of(ADAPTER.build_request(endpoint(model), prompt(), sampling, 5.0).body)
    assert "temperature" not in body
    assert "top_p" not in body
    assert body.get("reasoning_effort") == expected_effort
    assert ("reasoning_effort" in body) == (expected_effort is not None)
    assert body["max_completion_tokens"] == 512


def test_other_models_never_get_reasoning_effort(
    endpoint: Callable[..., Endpoint],
) -> None:
    sampling = SamplingParams(temperature=0.9, top_p=0.5, reasoning_effort="high")
    body = body_of(ADAPTER.build_request(endpoint("openai:gpt-4o"), prompt(), sampling, 5.0).body)
    assert body["temperature"] == 0.9
    assert body["top_p"] == 0.5
    assert "reasoning_effort" not in body


@pytest.mark.parametrize(
    ("sampling", "present", "absent"),
    [
        (SamplingParams(), {}, ["response_format", "logprobs", "top_logprobs"]),
        (SamplingParams(json_mode=True), {"response_format": {"type": "json_object"}}, []),
        (SamplingParams(logprobs=True), {"logprobs": True}, ["top_logprobs"]),
        (
            SamplingParams(logprobs=True, top_logprobs=2),
            {"logprobs": True, "top_logprobs": 2},
            [],
        ),
        (SamplingParams(logprobs=True, top_logprobs=0), {"top_logprobs": 0}, []),
        # top_logprobs means nothing without logprobs; OpenAI rejects it alone.
        (SamplingParams(top_logprobs=3), {}, ["logprobs", "top_logprobs"]),
    ],
)
def test_optional_sampling_fields(
    endpoint: Callable[..., Endpoint],
    sampling: SamplingParams,
    present: dict[str, Any],
    absent: list[str],
) -> None:
    body = body_of(ADAPTER.build_request(endpoint(), prompt(), sampling, 5.0).body)
    for key, value in present.items():
        assert body[key] == value
    for key in absent:
        assert key not in body


def test_extra_body_passes_through_but_never_overrides_model_or_messages(
    endpoint: Callable[..., Endpoint],
) -> None:
    extra = {
        "model": "gpt-3.5-turbo",
        "messages": [{"role": "user", "content": "injected"}],
        "seed": 7,
        "user": "user-1234",
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
    }
    source = prompt(extra)
    body = body_of(ADAPTER.build_request(endpoint(), source, SamplingParams(), 5.0).body)
    assert body["model"] == "gpt-4.1"
    assert body["messages"] == fixture("chat_request")["messages"]
    assert body["seed"] == 7
    assert body["user"] == "user-1234"
    assert body["response_format"] == extra["response_format"]
    # The prompt itself is left as it was.
    assert source.extra_body == extra


def test_json_schema_is_a_strict_response_format_and_beats_json_mode(
    endpoint: Callable[..., Endpoint],
) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    sampling = SamplingParams(json_mode=True, json_schema=schema)
    body = body_of(ADAPTER.build_request(endpoint(), prompt(), sampling, 5.0).body)
    spec = {"name": "response", "schema": schema, "strict": True}
    assert body["response_format"] == {"type": "json_schema", "json_schema": spec}


CACHE = {"type": "ephemeral"}
MARKED_MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": [{"type": "text", "text": "Be brief.", "cache_control": CACHE}]},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4", "reasoning": {"text": "2 + 2 = 4", "parts": []}},
    {"role": "user", "content": [{"type": "text", "text": "And 3 + 3?", "cache_control": CACHE}]},
]
MARKED_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {"name": "add", "parameters": {"type": "object"}},
    "cache_control": CACHE,
}


def _marked_body(target: Endpoint) -> dict[str, Any]:
    source = Prompt(id=1, line=1, messages=MARKED_MESSAGES, extra_body={"tools": [MARKED_TOOL]})
    return body_of(ADAPTER.build_request(target, source, SamplingParams(), 5.0).body)


def test_openai_itself_gets_no_cache_control_and_no_reasoning(
    endpoint: Callable[..., Endpoint],
) -> None:
    body = _marked_body(endpoint())
    assert body["messages"] == [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": [{"type": "text", "text": "And 3 + 3?"}]},
    ]
    assert body["tools"] == [{"type": "function", "function": MARKED_TOOL["function"]}]
    # The line is left as it was.
    assert MARKED_MESSAGES[0]["content"][0]["cache_control"] == CACHE


def test_compatible_servers_keep_cache_control_but_never_get_reasoning(
    endpoint: Callable[..., Endpoint],
) -> None:
    # OpenRouter and LiteLLM proxies pass cache_control on to Anthropic models.
    target = endpoint(base_url="https://openrouter.ai/api/v1", compatible=True)
    body = _marked_body(target)
    assert body["messages"][0] == MARKED_MESSAGES[0]
    assert body["messages"][2] == {"role": "assistant", "content": "4"}
    assert body["messages"][3] == MARKED_MESSAGES[3]
    assert body["tools"] == [MARKED_TOOL]


# --- parse_response --------------------------------------------------------------------


def test_parse_the_documented_chat_completion(
    endpoint: Callable[..., Endpoint],
) -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture_bytes("chat_completion")))
    answer = Answer(
        text="Hello! How can I assist you today?",
        finish_reason="stop",
        provider_finish_reason="stop",
    )
    assert completion == Completion((answer,), Usage(input_tokens=19, output_tokens=10))


def test_parse_the_documented_logprobs_example(
    endpoint: Callable[..., Endpoint],
) -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture_bytes("chat_completion_logprobs")))
    assert completion.text == "Hello! How can I assist you today?"
    assert completion.usage == Usage(input_tokens=9, output_tokens=9)
    tokens = completion.logprobs
    assert isinstance(tokens, list)
    assert [t["token"] for t in tokens] == [
        "Hello", "!", " How", " can", " I", " assist", " you", " today", "?"
    ]  # fmt: skip
    assert tokens[0]["logprob"] == -0.31725305
    assert tokens[0]["bytes"] == [72, 101, 108, 108, 111]
    assert tokens[0]["top_logprobs"][1] == {
        "token": "Hi",
        "logprob": -1.3190403,
        "bytes": [72, 105],
    }
    assert tokens[2]["top_logprobs"][1]["bytes"] is None


def _with_usage(usage: Any) -> dict[str, Any]:
    body: dict[str, Any] = fixture("chat_completion")
    if usage is _MISSING:
        del body["usage"]
    else:
        body["usage"] = usage
    return body


_MISSING = object()


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        # The prompt-caching guide's example usage.
        (
            {
                "prompt_tokens": 2006,
                "completion_tokens": 300,
                "total_tokens": 2306,
                "prompt_tokens_details": {"cached_tokens": 1920},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
            Usage(2006, 300, cached_input_tokens=1920),
        ),
        # Newer models bill what they write to the cache (prompt_tokens_details).
        (
            {
                "prompt_tokens": 3000,
                "completion_tokens": 10,
                "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 2900},
            },
            Usage(3000, 10, cache_write_tokens=2900),
        ),
        (
            {
                "prompt_tokens": 81,
                "completion_tokens": 1035,
                "completion_tokens_details": {"reasoning_tokens": 832},
            },
            Usage(81, 1035, reasoning_tokens=832),
        ),
        (
            {
                "prompt_tokens": 5,
                "completion_tokens": 6,
                "prompt_tokens_details": None,
                "completion_tokens_details": None,
            },
            Usage(5, 6),
        ),
        ({"prompt_tokens": 5}, Usage(5, 0)),
        ({"prompt_tokens": None, "completion_tokens": None}, Usage()),
        (None, Usage()),
        (_MISSING, Usage()),
        ("not an object", Usage()),
    ],
)
def test_usage(endpoint: Callable[..., Endpoint], usage: Any, expected: Usage) -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(_with_usage(usage)))
    assert completion.usage == expected


def _answer(
    endpoint: Callable[..., Endpoint], message: dict[str, Any], finish: str | None
) -> Answer:
    body = fixture("chat_completion")
    body["choices"][0]["message"] = message
    body["choices"][0]["finish_reason"] = finish
    return ADAPTER.parse_response(endpoint(), ok(body)).answer


def test_a_tool_call_answer_has_parsed_calls_and_no_text(
    endpoint: Callable[..., Endpoint],
) -> None:
    # The function-calling guide's answer: content null, the calls' arguments as JSON text.
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_abc123",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location":"Boston"}'},
            },
            {
                "id": "call_def456",
                "type": "function",
                "function": {"name": "get_time", "arguments": "{}"},
            },
        ],
    }
    answer = _answer(endpoint, message, "tool_calls")
    assert answer == Answer(
        text=None,
        tool_calls=(
            ToolCall("call_abc123", "get_weather", {"location": "Boston"}),
            ToolCall("call_def456", "get_time", {}),
        ),
        finish_reason="tool_calls",
        provider_finish_reason="tool_calls",
    )
    assert not answer.empty


@pytest.mark.parametrize("raw", ['{"location": "Bos', "[1, 2]", "not json"])
def test_arguments_that_are_not_a_json_object_are_kept_raw(
    endpoint: Callable[..., Endpoint], raw: str
) -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": raw}}
    answer = _answer(endpoint, {"role": "assistant", "content": None, "tool_calls": [call]}, "stop")
    assert answer.tool_calls == (ToolCall("c", "f", None, raw),)


def test_a_refusal_is_its_own_finish_reason(endpoint: Callable[..., Endpoint]) -> None:
    answer = _answer(
        endpoint, {"role": "assistant", "content": None, "refusal": "I can't help."}, "stop"
    )
    assert (answer.text, answer.refusal) == (None, "I can't help.")
    assert (answer.finish_reason, answer.provider_finish_reason) == ("refusal", "stop")
    assert not answer.empty


@pytest.mark.parametrize(
    ("message", "finish", "ours", "empty"),
    [
        ({"role": "assistant", "content": ""}, "content_filter", "content_filter", True),
        ({"role": "assistant", "content": None}, "stop", "stop", True),
        ({"role": "assistant", "content": "cut"}, "length", "length", False),
        ({"role": "assistant", "content": "no reason"}, None, None, False),
        ({"role": "assistant", "content": "old"}, "function_call", "tool_calls", False),
        ({"role": "assistant", "content": "x"}, "something_new", "other", False),
    ],
)
def test_finish_reasons_and_empty_answers(
    endpoint: Callable[..., Endpoint],
    message: dict[str, Any],
    finish: str | None,
    ours: str | None,
    empty: bool,
) -> None:
    answer = _answer(endpoint, message, finish)
    assert (answer.finish_reason, answer.provider_finish_reason) == (ours, finish)
    assert answer.empty is empty


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_from_compatible_servers(endpoint: Callable[..., Endpoint], field: str) -> None:
    # vLLM and DeepSeek send reasoning_content; OpenRouter and Ollama send reasoning.
    message = {"role": "assistant", "content": "4", field: "2 + 2 is 4."}
    answer = _answer(endpoint, message, "stop")
    assert answer.reasoning == Reasoning("2 + 2 is 4.")


def test_every_choice_is_an_answer_in_index_order(endpoint: Callable[..., Endpoint]) -> None:
    body = fixture("chat_completion")
    first = body["choices"][0]
    body["choices"] = [
        {**first, "index": 1, "message": {"role": "assistant", "content": "second"}},
        {**first, "index": 0, "message": {"role": "assistant", "content": "first"}},
    ]
    completion = ADAPTER.parse_response(endpoint(), ok(body))
    assert [a.text for a in completion.answers] == ["first", "second"]


def test_only_the_first_choice_is_read(
    endpoint: Callable[..., Endpoint],
) -> None:
    body = fixture("chat_completion")
    second = dict(body["choices"][0], index=1, message={"role": "assistant", "content": "two"})
    body["choices"].append(second)
    assert ADAPTER.parse_response(endpoint(), ok(body)).text == "Hello! How can I assist you today?"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b'{"choices": [',
        b"null",
        b"[]",
        b'"a string"',
        b"42",
        b"{}",
        b'{"choices": null}',
        b'{"choices": []}',
        b'{"choices": {"0": {}}}',
        b'{"choices": ["text"]}',
        b'{"choices": [{}]}',
        b'{"choices": [{"message": null}]}',
        b'{"choices": [{"message": "hi"}]}',
        b'{"choices": [{"message": {"content": 5}}]}',
        b'{"choices": [{"message": {"content": ["a"]}}]}',
        b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "abc"}}',
        b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": [1]}}',
        b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens_details": [1]}}',
        b'{"error": {"message": "an error inside a 200", "type": "server_error"}}',
        b"<html><body><h1>Welcome to nginx!</h1></body></html>",
    ],
)
def test_malformed_2xx_bodies_are_validation_errors(
    endpoint: Callable[..., Endpoint], body: bytes
) -> None:
    with pytest.raises(APIResponseValidationError) as info:
        ADAPTER.parse_response(endpoint(), ok(body))
    error = info.value
    assert error.status_code == 200
    assert error.retryable is True
    assert error.type == "invalid_response"
    assert "unreadable chat completion" in str(error)
    if body.startswith(b"<html>"):
        assert "body starts 'HTML page: Welcome to nginx!'" in str(error)
    else:
        assert repr(body[:20].decode("utf-8", "replace").strip())[1:-1] in str(error)


def test_validation_error_never_quotes_the_key(
    endpoint: Callable[..., Endpoint],
) -> None:
    body = b'{"echo": {"authorization": "Bearer ' + KEY.encode() + b'"}}'
    with pytest.raises(APIResponseValidationError) as info:
        ADAPTER.parse_response(endpoint(), ok(body))
    assert KEY not in str(info.value)
    assert "[redacted]" in str(info.value)


def test_stop_sequences_are_sent_as_stop(
    endpoint: Callable[..., Endpoint],
) -> None:
    request = ADAPTER.build_request(endpoint(), prompt(), SamplingParams(stop=("a", "b")), 5.0)
    assert body_of(request.body)["stop"] == ["a", "b"]
    plain = ADAPTER.build_request(endpoint(), prompt(), SamplingParams(), 5.0)
    assert "stop" not in body_of(plain.body)
