"""The Cohere v2 embed and rerank adapters against the documented payloads."""

from __future__ import annotations

from typing import Any

import pytest

from lm_deluge_cli.errors import (
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
)
from lm_deluge_cli.providers.retrieval import (
    CohereEmbedAdapter,
    CohereRerankAdapter,
    EmbedOptions,
)

from .support import KEY, assert_keyless, embed_endpoint, failed, ok, rerank_endpoint, sent

EMBED = CohereEmbedAdapter()
RERANK = CohereRerankAdapter()
V4 = embed_endpoint("cohere:embed-v4.0")
V3 = embed_endpoint("embed-english-v3.0")
RERANK_V35 = rerank_endpoint("cohere:rerank-v3.5")

# The Embed API (v2) reference's response, for two texts.
EMBED_RESPONSE: dict[str, Any] = {
    "id": "da6e531f-54c6-4a73-bf92-f60566d8d753",
    "embeddings": {"float": [[0.016296387, -0.008354187, -0.04699707], [-0.04, 0.02, 0.01]]},
    "texts": ["hello", "goodbye"],
    "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 2}},
    "response_type": "embeddings_by_type",
}
DOCUMENTS = [
    "Carson City is the capital city of the American state of Nevada.",
    "The Commonwealth of the Northern Mariana Islands is a group of islands in the Pacific.",
    "Capitalization or capitalisation in English grammar is the use of a capital letter.",
    "Washington, D.C. is the capital of the United States. It is a federal district.",
    "Capital punishment has existed in the United States since before it was a country.",
]
# The Rerank API (v2) reference's response, with every document's result (top_n = 5).
RERANK_RESPONSE: dict[str, Any] = {
    "results": [
        {"index": 3, "relevance_score": 0.999071},
        {"index": 4, "relevance_score": 0.7867867},
        {"index": 0, "relevance_score": 0.32713068},
        {"index": 1, "relevance_score": 0.1867867},
        {"index": 2, "relevance_score": 0.0006471644},
    ],
    "id": "07734bd2-2473-4f07-94e1-0d9f0e6843cf",
    "meta": {
        "api_version": {"version": "2", "is_experimental": False},
        "billed_units": {"search_units": 1},
    },
}


def test_embed_request_asks_for_floats_and_documents_by_default() -> None:
    request = EMBED.build_request(V3, ["hello", "goodbye"], EmbedOptions(), 9.0)
    assert request.url == "https://api.cohere.com/v2/embed"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    # Embed v3 and later require input_type.
    assert sent(request) == {
        "model": "embed-english-v3.0",
        "texts": ["hello", "goodbye"],
        "input_type": "search_document",
        "embedding_types": ["float"],
    }


@pytest.mark.parametrize(
    ("ours", "theirs"), [("document", "search_document"), ("query", "search_query")]
)
def test_input_types(ours: str, theirs: str) -> None:
    body = sent(EMBED.build_request(V4, ["x"], EmbedOptions(input_type=ours), 9.0))
    assert body["input_type"] == theirs


def test_output_dimension_for_embed_v4_only() -> None:
    options = EmbedOptions(dimensions=512)
    assert sent(EMBED.build_request(V4, ["x"], options, 9.0))["output_dimension"] == 512
    assert "output_dimension" not in sent(
        EMBED.build_request(V3, ["x"], EmbedOptions(dimensions=1024), 9.0)
    )


def test_embed_documented_response() -> None:
    batch = EMBED.parse_response(V4, ok(EMBED_RESPONSE), 2)
    assert batch.vectors[0] == [0.016296387, -0.008354187, -0.04699707]
    assert len(batch.vectors) == 2
    assert batch.input_tokens == 2


def test_embed_without_meta_has_unknown_usage() -> None:
    body = {"embeddings": {"float": [[0.5, 0.25]]}}
    assert EMBED.parse_response(V4, ok(body), 1).input_tokens is None


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"embeddings": [[0.1]], "meta": {}}, "not an object of embedding types"),
        ({"embeddings": {"int8": [[1]]}}, "'float'"),
        (EMBED_RESPONSE, "2 embeddings for 3 texts"),
        ({"embeddings": {"float": [[0.1]]}, "meta": {"billed_units": "2"}}, "billed_units"),
    ],
)
def test_embed_unreadable(body: Any, words: str) -> None:
    with pytest.raises(APIResponseValidationError) as caught:
        EMBED.parse_response(V4, ok(body), 3 if body is EMBED_RESPONSE else 1)
    assert words in str(caught.value)


def test_rerank_request_scores_every_document() -> None:
    request = RERANK.build_request(
        RERANK_V35, "What is the capital of the United States?", DOCUMENTS, 7.0
    )
    assert request.url == "https://api.cohere.com/v2/rerank"
    assert sent(request) == {
        "model": "rerank-v3.5",
        "query": "What is the capital of the United States?",
        "documents": DOCUMENTS,
        "top_n": 5,
    }


def test_rerank_documented_response_by_index() -> None:
    batch = RERANK.parse_response(RERANK_V35, ok(RERANK_RESPONSE), 5)
    assert [index for index, _ in batch.scores] == [0, 1, 2, 3, 4]
    assert dict(batch.scores)[3] == 0.999071
    assert batch.search_units == 1
    assert batch.input_tokens is None


@pytest.mark.parametrize(
    ("results", "words"),
    [
        (RERANK_RESPONSE["results"][:3], "3 scores for 5 documents"),
        ([*RERANK_RESPONSE["results"][:4], {"index": 5, "relevance_score": 0.1}], "out of range"),
        ([*RERANK_RESPONSE["results"][:4], {"index": 3, "relevance_score": 0.1}], "twice"),
        (
            [*RERANK_RESPONSE["results"][:4], {"index": 2, "relevance_score": "high"}],
            "not a number",
        ),
        ([*RERANK_RESPONSE["results"][:4], {"index": 2}], "'relevance_score'"),
    ],
)
def test_rerank_unreadable(results: list[Any], words: str) -> None:
    with pytest.raises(APIResponseValidationError) as caught:
        RERANK.parse_response(RERANK_V35, ok({**RERANK_RESPONSE, "results": results}), 5)
    assert words in str(caught.value)
    assert caught.value.retryable


@pytest.mark.parametrize("adapter", [EMBED, RERANK])
def test_bad_token_is_fatal_and_redacted(adapter: Any) -> None:
    body = {"id": "8a1f7a43-8d1c-4b4c-8c63-6f58b7b7b7b7", "message": f"invalid api token {KEY}"}
    with pytest.raises(AuthenticationError) as caught:
        adapter.parse_response(V4, failed(401, body), 1)
    assert caught.value.fatal
    assert_keyless(caught.value)


def test_trial_rate_limit_waits_as_told() -> None:
    body = {
        "id": "6c7d2f0e-1b2a-4c3d-9e8f-0a1b2c3d4e5f",
        "message": "You are using a Trial key, which is limited to 10 API calls / minute.",
    }
    headers = {
        "retry-after": "30",
        "x-trial-endpoint-call-limit": "10",
        "x-trial-endpoint-call-remaining": "0",
    }
    with pytest.raises(RateLimitError) as caught:
        RERANK.parse_response(RERANK_V35, failed(429, body, headers), 5)
    assert caught.value.retry_after == 30.0
    info = RERANK.rate_limit_info(headers)
    assert (info.limit_requests, info.remaining_requests) == (10, 0)


def test_bad_request_and_billing() -> None:
    with pytest.raises(BadRequestError) as caught:
        EMBED.parse_response(
            V4, failed(400, {"message": "invalid request: input_type is required"}), 1
        )
    assert "input_type is required" in str(caught.value)
    # 402: the billing limit is reached; no retry will help.
    with pytest.raises(APIStatusError) as billing:
        EMBED.parse_response(V4, failed(402, {"message": "Please add a payment method"}), 1)
    assert billing.value.fatal and not billing.value.retryable


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors(status: int) -> None:
    with pytest.raises(InternalServerError) as caught:
        RERANK.parse_response(RERANK_V35, failed(status, {"message": "internal server error"}), 5)
    assert caught.value.retryable
