"""The OpenAI embeddings adapter against the documented `POST /v1/embeddings` payloads."""

from __future__ import annotations

from typing import Any

import pytest

from lm_deluge_cli.errors import (
    APIResponseValidationError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
)
from lm_deluge_cli.providers.retrieval import EmbedOptions, OpenAIEmbedAdapter

from .support import KEY, assert_keyless, embed_endpoint, failed, ok, sent

ADAPTER = OpenAIEmbedAdapter()
SMALL = embed_endpoint("text-embedding-3-small")

# The API reference's example response, with two inputs.
RESPONSE: dict[str, Any] = {
    "object": "list",
    "data": [
        {"object": "embedding", "embedding": [0.0023064255, -0.009327292, 0.015797347], "index": 0},
        {"object": "embedding", "embedding": [-0.0028842222, 0.0097723, -0.01542], "index": 1},
    ],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 8, "total_tokens": 8},
}


def test_request_is_the_documented_shape() -> None:
    request = ADAPTER.build_request(SMALL, ["hello", "world"], EmbedOptions(), 12.0)
    assert request.method == "POST"
    assert request.url == "https://api.openai.com/v1/embeddings"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.timeout == 12.0
    # encoding_format is left at its float default; input_type means nothing to OpenAI.
    assert sent(request) == {"model": "text-embedding-3-small", "input": ["hello", "world"]}
    assert KEY not in repr(request)


def test_dimensions_and_input_type() -> None:
    options = EmbedOptions(dimensions=512, input_type="query")
    assert sent(ADAPTER.build_request(SMALL, ["q"], options, 5.0))["dimensions"] == 512


def test_fixed_size_model_is_not_sent_dimensions() -> None:
    # ada-002 rejects the parameter outright, even with its own size.
    ada = embed_endpoint("text-embedding-ada-002")
    body = sent(ADAPTER.build_request(ada, ["x"], EmbedOptions(dimensions=1536), 5.0))
    assert "dimensions" not in body


def test_compatible_server_with_an_unknown_model() -> None:
    local = embed_endpoint(
        "openai:nomic-embed-text", key=None, base_url="http://localhost:11434/v1/"
    )
    request = ADAPTER.build_request(local, ["x"], EmbedOptions(dimensions=256), 5.0)
    assert request.url == "http://localhost:11434/v1/embeddings"
    assert "authorization" not in request.headers
    assert sent(request) == {"model": "nomic-embed-text", "input": ["x"], "dimensions": 256}


def test_documented_response() -> None:
    batch = ADAPTER.parse_response(SMALL, ok(RESPONSE), 2)
    assert batch.vectors == [
        [0.0023064255, -0.009327292, 0.015797347],
        [-0.0028842222, 0.0097723, -0.01542],
    ]
    assert batch.input_tokens == 8


def test_vectors_come_back_in_input_order() -> None:
    shuffled = {**RESPONSE, "data": list(reversed(RESPONSE["data"]))}
    batch = ADAPTER.parse_response(SMALL, ok(shuffled), 2)
    assert batch.vectors[0][0] == 0.0023064255


def test_missing_usage_and_integer_components() -> None:
    # Compatible servers may leave usage out and write whole numbers as integers.
    body = {"data": [{"index": 0, "embedding": [1, 0, 0.5]}]}
    batch = ADAPTER.parse_response(SMALL, ok(body), 1)
    assert batch.vectors == [[1.0, 0.0, 0.5]]
    assert all(type(x) is float for x in batch.vectors[0])
    assert batch.input_tokens is None


TWO = [{"index": 0, "embedding": [0.1]}, {"index": 1, "embedding": [0.2]}]


@pytest.mark.parametrize(
    ("body", "count", "words"),
    [
        (b"not json", 1, "JSONDecodeError"),
        ([1, 2], 1, "not an object"),
        ({"object": "list"}, 1, "'data'"),
        (RESPONSE, 3, "2 embeddings for 3 texts"),
        ({"data": [{"index": 5, "embedding": [0.1]}]}, 1, "out of range"),
        ({"data": [TWO[0], TWO[0]]}, 2, "twice"),
        ({"data": [TWO[0], {"index": 1, "embedding": [0.2, 0.3]}]}, 2, "size"),
        ({"data": [{"index": 0, "embedding": ["0.1"]}]}, 1, "other than numbers"),
        ({"data": [{"index": 0, "embedding": []}]}, 1, "non-empty"),
        ({"data": [{"index": True, "embedding": [0.1]}]}, 1, "not an integer"),
    ],
)
def test_unreadable_2xx_is_a_validation_error(body: Any, count: int, words: str) -> None:
    with pytest.raises(APIResponseValidationError) as caught:
        ADAPTER.parse_response(SMALL, ok(body), count)
    assert words in str(caught.value)
    assert caught.value.retryable
    assert_keyless(caught.value)


def test_bad_key_is_fatal_and_redacted() -> None:
    body = {
        "error": {
            "message": f"Incorrect API key provided: {KEY}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    with pytest.raises(AuthenticationError) as caught:
        ADAPTER.parse_response(SMALL, failed(401, body), 1)
    assert caught.value.fatal and not caught.value.retryable
    assert caught.value.code == "invalid_api_key"
    assert_keyless(caught.value)


def test_rate_limit_waits_as_told() -> None:
    body = {
        "error": {
            "message": "Rate limit reached for text-embedding-3-small on tokens per min (TPM).",
            "type": "tokens",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    with pytest.raises(RateLimitError) as caught:
        ADAPTER.parse_response(SMALL, failed(429, body, {"retry-after": "20"}), 1)
    assert caught.value.retry_after == 20.0
    assert caught.value.retryable


def test_rate_limit_wait_from_reset_headers() -> None:
    headers = {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"}
    with pytest.raises(RateLimitError) as caught:
        ADAPTER.parse_response(SMALL, failed(429, {"error": {"message": "slow down"}}, headers), 1)
    assert caught.value.retry_after == 360.0


def test_bad_request() -> None:
    body = {
        "error": {
            "message": "This model does not support specifying dimensions.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    with pytest.raises(BadRequestError) as caught:
        ADAPTER.parse_response(SMALL, failed(400, body), 1)
    assert "does not support specifying dimensions" in str(caught.value)
    assert not caught.value.retryable


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried(status: int) -> None:
    with pytest.raises(InternalServerError) as caught:
        ADAPTER.parse_response(SMALL, failed(status, b"<html><body>Bad Gateway</body></html>"), 1)
    assert caught.value.retryable


def test_rate_limit_headers() -> None:
    info = ADAPTER.rate_limit_info(
        {
            "x-ratelimit-limit-requests": "3000",
            "x-ratelimit-remaining-requests": "2999",
            "x-ratelimit-limit-tokens": "1000000",
            "x-ratelimit-remaining-tokens": "999990",
            "x-ratelimit-reset-tokens": "1ms",
        }
    )
    assert info.limit_requests == 3000
    assert info.remaining_tokens == 999990
    assert info.reset_tokens_s == pytest.approx(0.001)
