"""The Jina rerank adapter against the documented `POST /v1/rerank` payloads."""

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
from lm_deluge_cli.providers.retrieval import JinaRerankAdapter

from .support import KEY, assert_keyless, failed, ok, rerank_endpoint, sent

ADAPTER = JinaRerankAdapter()
JINA = rerank_endpoint("jina-reranker-v2-base-multilingual")
DOCUMENTS = [
    "Organic skincare for sensitive skin with aloe vera and chamomile...",
    "New makeup trends focus on bold colors and innovative techniques...",
    "Bio-Hautpflege für empfindliche Haut mit Aloe Vera und Kamille...",
]
# The documented response shape, with every document scored and none sent back.
RESPONSE: dict[str, Any] = {
    "model": "jina-reranker-v2-base-multilingual",
    "usage": {"total_tokens": 815},
    "results": [
        {"index": 0, "relevance_score": 0.8783142566680908},
        {"index": 2, "relevance_score": 0.7624675869941711},
        {"index": 1, "relevance_score": 0.05},
    ],
}


def test_request_asks_for_every_score_and_no_documents() -> None:
    request = ADAPTER.build_request(
        JINA, "Organic skincare products for sensitive skin", DOCUMENTS, 3.0
    )
    assert request.url == "https://api.jina.ai/v1/rerank"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert sent(request) == {
        "model": "jina-reranker-v2-base-multilingual",
        "query": "Organic skincare products for sensitive skin",
        "documents": DOCUMENTS,
        "top_n": 3,
        "return_documents": False,
    }


def test_response() -> None:
    batch = ADAPTER.parse_response(JINA, ok(RESPONSE), 3)
    assert batch.scores == [(0, 0.8783142566680908), (1, 0.05), (2, 0.7624675869941711)]
    assert batch.input_tokens == 815
    assert batch.search_units is None


def test_documents_sent_back_anyway_are_ignored() -> None:
    results = [{**r, "document": {"text": DOCUMENTS[r["index"]]}} for r in RESPONSE["results"]]
    batch = ADAPTER.parse_response(JINA, ok({**RESPONSE, "results": results}), 3)
    assert len(batch.scores) == 3


@pytest.mark.parametrize(
    ("body", "count"),
    [
        (RESPONSE, 2),
        ({**RESPONSE, "usage": "815"}, 3),
        ({"results": [{"index": -1, "relevance_score": 0.5}]}, 1),
        (b"<html>oops</html>", 3),
    ],
)
def test_unreadable(body: Any, count: int) -> None:
    with pytest.raises(APIResponseValidationError) as caught:
        ADAPTER.parse_response(JINA, ok(body), count)
    assert_keyless(caught.value)


def test_errors() -> None:
    with pytest.raises(AuthenticationError) as caught:
        ADAPTER.parse_response(JINA, failed(401, {"detail": f"Invalid API key {KEY}"}), 3)
    assert_keyless(caught.value)
    with pytest.raises(RateLimitError) as limited:
        ADAPTER.parse_response(
            JINA, failed(429, {"detail": "Rate limit exceeded"}, {"retry-after": "1"}), 3
        )
    assert limited.value.retry_after == 1.0
    with pytest.raises(UnprocessableEntityError):
        ADAPTER.parse_response(
            JINA, failed(422, {"detail": [{"loc": ["body", "query"], "msg": "field required"}]}), 3
        )
    with pytest.raises(InternalServerError):
        ADAPTER.parse_response(JINA, failed(500, {"detail": "Internal Server Error"}), 3)
    assert ADAPTER.rate_limit_info({}).empty
