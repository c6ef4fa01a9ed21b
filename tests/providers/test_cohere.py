"""The Cohere v2 adapter against Cohere's documented Chat API payloads (fixtures/cohere/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import (
    APIError,
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    NotImplementedByServerError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    RequestCancelledError,
    UnprocessableEntityError,
)
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.providers.cohere import CohereV2Adapter
from lm_deluge_cli.providers.registry import ModelInfo, ProviderInfo
from lm_deluge_cli.results import Answer, Completion, ToolCall, Usage
from lm_deluge_cli.types import HttpResponse, Prompt, RateLimitInfo, SamplingParams

FIXTURES = Path(__file__).parent / "fixtures" / "cohere"
KEY = "co-canary-Zx81Qw7Lm3Np5Rt9Vb2Kd4"
ADAPTER = CohereV2Adapter()
OFFICIAL = "https://api.cohere.com"
PROVIDER = ProviderInfo("cohere", "cohere_v2", OFFICIAL, "CO_API_URL", "CO_API_KEY")


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def endpoint(
    wire_id: str = "command-a-03-2025", *, reasoning: bool = False, key: str | None = KEY
) -> Endpoint:
    model = ModelInfo(
        id=f"cohere:{wire_id}", provider="cohere", wire_id=wire_id, reasoning=reasoning
    )
    return Endpoint(name=model.id, model=model, provider=PROVIDER, base_url=OFFICIAL, api_key=key)


def build(
    messages: list[dict[str, Any]] | None = None,
    sampling: SamplingParams | None = None,
    target: Endpoint | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    source = Prompt(
        id=1,
        line=1,
        messages=messages or fixture("chat_request")["messages"],
        extra_body=dict(extra or {}),
    )
    request = ADAPTER.build_request(target or endpoint(), source, sampling or SamplingParams(), 5.0)
    body: dict[str, Any] = orjson.loads(request.body)
    return body


def ok(body: Any) -> HttpResponse:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return HttpResponse(200, {"content-type": "application/json"}, raw)


# --- build_request ---------------------------------------------------------------------


def test_build_request_matches_the_documented_example() -> None:
    documented = fixture("chat_request")
    source = Prompt(id=1, line=1, messages=documented["messages"])
    request = ADAPTER.build_request(endpoint(), source, SamplingParams(), timeout=7.5)
    assert request.method == "POST"
    assert request.url == "https://api.cohere.com/v2/chat"
    assert dict(request.headers) == {
        "content-type": "application/json",
        "accept": "application/json",
        "authorization": f"Bearer {KEY}",
    }
    assert request.timeout == 7.5
    assert orjson.loads(request.body) == {
        **documented,
        "stream": False,
        "max_tokens": 512,
        "temperature": 0.0,
        "p": 0.99,
    }


def test_no_key_means_no_authorization_header() -> None:
    request = ADAPTER.build_request(
        endpoint(key=None), Prompt(id=1, line=1, messages=[]), SamplingParams(), 5.0
    )
    assert "authorization" not in request.headers


@pytest.mark.parametrize(
    ("sampling", "reasoning", "present", "absent"),
    [
        (
            SamplingParams(temperature=0.3, top_p=0.5, max_new_tokens=9),
            False,
            {"temperature": 0.3, "p": 0.5, "max_tokens": 9},
            ["response_format", "logprobs", "thinking"],
        ),
        # p must lie in [0.01, 0.99].
        (SamplingParams(top_p=1.0), False, {"p": 0.99}, []),
        (SamplingParams(top_p=0.0), False, {"p": 0.01}, []),
        (SamplingParams(json_mode=True), False, {"response_format": {"type": "json_object"}}, []),
        # Cohere has no alternatives per token: top_logprobs has nowhere to go.
        (SamplingParams(logprobs=True, top_logprobs=5), False, {"logprobs": True}, []),
        (SamplingParams(top_logprobs=5), False, {}, ["logprobs", "top_logprobs"]),
        (SamplingParams(reasoning_effort="high"), False, {}, ["thinking"]),
        (SamplingParams(reasoning_effort=None), True, {}, ["thinking"]),
        (SamplingParams(reasoning_effort="minimal"), True, {"thinking": {"type": "disabled"}}, []),
        (SamplingParams(reasoning_effort="low"), True, {"thinking": {"type": "enabled"}}, []),
        (SamplingParams(reasoning_effort="medium"), True, {"thinking": {"type": "enabled"}}, []),
        (SamplingParams(reasoning_effort="high"), True, {"thinking": {"type": "enabled"}}, []),
    ],
)
def test_sampling_fields(
    sampling: SamplingParams, reasoning: bool, present: dict[str, Any], absent: list[str]
) -> None:
    body = build(sampling=sampling, target=endpoint(reasoning=reasoning))
    for key, value in present.items():
        assert body[key] == value
    for key in absent:
        assert key not in body
    assert (body["temperature"], body["max_tokens"]) == (
        sampling.temperature,
        sampling.max_new_tokens,
    )


def test_batch_line_fields_under_cohere_names() -> None:
    parameters = {"type": "object", "properties": {"location": {"type": "string"}}}
    schema = {"type": "object", "required": ["name"]}
    extra = {
        "tools": [
            {
                "type": "function",
                "function": {"name": "get_weather", "parameters": parameters, "strict": True},
            }
        ],
        "tool_choice": "required",
        "seed": 7,
        "frequency_penalty": 0.2,
        "presence_penalty": 0.1,
        "user": "u-1",
        "logit_bias": {"1": 2},
    }
    sampling = SamplingParams(json_mode=True, stop=("END",), json_schema=schema)
    body = build(sampling=sampling, extra=extra)
    assert body["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "parameters": parameters}}
    ]
    assert body["tool_choice"] == "REQUIRED"
    assert body["stop_sequences"] == ["END"]
    assert (body["seed"], body["frequency_penalty"], body["presence_penalty"]) == (7, 0.2, 0.1)
    assert body["response_format"] == {"type": "json_object", "json_schema": schema}
    for dropped in ("user", "logit_bias", "stop"):  # OpenAI's own name is not Cohere's
        assert dropped not in body


@pytest.mark.parametrize(("choice", "sent"), [("required", "REQUIRED"), ("none", "NONE")])
def test_tool_choice(choice: str, sent: str) -> None:
    assert build(extra={"tool_choice": choice})["tool_choice"] == sent


def test_tool_choice_auto_is_cohere_default() -> None:
    assert "tool_choice" not in build(extra={"tool_choice": "auto"})


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        # Cohere forces some tool call or none, never one named function.
        (
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
            "'get_weather'",
        ),
        ({"tool_choice": "any"}, "'auto', 'required' or 'none'"),
        ({"tools": [{"type": "file_search"}]}, "function tools"),
    ],
)
def test_what_cohere_cannot_express_is_refused(extra: dict[str, Any], says: str) -> None:
    with pytest.raises(APIError) as caught:
        build(extra=extra)
    assert says in str(caught.value)


def test_messages_translate_to_cohere_roles_and_blocks() -> None:
    call = {
        "id": "get_weather_1byjy32y4hvq",
        "type": "function",
        "function": {"name": "get_weather", "arguments": {"location": "Toronto"}},
    }
    messages: list[dict[str, Any]] = [
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe both."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": "https://example.com/cat.png"},
                {"type": "image_url", "image_url": {"url": "https://x/y.jpg", "detail": "low"}},
            ],
        },
        {"role": "assistant", "content": "I will look it up.", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": [{"type": "text", "text": "21C"}]},
        {"role": "assistant", "content": "It is 21C."},
    ]
    assert build(messages)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe both."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "image_url", "image_url": {"url": "https://x/y.jpg", "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "tool_plan": "I will look it up.",
            "tool_calls": [
                {
                    "id": "get_weather_1byjy32y4hvq",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location":"Toronto"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "get_weather_1byjy32y4hvq", "content": "21C"},
        {"role": "assistant", "content": "It is 21C."},
    ]


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
        [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
        [{"role": "assistant", "content": None, "tool_calls": [{"id": "a"}]}],
        [{"role": "critic", "content": "hm"}],
    ],
)
def test_messages_cohere_cannot_take(messages: list[dict[str, Any]]) -> None:
    with pytest.raises(APIError):
        build(messages)


# --- parse_response --------------------------------------------------------------------


def test_parse_the_documented_response() -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture_bytes("chat_response")))
    text = fixture("chat_response")["message"]["content"][0]["text"]
    assert completion == Completion(
        (Answer(text, finish_reason="stop", provider_finish_reason="COMPLETE"),),
        # Billed units, not the 71 input tokens that include Cohere's own preamble.
        Usage(input_tokens=5, output_tokens=418),
    )


def test_reasoning_answers_leave_the_thinking_out() -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture_bytes("chat_response_thinking")))
    assert completion.text == "Alice's brother has 3 sisters."
    assert completion.usage == Usage(input_tokens=38, output_tokens=112, cached_input_tokens=38)


def test_a_tool_call_and_its_plan() -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture_bytes("chat_response_tool_call")))
    assert completion.answer == Answer(
        # The plan is what the model wrote beside its call: the answer's text.
        "I will look up the weather in Toronto.",
        tool_calls=(ToolCall("get_weather_1byjy32y4hvq", "get_weather", {"location": "Toronto"}),),
        finish_reason="tool_calls",
        provider_finish_reason="TOOL_CALL",
    )


def test_logprobs_pass_through() -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture_bytes("chat_response_logprobs")))
    assert completion.text == "Hello world!"
    assert completion.logprobs == fixture("chat_response_logprobs")["logprobs"]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
        # Cut short by time: what was written is kept, Cohere's reason beside it.
        ("TIMEOUT", "other"),
        ("complete", "stop"),  # the SDK's spelling
        ("content_blocked", "content_filter"),
        ("SOMETHING_NEW", "other"),
        (None, None),
    ],
)
def test_finish_reasons(reason: str | None, expected: str | None) -> None:
    body = fixture("chat_response")
    body["finish_reason"] = reason
    answer = ADAPTER.parse_response(endpoint(), ok(body)).answer
    assert (answer.finish_reason, answer.provider_finish_reason) == (expected, reason)


@pytest.mark.parametrize("reason", ["ERROR", "error_limit"])
def test_finish_reason_error_is_a_retryable_server_error(reason: str) -> None:
    body = fixture("chat_response")
    body["finish_reason"] = reason
    with pytest.raises(InternalServerError) as info:
        ADAPTER.parse_response(endpoint(), ok(body))
    assert (info.value.retryable, info.value.status_code) == (True, 200)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"tokens": {"input_tokens": 71.0, "output_tokens": 418.0}}, Usage(71, 418)),
        (
            {"billed_units": {"output_tokens": 12}, "tokens": {"input_tokens": 30}},
            Usage(30, 12),
        ),
        (
            {"billed_units": {"input_tokens": 9, "output_tokens": 3}, "cached_tokens": 4},
            Usage(9, 3, 4),
        ),
        ({}, Usage()),
        (None, Usage()),
    ],
)
def test_usage(usage: Any, expected: Usage) -> None:
    body = fixture("chat_response")
    body["usage"] = usage
    assert ADAPTER.parse_response(endpoint(), ok(body)).usage == expected


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b"{}",
        b'{"message": null}',
        b'{"message": {"content": "a string"}}',
        b'{"message": {"content": [{"type": "text", "text": 5}]}}',
        b'{"message": {"content": []}, "usage": {"tokens": {"input_tokens": "x"}}}',
        b'{"message": {"content": []}, "usage": []}',
        b'{"message": {"content": []}, "logprobs": {"text": "x"}}',
        b'{"message": {"content": [{"type": "thinking", "thinking": 5}]}}',
        b'{"message": {"tool_plan": 5}}',
        b'{"message": {"tool_calls": [{"function": {"name": "f"}}]}}',
        b'{"message": {"tool_calls": [{"id": "a", "function": null}]}}',
        b'{"message": {"content": []}, "finish_reason": 5}',
        b'{"id": "x", "message": "invalid api token"}',
    ],
)
def test_malformed_2xx_bodies_are_validation_errors(body: bytes) -> None:
    with pytest.raises(APIResponseValidationError) as info:
        ADAPTER.parse_response(endpoint(), ok(body))
    assert info.value.status_code == 200
    assert "unreadable Cohere chat response" in str(info.value)


def test_validation_error_never_quotes_the_key() -> None:
    body = b'{"echo": "Bearer ' + KEY.encode() + b'"}'
    with pytest.raises(APIResponseValidationError) as info:
        ADAPTER.parse_response(endpoint(), ok(body))
    assert KEY not in str(info.value)


# --- Errors ----------------------------------------------------------------------------

F = fixture_bytes


def _message(text: str) -> bytes:
    return orjson.dumps({"id": "5f8a0c1e-0000-4000-8000-000000000000", "message": text})


# status, body → class, "retry" / "fatal" / "" (neither), text in the message
ERRORS: list[tuple[int, bytes, type[APIStatusError], str, str]] = [
    (400, F("error_400_bad_request"), BadRequestError, "", "at least 1 token"),
    (401, F("error_401_unauthorized"), AuthenticationError, "fatal", "invalid api token"),
    (402, F("error_402_payment_required"), QuotaExhaustedError, "fatal", "payment method"),
    (403, _message("forbidden"), PermissionDeniedError, "fatal", "forbidden"),
    (404, _message("model 'command-z' not found"), NotFoundError, "", "not found"),
    (422, _message("invalid request: temperature"), UnprocessableEntityError, "", "temperature"),
    (429, F("error_429_trial"), RateLimitError, "retry", "Trial key"),
    # 498: the request or response holds a deny-listed token; it would again.
    (498, _message("blocked output"), APIStatusError, "", "blocked output"),
    (499, F("error_499_cancelled"), RequestCancelledError, "retry", "request cancelled"),
    (500, F("error_500_internal"), InternalServerError, "retry", "internal server error"),
    (501, _message("not implemented"), NotImplementedByServerError, "", "not implemented"),
    (503, _message("service unavailable"), InternalServerError, "retry", "unavailable"),
    (504, _message("gateway timeout"), InternalServerError, "retry", "timeout"),
]


@pytest.mark.parametrize(("status", "body", "cls", "kind", "says"), ERRORS)
def test_error_classification(
    status: int, body: bytes, cls: type[APIStatusError], kind: str, says: str
) -> None:
    with pytest.raises(APIStatusError) as info:
        ADAPTER.parse_response(endpoint(), HttpResponse(status, {}, body))
    error = info.value
    assert (type(error), error.status_code, error.code) == (cls, status, None)
    assert error.retryable is (kind == "retry")
    assert error.fatal is (kind == "fatal")
    assert str(error).startswith(f"{status}: ")
    assert says in str(error)


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [({}, None), ({"retry-after": "6"}, 6.0), ({"retry-after": "x"}, None)],
)
def test_retry_after(headers: dict[str, str], retry_after: float | None) -> None:
    with pytest.raises(RateLimitError) as info:
        ADAPTER.parse_response(endpoint(), HttpResponse(429, headers, F("error_429_trial")))
    assert info.value.retry_after == retry_after


@pytest.mark.parametrize(
    "template",
    [b'{"message": "invalid api token KEY"}', b'{"id": "1", "message": "KEY"}', b"denied KEY"],
)
def test_a_key_echoed_in_an_error_body_is_redacted(template: bytes) -> None:
    body = template.replace(b"KEY", KEY.encode())
    with pytest.raises(AuthenticationError) as info:
        ADAPTER.parse_response(endpoint(), HttpResponse(401, {}, body))
    for text in (str(info.value), info.value.message, repr(info.value.args)):
        assert KEY not in text
        assert KEY[:12] not in text


# --- Rate-limit headers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (fixture("trial_headers"), RateLimitInfo(limit_requests=20, remaining_requests=19)),
        ({"x-trial-endpoint-call-remaining": "0"}, RateLimitInfo(remaining_requests=0)),
        ({}, RateLimitInfo()),
        ({"x-trial-endpoint-call-limit": "lots"}, RateLimitInfo()),
    ],
)
def test_rate_limit_info(headers: dict[str, str], expected: RateLimitInfo) -> None:
    assert ADAPTER.rate_limit_info(headers) == expected


def test_stop_sequences_are_sent_as_stop_sequences() -> None:
    assert build(sampling=SamplingParams(stop=("END",)))["stop_sequences"] == ["END"]
    assert "stop_sequences" not in build()
