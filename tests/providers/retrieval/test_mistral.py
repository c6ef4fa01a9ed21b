"""The Mistral embeddings adapter against the documented `POST /v1/embeddings` payloads."""

from __future__ import annotations

from typing import Any

import pytest

from lm_deluge_cli.errors import (
    APIResponseValidationError,
    AuthenticationError,
    InternalServerError,
    RateLimitError,
    UnprocessableEntityError,
)
from lm_deluge_cli.providers.retrieval import EmbedOptions, MistralEmbedAdapter

from .support import KEY, assert_keyless, embed_endpoint, failed, ok, sent

ADAPTER = MistralEmbedAdapter()
EMBED = embed_endpoint("mistral-embed")
CODESTRAL = embed_endpoint("mistral:codestral-embed")

# The API reference's 200 example.
RESPONSE: dict[str, Any] = {
    "data": [
        {
            "embedding": [-0.016632080078125, 0.0701904296875, 0.03143310546875],
            "index": 0,
            "object": "embedding",
        },
        {
            "embedding": [-0.0230560302734375, 0.039337158203125, 0.0521240234375],
            "index": 1,
            "object": "embedding",
        },
    ],
    "model": "mistral-embed",
    "object": "list",
    "usage": {
        "prompt_tokens": 15,
        "completion_tokens": 0,
        "total_tokens": 15,
        "prompt_audio_seconds": None,
    },
}


def test_request() -> None:
    request = ADAPTER.build_request(
        EMBED, ["Embed this sentence.", "As well as this one."], EmbedOptions(), 6.0
    )
    assert request.url == "https://api.mistral.ai/v1/embeddings"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert sent(request) == {
        "model": "mistral-embed",
        "input": ["Embed this sentence.", "As well as this one."],
    }


def test_output_dimension_where_supported() -> None:
    options = EmbedOptions(dimensions=512, input_type="query")
    assert sent(ADAPTER.build_request(CODESTRAL, ["x"], options, 6.0)) == {
        "model": "codestral-embed",
        "input": ["x"],
        "output_dimension": 512,
    }
    assert "output_dimension" not in sent(
        ADAPTER.build_request(EMBED, ["x"], EmbedOptions(dimensions=1024), 6.0)
    )


def test_documented_response() -> None:
    batch = ADAPTER.parse_response(EMBED, ok(RESPONSE), 2)
    assert batch.vectors[1] == [-0.0230560302734375, 0.039337158203125, 0.0521240234375]
    assert batch.input_tokens == 15


@pytest.mark.parametrize(("body", "count"), [(RESPONSE, 1), ({"data": None}, 1), (b"", 1)])
def test_unreadable(body: Any, count: int) -> None:
    with pytest.raises(APIResponseValidationError):
        ADAPTER.parse_response(EMBED, ok(body), count)


def test_unauthorized_is_fatal_and_redacted() -> None:
    body = {"message": f"Unauthorized {KEY}", "request_id": "9b1c2d3e"}
    with pytest.raises(AuthenticationError) as caught:
        ADAPTER.parse_response(EMBED, failed(401, body), 2)
    assert caught.value.fatal
    assert_keyless(caught.value)


def test_rate_limit() -> None:
    body = {
        "object": "error",
        "message": "Requests rate limit exceeded",
        "type": "rate_limited",
        "code": "1300",
    }
    with pytest.raises(RateLimitError) as caught:
        ADAPTER.parse_response(EMBED, failed(429, body, {"retry-after": "2"}), 2)
    assert caught.value.retry_after == 2.0
    assert caught.value.code == "rate_limited"


def test_validation_error_and_server_error() -> None:
    body = {
        "object": "error",
        "message": "Input is too long.",
        "type": "invalid_request_error",
        "code": "3210",
    }
    with pytest.raises(UnprocessableEntityError):
        ADAPTER.parse_response(EMBED, failed(422, body), 2)
    with pytest.raises(InternalServerError):
        ADAPTER.parse_response(EMBED, failed(500, {"message": "Internal error"}), 2)


def test_rate_limit_headers() -> None:
    info = ADAPTER.rate_limit_info(
        {
            "x-ratelimit-limit-tokens-minute": "2000000",
            "x-ratelimit-remaining-tokens-minute": "1999985",
        }
    )
    assert info.limit_tokens == 2000000
    assert info.remaining_tokens == 1999985
