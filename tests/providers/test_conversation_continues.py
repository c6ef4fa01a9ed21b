"""Continuing a conversation from a result: the assistant turn it appends, and what each
provider is sent back (its own reasoning parts, never another's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.conversation import Conversation, Thinking
from lm_deluge_cli.io.records import from_json, ok_result, to_json
from lm_deluge_cli.providers import adapter_for
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.results import Answer, Completion, ErrorInfo, Reasoning, Result, ToolCall, Usage
from lm_deluge_cli.types import HttpResponse, Prompt, SamplingParams

FIXTURES = Path(__file__).parent / "fixtures"


def parsed(endpoint: Endpoint, fixture: str) -> Result:
    body = (FIXTURES / fixture).read_bytes()
    completion = adapter_for(endpoint.wire_format).parse_response(
        endpoint, HttpResponse(200, {}, body)
    )
    prompt = Prompt(id="q", line=1, messages=[])
    return ok_result(prompt, completion, model=endpoint.name, attempts=1, latency_s=0.1)


def sent(endpoint: Endpoint, conversation: Conversation) -> dict[str, Any]:
    prompt = Prompt(id="q", line=1, messages=conversation.to_openai())
    request = adapter_for(endpoint.wire_format).build_request(endpoint, prompt, SamplingParams(), 5)
    body: dict[str, Any] = orjson.loads(request.body)
    return body


def test_the_assistant_turn_holds_text_calls_and_reasoning() -> None:
    answer = Answer(
        "Let me look.",
        (ToolCall("c1", "get_weather", {"city": "Paris"}), ToolCall("c2", "f", None, "{")),
        Reasoning("Weather, then.", ({"format": "anthropic_messages", "block": {"x": 1}},)),
    )
    conversation = Conversation.user("Weather in Paris?").with_response(answer)
    (_, assistant) = conversation.to_openai()
    assert assistant == {
        "role": "assistant",
        "content": "Let me look.",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            },
            {"id": "c2", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        ],
        "reasoning": {
            "text": "Weather, then.",
            "parts": [{"format": "anthropic_messages", "block": {"x": 1}}],
        },
    }
    # Read back from OpenAI-shaped messages, the reasoning is a part of the turn again.
    again = Conversation.from_openai(conversation.to_openai())
    assert again.messages[1].parts[-1] == Thinking(
        "Weather, then.", ({"format": "anthropic_messages", "block": {"x": 1}},)
    )


def test_a_refusal_is_the_turns_text_and_a_failure_has_nothing_to_append() -> None:
    refused = Conversation.user("x").with_response(Answer(refusal="I can't help with that."))
    assert refused.to_openai()[1] == {"role": "assistant", "content": "I can't help with that."}
    failed = Result(id=1, line=1, status="error", model="m", error=ErrorInfo("rate_limit", "slow"))
    with pytest.raises(ValueError, match="holds no answer"):
        Conversation.user("x").with_response(failed)


def test_claude_gets_its_signed_thinking_back_before_the_call(
    anthropic_endpoint: Any,
) -> None:
    endpoint = anthropic_endpoint()
    result = parsed(endpoint, "anthropic/message_thinking_tool_use.json")
    # Through a record and back, as a resumed run or a user's script would read it.
    result = from_json(to_json(result))
    conversation = (
        Conversation.user("Weather in Paris?")
        .with_response(result)
        .with_tool_result(result.tool_calls[0].id, {"temperature": 21})
    )
    body = sent(endpoint, conversation)
    assistant = body["messages"][1]
    assert assistant["role"] == "assistant"
    thinking, text, tool_use = assistant["content"]
    fixture = orjson.loads((FIXTURES / "anthropic/message_thinking_tool_use.json").read_bytes())
    assert thinking == fixture["content"][0]  # the signed block, exactly as it came
    assert text == {"type": "text", "text": "Let me look that up."}
    assert (tool_use["type"], tool_use["id"], tool_use["input"]) == (
        "tool_use",
        "toolu_01CswdEQBMshySk6Y9DFKrfq",
        {"location": "Paris, France"},
    )
    (result_block,) = body["messages"][2]["content"]
    assert result_block["tool_use_id"] == "toolu_01CswdEQBMshySk6Y9DFKrfq"


def test_another_provider_gets_the_turn_without_claudes_thinking(
    anthropic_endpoint: Any, openai_endpoint: Any
) -> None:
    result = parsed(anthropic_endpoint(), "anthropic/message_thinking_tool_use.json")
    conversation = (
        Conversation.user("Weather in Paris?")
        .with_response(result)
        .with_tool_result(result.tool_calls[0].id, "21C")
    )
    body = sent(openai_endpoint(), conversation)
    assistant = body["messages"][1]
    assert "reasoning" not in assistant
    assert assistant["tool_calls"][0]["id"] == "toolu_01CswdEQBMshySk6Y9DFKrfq"
    assert body["messages"][2] == {
        "role": "tool",
        "tool_call_id": "toolu_01CswdEQBMshySk6Y9DFKrfq",
        "content": "21C",
    }


def test_usage_and_answers_survive_the_record_round_trip() -> None:
    result = ok_result(
        Prompt(id="q", line=1, messages=[]),
        Completion((Answer("a"), Answer("b")), Usage(3, 4)),
        model="m",
        attempts=1,
        latency_s=0.0,
    )
    assert from_json(to_json(result)).completions == ["a", "b"]
