"""Tool calls in every chat format: the documented shapes, tool_choice, arguments that match
the tool's schema, parallel calls, and a conversation that ends in text once the results are
in."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.mock.simulator import MockSettings
from lm_deluge_cli.mock.wire import count_text_tokens
from lm_deluge_cli.schema import violation
from tests.mock.chats import (
    CLOCK,
    PROVIDERS,
    STRING_ARGUMENTS,
    TOOLS,
    WEATHER,
    answer,
    calls_of,
    continued,
    make,
    output_tokens,
    request,
    text_of,
)

SCHEMAS = {tool.name: tool.schema for tool in TOOLS}
PROMPTS = [f"What should I pack for trip number {i}?" for i in range(40)]


def first_call(provider: str, mode: str | None = None, **fields: Any) -> tuple[dict[str, Any], Any]:
    """A request with both tools, and its answer."""
    body = request(provider, "What is the weather in Paris?", tools=TOOLS, mode=mode, **fields)
    return body, answer(make(), provider, body)


# --- the documented shapes -----------------------------------------------------------------


def test_chat_completions_calls_with_json_string_arguments() -> None:
    _, data = first_call("openai")
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None and message["role"] == "assistant"
    for call in message["tool_calls"]:
        assert re.fullmatch(r"call_[A-Za-z0-9]{24}", call["id"])
        assert call["type"] == "function"
        assert isinstance(call["function"]["arguments"], str)


def test_mistral_calls_carry_nine_character_ids_and_an_index() -> None:
    _, data = first_call("mistral")
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == ""
    for index, call in enumerate(choice["message"]["tool_calls"]):
        assert re.fullmatch(r"[A-Za-z0-9]{9}", call["id"])
        assert (call["type"], call["index"]) == ("function", index)
        assert isinstance(call["function"]["arguments"], str)


def test_responses_calls_are_function_call_items() -> None:
    _, data = first_call("responses")
    assert data["status"] == "completed"
    assert [item["type"] for item in data["output"]] == ["function_call"] * len(data["output"])
    for item in data["output"]:
        assert item["id"].startswith("fc_") and item["status"] == "completed"
        assert re.fullmatch(r"call_[A-Za-z0-9]{24}", item["call_id"])
        assert isinstance(item["arguments"], str)


@pytest.mark.parametrize("provider", ["anthropic", "bedrock"])
def test_anthropic_calls_are_tool_use_blocks_after_a_plan(provider: str) -> None:
    _, data = first_call(provider)
    assert data["stop_reason"] == "tool_use"
    text, *uses = data["content"]
    assert text["type"] == "text" and text["text"].startswith("I will call ")
    assert uses and all(block["type"] == "tool_use" for block in uses)
    for block in uses:
        assert re.fullmatch(r"toolu_01[A-Za-z0-9]{22}", block["id"])
        assert isinstance(block["input"], dict)
    # The plan and the calls are the output.
    plan_and_calls = count_text_tokens(text["text"]) + sum(
        count_text_tokens(b["name"]) + count_text_tokens(_json(b["input"])) for b in uses
    )
    assert data["usage"]["output_tokens"] == plan_and_calls


@pytest.mark.parametrize("provider", ["anthropic", "bedrock"])
@pytest.mark.parametrize("forced", [{"mode": "required"}, {"name": "get_time"}])
def test_a_forced_anthropic_call_has_no_text_before_it(
    provider: str, forced: dict[str, Any]
) -> None:
    # The API prefills the turn for "any" and a named tool: no text is generated.
    body = request(provider, "What is the weather in Paris?", tools=TOOLS, **forced)
    data = answer(make(), provider, body)
    assert data["content"] and {block["type"] for block in data["content"]} == {"tool_use"}
    assert data["stop_reason"] == "tool_use"


def test_gemini_calls_are_function_call_parts() -> None:
    _, data = first_call("gemini")
    candidate = data["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    parts = candidate["content"]["parts"]
    assert parts and all(set(part) == {"functionCall"} for part in parts)
    for part in parts:
        assert set(part["functionCall"]) == {"name", "args"}
        assert isinstance(part["functionCall"]["args"], dict)


def test_cohere_calls_come_with_a_tool_plan() -> None:
    _, data = first_call("cohere")
    assert data["finish_reason"] == "TOOL_CALL"
    message = data["message"]
    assert message["tool_plan"].startswith("I will call ")
    assert "content" not in message
    for call in message["tool_calls"]:
        assert re.fullmatch(rf"{call['function']['name']}_[a-z0-9]{{12}}", call["id"])
        assert call["type"] == "function" and isinstance(call["function"]["arguments"], str)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


# --- tool_choice ---------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_auto_calls_a_tool_then_answers_the_result_in_text(provider: str) -> None:
    sim = make()
    body = request(provider, "What is the weather in Paris?", tools=TOOLS)
    data = answer(sim, provider, body)
    calls = calls_of(provider, data)
    assert calls and all(call.name in SCHEMAS for call in calls)
    ids = [call.id for call in calls if call.id is not None]  # Gemini's calls have none
    assert len(set(ids)) == len(ids)
    later = continued(provider, body, data, "Sunny and 24 degrees")
    final = answer(sim, provider, later)
    assert calls_of(provider, final) == []
    quoted = text_of(provider, final).partition('The tool returned: "')[2]
    assert "Sunny and 24 degrees" in quoted  # Gemini's result is a JSON object


@pytest.mark.parametrize("provider", PROVIDERS)
def test_none_never_calls(provider: str) -> None:
    _, data = first_call(provider, "none")
    assert calls_of(provider, data) == []
    assert text_of(provider, data).startswith("Mock reply")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_required_always_calls_even_after_a_result(provider: str) -> None:
    sim = make()
    body = request(provider, "What is the weather in Paris?", tools=TOOLS, mode="required")
    data = answer(sim, provider, body)
    assert calls_of(provider, data)
    later = answer(sim, provider, continued(provider, body, data, "Sunny"))
    assert calls_of(provider, later)


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p != "cohere"])
def test_a_named_function_is_called_once(provider: str) -> None:
    for prompt in PROMPTS[:12]:
        body = request(provider, prompt, tools=TOOLS, name=CLOCK.name)
        calls = calls_of(provider, answer(make(), provider, body))
        assert [call.name for call in calls] == [CLOCK.name]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_without_tools_there_are_no_calls(provider: str) -> None:
    data = answer(make(), provider, request(provider, "What is the weather in Paris?"))
    assert calls_of(provider, data) == []


# --- arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_arguments_match_the_schema_and_follow_the_prompt(provider: str) -> None:
    seen = set()
    for prompt in PROMPTS[:15]:
        body = request(provider, prompt, tools=TOOLS)
        calls = calls_of(provider, answer(make(), provider, body))
        again = calls_of(provider, answer(make(), provider, body))
        assert [c.arguments for c in calls] == [c.arguments for c in again]  # deterministic
        for call in calls:
            if provider in STRING_ARGUMENTS:
                assert isinstance(call.arguments, str)
            assert violation(call.parsed(), SCHEMAS[call.name]) is None
            seen.add(_json(call.parsed()))
    assert len(seen) > 10  # other prompts, other arguments


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_same_conversation_calls_the_same_way_in_every_format(provider: str) -> None:
    body = request(provider, "What is the weather in Paris?", tools=TOOLS)
    reference = request("openai", "What is the weather in Paris?", tools=TOOLS)
    mine = calls_of(provider, answer(make(), provider, body))
    theirs = calls_of("openai", answer(make(), "openai", reference))
    assert [(c.name, c.parsed()) for c in mine] == [(c.name, c.parsed()) for c in theirs]


def test_a_tool_without_parameters_gets_an_empty_object() -> None:
    body = {
        "model": "gpt-4.1-mini",
        "messages": [{"role": "user", "content": "Ping?"}],
        "tools": [{"type": "function", "function": {"name": "ping"}}],
        "tool_choice": "required",
    }
    calls = calls_of("openai", answer(make(), "openai", body))
    assert {call.arguments for call in calls} == {"{}"}


# --- parallel calls ------------------------------------------------------------------------


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p not in ("gemini", "cohere")])
def test_some_answers_call_two_tools_unless_parallel_calls_are_off(provider: str) -> None:
    counts = [
        len(calls_of(provider, answer(make(), provider, request(provider, p, tools=TOOLS))))
        for p in PROMPTS
    ]
    assert set(counts) == {1, 2}
    single = [
        len(
            calls_of(
                provider,
                answer(make(), provider, request(provider, p, tools=TOOLS, parallel=False)),
            )
        )
        for p in PROMPTS
    ]
    assert set(single) == {1}


@pytest.mark.parametrize("provider", ["gemini", "cohere"])
def test_formats_without_a_parallel_switch_call_two_tools_sometimes(provider: str) -> None:
    counts = {
        len(calls_of(provider, answer(make(), provider, request(provider, p, tools=TOOLS))))
        for p in PROMPTS
    }
    assert counts == {1, 2}


def test_one_tool_called_twice_gets_other_arguments() -> None:
    for prompt in PROMPTS:
        body = request("openai", prompt, tools=[WEATHER])
        calls = calls_of("openai", answer(make(), "openai", body))
        if len(calls) == 2:
            assert calls[0].name == calls[1].name == WEATHER.name
            assert calls[0].arguments != calls[1].arguments
            return
    raise AssertionError("no prompt made two calls")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_all_results_of_parallel_calls_end_the_turn(provider: str) -> None:
    for prompt in PROMPTS:
        sim = make()
        body = request(provider, prompt, tools=TOOLS)
        data = answer(sim, provider, body)
        if len(calls_of(provider, data)) == 2:
            final = answer(sim, provider, continued(provider, body, data, "done"))
            assert calls_of(provider, final) == []
            assert text_of(provider, final).count("done") == 2
            return
    raise AssertionError("no prompt made two calls")


# --- rounds --------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_tool_rounds_zero_never_calls_on_auto(provider: str) -> None:
    sim = make(tool_rounds=0)
    data = answer(sim, provider, request(provider, "What is the weather?", tools=TOOLS))
    assert calls_of(provider, data) == []
    forced = request(provider, "What is the weather?", tools=TOOLS, mode="required")
    assert calls_of(provider, answer(sim, provider, forced))


@pytest.mark.parametrize("provider", ["openai", "responses", "anthropic", "gemini", "cohere"])
def test_a_conversation_gets_its_own_number_of_rounds(provider: str) -> None:
    lengths = set()
    for prompt in PROMPTS[:20]:
        sim = make(tool_rounds=3)
        body = request(provider, prompt, tools=TOOLS)
        rounds = 0
        while True:
            data = answer(sim, provider, body)
            if not calls_of(provider, data):
                break
            rounds += 1
            assert rounds <= 3
            body = continued(provider, body, data, f"result {rounds}")
        assert f"result {rounds}" in text_of(provider, data).partition("The tool returned:")[2]
        lengths.add(rounds)
    assert lengths == {1, 2, 3}


def test_the_output_tokens_count_the_calls() -> None:
    for provider in ("openai", "responses", "gemini", "mistral"):
        _, data = first_call(provider)
        calls = calls_of(provider, data)
        expected = sum(
            count_text_tokens(c.name) + count_text_tokens(_json(c.parsed())) for c in calls
        )
        assert output_tokens(provider, data) == expected, provider


def test_a_call_that_does_not_fit_max_tokens_is_a_cut_text_answer() -> None:
    _, data = first_call("openai", max_tokens=3)
    choice = data["choices"][0]
    assert choice["finish_reason"] == "length" and "tool_calls" not in choice["message"]
    assert data["usage"]["completion_tokens"] == 3


def test_tools_count_as_prompt_tokens() -> None:
    plain = answer(make(), "openai", request("openai", "Hi", mode="none"))
    tooled = answer(make(), "openai", request("openai", "Hi", tools=TOOLS, mode="none"))
    assert tooled["usage"]["prompt_tokens"] > plain["usage"]["prompt_tokens"] + 40


# --- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, True, 1.5])
def test_tool_rounds_must_be_a_whole_number(value: Any) -> None:
    with pytest.raises(ConfigError, match="tool_rounds"):
        MockSettings.from_mapping({"tool_rounds": value})
    assert MockSettings.from_mapping({"tool_rounds": 4}).tool_rounds == 4
