"""The Gemini batchEmbedContents adapter against the documented payloads."""

from __future__ import annotations

from typing import Any

import pytest

from lm_deluge_cli.errors import (
    APIResponseValidationError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    QuotaExhaustedError,
    RateLimitError,
)
from lm_deluge_cli.providers.retrieval import EmbedOptions, GeminiEmbedAdapter

from .support import KEY, assert_keyless, embed_endpoint, failed, ok, sent

ADAPTER = GeminiEmbedAdapter()
GEMINI = embed_endpoint("gemini-embedding-001")
RESPONSE = {
    "embeddings": [{"values": [0.0132, -0.0087, 0.0521]}, {"values": [0.0091, 0.0204, -0.0333]}]
}


def _google_error(code: int, status: str, message: str, *details: dict[str, Any]) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, "details": list(details)}}


def test_request_names_the_model_in_each_item() -> None:
    request = ADAPTER.build_request(
        GEMINI, ["What is the meaning of life?", "How do I bake a cake?"], EmbedOptions(), 8.0
    )
    assert request.url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents"
    )
    assert request.headers["x-goog-api-key"] == KEY
    assert "authorization" not in request.headers
    assert sent(request) == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "What is the meaning of life?"}]},
            },
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "How do I bake a cake?"}]},
            },
        ]
    }
    assert KEY not in request.url


@pytest.mark.parametrize(
    ("ours", "theirs"), [("document", "RETRIEVAL_DOCUMENT"), ("query", "RETRIEVAL_QUERY")]
)
def test_task_type_and_dimensionality(ours: str, theirs: str) -> None:
    body = sent(
        ADAPTER.build_request(GEMINI, ["a"], EmbedOptions(dimensions=768, input_type=ours), 8.0)
    )
    item = body["requests"][0]
    assert item["taskType"] == theirs
    assert item["outputDimensionality"] == 768


def test_documented_response_in_request_order() -> None:
    batch = ADAPTER.parse_response(GEMINI, ok(RESPONSE), 2)
    assert batch.vectors == [[0.0132, -0.0087, 0.0521], [0.0091, 0.0204, -0.0333]]
    assert batch.input_tokens is None  # Gemini reports no usage for embeddings


@pytest.mark.parametrize(
    ("body", "count", "words"),
    [
        (RESPONSE, 3, "2 embeddings for 3 texts"),
        ({"embeddings": {"values": [0.1]}}, 1, "not a list"),
        ({"embeddings": [{"value": [0.1]}]}, 1, "'values'"),
        ({}, 1, "'embeddings'"),
    ],
)
def test_unreadable(body: Any, count: int, words: str) -> None:
    with pytest.raises(APIResponseValidationError) as caught:
        ADAPTER.parse_response(GEMINI, ok(body), count)
    assert words in str(caught.value)


def test_bad_key_sent_as_400_is_an_authentication_error() -> None:
    body = _google_error(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"},
    )
    with pytest.raises(AuthenticationError) as caught:
        ADAPTER.parse_response(GEMINI, failed(400, body), 1)
    assert caught.value.fatal
    assert_keyless(caught.value)


def test_rate_limit_waits_for_retry_info() -> None:
    body = _google_error(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota.",
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"},
    )
    with pytest.raises(RateLimitError) as caught:
        ADAPTER.parse_response(GEMINI, failed(429, body), 1)
    assert caught.value.retry_after == 13.0
    assert caught.value.retryable


def test_spent_daily_quota_is_fatal() -> None:
    body = _google_error(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota.",
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaId": "EmbedContentRequestsPerDayPerProjectPerModel-FreeTier"}],
        },
    )
    with pytest.raises(QuotaExhaustedError) as caught:
        ADAPTER.parse_response(GEMINI, failed(429, body), 1)
    assert caught.value.fatal and not caught.value.retryable


def test_bad_request_and_server_error() -> None:
    body = _google_error(
        400,
        "INVALID_ARGUMENT",
        "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n",
    )
    with pytest.raises(BadRequestError) as caught:
        ADAPTER.parse_response(GEMINI, failed(400, body), 1)
    assert "at most 100 requests" in str(caught.value)
    with pytest.raises(InternalServerError):
        ADAPTER.parse_response(
            GEMINI, failed(503, _google_error(503, "UNAVAILABLE", "overloaded")), 1
        )


def test_no_rate_limit_headers() -> None:
    assert ADAPTER.rate_limit_info({"x-ratelimit-remaining-requests": "5"}).empty
