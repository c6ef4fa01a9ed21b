"""The Gemini adapter's responses, errors and rate-limit headers (fixtures/gemini/, whose
README says where each payload comes from)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import (
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    RequestCancelledError,
)
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.providers.gemini import GeminiAdapter
from lm_deluge_cli.results import Answer, Completion, Reasoning, ToolCall, Usage
from lm_deluge_cli.types import HttpResponse, RateLimitInfo


@pytest.fixture
def endpoint(gemini_endpoint: Callable[..., Endpoint]) -> Callable[..., Endpoint]:
    return gemini_endpoint


FIXTURES = Path(__file__).parent / "fixtures" / "gemini"


KEY = "AIzaSyCanary-7f3a9c1e5b2d4f6a8c0e1234"


ADAPTER = GeminiAdapter()


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def ok(body: Any) -> HttpResponse:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return HttpResponse(200, {"content-type": "application/json"}, raw)


# --- parse_response --------------------------------------------------------------------


def test_parse_the_documented_response(
    endpoint: Callable[..., Endpoint],
) -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture_bytes("response_text")))
    text = fixture("response_text")["candidates"][0]["content"]["parts"][0]["text"]
    assert completion == Completion(
        (Answer(text, finish_reason="stop", provider_finish_reason="STOP"),),
        # Thinking tokens are billed as output, so they count into output_tokens.
        Usage(input_tokens=12, output_tokens=87 + 156, reasoning_tokens=156),
    )


def test_a_function_call_is_a_tool_call(
    endpoint: Callable[..., Endpoint],
) -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture_bytes("response_function_call")))
    # Without an id from Gemini, the call's id is its place in the candidate.
    call = ToolCall("call_0", "set_light_values", {"brightness": 25, "color_temp": "warm"})
    assert completion == Completion(
        (Answer(tool_calls=(call,), finish_reason="tool_calls", provider_finish_reason="STOP"),),
        Usage(input_tokens=94, output_tokens=24),
    )


def test_parallel_calls_and_their_thought_signature(
    endpoint: Callable[..., Endpoint],
) -> None:
    raw = fixture("response_function_calls_signed")
    got = ADAPTER.parse_response(endpoint(), ok(raw)).answer
    assert got.tool_calls == (
        ToolCall("call_0", "get_current_temperature", {"location": "Paris"}),
        ToolCall("call_1", "get_current_temperature", {"location": "London"}),
    )
    assert got.text is None
    # The signature rides on the first call: every part is kept, as it came, to go back.
    parts = raw["candidates"][0]["content"]["parts"]
    assert got.reasoning == Reasoning(None, ({"format": "gemini", "parts": parts},))


def test_call_ids_gemini_gives_are_kept(endpoint: Callable[..., Endpoint]) -> None:
    got = ADAPTER.parse_response(endpoint(), ok(fixture("response_function_call_ids"))).answer
    assert [(call.id, call.arguments) for call in got.tool_calls] == [
        ("2c4kq9vu", {"city": "Tokyo"}),
        ("7pfb3x0r", {"city": "Osaka"}),
    ]
    assert got.finish_reason == "tool_calls"


def test_thought_summaries_are_the_reasoning(endpoint: Callable[..., Endpoint]) -> None:
    raw = fixture("response_thoughts")
    completion = ADAPTER.parse_response(endpoint(), ok(raw))
    parts = raw["candidates"][0]["content"]["parts"]
    assert completion.answer == Answer(
        "17 + 25 = 42.",
        reasoning=Reasoning(parts[0]["text"], ({"format": "gemini", "parts": parts},)),
        finish_reason="stop",
        provider_finish_reason="STOP",
    )
    assert completion.usage == Usage(11, 9 + 267, reasoning_tokens=267)


def test_thoughts_without_a_signature_keep_no_parts(endpoint: Callable[..., Endpoint]) -> None:
    body = fixture("response_text")
    body["candidates"][0]["content"]["parts"] = [
        {"text": "Hm", "thought": True},
        {"text": "m.", "thought": True},
        {"text": "Yes."},
    ]
    got = ADAPTER.parse_response(endpoint(), ok(body)).answer
    assert (got.text, got.reasoning) == ("Yes.", Reasoning("Hmm."))


def test_one_answer_per_candidate_in_index_order(endpoint: Callable[..., Endpoint]) -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture("response_candidates")))
    # proto3 JSON leaves index 0 out.
    assert [(a.text, a.finish_reason) for a in completion.answers] == [
        ("A robot learns to paint the sea.", "stop"),
        ("A lighthouse keeper befriends a storm.", "stop"),
        ("A clockmaker builds a minute that", "length"),
    ]
    assert completion.usage == Usage(9, 27)


def test_logprobs_in_openai_shape(
    endpoint: Callable[..., Endpoint],
) -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture_bytes("response_logprobs")))
    assert completion.text == "Hello!"
    assert completion.logprobs == [
        {
            "token": "Hello",
            "logprob": -0.1228,
            "top_logprobs": [
                {"token": "Hello", "logprob": -0.1228},
                {"token": "Hi", "logprob": -2.1584},
            ],
        },
        {
            # proto3 JSON leaves a 0 logProbability out.
            "token": "!",
            "logprob": 0.0,
            "top_logprobs": [{"token": "!", "logprob": 0.0}, {"token": ".", "logprob": -9.8721}],
        },
    ]


def test_a_candidate_stopped_for_safety(
    endpoint: Callable[..., Endpoint],
) -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture_bytes("response_safety")))
    assert completion.text is None
    assert completion.finish_reason == "content_filter"
    assert completion.usage == Usage(input_tokens=24)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("IMAGE_PROHIBITED_CONTENT", "content_filter"),
        ("IMAGE_RECITATION", "content_filter"),
        # An unsupported language is no verdict on the content.
        ("LANGUAGE", "other"),
        ("MALFORMED_FUNCTION_CALL", "other"),
        ("UNEXPECTED_TOOL_CALL", "other"),
        ("TOO_MANY_TOOL_CALLS", "other"),
        ("NO_IMAGE", "other"),
        ("IMAGE_OTHER", "other"),
        ("OTHER", "other"),
        ("FINISH_REASON_UNSPECIFIED", "other"),
        ("SOMETHING_NEW", "other"),
        (None, None),
    ],
)
def test_finish_reasons(
    endpoint: Callable[..., Endpoint], reason: str | None, expected: str | None
) -> None:
    body = fixture("response_text")
    body["candidates"][0]["finishReason"] = reason
    got = ADAPTER.parse_response(endpoint(), ok(body)).answer
    assert (got.finish_reason, got.provider_finish_reason) == (expected, reason)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("STOP", "tool_calls"), ("MAX_TOKENS", "length"), ("MALFORMED_FUNCTION_CALL", "other")],
)
def test_a_candidate_with_calls_stopped_naturally_waits_for_their_results(
    endpoint: Callable[..., Endpoint], reason: str, expected: str
) -> None:
    body = fixture("response_function_call")
    body["candidates"][0]["finishReason"] = reason
    got = ADAPTER.parse_response(endpoint(), ok(body)).answer
    assert (got.finish_reason, got.provider_finish_reason) == (expected, reason)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {
                "promptTokenCount": 2006,
                "cachedContentTokenCount": 1920,
                "candidatesTokenCount": 300,
                "thoughtsTokenCount": 40,
                "totalTokenCount": 2346,
            },
            Usage(2006, 340, cached_input_tokens=1920, reasoning_tokens=40),
        ),
        ({"promptTokenCount": 5}, Usage(5, 0)),
        ({}, Usage()),
        (None, Usage()),
    ],
)
def test_usage(endpoint: Callable[..., Endpoint], usage: Any, expected: Usage) -> None:
    body = fixture("response_text")
    body["usageMetadata"] = usage
    assert ADAPTER.parse_response(endpoint(), ok(body)).usage == expected


def test_tool_use_prompt_tokens_are_input(endpoint: Callable[..., Endpoint]) -> None:
    body = fixture("response_text")
    body["usageMetadata"] = {"promptTokenCount": 10, "toolUsePromptTokenCount": 5}
    assert ADAPTER.parse_response(endpoint(), ok(body)).usage == Usage(15, 0)


def test_text_parts_join_and_thought_summaries_are_left_out(
    endpoint: Callable[..., Endpoint],
) -> None:
    body = fixture("response_text")
    body["candidates"][0]["content"]["parts"] = [
        {"text": "Let me think about the question.", "thought": True},
        {"text": "The answer "},
        {"text": "is 42."},
    ]
    assert ADAPTER.parse_response(endpoint(), ok(body)).text == "The answer is 42."


def test_a_blocked_prompt_is_a_final_error(
    endpoint: Callable[..., Endpoint],
) -> None:
    with pytest.raises(BadRequestError) as info:
        ADAPTER.parse_response(endpoint(), ok(fixture_bytes("response_prompt_blocked")))
    error = info.value
    assert error.code == "SAFETY"
    assert error.status_code == 200
    assert (error.retryable, error.fatal) == (False, False)
    assert "blocked the prompt (SAFETY)" in str(error)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"null",
        b"[]",
        b"{}",
        b'{"candidates": []}',
        b'{"candidates": null}',
        b'{"candidates": ["text"]}',
        b'{"candidates": [{"content": "hi"}]}',
        b'{"candidates": [{"content": {"parts": ["hi"]}}]}',
        b'{"candidates": [{"content": {"parts": [{"text": 5}]}}]}',
        b'{"candidates": [{"content": {"parts": [{"text": "x"}]}}], "usageMetadata": []}',
        b'{"candidates": [{"content": {"parts": []}}], "usageMetadata": {"promptTokenCount": "a"}}',
        b'{"candidates": [{"logprobsResult": {"chosenCandidates": ["x"]}}]}',
        b'{"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]}',
        b'{"candidates": [{"content": {"parts": [{"functionCall": {"id": 5, "name": "f"}}]}}]}',
        b'{"candidates": [{"index": 0}, "x"]}',
        b'{"promptFeedback": "blocked"}',
        b'{"error": {"code": 500, "message": "an error inside a 200", "status": "INTERNAL"}}',
        b"<html><body>Bad gateway</body></html>",
    ],
)
def test_malformed_2xx_bodies_are_validation_errors(
    endpoint: Callable[..., Endpoint], body: bytes
) -> None:
    with pytest.raises(APIResponseValidationError) as info:
        ADAPTER.parse_response(endpoint(), ok(body))
    assert info.value.status_code == 200
    assert info.value.retryable is True
    assert "unreadable Gemini response" in str(info.value)


def test_validation_error_never_quotes_the_key(
    endpoint: Callable[..., Endpoint],
) -> None:
    body = b'{"echo": {"x-goog-api-key": "' + KEY.encode() + b'"}}'
    with pytest.raises(APIResponseValidationError) as info:
        ADAPTER.parse_response(endpoint(), ok(body))
    assert KEY not in str(info.value)


# --- Errors ----------------------------------------------------------------------------


def _status(code: int, status: str, message: str, *details: Any) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "status": status,
                                   "details": list(details)}})  # fmt: skip


_QUOTA = "type.googleapis.com/google.rpc.QuotaFailure"


_ZERO_QUOTA = _status(
    429,
    "RESOURCE_EXHAUSTED",
    "You exceeded your current quota.",
    {"@type": _QUOTA, "violations": [{"quotaId": "GenerateRequestsPerMinute", "quotaValue": "0"}]},
    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "25.465784708s"},
)


_EXPIRED_KEY = _status(
    400,
    "INVALID_ARGUMENT",
    "API key expired. Please renew the API key.",
    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_EXPIRED"},
)


_NO_CREDIT = _status(402, "RESOURCE_EXHAUSTED", "Your prepayment credits are depleted.")


_CANCELLED = _status(499, "CANCELLED", "The operation was cancelled.")


_DEADLINE = _status(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.")


_HTML_502 = b"<html><title>502 Bad Gateway</title></html>"


F = fixture_bytes


_NO_FREE_TIER = F("error_400_failed_precondition")


_DENIED = F("error_403_permission_denied")


# status, body → class, "retry" / "fatal" / "" (neither), code, retry_after
ERRORS: list[tuple[int, bytes, type[APIStatusError], str, str | None, float | None]] = [
    (400, F("error_400_api_key_invalid"), AuthenticationError, "fatal", "API_KEY_INVALID", None),
    (400, _EXPIRED_KEY, AuthenticationError, "fatal", "API_KEY_EXPIRED", None),
    (400, F("error_400_invalid_argument"), BadRequestError, "", "INVALID_ARGUMENT", None),
    (400, _NO_FREE_TIER, PermissionDeniedError, "fatal", "FAILED_PRECONDITION", None),
    (402, _NO_CREDIT, QuotaExhaustedError, "fatal", "RESOURCE_EXHAUSTED", None),
    (403, _DENIED, PermissionDeniedError, "fatal", "PERMISSION_DENIED", None),
    (404, F("error_404_not_found"), NotFoundError, "", "NOT_FOUND", None),
    (429, F("error_429_per_minute"), RateLimitError, "retry", "RESOURCE_EXHAUSTED", 26.0),
    # A per-day quota, or a quota of 0, will not refill within the run: the wait is moot.
    (429, F("error_429_per_day"), QuotaExhaustedError, "fatal", "RESOURCE_EXHAUSTED", 47.0),
    (429, _ZERO_QUOTA, QuotaExhaustedError, "fatal", "RESOURCE_EXHAUSTED", 25.465784708),
    (499, _CANCELLED, RequestCancelledError, "retry", "CANCELLED", None),
    (500, F("error_500_internal"), InternalServerError, "retry", "INTERNAL", None),
    (503, F("error_503_unavailable"), InternalServerError, "retry", "UNAVAILABLE", None),
    (504, _DEADLINE, InternalServerError, "retry", "DEADLINE_EXCEEDED", None),
    (502, _HTML_502, InternalServerError, "retry", None, None),
]  # fmt: skip


@pytest.mark.parametrize(("status", "body", "cls", "kind", "code", "retry_after"), ERRORS)
def test_error_classification(
    endpoint: Callable[..., Endpoint],
    status: int,
    body: bytes,
    cls: type[APIStatusError],
    kind: str,
    code: str | None,
    retry_after: float | None,
) -> None:
    with pytest.raises(APIStatusError) as info:
        ADAPTER.parse_response(endpoint(), HttpResponse(status, {}, body))
    error = info.value
    assert (type(error), error.status_code, error.code) == (cls, status, code)
    assert error.retryable is (kind == "retry")
    assert error.fatal is (kind == "fatal")
    if body.startswith(b"{"):
        message = orjson.loads(body)["error"]["message"]
    else:  # an HTML page is quoted as its text
        message = "HTML page: 502 Bad Gateway"
    assert str(error) == f"{status}: {message}"
    assert error.retry_after == (None if retry_after is None else pytest.approx(retry_after))


def test_a_retry_after_header_wins_over_retry_info(
    endpoint: Callable[..., Endpoint],
) -> None:
    response = HttpResponse(429, {"retry-after": "3"}, fixture_bytes("error_429_per_minute"))
    with pytest.raises(RateLimitError) as info:
        ADAPTER.parse_response(endpoint(), response)
    assert info.value.retry_after == 3.0


@pytest.mark.parametrize(
    "template",
    [
        _status(400, "INVALID_ARGUMENT", "API key KEY not valid."),
        _status(403, "PERMISSION_DENIED", "Key KEY is blocked"),
        b"Forbidden: KEY",
    ],
)
def test_a_key_echoed_in_an_error_body_is_redacted(
    endpoint: Callable[..., Endpoint], template: bytes
) -> None:
    body = template.replace(b"KEY", KEY.encode())
    status = orjson.loads(body)["error"]["code"] if body.startswith(b"{") else 403
    with pytest.raises(APIStatusError) as info:
        ADAPTER.parse_response(endpoint(), HttpResponse(status, {}, body))
    for text in (str(info.value), info.value.message, repr(info.value.args)):
        assert KEY not in text
        assert KEY[:10] not in text


# --- Rate-limit headers ----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-ratelimit-remaining-requests": "0"}, {"retry-after": "5"}],
)
def test_gemini_sends_no_rate_limit_headers(headers: dict[str, str]) -> None:
    info = ADAPTER.rate_limit_info(headers)
    assert info == RateLimitInfo()
    assert info.empty
