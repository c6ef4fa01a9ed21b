"""The Messages API adapter against Anthropic's documented responses, errors and rate limits.

Fixtures under fixtures/anthropic/ are the message object, tool use (one call, and parallel
calls beside text), extended thinking (signed and redacted blocks, and thinking before a tool
call), prompt caching (a write, and the 1-hour breakdown of the prompt-caching page's usage
example), a refusal (stop_details as the API reference describes it) and a paused turn,
in the documented shapes; error bodies in the documented shape for each documented error
type, and the rate-limit headers of the rate-limits page. Echoed keys never reach a message.
"""

from __future__ import annotations

import datetime
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
    OverloadedError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
)
from lm_deluge_cli.providers.anthropic_answer import REFUSAL_TEXT
from lm_deluge_cli.providers.anthropic_messages import (
    AnthropicMessagesAdapter,
    parse_message,
    parse_reset,
    rate_limit_info_at,
)
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.results import Answer, Completion, Reasoning, ToolCall, Usage
from lm_deluge_cli.types import HttpResponse, RateLimitInfo


@pytest.fixture
def endpoint(anthropic_endpoint: Callable[..., Endpoint]) -> Callable[..., Endpoint]:
    return anthropic_endpoint


FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"


KEY = "sk-ant-api03-canary7f3a9c1e5b2d4f6a8c0e"


# 2025-08-21T12:40:41Z: 18 s before the documented requests reset.
NOW = datetime.datetime(2025, 8, 21, 12, 40, 41, tzinfo=datetime.UTC).timestamp()


ADAPTER = AnthropicMessagesAdapter(clock=lambda: NOW)


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def ok(raw: Any) -> HttpResponse:
    return HttpResponse(200, {"content-type": "application/json"}, orjson.dumps(raw))


# --- parse_response --------------------------------------------------------------------


def answer(text: str | None, finish: str, own: str, **parts: Any) -> Answer:
    """An answer with our finish reason and the provider's."""
    return Answer(text, finish_reason=finish, provider_finish_reason=own, **parts)


def kept(block: dict[str, Any]) -> dict[str, Any]:
    """A thinking block as Reasoning.parts keeps it."""
    return {"format": "anthropic_messages", "block": block}


def test_parse_the_documented_message(endpoint: Callable[..., Endpoint]) -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture("message")))
    assert completion == Completion(
        (answer("Hi! My name is Claude.", "stop", "end_turn"),), Usage(2095, 503)
    )


def test_a_tool_use_answer_keeps_its_text_and_call(endpoint: Callable[..., Endpoint]) -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture("message_tool_use")))
    call = ToolCall(
        "toolu_01A09q90qw90lq917835lq9",
        "get_weather",
        {"location": "San Francisco, CA", "unit": "celsius"},
    )
    text = "I'll check the current weather in San Francisco for you."
    assert completion == Completion(
        (answer(text, "tool_calls", "tool_use", tool_calls=(call,)),), Usage(384, 87)
    )


def test_several_tool_calls_in_order(endpoint: Callable[..., Endpoint]) -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture("message_parallel_tool_use")))
    assert completion.answer.text == "I'll check the weather and the time in San Francisco."
    assert completion.answer.tool_calls == (
        ToolCall("toolu_01A09q90qw90lq917835lq9", "get_weather", {"location": "San Francisco, CA"}),
        ToolCall("toolu_01B7e3kP2mR9vW4xY6zT8nQs", "get_time", {"timezone": "America/Los_Angeles"}),
    )
    assert completion.finish_reason == "tool_calls"


def test_thinking_and_redacted_thinking_are_kept_whole(endpoint: Callable[..., Endpoint]) -> None:
    raw = fixture("message_thinking")
    thinking, redacted, _ = raw["content"]
    completion = ADAPTER.parse_response(endpoint(), ok(raw))
    # Thinking is not the text; output_tokens includes it.
    assert completion == Completion(
        (
            answer(
                "Based on my analysis...",
                "stop",
                "end_turn",
                reasoning=Reasoning(
                    "Let me analyze this step by step...", (kept(thinking), kept(redacted))
                ),
            ),
        ),
        Usage(57, 2430),
    )
    # The signature and the redacted data are there, byte for byte.
    parts = completion.answer.reasoning.parts if completion.answer.reasoning else ()
    assert parts[0]["block"]["signature"] == thinking["signature"]
    assert parts[1]["block"] == {"type": "redacted_thinking", "data": redacted["data"]}


def test_thinking_beside_a_tool_call(endpoint: Callable[..., Endpoint]) -> None:
    raw = fixture("message_thinking_tool_use")
    completion = ADAPTER.parse_response(endpoint(), ok(raw))
    got = completion.answer
    assert got.reasoning == Reasoning(raw["content"][0]["thinking"], (kept(raw["content"][0]),))
    assert got.text == "Let me look that up."
    assert [call.name for call in got.tool_calls] == ["get_weather"]
    assert completion.usage == Usage(311, 144, reasoning_tokens=96)


def test_thinking_blocks_are_tagged_with_the_wire_format_read() -> None:
    raw = fixture("message_thinking")
    response = HttpResponse(200, {}, orjson.dumps(raw))
    completion = parse_message(response, None, "Bedrock response", wire_format="bedrock_anthropic")
    reasoning = completion.answer.reasoning
    assert reasoning is not None
    assert [part["format"] for part in reasoning.parts] == ["bedrock_anthropic"] * 2


@pytest.mark.parametrize(
    ("thinking", "text"),
    [
        # Interleaved thinking: separate thoughts.
        (["First.", "Second."], "First.\n\nSecond."),
        # display "omitted": an empty thought, the signature still to send back.
        ([""], None),
    ],
)
def test_reasoning_text(
    endpoint: Callable[..., Endpoint], thinking: list[str], text: str | None
) -> None:
    raw = fixture("message")
    blocks = [{"type": "thinking", "thinking": t, "signature": "sig"} for t in thinking]
    raw["content"] = [*blocks, *raw["content"]]
    reasoning = ADAPTER.parse_response(endpoint(), ok(raw)).answer.reasoning
    assert reasoning is not None
    assert reasoning.text == text
    assert [part["block"] for part in reasoning.parts] == blocks


def test_a_refusal_without_text_is_an_answer(endpoint: Callable[..., Endpoint]) -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture("message_refusal")))
    assert completion == Completion(
        (
            answer(
                None,
                "refusal",
                "refusal",
                refusal="This request could enable the development of malware. (category: cyber)",
            ),
        ),
        Usage(87, 0),
    )
    assert not completion.answer.empty


@pytest.mark.parametrize(
    ("content", "details", "refusal"),
    [
        # Text written before the model stopped is the refusal (and stays the text).
        ([{"type": "text", "text": "I can't help with that."}], None, "I can't help with that."),
        ([], None, REFUSAL_TEXT),
        ([], {"type": "refusal", "category": "bio"}, f"{REFUSAL_TEXT} (category: bio)"),
        ([{"type": "text", "text": ""}], "junk", REFUSAL_TEXT),
    ],
)
def test_what_a_refusal_says(
    endpoint: Callable[..., Endpoint], content: list[Any], details: Any, refusal: str
) -> None:
    raw = {**fixture("message_refusal"), "content": content, "stop_details": details}
    got = ADAPTER.parse_response(endpoint(), ok(raw)).answer
    assert (got.refusal, got.finish_reason) == (refusal, "refusal")
    assert got.text == ("".join(b["text"] for b in content) if content else None)


def test_cache_writes_with_the_1h_breakdown(endpoint: Callable[..., Endpoint]) -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture("message_cache_1h")))
    # input_tokens is only what follows the last breakpoint: writes and reads add to it.
    assert completion.usage == Usage(
        input_tokens=2048 + 248 + 1800,
        output_tokens=503,
        cached_input_tokens=1800,
        cache_write_tokens=248,
        cache_write_1h_tokens=100,
    )
    assert completion.usage.to_record() == {
        "input_tokens": 4096,
        "output_tokens": 503,
        "cached_input_tokens": 1800,
        "cache_write_tokens": 248,
        "cache_write_1h_tokens": 100,
    }


def test_the_documented_prompt_caching_write(endpoint: Callable[..., Endpoint]) -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture("message_prompt_caching")))
    assert completion.usage == Usage(21 + 188086, 393, cache_write_tokens=188086)


def test_a_paused_turn(endpoint: Callable[..., Endpoint]) -> None:
    completion = ADAPTER.parse_response(endpoint(), ok(fixture("message_pause_turn")))
    assert completion.answer == answer(
        "I have looked through the first half of the sources so far.", "other", "pause_turn"
    )


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {
                "input_tokens": 50,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 188086,
                "output_tokens": 393,
            },
            Usage(188136, 393, cached_input_tokens=188086),
        ),
        (
            {"input_tokens": 3, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 20},
            Usage(33, 0, cached_input_tokens=20, cache_write_tokens=10),
        ),
        # Only the breakdown: its sum is what was written.
        (
            {
                "input_tokens": 3,
                "cache_creation": {"ephemeral_5m_input_tokens": 4, "ephemeral_1h_input_tokens": 6},
            },
            Usage(13, 0, cache_write_tokens=10, cache_write_1h_tokens=6),
        ),
        ({"input_tokens": 3, "cache_creation": None}, Usage(3, 0)),
        ({"input_tokens": 5, "cache_read_input_tokens": None}, Usage(5, 0)),
        (None, Usage()),
        ("nope", Usage()),
    ],
)
def test_usage(endpoint: Callable[..., Endpoint], usage: Any, expected: Usage) -> None:
    raw = fixture("message")
    raw["usage"] = usage
    assert ADAPTER.parse_response(endpoint(), ok(raw)).usage == expected


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "refusal"),
        ("pause_turn", "other"),
        ("some_new_reason", "other"),
        (None, None),
        (7, None),
    ],
)
def test_finish_reasons(
    endpoint: Callable[..., Endpoint], stop_reason: Any, finish_reason: str | None
) -> None:
    raw = fixture("message")
    raw["stop_reason"] = stop_reason
    got = ADAPTER.parse_response(endpoint(), ok(raw)).answer
    assert got.finish_reason == finish_reason
    assert got.provider_finish_reason == (stop_reason if isinstance(stop_reason, str) else None)


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ([], None),
        ([{"type": "tool_use", "id": "t", "name": "f", "input": {}}], None),
        ([{"type": "thinking", "thinking": "hm", "signature": "s"}], None),
        ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "ab"),
        ([{"type": "text", "text": ""}], ""),
    ],
)
def test_text_is_the_concatenated_text_blocks(
    endpoint: Callable[..., Endpoint], content: list[Any], text: str | None
) -> None:
    raw = fixture("message")
    raw["content"] = content
    assert ADAPTER.parse_response(endpoint(), ok(raw)).text == text


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"null",
        b"[]",
        b"{}",
        b'{"content": null}',
        b'{"content": "Hi"}',
        b'{"content": ["Hi"]}',
        b'{"content": [{"text": "no type"}]}',
        b'{"content": [{"type": "text"}]}',
        b'{"content": [{"type": "text", "text": 5}]}',
        b'{"content": [], "usage": {"input_tokens": "abc"}}',
        b'{"content": [], "usage": {"output_tokens": 1e400}}',
        b'{"content": [], "usage": {"cache_creation": {"ephemeral_1h_input_tokens": "x"}}}',
        b'{"content": [{"type": "tool_use", "name": "f", "input": {}}]}',
        b'{"content": [{"type": "tool_use", "id": "t", "input": {}}]}',
        b'{"content": [{"type": "tool_use", "id": 5, "name": "f", "input": {}}]}',
        b'{"type": "error", "error": {"type": "api_error", "message": "inside a 200"}}',
    ],
)
def test_malformed_2xx_bodies_are_validation_errors(
    endpoint: Callable[..., Endpoint], raw: bytes
) -> None:
    with pytest.raises(APIResponseValidationError) as info:
        ADAPTER.parse_response(endpoint(), HttpResponse(200, {}, raw))
    assert info.value.retryable
    assert info.value.status_code == 200
    assert "unreadable Anthropic message" in str(info.value)


# --- Errors ----------------------------------------------------------------------------


def error_response(name: str, status: int, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(status, headers or {}, fixture_bytes(name))


# fixture, status → class, "retry" / "fatal" / "", the code recorded, text in the message
ERRORS: list[tuple[str, int, type[APIStatusError], str, str]] = [
    ("error_400_invalid_request", 400, BadRequestError, "", "invalid_request_error"),
    # A spend limit you set is told apart only by its message, which is not read.
    ("error_400_workspace_spend_limit", 400, BadRequestError, "", "invalid_request_error"),
    ("error_401_authentication", 401, AuthenticationError, "fatal", "authentication_error"),
    ("error_402_billing", 402, QuotaExhaustedError, "fatal", "billing_error"),
    ("error_403_permission", 403, PermissionDeniedError, "fatal", "permission_error"),
    ("error_404_not_found", 404, NotFoundError, "", "not_found_error"),
    ("error_413_request_too_large", 413, APIStatusError, "", "request_too_large"),
    ("error_429_rate_limit", 429, RateLimitError, "retry", "rate_limit_error"),
    ("error_429_spend_cap", 429, QuotaExhaustedError, "fatal", "enforced_spend_limit_reached"),
    ("error_500_api_error", 500, InternalServerError, "retry", "api_error"),
    ("error_504_timeout", 504, InternalServerError, "retry", "timeout_error"),
    ("error_529_overloaded", 529, OverloadedError, "retry", "overloaded_error"),
]


@pytest.mark.parametrize(("name", "status", "cls", "kind", "code"), ERRORS)
def test_error_classification(
    endpoint: Callable[..., Endpoint],
    name: str,
    status: int,
    cls: type[APIStatusError],
    kind: str,
    code: str,
) -> None:
    with pytest.raises(APIStatusError) as info:
        ADAPTER.parse_response(endpoint(), error_response(name, status))
    error = info.value
    assert type(error) is cls
    assert error.retryable is (kind == "retry")
    assert error.fatal is (kind == "fatal")
    assert error.code == code
    assert error.status_code == status
    assert str(error) == f"{status}: {fixture(name)['error']['message']}"


def test_a_fatal_spend_cap_does_not_make_every_rate_limit_fatal(
    endpoint: Callable[..., Endpoint],
) -> None:
    with pytest.raises(QuotaExhaustedError) as cap:
        ADAPTER.parse_response(endpoint(), error_response("error_429_spend_cap", 429))
    with pytest.raises(RateLimitError) as rate:
        ADAPTER.parse_response(endpoint(), error_response("error_429_rate_limit", 429))
    assert cap.value.fatal and not cap.value.retryable
    assert rate.value.retryable and not rate.value.fatal
    assert RateLimitError.fatal is False


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (429, {"retry-after": "17"}, 17.0),
        (429, {"retry-after": "0.5"}, 0.5),
        (429, {"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        (429, {}, None),
        (429, {"retry-after": "soon"}, None),
        # A reset time is not a retry-after: the limiter reads those headers.
        (429, {"anthropic-ratelimit-requests-remaining": "0"}, None),
        (529, {"retry-after": "3"}, 3.0),
    ],
)
def test_retry_after(
    endpoint: Callable[..., Endpoint],
    status: int,
    headers: dict[str, str],
    retry_after: float | None,
) -> None:
    with pytest.raises(APIStatusError) as info:
        ADAPTER.parse_response(endpoint(), error_response("error_429_rate_limit", status, headers))
    assert info.value.retry_after == retry_after


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"", "empty response body"),
        (b"<html><body>502 Bad Gateway</body></html>", "502 Bad Gateway"),
        (b'{"type": "error", "error": "flat"}', "flat"),
    ],
)
def test_error_bodies_that_are_not_the_documented_shape(
    endpoint: Callable[..., Endpoint], raw: bytes, says: str
) -> None:
    with pytest.raises(InternalServerError) as info:
        ADAPTER.parse_response(endpoint(), HttpResponse(502, {}, raw))
    assert says in str(info.value)
    assert info.value.retryable


# --- Rate-limit headers ----------------------------------------------------------------


def test_documented_rate_limit_headers() -> None:
    assert ADAPTER.rate_limit_info(fixture("rate_limit_headers")) == RateLimitInfo(
        limit_requests=1000,
        limit_tokens=96000,
        remaining_requests=999,
        remaining_tokens=95000,
        reset_requests_s=18.0,
        reset_tokens_s=19.0,
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, RateLimitInfo()),
        (
            {
                "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": "2025-08-21T12:40:41.750Z",
            },
            RateLimitInfo(remaining_requests=0, reset_requests_s=0.75),
        ),
        (
            {
                "anthropic-ratelimit-tokens-remaining": "abc",
                "anthropic-ratelimit-tokens-limit": "inf",
                "anthropic-ratelimit-tokens-reset": "tomorrow",
                "anthropic-ratelimit-requests-limit": "50",
            },
            RateLimitInfo(limit_requests=50),
        ),
        # Only the input and output limits: tokens-* is what the limiter reads.
        (
            {"anthropic-ratelimit-input-tokens-remaining": "10"},
            RateLimitInfo(),
        ),
    ],
)
def test_rate_limit_info(headers: dict[str, str], expected: RateLimitInfo) -> None:
    assert rate_limit_info_at(headers, NOW) == expected


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2025-08-21T12:40:59Z", 18.0),
        ("2025-08-21T12:41:41+00:00", 60.0),
        ("2025-08-21T14:41:41+02:00", 60.0),
        ("2025-08-21t12:40:42.5z", 1.5),
        ("2025-08-21T12:40:51", 10.0),
        # A reset in the past is now.
        ("2025-08-21T12:00:00Z", 0.0),
        ("", None),
        ("60", None),
        ("Thu, 21 Aug 2025 12:41:00 GMT", None),
        (None, None),
    ],
)
def test_parse_reset(value: str | None, seconds: float | None) -> None:
    assert parse_reset(value, NOW) == seconds


def test_the_adapter_clock_measures_resets() -> None:
    later = AnthropicMessagesAdapter(clock=lambda: NOW + 10)
    info = later.rate_limit_info(fixture("rate_limit_headers"))
    assert info.reset_requests_s == 8.0


# --- Keys never reach a message --------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        b'{"type": "error", "error": {"type": "authentication_error", "message": "bad key KEY"}}',
        b'{"detail": "bad token KEY"}',
        b"<html>" + b"x" * 180 + b"KEY</html>",
        b"Unauthorized: KEY",
    ],
)
@pytest.mark.parametrize("key", [KEY, "plain-secret-value-42"], ids=["sk-ant", "plain"])
def test_a_key_echoed_in_an_error_body_is_redacted(
    endpoint: Callable[..., Endpoint], template: bytes, key: str
) -> None:
    raw = template.replace(b"KEY", key.encode())
    with pytest.raises(AuthenticationError) as info:
        ADAPTER.parse_response(endpoint(key=key), HttpResponse(401, {}, raw))
    error = info.value
    for text in (str(error), error.message, repr(error), repr(error.args)):
        assert key not in text
        assert key[:8] not in text


def test_a_key_echoed_in_a_2xx_body_is_redacted(
    endpoint: Callable[..., Endpoint],
) -> None:
    raw = b'{"echo": {"x-api-key": "' + KEY.encode() + b'"}}'
    with pytest.raises(APIResponseValidationError) as info:
        ADAPTER.parse_response(endpoint(), HttpResponse(200, {}, raw))
    assert KEY not in str(info.value)
    assert "[redacted]" in str(info.value)


def test_the_key_is_not_in_the_endpoint_repr(
    endpoint: Callable[..., Endpoint],
) -> None:
    assert KEY not in repr(endpoint())
