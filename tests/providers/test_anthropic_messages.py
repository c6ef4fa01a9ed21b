"""The Messages API adapter against Anthropic's documented requests: sampling, thinking, system.

Fixtures under fixtures/anthropic/ are the examples of Anthropic's API reference and guides
(the "Hello, world" request and the message object).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.providers.anthropic_messages import (
    JSON_MODE_INSTRUCTION,
    THINKING_BUDGETS,
    AnthropicMessagesAdapter,
    adaptive_thinking,
    native_schema_compatible,
)
from lm_deluge_cli.providers.base import Adapter, Endpoint
from lm_deluge_cli.types import HttpResponse, Prompt, SamplingParams


@pytest.fixture
def endpoint(anthropic_endpoint: Callable[..., Endpoint]) -> Callable[..., Endpoint]:
    return anthropic_endpoint


@pytest.fixture
def body(anthropic_body: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    return anthropic_body


@pytest.fixture
def adaptive_endpoint(
    anthropic_adaptive_endpoint: Callable[[], Endpoint],
) -> Callable[[], Endpoint]:
    return anthropic_adaptive_endpoint


FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"


KEY = "sk-ant-api03-canary7f3a9c1e5b2d4f6a8c0e"


# 2025-08-21T12:40:41Z: 18 s before the documented requests reset.
NOW = datetime.datetime(2025, 8, 21, 12, 40, 41, tzinfo=datetime.UTC).timestamp()


ADAPTER = AnthropicMessagesAdapter(clock=lambda: NOW)


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def prompt(messages: list[dict[str, Any]], extra_body: dict[str, Any] | None = None) -> Prompt:
    return Prompt(id=1, line=1, messages=messages, extra_body=dict(extra_body or {}))


HELLO = [{"role": "user", "content": "Hello, world"}]


def ok(raw: Any) -> HttpResponse:
    return HttpResponse(200, {"content-type": "application/json"}, orjson.dumps(raw))


def test_it_is_an_adapter() -> None:
    adapter: Adapter = ADAPTER
    assert adapter is ADAPTER


# --- build_request ---------------------------------------------------------------------


def test_build_request_matches_the_documented_example(
    endpoint: Callable[..., Endpoint],
) -> None:
    documented = fixture("messages_request")
    sampling = SamplingParams(max_new_tokens=1024)
    request = ADAPTER.build_request(endpoint(), prompt(documented["messages"]), sampling, 12.5)
    assert request.method == "POST"
    assert request.url == "https://api.anthropic.com/v1/messages"
    assert dict(request.headers) == {
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": KEY,
    }
    assert request.timeout == 12.5
    assert orjson.loads(request.body) == {**documented, "temperature": 0.0}


def test_another_base_url_and_no_key(
    endpoint: Callable[..., Endpoint],
) -> None:
    target = endpoint(key=None, base_url="http://127.0.0.1:8080/anthropic")
    request = ADAPTER.build_request(target, prompt(HELLO), SamplingParams(), 5.0)
    assert request.url == "http://127.0.0.1:8080/anthropic/v1/messages"
    assert "x-api-key" not in request.headers


# sampling, reasoning model → the fields expected, and those that must be absent
SAMPLING: list[tuple[SamplingParams, bool, dict[str, Any], list[str]]] = [
    (SamplingParams(), False, {"temperature": 0.0, "max_tokens": 512}, ["top_p", "thinking"]),
    (SamplingParams(temperature=0.7, top_p=1.0), False, {"temperature": 0.7}, ["top_p"]),
    # Newer models refuse both together: a changed top_p is sent alone.
    (SamplingParams(temperature=0.7, top_p=0.9), False, {"top_p": 0.9}, ["temperature"]),
    (SamplingParams(top_p=0.5), False, {"top_p": 0.5}, ["temperature", "thinking"]),
    # reasoning_effort means nothing to a model without extended thinking.
    (
        SamplingParams(reasoning_effort="high"),
        False,
        {"temperature": 0.0, "max_tokens": 512},
        ["thinking"],
    ),
    (SamplingParams(), True, {"temperature": 0.0, "max_tokens": 512}, ["thinking"]),
    (
        SamplingParams(reasoning_effort="minimal", temperature=0.3),
        True,
        {"temperature": 0.3, "max_tokens": 512},
        ["thinking"],
    ),
    (
        SamplingParams(reasoning_effort="low", temperature=0.3, top_p=0.5),
        True,
        {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 1536},
        ["temperature", "top_p"],
    ),
    (
        SamplingParams(reasoning_effort="medium", max_new_tokens=2000),
        True,
        {"thinking": {"type": "enabled", "budget_tokens": 4096}, "max_tokens": 6096},
        ["temperature", "top_p"],
    ),
    (
        SamplingParams(reasoning_effort="high"),
        True,
        {"thinking": {"type": "enabled", "budget_tokens": 16384}, "max_tokens": 16896},
        ["temperature", "top_p"],
    ),
    # Anthropic has no logprobs: the flags are not sent.
    (SamplingParams(logprobs=True, top_logprobs=3), False, {}, ["logprobs", "top_logprobs"]),
]


@pytest.mark.parametrize(("sampling", "reasoning", "present", "absent"), SAMPLING)
def test_sampling_fields(
    endpoint: Callable[..., Endpoint],
    body: Callable[..., dict[str, Any]],
    sampling: SamplingParams,
    reasoning: bool,
    present: dict[str, Any],
    absent: list[str],
) -> None:
    sent = body(sampling=sampling, target=endpoint(reasoning=reasoning))
    for key, value in present.items():
        assert sent[key] == value
    for key in absent:
        assert key not in sent
    assert sent["messages"] == HELLO
    if "thinking" in sent:
        # The API requires max_tokens above the thinking budget.
        assert sent["max_tokens"] > sent["thinking"]["budget_tokens"] >= 1024


def test_thinking_budgets_cover_every_effort() -> None:
    assert set(THINKING_BUDGETS) == {"minimal", "low", "medium", "high"}


@pytest.mark.parametrize(
    ("sampling", "present", "absent"),
    [
        # No temperature or top_p ever: these models answer 400 to them.
        (SamplingParams(temperature=0.3, top_p=0.5), {"max_tokens": 512}, ["thinking"]),
        (SamplingParams(reasoning_effort="minimal"), {"max_tokens": 512}, ["thinking"]),
        (
            SamplingParams(reasoning_effort="low"),
            {"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}},
            [],
        ),
        (
            SamplingParams(reasoning_effort="high", max_new_tokens=1000),
            {
                "thinking": {"type": "adaptive"},
                "output_config": {"effort": "high"},
                "max_tokens": 16384 + 1000,
            },
            [],
        ),
    ],
)
def test_adaptive_only_models(
    endpoint: Callable[..., Endpoint],
    body: Callable[..., dict[str, Any]],
    adaptive_endpoint: Callable[[], Endpoint],
    sampling: SamplingParams,
    present: dict[str, Any],
    absent: list[str],
) -> None:
    target = adaptive_endpoint()
    assert adaptive_thinking(target)
    assert not adaptive_thinking(endpoint(reasoning=True))
    sent = body(sampling=sampling, target=target)
    for key, value in present.items():
        assert sent[key] == value
    for key in [*absent, "temperature", "top_p", "budget_tokens"]:
        assert key not in sent
    assert "budget_tokens" not in sent.get("thinking", {})


@pytest.mark.parametrize(
    ("messages", "json_mode", "system"),
    [
        (HELLO, False, None),
        (HELLO, True, JSON_MODE_INSTRUCTION),
        ([{"role": "system", "content": "Be terse."}, *HELLO], False, "Be terse."),
        (
            [
                {"role": "system", "content": "Be terse."},
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                *HELLO,
            ],
            True,
            f"Be terse.\n\nUse French.\n\n{JSON_MODE_INSTRUCTION}",
        ),
        ([{"role": "system", "content": ""}, *HELLO], False, None),
    ],
)
def test_system_and_developer_messages_become_the_system_field(
    body: Callable[..., dict[str, Any]],
    messages: list[dict[str, Any]],
    json_mode: bool,
    system: str | None,
) -> None:
    sent = body(messages, SamplingParams(json_mode=json_mode))
    assert sent.get("system") == system
    assert sent["messages"] == HELLO


def test_consecutive_turns_of_one_role_are_merged(
    body: Callable[..., dict[str, Any]],
) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "First."},
        {"role": "user", "content": [{"type": "text", "text": "Second."}]},
        {"role": "assistant", "content": "One."},
        {"role": "assistant", "content": "Two."},
        {"role": "user", "content": ""},
        {"role": "user", "content": "Third."},
    ]
    assert body(messages)["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "First."}, {"type": "text", "text": "Second."}],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}],
        },
        {"role": "user", "content": "Third."},
    ]


def test_stop_sequences_are_sent_as_stop_sequences(
    body: Callable[..., dict[str, Any]],
) -> None:
    assert body(sampling=SamplingParams(stop=("END",)))["stop_sequences"] == ["END"]
    assert "stop_sequences" not in body()


SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def test_json_schema_is_a_forced_tool_without_thinking(
    endpoint: Callable[..., Endpoint],
    body: Callable[..., dict[str, Any]],
) -> None:
    sampling = SamplingParams(json_schema=SCHEMA, json_mode=True, reasoning_effort="high")
    sent = body(sampling=sampling, target=endpoint(reasoning=True))
    assert sent["tools"][-1]["name"] == "respond"
    assert sent["tools"][-1]["input_schema"] == SCHEMA
    assert sent["tool_choice"] == {"type": "tool", "name": "respond"}
    # A forced tool cannot be combined with thinking; the JSON instruction is not needed.
    assert "thinking" not in sent
    assert "system" not in sent
    assert sent["max_tokens"] == sampling.max_new_tokens


def test_the_forced_tools_input_is_the_completion(
    endpoint: Callable[..., Endpoint],
) -> None:
    answer: dict[str, Any] = {
        "content": [{"type": "tool_use", "id": "t1", "name": "respond", "input": {"n": 3}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 4, "output_tokens": 5},
    }
    completion = ADAPTER.parse_response(endpoint(), ok(answer))
    assert (completion.text, completion.finish_reason) == ('{"n":3}', "stop")
    # Cut at max_tokens, the tool's input is incomplete: the finish says so.
    cut = {
        **answer,
        "content": [{**answer["content"][0], "input": {}}],
        "stop_reason": "max_tokens",
    }
    completion = ADAPTER.parse_response(endpoint(), ok(cut))
    assert (completion.text, completion.finish_reason) == ("{}", "length")


CLOSED = {**SCHEMA, "additionalProperties": False}


def structured(target: Endpoint) -> Endpoint:
    """`target` with a model that has structured outputs."""
    model = dataclasses.replace(target.model, supports_json_schema=True)
    return dataclasses.replace(target, model=model)


def test_a_closed_schema_goes_natively_to_models_with_structured_outputs(
    endpoint: Callable[..., Endpoint], body: Callable[..., dict[str, Any]]
) -> None:
    sampling = SamplingParams(json_schema=CLOSED, reasoning_effort="low")
    sent = body(sampling=sampling, target=structured(endpoint(reasoning=True)))
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": CLOSED}}
    assert "tools" not in sent and "tool_choice" not in sent
    # Unlike a forced tool, structured outputs combine with thinking.
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_adaptive_models_keep_their_effort_beside_the_format(
    anthropic_adaptive_endpoint: Callable[[], Endpoint], body: Callable[..., dict[str, Any]]
) -> None:
    sampling = SamplingParams(json_schema=CLOSED, reasoning_effort="high")
    sent = body(sampling=sampling, target=structured(anthropic_adaptive_endpoint()))
    assert sent["output_config"] == {
        "effort": "high",
        "format": {"type": "json_schema", "schema": CLOSED},
    }


@pytest.mark.parametrize(
    "schema",
    [
        SCHEMA,  # an open object
        {**CLOSED, "properties": {"n": {"type": "integer", "minimum": 1}}},
        {"type": "array", "items": {"type": "string"}, "minItems": 2},
        {"type": "string", "pattern": "^a"},
    ],
)
def test_schemas_structured_outputs_cannot_enforce_go_as_a_forced_tool(
    endpoint: Callable[..., Endpoint], body: Callable[..., dict[str, Any]], schema: Any
) -> None:
    sent = body(sampling=SamplingParams(json_schema=schema), target=structured(endpoint()))
    assert "format" not in sent.get("output_config", {})
    assert sent["tool_choice"] == {"type": "tool", "name": "respond"}


def test_property_names_are_not_mistaken_for_keywords() -> None:
    schema = {
        "type": "object",
        "properties": {"pattern": {"type": "string"}, "minimum": {"type": "number"}},
        "required": ["pattern"],
        "additionalProperties": False,
        "$defs": {"x": {"type": "string", "enum": ["maxLength"]}},
    }
    assert native_schema_compatible(schema)


def test_models_that_refuse_a_forced_tool_get_the_schema_in_the_system_prompt(
    anthropic_adaptive_endpoint: Callable[[], Endpoint], body: Callable[..., dict[str, Any]]
) -> None:
    sent = body(sampling=SamplingParams(json_schema=SCHEMA), target=anthropic_adaptive_endpoint())
    assert "tools" not in sent and "tool_choice" not in sent
    assert "format" not in sent.get("output_config", {})
    assert sent["system"].endswith(orjson.dumps(SCHEMA).decode())
