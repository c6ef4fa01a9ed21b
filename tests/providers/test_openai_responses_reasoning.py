"""The Responses API adapter across turns: what a request asks for so that reasoning comes
back (its summary, its encrypted content), what a record's assistant message sends back as
reasoning input items, and the line keys no request carries."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import APIError
from lm_deluge_cli.io.records import answer_json
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.providers.openai_responses import OpenAIResponsesAdapter
from lm_deluge_cli.providers.registry import ModelInfo, load_registry
from lm_deluge_cli.types import HttpResponse, Prompt, SamplingParams

FIXTURES = Path(__file__).parent / "fixtures" / "openai_responses"
ADAPTER = OpenAIResponsesAdapter()
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
ENCRYPTED = "reasoning.encrypted_content"
LOGPROBS = "message.output_text.logprobs"


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def endpoint(wire_id: str = "o4-mini", *, reasoning: bool = True, **kwargs: Any) -> Endpoint:
    model = ModelInfo(
        f"openai:{wire_id}", "openai", wire_id, reasoning=reasoning, wire_format="openai_responses"
    )
    provider = load_registry().provider("openai")
    return Endpoint(model.id, model, provider, "https://api.openai.com/v1", api_key="k", **kwargs)


def body(
    messages: list[dict[str, Any]],
    sampling: SamplingParams | None = None,
    target: Endpoint | None = None,
    extra_body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    prompt = Prompt(id=1, line=1, messages=messages, extra_body=dict(extra_body or {}))
    request = ADAPTER.build_request(target or endpoint(), prompt, sampling or SamplingParams(), 5.0)
    parsed: dict[str, Any] = orjson.loads(request.body)
    return parsed


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def recorded_turn() -> dict[str, Any]:
    """The assistant message a record of the documented reasoning + function calls response
    makes: its tool calls, and its reasoning as the record holds it."""
    documented = fixture("response_reasoning_function_calls")
    completion = ADAPTER.parse_response(endpoint(), HttpResponse(200, {}, orjson.dumps(documented)))
    record = answer_json(completion.answer)
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [call.openai_call() for call in completion.answer.tool_calls],
        "reasoning": record["reasoning"],
    }


# --- what is asked for -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "sampling", "tools", "include"),
    [
        # Tools on a reasoning model: the next turn needs the reasoning behind the calls.
        (endpoint(), SamplingParams(), [TOOL], [ENCRYPTED]),
        (endpoint(), SamplingParams(logprobs=True), [TOOL], [LOGPROBS, ENCRYPTED]),
        (endpoint(), SamplingParams(), None, None),
        (endpoint(), SamplingParams(), [], None),
        # Models without reasoning refuse the include ("Encrypted content is not supported").
        (endpoint("gpt-4.1", reasoning=False), SamplingParams(), [TOOL], None),
        (endpoint("gpt-4.1", reasoning=False), SamplingParams(logprobs=True), [TOOL], [LOGPROBS]),
    ],
)
def test_encrypted_reasoning_is_asked_for_when_tools_are_sent(
    target: Endpoint, sampling: SamplingParams, tools: Any, include: list[str] | None
) -> None:
    extra = {} if tools is None else {"tools": tools}
    assert body([user("hi")], sampling, target, extra).get("include") == include


def test_a_reasoning_effort_asks_for_a_summary() -> None:
    sent = body([user("hi")], SamplingParams(reasoning_effort="low"))
    assert sent["reasoning"] == {"effort": "low", "summary": "auto"}
    assert "reasoning" not in body([user("hi")])


# --- what is sent back -------------------------------------------------------------------


def test_the_recorded_reasoning_goes_back_before_the_calls_it_led_to() -> None:
    documented = fixture("response_reasoning_function_calls")
    reasoning, first, second = documented["output"]
    turn = recorded_turn()
    answers = [
        {"role": "tool", "tool_call_id": first["call_id"], "content": "18C"},
        {"role": "tool", "tool_call_id": second["call_id"], "content": "21C"},
    ]
    sent = body(
        [user("Weather in Paris and Bogotá?"), turn, *answers], extra_body={"tools": [TOOL]}
    )
    assert sent["input"] == [
        {"role": "user", "content": "Weather in Paris and Bogotá?"},
        # ResponseReasoningItemParam: the output item without its status.
        {
            "type": "reasoning",
            "id": reasoning["id"],
            "summary": reasoning["summary"],
            "encrypted_content": reasoning["encrypted_content"],
        },
        {
            "type": "function_call",
            "call_id": first["call_id"],
            "name": "get_weather",
            "arguments": '{"location":"Paris, France"}',
        },
        {
            "type": "function_call",
            "call_id": second["call_id"],
            "name": "get_weather",
            "arguments": '{"location":"Bogotá, Colombia"}',
        },
        {"type": "function_call_output", "call_id": first["call_id"], "output": "18C"},
        {"type": "function_call_output", "call_id": second["call_id"], "output": "21C"},
    ]
    assert sent["include"] == [ENCRYPTED]


def test_reasoning_goes_before_the_assistants_text_too() -> None:
    turn = {**recorded_turn(), "content": "Checking.", "tool_calls": None}
    sent = body([user("hi"), turn, user("and?")])
    assert [item.get("type", item.get("role")) for item in sent["input"]] == [
        "user",
        "reasoning",
        "assistant",
        "user",
    ]


def test_other_formats_parts_and_items_without_encrypted_content_are_left_out() -> None:
    turn = recorded_turn()
    kept = turn["reasoning"]["parts"][0]
    unencrypted = copy.deepcopy(kept)
    del unencrypted["item"]["encrypted_content"]
    thinking = {"format": "anthropic_messages", "type": "thinking", "signature": "EqQB"}
    turn["reasoning"]["parts"] = [thinking, unencrypted, kept]
    sent = body([user("hi"), turn])
    reasoning_items = [item for item in sent["input"] if item.get("type") == "reasoning"]
    assert [item["encrypted_content"] for item in reasoning_items] == [
        kept["item"]["encrypted_content"]
    ]


def test_a_model_without_reasoning_is_sent_no_reasoning_items() -> None:
    # The API refuses them: "Reasoning input items can only be provided to a reasoning ...".
    sent = body([user("hi"), recorded_turn()], target=endpoint("gpt-4.1", reasoning=False))
    assert all(item.get("type") != "reasoning" for item in sent["input"])


def test_reasoning_text_alone_is_not_sent() -> None:
    turn = {"role": "assistant", "content": "4", "reasoning": {"text": "2 + 2", "parts": []}}
    sent = body([user("2 + 2?"), turn])
    assert sent["input"][1] == {
        "role": "assistant",
        "content": [{"type": "output_text", "text": "4", "annotations": []}],
    }


@pytest.mark.parametrize(
    "reasoning",
    [
        "thought about it",
        {"text": "t", "parts": {"format": "openai_responses"}},
        {"parts": [{"format": "openai_responses", "item": {"type": "message"}}]},
        {"parts": [{"format": "openai_responses"}]},
    ],
)
def test_a_reasoning_that_is_not_a_records_is_refused(reasoning: Any) -> None:
    with pytest.raises(APIError, match="reasoning"):
        body([user("hi"), {"role": "assistant", "content": "x", "reasoning": reasoning}])


# --- keys no request carries ------------------------------------------------------------


@pytest.mark.parametrize("compatible", [False, True])
def test_cache_control_and_reasoning_never_reach_the_wire(compatible: bool) -> None:
    marker = {"type": "ephemeral"}
    messages = [
        {
            "role": "system",
            "content": [{"type": "text", "text": "Be brief.", "cache_control": marker}],
        },
        user([{"type": "text", "text": "hi", "cache_control": marker}]),
        {"role": "assistant", "content": "Hello.", "reasoning": {"text": "greet", "parts": []}},
        user("bye"),
    ]
    tool = {**TOOL, "cache_control": marker}
    sent = body(messages, target=endpoint(compatible=compatible), extra_body={"tools": [tool]})
    raw = orjson.dumps(sent)
    assert b"cache_control" not in raw
    assert sent["input"][0] == {"role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    assert sent["input"][1] == {
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Hello.", "annotations": []}],
    }
    # The line itself is left as it was.
    assert messages[1]["content"][0]["cache_control"] == marker
