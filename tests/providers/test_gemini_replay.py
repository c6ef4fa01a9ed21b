"""Continuing a Gemini conversation from a record: an assistant message holding a ``gemini``
reasoning part is sent as the parts Gemini returned, thought signatures where they came.

Fixtures (fixtures/gemini/): parallel calls with the signature on the first, calls with ids,
and a thought summary before signed text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import APIError
from lm_deluge_cli.io.records import answer_json
from lm_deluge_cli.providers.gemini import GeminiAdapter
from lm_deluge_cli.results import Answer
from lm_deluge_cli.types import HttpResponse, Prompt, SamplingParams

from .conftest import _gemini_endpoint

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"
ADAPTER = GeminiAdapter()
QUESTION: dict[str, Any] = {
    "role": "user",
    "content": "What's the temperature in Paris and London?",
}


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads((FIXTURES / f"{name}.json").read_bytes())
    return loaded


def answer_of(name: str) -> Answer:
    response = HttpResponse(200, {}, (FIXTURES / f"{name}.json").read_bytes())
    return ADAPTER.parse_response(_gemini_endpoint(), response).answer


def assistant_message(answer: Answer) -> dict[str, Any]:
    """The OpenAI-shaped assistant message a record's answer makes (through JSON)."""
    record = orjson.loads(orjson.dumps(answer_json(answer)))
    message: dict[str, Any] = {"role": "assistant", "content": record["completion"]}
    if answer.tool_calls:
        message["tool_calls"] = [call.openai_call() for call in answer.tool_calls]
    if "reasoning" in record:
        message["reasoning"] = record["reasoning"]
    return message


def results(answer: Answer) -> list[dict[str, Any]]:
    return [
        {"role": "tool", "tool_call_id": call.id, "content": f'{{"celsius": {20 + i}}}'}
        for i, call in enumerate(answer.tool_calls)
    ]


def contents(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    prompt = Prompt(id=1, line=1, messages=messages)
    request = ADAPTER.build_request(_gemini_endpoint(), prompt, SamplingParams(), 5.0)
    # The reasoning key itself never reaches the wire.
    assert b'"reasoning"' not in request.body
    sent: list[dict[str, Any]] = orjson.loads(request.body)["contents"]
    return sent


def test_signed_parallel_calls_go_back_as_they_came() -> None:
    answer = answer_of("response_function_calls_signed")
    sent = contents([QUESTION, assistant_message(answer), *results(answer)])
    parts = fixture("response_function_calls_signed")["candidates"][0]["content"]["parts"]
    # The signature on the first call, the second call without one: exactly as received.
    assert sent[1] == {"role": "model", "parts": parts}
    assert sent[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_current_temperature", "response": {"celsius": 20}}},
            {"functionResponse": {"name": "get_current_temperature", "response": {"celsius": 21}}},
        ],
    }


def test_call_ids_gemini_gave_name_the_responses() -> None:
    answer = answer_of("response_function_call_ids")
    sent = contents([QUESTION, assistant_message(answer), *results(answer)])
    assert (
        sent[1]["parts"]
        == fixture("response_function_call_ids")["candidates"][0]["content"]["parts"]
    )
    assert [part["functionResponse"] for part in sent[2]["parts"]] == [
        {"id": "2c4kq9vu", "name": "get_weather", "response": {"celsius": 20}},
        {"id": "7pfb3x0r", "name": "get_weather", "response": {"celsius": 21}},
    ]


def test_a_signed_text_answer_goes_back_with_its_thought() -> None:
    answer = answer_of("response_thoughts")
    follow_up = {"role": "user", "content": "And 17 + 26?"}
    sent = contents([QUESTION, assistant_message(answer), follow_up])
    parts = fixture("response_thoughts")["candidates"][0]["content"]["parts"]
    assert sent[1] == {"role": "model", "parts": parts}
    assert sent[2] == {"role": "user", "parts": [{"text": "And 17 + 26?"}]}


def test_an_answer_without_signatures_is_rebuilt() -> None:
    answer = answer_of("response_function_call")
    assert answer.reasoning is None
    sent = contents([QUESTION, assistant_message(answer), *results(answer)])
    assert sent[1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {
                    "name": "set_light_values",
                    "args": {"brightness": 25, "color_temp": "warm"},
                }
            }
        ],
    }
    assert sent[2]["parts"][0]["functionResponse"]["name"] == "set_light_values"


def test_parts_of_other_formats_are_dropped() -> None:
    reasoning = {
        "text": "Hm.",
        "parts": [
            {"format": "anthropic_messages", "block": {"type": "thinking", "signature": "x"}},
            {"format": "openai_responses", "item": {"type": "reasoning"}},
        ],
    }
    sent = contents([QUESTION, {"role": "assistant", "content": "Hi", "reasoning": reasoning}])
    assert sent[1] == {"role": "model", "parts": [{"text": "Hi"}]}


@pytest.mark.parametrize(
    ("reasoning", "says"),
    [
        ("thought", "reasoning must be an object with a list of 'parts'"),
        ({"parts": {"format": "gemini"}}, "reasoning must be an object with a list of 'parts'"),
        ({"parts": [{"format": "gemini"}]}, "gemini part without its 'parts'"),
        ({"parts": [{"format": "gemini", "parts": []}]}, "gemini part without its 'parts'"),
        ({"parts": [{"format": "gemini", "parts": ["hi"]}]}, "not an object"),
    ],
)
def test_reasoning_that_is_not_a_records_is_refused(reasoning: Any, says: str) -> None:
    messages = [QUESTION, {"role": "assistant", "content": "Hi", "reasoning": reasoning}]
    with pytest.raises(APIError, match=says):
        contents(messages)


def test_the_record_is_not_changed_by_sending_it() -> None:
    message = assistant_message(answer_of("response_thoughts"))
    before = orjson.dumps(message)
    contents([QUESTION, message, {"role": "user", "content": "Thanks"}])
    assert orjson.dumps(message) == before
