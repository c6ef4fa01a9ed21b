"""The Mistral adapter's requests, errors and rate-limit headers against Mistral's documented
payloads (fixtures/mistral/); its answers are read in test_mistral_answers.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import (
    APIError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    UnprocessableEntityError,
)
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.providers.capabilities import supported_sampling
from lm_deluge_cli.providers.mistral import MistralAdapter, mistral_tool_call_id
from lm_deluge_cli.providers.registry import ModelInfo, ProviderInfo
from lm_deluge_cli.types import (
    HttpResponse,
    Prompt,
    RateLimitInfo,
    SamplingParams,
)

FIXTURES = Path(__file__).parent / "fixtures" / "mistral"
KEY = "mistral-canary-qN7h6rEWlmjs5iL67Y4rt"
ADAPTER = MistralAdapter()
OFFICIAL = "https://api.mistral.ai"
PROVIDER = ProviderInfo("mistral", "mistral", OFFICIAL, "MISTRAL_BASE_URL", "MISTRAL_API_KEY")


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def endpoint(
    wire_id: str = "mistral-large-latest", *, reasoning: bool = False, key: str | None = KEY
) -> Endpoint:
    model = ModelInfo(
        id=f"mistral:{wire_id}", provider="mistral", wire_id=wire_id, reasoning=reasoning
    )
    return Endpoint(name=model.id, model=model, provider=PROVIDER, base_url=OFFICIAL, api_key=key)


def build(
    messages: list[dict[str, Any]] | None = None,
    sampling: SamplingParams | None = None,
    target: Endpoint | None = None,
    **extra: Any,
) -> dict[str, Any]:
    source = Prompt(
        id=1,
        line=1,
        messages=messages or fixture("chat_request")["messages"],
        extra_body=dict(extra),
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
    sampling = SamplingParams(temperature=0.7, top_p=1.0, max_new_tokens=100)
    request = ADAPTER.build_request(endpoint(), source, sampling, timeout=9.0)
    assert request.method == "POST"
    assert request.url == "https://api.mistral.ai/v1/chat/completions"
    assert dict(request.headers) == {
        "content-type": "application/json",
        "accept": "application/json",
        "authorization": f"Bearer {KEY}",
    }
    assert request.timeout == 9.0
    # "stream" is left out: false is Mistral's default.
    assert orjson.loads(request.body) == {k: v for k, v in documented.items() if k != "stream"}


def test_no_key_means_no_authorization_header() -> None:
    request = ADAPTER.build_request(
        endpoint(key=None), Prompt(id=1, line=1, messages=[]), SamplingParams(), 5.0
    )
    assert "authorization" not in request.headers


@pytest.mark.parametrize(
    ("sampling", "reasoning", "present", "absent"),
    [
        (
            SamplingParams(temperature=0.3, top_p=0.8, max_new_tokens=7),
            False,
            {"temperature": 0.3, "top_p": 0.8, "max_tokens": 7},
            ["response_format", "reasoning_effort", "logprobs", "top_logprobs"],
        ),
        (SamplingParams(json_mode=True), False, {"response_format": {"type": "json_object"}}, []),
        # Mistral's chat API has no logprobs: sending them would be a 422.
        (SamplingParams(logprobs=True, top_logprobs=3), False, {}, ["logprobs", "top_logprobs"]),
        (SamplingParams(reasoning_effort="high"), False, {}, ["reasoning_effort"]),
        (SamplingParams(reasoning_effort=None), True, {}, ["reasoning_effort"]),
        (SamplingParams(reasoning_effort="minimal"), True, {"reasoning_effort": "none"}, []),
        (SamplingParams(reasoning_effort="low"), True, {"reasoning_effort": "none"}, []),
        (SamplingParams(reasoning_effort="medium"), True, {"reasoning_effort": "high"}, []),
        (SamplingParams(reasoning_effort="high"), True, {"reasoning_effort": "high"}, []),
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
    # Reasoning models still take temperature and top_p.
    assert (body["temperature"], body["top_p"]) == (sampling.temperature, sampling.top_p)
    assert body["max_tokens"] == sampling.max_new_tokens


def test_batch_line_fields_pass_through_under_mistral_names() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    extra = {
        "seed": 42,
        "tools": tools,
        "tool_choice": "any",
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "parallel_tool_calls": False,
        # OpenAI-only fields Mistral would reject with a 422:
        "user": "u-1",
        "store": True,
        "logit_bias": {"1": 2},
        "metadata": {"a": "b"},
        "service_tier": "flex",
        # Fields this tool controls itself:
        "model": "other-model",
        "messages": [{"role": "user", "content": "injected"}],
    }
    source = Prompt(id=1, line=1, messages=[{"role": "user", "content": "hi"}], extra_body=extra)
    request = ADAPTER.build_request(endpoint(), source, SamplingParams(json_mode=True), 5.0)
    body = orjson.loads(request.body)
    assert body["random_seed"] == 42
    assert body["response_format"] == {"type": "json_object"}
    assert (body["tools"], body["tool_choice"]) == (tools, "any")
    assert (body["presence_penalty"], body["frequency_penalty"]) == (0.1, 0.2)
    assert body["parallel_tool_calls"] is False
    for dropped in ("seed", "user", "store", "logit_bias", "metadata", "service_tier"):
        assert dropped not in body
    assert body["model"] == "mistral-large-latest"
    assert body["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(("samples", "n"), [(1, None), (2, 2), (5, 5)])
def test_several_samples_are_asked_for_with_n(samples: int, n: int | None) -> None:
    assert build(sampling=SamplingParams(samples=samples)).get("n") == n


def test_a_prompt_cache_key_passes_through() -> None:
    assert build(prompt_cache_key="session-42")["prompt_cache_key"] == "session-42"


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("any", "any"),
        ("required", "required"),
        (
            {"type": "function", "function": {"name": "f"}},
            {"type": "function", "function": {"name": "f"}},
        ),
        ({"function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_tool_choice(choice: Any, sent: Any) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    assert build(tools=tools, tool_choice=choice)["tool_choice"] == sent


@pytest.mark.parametrize(
    "choice", ["always", {"type": "allowed_tools", "tools": []}, {"type": "function"}, 3]
)
def test_a_tool_choice_mistral_cannot_express_is_refused(choice: Any) -> None:
    with pytest.raises(APIError, match="tool_choice"):
        build(tool_choice=choice)


def test_cache_control_and_reasoning_never_reach_mistral() -> None:
    marker = {"type": "ephemeral"}
    messages: list[dict[str, Any]] = [
        {
            "role": "system",
            "content": [{"type": "text", "text": "Be brief.", "cache_control": marker}],
        },
        {"role": "user", "content": "2 + 2?", "cache_control": marker},
        {"role": "assistant", "content": "4", "reasoning": {"text": "easy", "parts": []}},
        {"role": "user", "content": "3 + 3?"},
    ]
    tools = [{"type": "function", "function": {"name": "f"}, "cache_control": marker}]
    body = build(messages, tools=tools)
    assert body["messages"] == [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": "2 + 2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "3 + 3?"},
    ]
    assert body["tools"] == [{"type": "function", "function": {"name": "f"}}]
    assert messages[0]["content"][0]["cache_control"] == marker  # the line is unchanged


def test_a_records_signed_thinking_goes_back_before_the_content() -> None:
    chunk = {
        "type": "thinking",
        "thinking": [{"type": "text", "text": "Look it up."}],
        "signature": "c2ln",
    }
    reasoning = {
        "text": "Look it up.",
        "parts": [
            {"format": "anthropic_messages", "type": "thinking", "signature": "EqQB"},
            {"format": "mistral", "chunk": chunk},
        ],
    }
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Status of T1001?"},
        {"role": "assistant", "content": "Checking.", "reasoning": reasoning},
        {"role": "user", "content": "Well?"},
    ]
    sent = build(messages)["messages"][1]
    assert sent == {
        "role": "assistant",
        "content": [chunk, {"type": "text", "text": "Checking."}],
    }
    no_text = build([messages[0], {**messages[1], "content": None}])["messages"][1]
    assert no_text["content"] == [chunk]


def test_a_mistral_part_without_its_chunk_is_refused() -> None:
    turn = {"role": "assistant", "content": "x", "reasoning": {"parts": [{"format": "mistral"}]}}
    with pytest.raises(APIError, match="thinking chunk"):
        build([{"role": "user", "content": "hi"}, turn])


def test_developer_becomes_system_and_images_pass_through() -> None:
    image = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
        {"type": "image_url", "image_url": "https://example.com/cat.png"},
    ]
    messages: list[dict[str, Any]] = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": image},
    ]
    body = build(messages)
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": image},
    ]


def test_tool_call_ids_are_made_acceptable_and_still_match() -> None:
    call = {
        "id": "call_abc123",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    kept = {**call, "id": "D681PevKs"}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call, kept]},
        {"role": "tool", "tool_call_id": "call_abc123", "content": "21C", "name": "get_weather"},
        {"role": "tool", "tool_call_id": "D681PevKs", "content": "21C"},
    ]
    sent = build(messages)["messages"]
    new_id = sent[1]["tool_calls"][0]["id"]
    assert re.fullmatch(r"[A-Za-z0-9]{9}", new_id)
    assert sent[2] == {**messages[2], "tool_call_id": new_id}
    assert sent[1]["tool_calls"][1]["id"] == "D681PevKs"  # already valid: unchanged
    assert sent[3]["tool_call_id"] == "D681PevKs"
    assert sent[1]["tool_calls"][0]["function"] == call["function"]
    assert messages[1]["tool_calls"][0]["id"] == "call_abc123"  # the prompt is not changed


@pytest.mark.parametrize("call_id", ["call_abc123", "toolu_01A09q90qw90lq917835lq9", "x", ""])
def test_mistral_tool_call_id_is_stable_and_valid(call_id: str) -> None:
    mapped = mistral_tool_call_id(call_id)
    assert re.fullmatch(r"[A-Za-z0-9]{9}", mapped)
    assert mistral_tool_call_id(call_id) == mapped
    assert mistral_tool_call_id(call_id + "1") != mapped


def test_unknown_roles_are_refused() -> None:
    with pytest.raises(APIError, match="critic"):
        build([{"role": "critic", "content": "hm"}])


# --- Errors ----------------------------------------------------------------------------

F = fixture_bytes
_NO_CREDIT = b'{"message": "Payment required"}'
_HTML_503 = b"<html><title>503 Service Unavailable</title></html>"
_INTERNAL = b'{"message": "Internal server error"}'
_BAD_CALL_ID = F("error_400_tool_call_id")
_CAPACITY = F("error_429_capacity")
_RATE_LIMITED = F("error_429_rate_limited")
_MONTH_GONE = {
    "x-ratelimit-remaining-tokens-month": "0",
    "x-ratelimit-limit-tokens-month": "4000000",
}

# status, body, headers → class, "retry" / "fatal" / "", code, text in the message
ERRORS: list[tuple[int, bytes, dict[str, str], type[APIStatusError], str, str | None, str]] = [
    (400, _BAD_CALL_ID, {}, BadRequestError, "", "invalid_function_call", "Tool call id"),
    (401, F("error_401_unauthorized"), {}, AuthenticationError, "fatal", None, "Unauthorized"),
    (402, _NO_CREDIT, {}, QuotaExhaustedError, "fatal", None, "Payment required"),
    (403, b'{"message": "Forbidden"}', {}, PermissionDeniedError, "fatal", None, "Forbidden"),
    (404, b'{"detail": "Not Found"}', {}, NotFoundError, "", None, "Not Found"),
    (422, F("error_422_validation"), {}, UnprocessableEntityError, "", None, "field required"),
    (429, F("error_429_rate_limited"), {}, RateLimitError, "retry", "rate_limited", "Rate limit"),
    (429, F("error_429_requests"), {}, RateLimitError, "retry", None, "Requests rate limit"),
    (429, _CAPACITY, {}, RateLimitError, "retry", "invalid_request_error", "capacity"),
    # The month's token budget is spent: no wait within the run will help.
    (429, _RATE_LIMITED, _MONTH_GONE, QuotaExhaustedError, "fatal", "rate_limited", "Rate"),
    (500, _INTERNAL, {}, InternalServerError, "retry", None, "Internal server error"),
    (503, _HTML_503, {}, InternalServerError, "retry", None, "503 Service Unavailable"),
]  # fmt: skip


@pytest.mark.parametrize(("status", "body", "headers", "cls", "kind", "code", "says"), ERRORS)
def test_error_classification(
    status: int,
    body: bytes,
    headers: dict[str, str],
    cls: type[APIStatusError],
    kind: str,
    code: str | None,
    says: str,
) -> None:
    with pytest.raises(APIStatusError) as info:
        ADAPTER.parse_response(endpoint(), HttpResponse(status, headers, body))
    error = info.value
    assert (type(error), error.status_code, error.code) == (cls, status, code)
    assert error.retryable is (kind == "retry")
    assert error.fatal is (kind == "fatal")
    assert str(error).startswith(f"{status}: ")
    assert says in str(error)


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({}, None),
        ({"retry-after": "2"}, 2.0),
        # The older headers say when an empty per-minute bucket refills.
        ({"ratelimitbysize-remaining": "0", "ratelimitbysize-reset": "28"}, 28.0),
        ({"ratelimitbysize-remaining": "10", "ratelimitbysize-reset": "28"}, None),
        ({"x-ratelimit-remaining-tokens-minute": "0"}, None),
        (
            {"retry-after": "1", "ratelimitbysize-remaining": "0", "ratelimitbysize-reset": "28"},
            1.0,
        ),
    ],
)
def test_retry_after(headers: dict[str, str], retry_after: float | None) -> None:
    response = HttpResponse(429, headers, fixture_bytes("error_429_rate_limited"))
    with pytest.raises(RateLimitError) as info:
        ADAPTER.parse_response(endpoint(), response)
    assert info.value.retry_after == retry_after


@pytest.mark.parametrize(
    "template",
    [b'{"message": "Invalid key KEY"}', b'{"detail": "bad token KEY"}', b"Unauthorized: KEY"],
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
        (
            fixture("rate_limit_headers"),
            RateLimitInfo(
                limit_requests=720,
                limit_tokens=5_000_000,
                remaining_requests=717,
                remaining_tokens=4_999_911,
            ),
        ),
        (
            fixture("rate_limit_headers_bysize"),
            RateLimitInfo(limit_tokens=500_000, remaining_tokens=499_900, reset_tokens_s=28.0),
        ),
        (
            {"x-ratelimitbysize-limit-minute": "500000", "x-ratelimitbysize-remaining-minute": "0"},
            RateLimitInfo(limit_tokens=500_000, remaining_tokens=0),
        ),
        ({}, RateLimitInfo()),
        (
            {"x-ratelimit-remaining-req-minute": "abc", "ratelimitbysize-reset": "-3"},
            RateLimitInfo(),
        ),
    ],
)
def test_rate_limit_info(headers: dict[str, str], expected: RateLimitInfo) -> None:
    assert ADAPTER.rate_limit_info(headers) == expected


def test_stop_sequences_are_sent_as_stop() -> None:
    assert build(sampling=SamplingParams(stop=("END",)))["stop"] == ["END"]
    assert "stop" not in build()


def test_json_schema_is_a_strict_response_format_and_beats_json_mode() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {}},
        "required": ["a"],
        "additionalProperties": False,
    }
    body = build(sampling=SamplingParams(json_mode=True, json_schema=schema))
    spec = {"name": "response", "schema": schema, "strict": True}
    assert body["response_format"] == {"type": "json_schema", "json_schema": spec}


def test_magistral_always_reasons_and_is_sent_no_reasoning_effort() -> None:
    magistral = endpoint("magistral-medium-2509", reasoning=True)
    body = build(sampling=SamplingParams(reasoning_effort="high"), target=magistral)
    assert "reasoning_effort" not in body
    kept, dropped = supported_sampling(magistral, SamplingParams(reasoning_effort="high"))
    assert dropped == ["reasoning_effort"] and kept.reasoning_effort is None
    adjustable = endpoint("mistral-medium-2604", reasoning=True)
    assert supported_sampling(adjustable, SamplingParams(reasoning_effort="high"))[1] == []
