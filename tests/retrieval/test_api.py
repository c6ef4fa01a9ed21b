"""The Python API: `embed_parallel_async`, `stack_results` and `rerank_parallel_async`, with
the original library's field names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.mock.wire import embedding_vector, relevance_score
from lm_deluge_cli.retrieval.api import (
    EmbeddingResult,
    embed_parallel_async,
    embed_parallel_sync,
    rerank_parallel_async,
    stack_results,
)
from tests.faults.support import KEY
from tests.loopback import Loopback


def test_embed_results_come_back_in_order() -> None:
    texts = [f"sentence {i}" for i in range(250)] + ["sentence 3"]
    results = anyio.run(
        lambda: embed_parallel_async(texts, model="mock:embed", dimensions=8, batch_size=40)
    )
    assert [r.index for r in results] == list(range(len(texts)))
    for result, text in zip(results, texts, strict=True):
        assert not result.is_error and result.text == text
        assert result.embedding == embedding_vector("embed", text, 8)
    vectors = stack_results(results)
    assert len(vectors) == len(texts) and all(len(v) == 8 for v in vectors)
    assert vectors[-1] == vectors[3]


def test_embed_sync_with_a_cache_serves_the_second_call(tmp_path: Path) -> None:
    texts = ["alpha", "beta", "gamma"]
    cache = str(tmp_path / "cache")
    first = embed_parallel_sync(texts, "mock:embed", dimensions=8, cache=cache)
    second = embed_parallel_sync(texts, "mock:embed", dimensions=8, cache=cache)
    assert not any(r.cached for r in first)
    assert all(r.cached for r in second)
    assert stack_results(first) == stack_results(second)


def test_stack_results_names_the_failed_index() -> None:
    ok = EmbeddingResult(0, "a", [0.1, 0.2], "ok", "mock:embed")
    failed = EmbeddingResult(
        1, "b", None, "error", "mock:embed", {"type": "server_error", "message": "boom"}
    )
    with pytest.raises(ValueError, match=r"text 1 has no embedding: boom"):
        stack_results([ok, failed])


def test_failed_texts_are_results_and_stack_results_names_the_first(
    loopback: Callable[..., Loopback], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = loopback(faults={"500": 1.0})
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    texts = ["first", "second"]
    results = anyio.run(
        lambda: embed_parallel_async(
            texts,
            model="openai:text-embedding-3-small",
            dimensions=8,
            max_attempts=1,
            base_url=server.url,
        )
    )
    assert [r.is_error for r in results] == [True, True]
    assert all(r.error is not None and r.error["status_code"] == 500 for r in results)
    with pytest.raises(ValueError, match=r"^text 0 has no embedding"):
        stack_results(results)


DOCS = [f"document {i} about subject {i % 4}" for i in range(9)]


def expected_top(query: str, docs: list[str], k: int) -> list[int]:
    order = sorted(range(len(docs)), key=lambda i: (-relevance_score("rerank", query, docs[i]), i))
    return order[:k]


def test_rerank_with_one_shared_document_list() -> None:
    queries = ["subject 1", "subject 2", "subject 3"]
    results = anyio.run(lambda: rerank_parallel_async(queries, DOCS, model="mock:rerank", top_k=2))
    assert [r.index for r in results] == [0, 1, 2]
    for result, query in zip(results, queries, strict=True):
        assert not result.is_error and result.query == query
        top = expected_top(query, DOCS, 2)
        assert result.top_k_indices == top
        assert result.top_k_scores == [relevance_score("rerank", query, DOCS[i]) for i in top]
        assert result.ranked_documents == [DOCS[i] for i in top]


def test_rerank_with_a_document_list_per_query() -> None:
    queries = ["subject 0", "subject 3"]
    lists = [DOCS[:5], DOCS[4:]]
    results = anyio.run(lambda: rerank_parallel_async(queries, lists, model="mock:rerank", top_k=2))
    for result, query, docs in zip(results, queries, lists, strict=True):
        assert result.documents == docs
        assert result.top_k_indices == expected_top(query, docs, 2)
        assert result.ranked_documents == [docs[i] for i in result.top_k_indices]


def test_rerank_top_k_none_keeps_every_document() -> None:
    results = anyio.run(
        lambda: rerank_parallel_async(["subject 2"], DOCS, model="mock:rerank", top_k=None)
    )
    assert sorted(results[0].top_k_indices) == list(range(len(DOCS)))


def test_rerank_refuses_a_document_list_count_unlike_the_queries() -> None:
    with pytest.raises(ConfigError, match="2 queries but 3 document lists"):
        anyio.run(
            lambda: rerank_parallel_async(["a", "b"], [["x"], ["y"], ["z"]], model="mock:rerank")
        )


def test_bad_limits_and_arguments_are_named_as_in_a_job() -> None:
    with pytest.raises(ConfigError, match=r"^max_attempts must be a positive integer, got 0$"):
        embed_parallel_sync(["a"], "mock:embed", max_attempts=0)
    with pytest.raises(ConfigError, match=r"^request_timeout must be a positive number"):
        anyio.run(lambda: rerank_parallel_async(["a"], ["x"], "mock:rerank", request_timeout=0))
    with pytest.raises(ConfigError, match=r"^model is required"):
        embed_parallel_sync(["a"], "")
    with pytest.raises(ConfigError, match=r"^cache must be an object with async get and set"):
        embed_parallel_sync(["a"], "mock:embed", cache=42)
