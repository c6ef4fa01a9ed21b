"""The Chat Completions adapter against OpenAI's documented errors and rate-limit headers.

Fixtures under fixtures/openai/ are error bodies as the API returns them; the rate-limit
header table is the one in OpenAI's guides. Keys echoed in an error never reach a message.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    RequestTimeoutError,
    UnprocessableEntityError,
)
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.providers.openai_chat import OpenAIChatAdapter
from lm_deluge_cli.types import HttpResponse, RateLimitInfo


@pytest.fixture
def endpoint(openai_endpoint: Callable[..., Endpoint]) -> Callable[..., Endpoint]:
    return openai_endpoint


FIXTURES = Path(__file__).parent / "fixtures" / "openai"


KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"


ADAPTER = OpenAIChatAdapter()


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


# --- Errors ----------------------------------------------------------------------------


def error_body(message: str, type_: str | None = None, code: str | None = None) -> bytes:
    """An error body in OpenAI's shape."""
    return orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})


_BAD_REQUEST = error_body("Unrecognized request argument supplied: foo", "invalid_request_error")


_FORBIDDEN = error_body(
    "Country, region, or territory not supported",
    "request_forbidden",
    "unsupported_country_region_territory",
)


_NOT_FOUND = error_body(
    "The model `gpt-9` does not exist or you do not have access to it.",
    "invalid_request_error",
    "model_not_found",
)


_OVERLOADED_503 = error_body(
    "The engine is currently overloaded, please try again later", "server_error"
)


_OVERLOADED_529 = error_body("Overloaded", "overloaded_error")


_HTML_502 = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body></body>\r\n</html>\r\n"


_401 = fixture_bytes("error_401_invalid_api_key")


_429_RATE = fixture_bytes("error_429_rate_limit_exceeded")


_429_LARGE = fixture_bytes("error_429_request_too_large")


_429_QUOTA = fixture_bytes("error_429_insufficient_quota")


_500 = fixture_bytes("error_500_server_error")


# status, body → class, "retry" / "fatal" / "" (neither), the provider's code, text in the message
ERRORS: list[tuple[int, bytes, type[APIStatusError], str, str | None, str]] = [
    (400, _BAD_REQUEST, BadRequestError, "", "invalid_request_error", "Unrecognized request"),
    (401, _401, AuthenticationError, "fatal", "invalid_api_key", "Incorrect API key provided"),
    (
        403,
        _FORBIDDEN,
        PermissionDeniedError,
        "fatal",
        "unsupported_country_region_territory",
        "not supported",
    ),
    (404, _NOT_FOUND, NotFoundError, "", "model_not_found", "does not exist"),
    (408, b"", RequestTimeoutError, "retry", None, "empty response body"),
    (409, b"", ConflictError, "retry", None, "409"),
    (422, error_body("bad"), UnprocessableEntityError, "", None, "bad"),
    (429, _429_RATE, RateLimitError, "retry", "rate_limit_exceeded", "Please try again in 174ms"),
    (429, _429_LARGE, RateLimitError, "retry", "rate_limit_exceeded", "Request too large"),
    (429, _429_QUOTA, QuotaExhaustedError, "fatal", "insufficient_quota", "current quota"),
    (500, _500, InternalServerError, "retry", "server_error", "Sorry about that"),
    (502, _HTML_502, InternalServerError, "retry", None, "502 Bad Gateway"),
    (503, _OVERLOADED_503, InternalServerError, "retry", "server_error", "overloaded"),
    (529, _OVERLOADED_529, OverloadedError, "retry", "overloaded_error", "Overloaded"),
    (418, b"I'm a teapot", APIStatusError, "", None, "teapot"),
    # Redirects are never followed, so a 3xx arrives here as an error.
    (302, b"", APIStatusError, "", None, "302"),
]


@pytest.mark.parametrize(("status", "body", "cls", "kind", "code", "says"), ERRORS)
def test_error_classification(
    endpoint: Callable[..., Endpoint],
    status: int,
    body: bytes,
    cls: type[APIStatusError],
    kind: str,
    code: str | None,
    says: str,
) -> None:
    with pytest.raises(APIStatusError) as info:
        ADAPTER.parse_response(endpoint(), HttpResponse(status, {}, body))
    error = info.value
    assert type(error) is cls
    assert error.retryable is (kind == "retry")
    assert error.fatal is (kind == "fatal")
    assert error.code == code
    assert error.status_code == status
    assert str(error).startswith(f"{status}: ")
    assert says in str(error)
    assert error.body is None


@pytest.mark.parametrize(
    ("cls", "type_"),
    [
        (BadRequestError, "bad_request"),
        (AuthenticationError, "authentication_error"),
        (RateLimitError, "rate_limit"),
        (QuotaExhaustedError, "quota_exhausted"),
        (InternalServerError, "server_error"),
        (OverloadedError, "overloaded"),
        (APIStatusError, "status_error"),
    ],
)
def test_error_record_types(
    endpoint: Callable[..., Endpoint], cls: type[APIStatusError], type_: str
) -> None:
    rows = [row for row in ERRORS if row[2] is cls]
    assert rows
    for status, body, *_ in rows:
        with pytest.raises(APIStatusError) as info:
            ADAPTER.parse_response(endpoint(), HttpResponse(status, {}, body))
        assert info.value.type == type_


def test_a_fatal_quota_error_does_not_make_every_rate_limit_fatal(
    endpoint: Callable[..., Endpoint],
) -> None:
    quota = HttpResponse(429, {}, fixture_bytes("error_429_insufficient_quota"))
    with pytest.raises(QuotaExhaustedError) as first:
        ADAPTER.parse_response(endpoint(), quota)
    assert first.value.fatal and first.value.type == "quota_exhausted"
    rate = HttpResponse(429, {}, fixture_bytes("error_429_rate_limit_exceeded"))
    with pytest.raises(RateLimitError) as second:
        ADAPTER.parse_response(endpoint(), rate)
    assert not second.value.fatal
    assert second.value.retryable
    assert RateLimitError.fatal is False
    assert RateLimitError.retryable is True


_DOCUMENTED_HEADERS: dict[str, str] = fixture("rate_limit_headers")


_EXHAUSTED = {
    "x-ratelimit-remaining-requests": "0",
    "x-ratelimit-reset-requests": "1s",
    "x-ratelimit-remaining-tokens": "0",
    "x-ratelimit-reset-tokens": "6m0s",
}


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (429, {}, None),
        (429, {"retry-after-ms": "1500"}, 1.5),
        (429, {"retry-after": "2"}, 2.0),
        (429, {"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        (429, {"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        # Without retry-after, the reset of a limit that has run out.
        (429, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s"}, 1.0),
        (429, {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "20ms"}, 0.02),
        (429, _EXHAUSTED, 360.0),
        (429, {**_EXHAUSTED, "x-ratelimit-remaining-tokens": "5"}, 1.0),
        # A reset whose limit still has room says nothing about this refusal.
        (429, _DOCUMENTED_HEADERS, None),
        (429, {"x-ratelimit-remaining-requests": "0"}, None),
        (429, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "?"}, None),
        # retry-after wins over the reset headers.
        (429, {**_EXHAUSTED, "retry-after": "3"}, 3.0),
        # Other statuses read retry-after but not the reset headers.
        (503, {"retry-after": "4"}, 4.0),
        (503, _EXHAUSTED, None),
    ],
)
def test_retry_after(
    endpoint: Callable[..., Endpoint],
    status: int,
    headers: dict[str, str],
    retry_after: float | None,
) -> None:
    body = fixture_bytes("error_429_rate_limit_exceeded")
    with pytest.raises(APIStatusError) as info:
        ADAPTER.parse_response(endpoint(), HttpResponse(status, headers, body))
    if retry_after is None:
        assert info.value.retry_after is None
    else:
        assert info.value.retry_after == pytest.approx(retry_after)


# --- Rate-limit headers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            _DOCUMENTED_HEADERS,
            RateLimitInfo(
                limit_requests=60,
                limit_tokens=150000,
                remaining_requests=59,
                remaining_tokens=149984,
                reset_requests_s=1.0,
                reset_tokens_s=360.0,
            ),
        ),
        ({}, RateLimitInfo()),
        (
            {
                "x-ratelimit-remaining-requests": "abc",
                "x-ratelimit-remaining-tokens": "inf",
                "x-ratelimit-limit-requests": "nan",
                "x-ratelimit-limit-tokens": "1.5e3",
                "x-ratelimit-reset-requests": "soon",
                "x-ratelimit-reset-tokens": "1m30.5s",
            },
            RateLimitInfo(limit_tokens=1500, reset_tokens_s=90.5),
        ),
        (
            {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "0.5"},
            RateLimitInfo(remaining_tokens=0, reset_tokens_s=0.5),
        ),
    ],
)
def test_rate_limit_info(headers: dict[str, str], expected: RateLimitInfo) -> None:
    assert ADAPTER.rate_limit_info(headers) == expected


def test_rate_limit_info_empty() -> None:
    assert ADAPTER.rate_limit_info({}).empty
    assert not ADAPTER.rate_limit_info(_DOCUMENTED_HEADERS).empty
    assert not ADAPTER.rate_limit_info({"x-ratelimit-remaining-tokens": "0"}).empty


# --- Keys never reach a message --------------------------------------------------------


def test_openai_masked_key_echo_is_redacted(
    endpoint: Callable[..., Endpoint],
) -> None:
    with pytest.raises(AuthenticationError) as info:
        ADAPTER.parse_response(
            endpoint(), HttpResponse(401, {}, fixture_bytes("error_401_invalid_api_key"))
        )
    message = str(info.value)
    assert "sk-VKMIs" not in message
    assert "wjh3" not in message
    assert "Incorrect API key provided: [redacted]" in message


@pytest.mark.parametrize(
    "key",
    [KEY, "local-server-secret-value-42", "hunter2hunter2hunter2"],
    ids=["sk", "plain", "bare"],
)
@pytest.mark.parametrize(
    "template",
    [
        b'{"error": {"message": "Incorrect API key provided: KEY.", "code": "invalid_api_key"}}',
        b'{"detail": "bad token KEY"}',
        b"<html>" + b"x" * 180 + b"KEY</html>",
        b"Unauthorized: KEY",
    ],
)
def test_a_key_echoed_in_an_error_body_is_redacted(
    endpoint: Callable[..., Endpoint], key: str, template: bytes
) -> None:
    body = template.replace(b"KEY", key.encode())
    with pytest.raises(AuthenticationError) as info:
        ADAPTER.parse_response(endpoint(key=key), HttpResponse(401, {}, body))
    error = info.value
    for text in (str(error), error.message, repr(error), repr(error.args)):
        assert key not in text
        assert key[:6] not in text
