"""The faults that send a well-formed answer that is wrong: ``empty_answer`` (nothing in it)
and ``invalid_tool_arguments`` (tool-call arguments that are not JSON), in every format."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from lm_deluge_cli.mock.formats import FORMATS, OPENAI_RESPONSES, match_route
from lm_deluge_cli.mock.simulator import MockSettings, Simulator
from tests.mock.chats import (
    PROVIDERS,
    STRING_ARGUMENTS,
    TOOLS,
    answer,
    calls_of,
    make,
    request,
    text_of,
)


def empty_shape(provider: str, data: Any) -> Any:
    """Where the provider's answer would be, as an empty answer leaves it."""
    if provider in ("openai", "mistral"):
        choice = data["choices"][0]
        return (
            choice["message"]["content"],
            choice["message"].get("tool_calls"),
            choice["finish_reason"],
        )
    if provider == "responses":
        return data["output"], data["status"]
    if provider in ("anthropic", "bedrock"):
        return data["content"], data["stop_reason"]
    if provider == "gemini":
        candidate = data["candidates"][0]
        return candidate["content"], candidate["finishReason"]
    return data["message"], data["finish_reason"]


EMPTY: dict[str, tuple[Any, ...]] = {
    "openai": ("", None, "stop"),
    "mistral": ("", None, "stop"),
    "responses": ([], "completed"),
    "anthropic": ([], "end_turn"),
    "bedrock": ([], "end_turn"),
    "gemini": ({"role": "model"}, "STOP"),
    "cohere": ({"role": "assistant", "content": []}, "COMPLETE"),
}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("tools", [(), TOOLS], ids=["text", "tools"])
def test_an_empty_answer_holds_no_text_and_no_call(provider: str, tools: Any) -> None:
    sim = make(faults={"empty_answer": 1.0})
    data = answer(sim, provider, request(provider, "Hello", tools=tools))
    assert empty_shape(provider, data) == EMPTY[provider]
    assert text_of(provider, data) == "" and calls_of(provider, data) == []
    stats = sim.statistics()
    assert (stats.malformed, stats.ok, stats.tokens_out) == (1, 0, 0)
    assert stats.tokens_in > 0


def test_an_empty_answer_keeps_its_reasoning() -> None:
    sim = make(faults={"empty_answer": 1.0})
    body = {**request("anthropic", "Hello"), "thinking": {"type": "enabled", "budget_tokens": 1024}}
    data = answer(sim, "anthropic", body)
    assert [block["type"] for block in data["content"]] == ["thinking"]
    assert (
        data["usage"]["output_tokens"] == data["usage"]["output_tokens_details"]["thinking_tokens"]
    )


def test_an_empty_answer_fills_every_choice() -> None:
    data = answer(make(faults={"empty_answer": 1.0}), "openai", {**request("openai", "Hi"), "n": 3})
    assert [choice["message"]["content"] for choice in data["choices"]] == ["", "", ""]


def test_embeddings_are_answered_normally_under_empty_answer() -> None:
    sim = Simulator(MockSettings(faults={"empty_answer": 1.0}))
    route = match_route("/v1/embeddings")
    assert route is not None
    body = orjson.dumps({"model": "text-embedding-3-small", "input": ["a", "b"]})
    response = sim.handle(route, {}, body)
    assert response.status == 200 and len(orjson.loads(response.body)["data"]) == 2
    assert (sim.statistics().ok, sim.statistics().malformed) == (1, 0)


@pytest.mark.parametrize("provider", STRING_ARGUMENTS)
def test_invalid_tool_arguments_are_not_json(provider: str) -> None:
    sim = make(faults={"invalid_tool_arguments": 1.0})
    body = request(provider, "What is the weather in Paris?", tools=TOOLS)
    calls = calls_of(provider, answer(sim, provider, body))
    good = calls_of(provider, answer(make(), provider, body))
    assert [call.name for call in calls] == [call.name for call in good]
    for broken, fine in zip(calls, good, strict=True):
        assert isinstance(broken.arguments, str)
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(broken.arguments)
        assert fine.arguments.startswith(broken.arguments)  # an object never closed
    assert (sim.statistics().malformed, sim.statistics().ok) == (1, 0)


@pytest.mark.parametrize("provider", ["anthropic", "bedrock", "gemini"])
def test_formats_with_object_arguments_are_answered_normally(provider: str) -> None:
    sim = make(faults={"invalid_tool_arguments": 1.0})
    body = request(provider, "What is the weather in Paris?", tools=TOOLS)
    calls = calls_of(provider, answer(sim, provider, body))
    good = calls_of(provider, answer(make(), provider, body))
    assert calls and [(c.name, c.arguments) for c in calls] == [(c.name, c.arguments) for c in good]
    assert (sim.statistics().malformed, sim.statistics().ok) == (0, 1)


@pytest.mark.parametrize("provider", STRING_ARGUMENTS)
def test_an_answer_without_calls_is_answered_normally(provider: str) -> None:
    sim = make(faults={"invalid_tool_arguments": 1.0})
    for body in (request(provider, "Hi"), request(provider, "Hi", tools=TOOLS, mode="none")):
        assert text_of(provider, answer(sim, provider, body)).startswith("Mock reply")
    assert (sim.statistics().malformed, sim.statistics().ok) == (0, 2)


def test_only_the_first_n_answers_are_broken() -> None:
    sim = make(faults={"invalid_tool_arguments": 1.0}, fault_first_n=1)
    body = request("openai", "What is the weather in Paris?", tools=TOOLS)
    first, second = (calls_of("openai", answer(sim, "openai", body)) for _ in range(2))
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(first[0].arguments)
    assert isinstance(orjson.loads(second[0].arguments), dict)


@pytest.mark.parametrize("name", ["empty_answer", "invalid_tool_arguments"])
def test_the_faults_are_known_to_every_entry_point(name: str) -> None:
    assert dict(MockSettings(faults={name: 0.5}).faults) == {name: 0.5}
    assert dict(MockSettings.from_mapping({"faults": {name: 1}}).faults) == {name: 1.0}


def test_the_formats_with_string_arguments() -> None:
    strings = {f.name for f in [*FORMATS.values(), OPENAI_RESPONSES] if f.string_arguments}
    assert strings == {"openai", "openai_responses", "mistral", "cohere"}
