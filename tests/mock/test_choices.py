"""Several answers to one request: Chat Completions' and Mistral's ``n``, Gemini's
``candidateCount``. Each answer differs from the others, deterministically by its index."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from lm_deluge_cli.mock.wire import count_text_tokens
from lm_deluge_cli.schema import violation
from tests.mock.chats import TOOLS, answer, calls_of, make, request, send, text_of

SEVERAL = ["openai", "mistral", "gemini"]
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "score": {"type": "integer", "minimum": 0}},
    "required": ["name", "score"],
}


def several(provider: str, body: dict[str, Any], count: int) -> dict[str, Any]:
    if provider == "gemini":
        return {**body, "generationConfig": {**body["generationConfig"], "candidateCount": count}}
    return {**body, "n": count}


def answers_of(provider: str, data: Any) -> list[Any]:
    return list(data["candidates" if provider == "gemini" else "choices"])


@pytest.mark.parametrize("provider", SEVERAL)
def test_each_answer_differs_and_the_first_is_the_single_answer(provider: str) -> None:
    body = request(provider, "Name a colour.")
    data = answer(make(), provider, several(provider, body, 4))
    listed = answers_of(provider, data)
    assert [item["index"] for item in listed] == [0, 1, 2, 3]
    texts = [text_of(provider, data, i) for i in range(4)]
    assert len(set(texts)) == 4
    assert texts[0] == text_of(provider, answer(make(), provider, body))
    again = answer(make(), provider, several(provider, body, 4))
    assert [text_of(provider, again, i) for i in range(4)] == texts


@pytest.mark.parametrize("provider", SEVERAL)
def test_usage_counts_every_answer_once_and_the_prompt_once(provider: str) -> None:
    body = request(provider, "Name a colour.")
    one = answer(make(), provider, body)
    data = answer(make(), provider, several(provider, body, 3))
    spent = sum(count_text_tokens(text_of(provider, data, i)) for i in range(3))
    if provider == "gemini":
        meta = data["usageMetadata"]
        assert meta["candidatesTokenCount"] == spent
        assert meta["promptTokenCount"] == one["usageMetadata"]["promptTokenCount"]
    else:
        assert data["usage"]["completion_tokens"] == spent
        assert data["usage"]["prompt_tokens"] == one["usage"]["prompt_tokens"]


def test_json_answers_each_match_the_schema() -> None:
    body = {
        **request("openai", "Rate a film."),
        "n": 3,
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": SCHEMA}},
    }
    data = answer(make(), "openai", body)
    values = [orjson.loads(choice["message"]["content"]) for choice in data["choices"]]
    assert all(violation(value, SCHEMA) is None for value in values)
    assert len({orjson.dumps(value) for value in values}) == 3


def test_yes_or_no_samples_follow_the_probability() -> None:
    body = {**request("openai", "Is water wet? Answer yes or no."), "n": 40}
    data = answer(make(), "openai", body)
    texts = [choice["message"]["content"] for choice in data["choices"]]
    assert set(texts) <= {"Yes", "No"} and len(set(texts)) == 2


def test_every_answer_calls_tools_with_its_own_arguments() -> None:
    body = {**request("openai", "What is the weather in Paris?", tools=TOOLS), "n": 3}
    data = answer(make(), "openai", body)
    calls = [calls_of("openai", data, i) for i in range(3)]
    assert all(calls) and all(c["finish_reason"] == "tool_calls" for c in data["choices"])
    assert len({tuple(call.arguments for call in made) for made in calls}) == 3
    ids = [call.id for made in calls for call in made]
    assert len(set(ids)) == len(ids)


def test_logprobs_for_each_answer() -> None:
    body = {**request("openai", "Name a colour."), "n": 2, "logprobs": True, "top_logprobs": 2}
    data = answer(make(), "openai", body)
    for choice in data["choices"]:
        tokens = "".join(step["token"] for step in choice["logprobs"]["content"])
        assert tokens == choice["message"]["content"]


@pytest.mark.parametrize(
    ("provider", "count", "status"),
    [("openai", 129, 400), ("openai", 0, 400), ("mistral", 0, 422), ("gemini", 9, 400)],
)
def test_too_many_answers_are_refused(provider: str, count: int, status: int) -> None:
    response, _ = send(make(), provider, several(provider, request(provider, "Hi"), count))
    assert response.status == status
