"""Continuing a Claude conversation from a record: the assistant message a record makes (text,
OpenAI-shaped tool_calls and the ``reasoning`` it holds) gives the next request its thinking
blocks back exactly as the API returned them, on the wire format they came from.

Fixtures: the extended-thinking responses of fixtures/anthropic/ (a signed thinking block
before a tool call; signed and redacted thinking before text).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import APIError
from lm_deluge_cli.io.records import answer_json
from lm_deluge_cli.providers.anthropic_turns import translate_messages
from lm_deluge_cli.providers.bedrock import AwsCredentials, BedrockAnthropicAdapter
from lm_deluge_cli.results import Answer
from lm_deluge_cli.types import HttpResponse, Prompt, SamplingParams

from .conftest import ANTHROPIC_ADAPTER, _anthropic_endpoint

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}
BEDROCK = BedrockAnthropicAdapter(AwsCredentials("AKIDEXAMPLE", "secret"), env={})


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads((FIXTURES / f"{name}.json").read_bytes())
    return loaded


def assistant_message(answer: Answer) -> dict[str, Any]:
    """The OpenAI-shaped assistant message a record's answer makes: its text, its tool calls
    as OpenAI writes them, and its reasoning as the record holds it (through JSON)."""
    record = orjson.loads(orjson.dumps(answer_json(answer)))
    message: dict[str, Any] = {"role": "assistant", "content": record["completion"]}
    if answer.tool_calls:
        message["tool_calls"] = [call.openai_call() for call in answer.tool_calls]
    message["reasoning"] = record["reasoning"]
    return message


def next_body(adapter: Any, endpoint: Any, messages: list[dict[str, Any]]) -> dict[str, Any]:
    prompt = Prompt(id=1, line=1, messages=messages, extra_body={"tools": [WEATHER]})
    request = adapter.build_request(endpoint, prompt, SamplingParams(), 5.0)
    # The reasoning key itself never reaches the wire.
    assert b'"reasoning"' not in request.body
    body: dict[str, Any] = orjson.loads(request.body)
    return body


QUESTION: dict[str, Any] = {"role": "user", "content": "What's the weather in Paris?"}


def test_thinking_before_a_tool_call_goes_back_first_and_unchanged() -> None:
    raw = fixture("message_thinking_tool_use")
    response = HttpResponse(200, {}, orjson.dumps(raw))
    answer = ANTHROPIC_ADAPTER.parse_response(_anthropic_endpoint(), response).answer
    result = {"role": "tool", "tool_call_id": answer.tool_calls[0].id, "content": "18 degrees"}
    body = next_body(
        ANTHROPIC_ADAPTER, _anthropic_endpoint(), [QUESTION, assistant_message(answer), result]
    )
    # thinking (signature intact), then the text, then the call: the blocks as received.
    assert body["messages"][1] == {"role": "assistant", "content": raw["content"]}
    assert body["messages"][2]["content"][0]["tool_use_id"] == "toolu_01CswdEQBMshySk6Y9DFKrfq"


def test_redacted_thinking_goes_back_too() -> None:
    raw = fixture("message_thinking")
    response = HttpResponse(200, {}, orjson.dumps(raw))
    answer = ANTHROPIC_ADAPTER.parse_response(_anthropic_endpoint(), response).answer
    follow_up = {"role": "user", "content": "Go on."}
    body = next_body(
        ANTHROPIC_ADAPTER, _anthropic_endpoint(), [QUESTION, assistant_message(answer), follow_up]
    )
    assert body["messages"][1]["content"] == raw["content"]


def test_bedrock_gets_back_its_own_blocks_and_not_anthropics() -> None:
    raw = fixture("message_thinking_tool_use")
    bedrock_endpoint = dataclasses.replace(
        _anthropic_endpoint("anthropic.claude-sonnet-4-20250514-v1:0"),
        base_url="https://bedrock-runtime.us-east-1.amazonaws.com",
    )
    response = HttpResponse(200, {}, orjson.dumps(raw))
    from_bedrock = BEDROCK.parse_response(bedrock_endpoint, response).answer
    from_anthropic = ANTHROPIC_ADAPTER.parse_response(_anthropic_endpoint(), response).answer
    thinking, text, call = raw["content"]
    for answer, blocks in ((from_bedrock, [thinking, text, call]), (from_anthropic, [text, call])):
        result = {"role": "tool", "tool_call_id": call["id"], "content": "18"}
        body = next_body(BEDROCK, bedrock_endpoint, [QUESTION, assistant_message(answer), result])
        assert body["messages"][1]["content"] == blocks
    # And the other way round.
    body = next_body(
        ANTHROPIC_ADAPTER,
        _anthropic_endpoint(),
        [QUESTION, assistant_message(from_bedrock), {"role": "user", "content": "Go on."}],
    )
    assert body["messages"][1]["content"] == [text, call]


def test_parts_of_other_formats_are_dropped() -> None:
    block = {"type": "thinking", "thinking": "Hm.", "signature": "EqQB"}
    reasoning: dict[str, Any] = {
        "text": "Hm.",
        "parts": [
            {"format": "gemini", "parts": [{"text": "Hi", "thoughtSignature": "Cv8B"}]},
            {"format": "openai_responses", "item": {"type": "reasoning", "encrypted_content": "x"}},
            {"format": "anthropic_messages", "block": block},
        ],
    }
    messages = [QUESTION, {"role": "assistant", "content": "Hi", "reasoning": reasoning}]
    _, turns = translate_messages(messages)
    assert turns[1] == {"role": "assistant", "content": [block, {"type": "text", "text": "Hi"}]}


@pytest.mark.parametrize(
    "reasoning",
    [
        None,
        {"text": "Summary only, nothing to send back", "parts": []},
        {"text": None, "parts": [{"format": "anthropic_messages"}]},
    ],
)
def test_reasoning_without_blocks_adds_nothing(reasoning: Any) -> None:
    messages = [QUESTION, {"role": "assistant", "content": "Hi", "reasoning": reasoning}]
    _, turns = translate_messages(messages)
    assert turns[1] == {"role": "assistant", "content": "Hi"}


@pytest.mark.parametrize(
    ("reasoning", "says"),
    [
        ("thought about it", "reasoning must be an object with a list of 'parts'"),
        ({"parts": "x"}, "reasoning must be an object with a list of 'parts'"),
        (
            {"parts": [{"format": "anthropic_messages", "block": {"type": "text", "text": "x"}}]},
            "reasoning holds a 'text' block",
        ),
    ],
)
def test_reasoning_that_is_not_a_records_is_refused(reasoning: Any, says: str) -> None:
    messages = [QUESTION, {"role": "assistant", "content": "Hi", "reasoning": reasoning}]
    with pytest.raises(APIError, match=says):
        translate_messages(messages)


def test_reasoning_on_other_roles_is_ignored() -> None:
    reasoning = {"parts": [{"format": "anthropic_messages", "block": {"type": "thinking"}}]}
    _, turns = translate_messages([{**QUESTION, "reasoning": reasoning}])
    assert turns == [QUESTION]
