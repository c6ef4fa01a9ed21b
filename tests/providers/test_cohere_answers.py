"""What a Cohere answer holds beyond its text (tool calls and their plan, thinking,
citations' text), and the line keys a Cohere request never carries (fixtures/cohere/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.providers.cohere import CohereV2Adapter
from lm_deluge_cli.providers.registry import ModelInfo, ProviderInfo
from lm_deluge_cli.results import Completion, Reasoning, ToolCall
from lm_deluge_cli.types import HttpResponse, Prompt, SamplingParams

FIXTURES = Path(__file__).parent / "fixtures" / "cohere"
ADAPTER = CohereV2Adapter()
OFFICIAL = "https://api.cohere.com"
PROVIDER = ProviderInfo("cohere", "cohere_v2", OFFICIAL, "CO_API_URL", "CO_API_KEY")
MODEL = ModelInfo("cohere:command-a-reasoning-08-2025", "cohere", "command-a-reasoning-08-2025")
ENDPOINT = Endpoint(MODEL.id, MODEL, PROVIDER, OFFICIAL, api_key="k")


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def parse(body: Any) -> Completion:
    return ADAPTER.parse_response(ENDPOINT, HttpResponse(200, {}, orjson.dumps(body)))


def test_parallel_tool_calls_with_their_plan() -> None:
    answer = parse(fixture("chat_response_parallel_tool_calls")).answer
    assert answer.text == "I will search for the weather in Toronto and New York."
    assert answer.tool_calls == (
        ToolCall("get_weather_9b0f1zyn2yv0", "get_weather", {"location": "Toronto"}),
        ToolCall("get_weather_0qq0mz9gwnqr", "get_weather", {"location": "New York"}),
    )
    assert (answer.finish_reason, answer.provider_finish_reason) == ("tool_calls", "TOOL_CALL")
    assert answer.reasoning is None


@pytest.mark.parametrize(
    ("arguments", "parsed", "raw"),
    [
        ('{"location":"Tor', None, '{"location":"Tor'),
        ('"Toronto"', None, '"Toronto"'),
        (None, {}, None),
    ],
)
def test_arguments_that_are_not_a_json_object_are_kept_raw(
    arguments: Any, parsed: Any, raw: str | None
) -> None:
    documented = fixture("chat_response_tool_call")
    documented["message"]["tool_calls"][0]["function"]["arguments"] = arguments
    assert parse(documented).answer.tool_calls == (
        ToolCall("get_weather_1byjy32y4hvq", "get_weather", parsed, raw),
    )


def test_a_plan_beside_text_comes_first() -> None:
    documented = fixture("chat_response_tool_call")
    documented["message"]["content"] = [{"type": "text", "text": "Then I will answer."}]
    text = parse(documented).answer.text
    assert text == "I will look up the weather in Toronto.\n\nThen I will answer."


def test_thinking_is_the_reasoning_never_the_text() -> None:
    documented = fixture("chat_response_thinking")
    answer = parse(documented).answer
    assert answer.text == "Alice's brother has 3 sisters."
    assert answer.reasoning == Reasoning(documented["message"]["content"][0]["thinking"])
    assert (answer.finish_reason, answer.provider_finish_reason) == ("stop", "COMPLETE")


def test_thinking_beside_tool_calls() -> None:
    documented = fixture("chat_response_parallel_tool_calls")
    del documented["message"]["tool_plan"]
    documented["message"]["content"] = [
        {"type": "thinking", "thinking": "Two cities: two calls."},
        {"type": "thinking", "thinking": ""},
    ]
    answer = parse(documented).answer
    assert answer.text is None
    assert answer.reasoning == Reasoning("Two cities: two calls.")
    assert len(answer.tool_calls) == 2 and not answer.empty


def test_citations_leave_the_text_as_written() -> None:
    documented = fixture("chat_response_citations")
    text = parse(documented).answer.text
    assert text == documented["message"]["content"][0]["text"]
    # Every citation's span still points at its text.
    assert text is not None
    for citation in documented["message"]["citations"]:
        assert text[citation["start"] : citation["end"]] == citation["text"]


@pytest.mark.parametrize(
    ("reason", "ours"),
    [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
        ("TIMEOUT", "other"),
    ],
)
def test_each_documented_finish_reason_keeps_coheres_own(reason: str, ours: str) -> None:
    documented = fixture("chat_response_citations")
    documented["finish_reason"] = reason
    answer = parse(documented).answer
    assert (answer.finish_reason, answer.provider_finish_reason) == (ours, reason)


@pytest.mark.parametrize("compatible", [False, True])
def test_cache_control_and_reasoning_never_reach_cohere(compatible: bool) -> None:
    marker = {"type": "ephemeral"}
    messages: list[dict[str, Any]] = [
        {
            "role": "system",
            "content": [{"type": "text", "text": "Be brief.", "cache_control": marker}],
        },
        {"role": "user", "content": [{"type": "text", "text": "2 + 2?", "cache_control": marker}]},
        {"role": "assistant", "content": "4", "reasoning": {"text": "easy", "parts": []}},
        {"role": "user", "content": "3 + 3?"},
    ]
    tools = [{"type": "function", "function": {"name": "add"}, "cache_control": marker}]
    target = Endpoint(MODEL.id, MODEL, PROVIDER, OFFICIAL, api_key="k", compatible=compatible)
    prompt = Prompt(id=1, line=1, messages=messages, extra_body={"tools": tools})
    body = orjson.loads(ADAPTER.build_request(target, prompt, SamplingParams(), 5.0).body)
    assert b"cache_control" not in orjson.dumps(body)
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "2 + 2?"}]},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "3 + 3?"},
    ]
    assert body["tools"] == [{"type": "function", "function": {"name": "add"}}]
