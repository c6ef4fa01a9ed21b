"""The simulator's Responses API format against OpenAI's documented payloads (the adapter's
fixtures under fixtures/openai_responses/), driven directly with a fake clock."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.mock.formats import OPENAI_RESPONSES, base_url, match_route
from lm_deluge_cli.mock.simulator import (
    MockSettings,
    SimResponse,
    Simulator,
    mock_completion,
)
from lm_deluge_cli.mock.wire import count_prompt_tokens, count_text_tokens

FIXTURES = Path(__file__).parents[1] / "providers" / "fixtures"
KEY = "sk-mock-expected-key-0123"
MODEL = "o3-pro"
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello there"},
]


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def make(**settings: Any) -> Simulator:
    return Simulator(MockSettings(**settings), clock=lambda: 1000.0, wall_clock=lambda: 1.75e9)


def request(max_output_tokens: int | None = 512, **extra: Any) -> dict[str, Any]:
    """MESSAGES as the adapter sends them: the system message as instructions."""
    body: dict[str, Any] = {
        "model": MODEL,
        "instructions": MESSAGES[0]["content"],
        "input": [MESSAGES[1]],
        "store": False,
        **extra,
    }
    if max_output_tokens is not None:
        body["max_output_tokens"] = max_output_tokens
    return body


def send(
    sim: Simulator,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    path: str = "/v1/responses",
) -> tuple[SimResponse, Any]:
    route = match_route(path)
    assert route is not None
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    sent = {"authorization": f"Bearer {KEY}"} if headers is None else dict(headers)
    response = sim.handle(route, sent, raw)
    return response, orjson.loads(response.body) if response.body else None


# --- routes ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/responses", "/responses", "/openai/v1/responses"])
def test_the_responses_paths(path: str) -> None:
    route = match_route(path)
    assert route is not None and route.format is OPENAI_RESPONSES
    assert route.format.name == "openai_responses"


@pytest.mark.parametrize(
    "path", ["/v1/responses/resp_123", "/v1/responses/compact", "/v2/responses"]
)
def test_other_responses_endpoints_are_not_served(path: str) -> None:
    assert match_route(path) is None


def test_openais_base_url_leads_the_adapter_to_it_and_chat_stays_where_it_was() -> None:
    root = "http://127.0.0.1:8000"
    responses = match_route((base_url(root, "openai") + "/responses").removeprefix(root))
    chat = match_route((base_url(root, "openai") + "/chat/completions").removeprefix(root))
    assert responses is not None and responses.format.name == "openai_responses"
    assert chat is not None and chat.format.name == "openai"


# --- completions -----------------------------------------------------------------------


def test_the_same_prompt_gets_the_same_reply_and_usage_as_over_chat_completions() -> None:
    sim = make()
    response, data = send(sim, request())
    chat, chat_data = send(sim, {"model": MODEL, "messages": MESSAGES}, path="/v1/chat/completions")
    assert response.status == chat.status == 200, data
    text = mock_completion(MESSAGES, MODEL)
    assert data["output"][0]["content"][0]["text"] == text
    assert chat_data["choices"][0]["message"]["content"] == text
    usage = data["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (
        count_prompt_tokens(MESSAGES),
        count_text_tokens(text),
    )
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert sim.statistics().ok == 2


def test_a_conversation_gets_the_same_reply_as_over_chat_completions() -> None:
    answer = {"type": "output_text", "text": "Hi!", "annotations": []}
    turns = [
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": [answer]},
        {"role": "user", "content": "And again"},
    ]
    _, data = send(make(), {"model": MODEL, "instructions": "Be brief.", "input": turns})
    chat = [
        MESSAGES[0],
        MESSAGES[1],
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "And again"},
    ]
    assert data["output"][0]["content"][0]["text"] == mock_completion(chat, MODEL)


def test_the_documented_request_gets_a_response_of_the_documented_shape() -> None:
    response, data = send(make(), fixture("openai_responses/request_text.json"))
    assert response.status == 200, data
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    documented = fixture("openai_responses/response_text.json")
    assert set(data) >= set(documented)
    assert set(data["usage"]) == set(documented["usage"])
    [message] = data["output"]
    assert set(message) == set(documented["output"][0])
    assert set(message["content"][0]) == set(documented["output"][0]["content"][0])
    assert data["id"].startswith("resp_") and message["id"].startswith("msg_")
    assert (data["object"], data["status"], message["role"]) == (
        "response",
        "completed",
        "assistant",
    )
    assert (data["error"], data["incomplete_details"]) == (None, None)
    # A plain string input is one user message.
    messages = [{"role": "user", "content": fixture("openai_responses/request_text.json")["input"]}]
    assert message["content"][0]["text"] == mock_completion(messages, "gpt-4.1")


def test_the_request_is_echoed_as_the_api_does() -> None:
    _, data = send(make(), request(temperature=0.2, reasoning={"effort": "high"}))
    assert data["instructions"] == "Be brief."
    assert (data["store"], data["temperature"], data["max_output_tokens"]) == (False, 0.2, 512)
    assert data["reasoning"] == {"effort": "high", "summary": None}


def test_a_reply_is_cut_at_max_output_tokens() -> None:
    _, data = send(make(), request(max_output_tokens=16))
    assert data["status"] == "incomplete"
    assert data["incomplete_details"] == {"reason": "max_output_tokens"}
    assert data["output"][0]["status"] == "incomplete"
    assert data["usage"]["output_tokens"] == 16


@pytest.mark.parametrize("top", [0, 3])
def test_logprobs_come_when_included(top: int) -> None:
    payload = request(include=["message.output_text.logprobs"], top_logprobs=top)
    _, data = send(make(), payload)
    part = data["output"][0]["content"][0]
    tokens = part["logprobs"]
    assert "".join(t["token"] for t in tokens) == part["text"]
    assert all(len(t["top_logprobs"]) == top for t in tokens)
    assert set(tokens[0]) == {"token", "logprob", "bytes", "top_logprobs"}
    _, plain = send(make(), request())
    assert "logprobs" not in plain["output"][0]["content"][0]


@pytest.mark.parametrize(
    "name",
    [
        "openai_responses/request_function_call_output.json",
        "openai_responses/request_file_input.json",
    ],
)
def test_documented_requests_with_tool_results_and_files_are_answered(name: str) -> None:
    response, data = send(make(), fixture(name))
    assert response.status == 200, data
    assert data["output"][0]["content"][0]["text"].startswith("Mock reply")


def test_an_image_is_counted_as_an_image() -> None:
    image = {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "auto"}
    text = {"type": "input_text", "text": "Hello there"}
    _, with_image = send(
        make(), {"model": MODEL, "input": [{"role": "user", "content": [text, image]}]}
    )
    _, without = send(make(), {"model": MODEL, "input": [{"role": "user", "content": [text]}]})
    assert with_image["usage"]["input_tokens"] - without["usage"]["input_tokens"] == 85


# --- keys, limits and failures: OpenAI's ----------------------------------------------


def test_a_wrong_or_missing_key_gets_openais_401() -> None:
    sim = make(api_key=KEY)
    wrong, error = send(sim, request(), {"authorization": "Bearer sk-wrong-never-echoed"})
    assert wrong.status == 401
    assert b"sk-wrong-never-echoed" not in wrong.body
    documented = fixture("openai/error_401_invalid_api_key.json")["error"]
    assert set(error["error"]) == set(documented)
    assert error["error"]["code"] == documented["code"] == "invalid_api_key"
    assert send(sim, request(), {})[0].status == 401
    assert send(sim, request())[0].status == 200


def test_rate_limit_headers_and_the_429() -> None:
    sim = make(requests_per_minute=60, tokens_per_minute=6000)
    ok, _ = send(sim, request(max_output_tokens=16))
    assert ok.headers["x-ratelimit-limit-requests"] == "60"
    assert ok.headers["x-ratelimit-remaining-requests"] == "0"
    assert ok.headers["x-ratelimit-reset-requests"] == "1s"
    assert ok.headers["x-ratelimit-limit-tokens"] == "6000"
    refused, error = send(sim, request())
    assert refused.status == 429
    assert (refused.headers["retry-after"], refused.headers["retry-after-ms"]) == ("1", "1000")
    assert error["error"]["code"] == "rate_limit_exceeded"
    assert error["error"]["type"] == "requests"
    assert sim.statistics().rate_limited == 1


@pytest.mark.parametrize(
    ("settings", "status", "type_"),
    [({"overload_rate": 1.0}, 529, "overloaded_error"), ({"error_rate": 1.0}, 500, "server_error")],
)
def test_injected_failures_in_openais_error_body(
    settings: dict[str, float], status: int, type_: str
) -> None:
    sim = make(**settings)
    response, error = send(sim, request())
    assert response.status == status
    assert error["error"]["type"] == type_
    assert sim.statistics().errors == 1


# --- bad requests ----------------------------------------------------------------------


def _without(body: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != name}


def test_a_max_output_tokens_below_16_is_the_documented_400() -> None:
    response, error = send(make(), request(max_output_tokens=5))
    assert response.status == 400
    assert error == fixture("openai_responses/error_400_max_output_tokens.json")


def test_a_chat_completions_response_format_is_the_documented_400() -> None:
    response, error = send(make(), request(response_format={"type": "json_object"}))
    assert response.status == 400
    assert error == fixture("openai_responses/error_400_response_format.json")


@pytest.mark.parametrize(
    ("payload", "param", "says"),
    [
        (request(stop=["END"]), "stop", "Unsupported parameter: 'stop'."),
        (request(max_tokens=100), "max_tokens", "Unsupported parameter"),
        (
            {"model": MODEL, "messages": MESSAGES, "max_output_tokens": 100},
            "messages",
            "Unsupported parameter",
        ),
        (_without(request(), "model"), "model", "Missing required parameter: 'model'."),
        (_without(request(), "input"), "input", "Missing required parameter: 'input'."),
        (request(input=[]), "input", "non-empty"),
        (request(top_logprobs=21), "top_logprobs", "Expected a value <= 20, but got 21"),
        (request(stream=True), "stream", "does not stream"),
        (
            request(input=[{"role": "bot", "content": "hi"}]),
            "input[0].role",
            "Invalid value: 'bot'. Supported values are: 'user', 'assistant', 'system', and "
            "'developer'.",
        ),
        (
            request(input=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}]),
            "input[0].content[0].type",
            "Invalid value: 'text'.",
        ),
        (
            request(input=[{"type": "function_call", "call_id": "c", "name": "f"}]),
            "input[0].arguments",
            "Missing required parameter",
        ),
        (request(input=[{"type": "web_search_call"}]), "input[0].type", "Invalid value"),
    ],
)
def test_bad_requests_are_refused_in_openais_words(payload: Any, param: str, says: str) -> None:
    sim = make(requests_per_minute=60)
    response, error = send(sim, payload)
    assert response.status == 400
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["param"] == param
    assert says in error["error"]["message"]
    assert send(sim, request())[0].status == 200  # no quota spent


def test_a_body_that_is_not_json() -> None:
    response, error = send(make(), b"{")
    assert response.status == 400
    assert "could not parse the JSON body" in error["error"]["message"]
