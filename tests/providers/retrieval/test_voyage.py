"""The Voyage embeddings and rerank adapters against the documented payloads."""

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
from lm_deluge_cli.providers.retrieval import EmbedOptions, VoyageEmbedAdapter, VoyageRerankAdapter

from .support import KEY, assert_keyless, embed_endpoint, failed, ok, rerank_endpoint, sent

EMBED = VoyageEmbedAdapter()
RERANK = VoyageRerankAdapter()
VOYAGE = embed_endpoint("voyage-3.5")
RERANKER = rerank_endpoint("rerank-2.5")

EMBED_RESPONSE: dict[str, Any] = {
    "object": "list",
    "data": [
        {"object": "embedding", "embedding": [0.0156, -0.0412, 0.0087], "index": 0},
        {"object": "embedding", "embedding": [0.0223, 0.0311, -0.0149], "index": 1},
    ],
    "model": "voyage-3.5",
    "usage": {"total_tokens": 10},
}
RERANK_RESPONSE: dict[str, Any] = {
    "object": "list",
    "data": [
        {"relevance_score": 0.4375, "index": 1},
        {"relevance_score": 0.421875, "index": 0},
        {"relevance_score": 0.0234375, "index": 2},
    ],
    "model": "rerank-2.5",
    "usage": {"total_tokens": 26},
}


def test_embed_request() -> None:
    request = EMBED.build_request(VOYAGE, ["I like cats", "I also like dogs"], EmbedOptions(), 4.0)
    assert request.url == "https://api.voyageai.com/v1/embeddings"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    # input_type is left at Voyage's null unless asked for.
    assert sent(request) == {"model": "voyage-3.5", "input": ["I like cats", "I also like dogs"]}


def test_embed_input_type_and_output_dimension() -> None:
    body = sent(
        EMBED.build_request(VOYAGE, ["q"], EmbedOptions(dimensions=256, input_type="query"), 4.0)
    )
    assert body["input_type"] == "query"
    assert body["output_dimension"] == 256
    body = sent(EMBED.build_request(VOYAGE, ["d"], EmbedOptions(input_type="document"), 4.0))
    assert body["input_type"] == "document"


def test_embed_response() -> None:
    batch = EMBED.parse_response(VOYAGE, ok(EMBED_RESPONSE), 2)
    assert batch.vectors == [[0.0156, -0.0412, 0.0087], [0.0223, 0.0311, -0.0149]]
    assert batch.input_tokens == 10


def test_rerank_request_asks_for_every_score_and_no_documents() -> None:
    documents = ["Sun", "Moon", "Stars"]
    request = RERANK.build_request(RERANKER, "What lights the day?", documents, 4.0)
    assert request.url == "https://api.voyageai.com/v1/rerank"
    assert sent(request) == {
        "model": "rerank-2.5",
        "query": "What lights the day?",
        "documents": documents,
        "top_k": 3,
        "return_documents": False,
    }


def test_rerank_response() -> None:
    batch = RERANK.parse_response(RERANKER, ok(RERANK_RESPONSE), 3)
    assert batch.scores == [(0, 0.421875), (1, 0.4375), (2, 0.0234375)]
    assert batch.input_tokens == 26
    assert batch.search_units is None


@pytest.mark.parametrize(
    ("adapter", "target", "body", "count"),
    [
        (EMBED, VOYAGE, EMBED_RESPONSE, 3),
        (EMBED, VOYAGE, {**EMBED_RESPONSE, "usage": [10]}, 2),
        (RERANK, RERANKER, RERANK_RESPONSE, 4),
        (RERANK, RERANKER, b'{"data": [{"index": 0, "relevance_score": 1e999}]}', 1),
        (RERANK, RERANKER, {"results": RERANK_RESPONSE["data"]}, 3),
    ],
)
def test_unreadable(adapter: Any, target: Any, body: Any, count: int) -> None:
    with pytest.raises(APIResponseValidationError) as caught:
        adapter.parse_response(target, ok(body), count)
    assert caught.value.retryable


@pytest.mark.parametrize("adapter", [EMBED, RERANK])
def test_bad_key_is_fatal_and_redacted(adapter: Any) -> None:
    body = {"detail": f"Provided API key is invalid: {KEY}"}
    with pytest.raises(AuthenticationError) as caught:
        adapter.parse_response(VOYAGE, failed(401, body), 1)
    assert "Provided API key is invalid" in str(caught.value)
    assert_keyless(caught.value)


def test_rate_limit_and_errors() -> None:
    body = {"detail": "You have exceeded the rate limit. Please slow down."}
    with pytest.raises(RateLimitError) as caught:
        EMBED.parse_response(VOYAGE, failed(429, body, {"retry-after": "5"}), 1)
    assert caught.value.retry_after == 5.0
    assert "exceeded the rate limit" in str(caught.value)
    with pytest.raises(BadRequestError):
        RERANK.parse_response(
            RERANKER, failed(400, {"detail": "The number of documents exceeds 1000."}), 1
        )
    with pytest.raises(InternalServerError):
        RERANK.parse_response(RERANKER, failed(502, b"Bad Gateway"), 1)
    assert EMBED.rate_limit_info({}).empty
