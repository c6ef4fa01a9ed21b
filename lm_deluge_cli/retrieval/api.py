"""The Python API: `embed_parallel_async` and `rerank_parallel_async`, as the original library
named them, running through the same engine as `lm-deluge embed` and `lm-deluge rerank`."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio

from lm_deluge_cli import config
from lm_deluge_cli.cache.base import Cache
from lm_deluge_cli.config import CacheConfig, Job, Limits, ModelEntry
from lm_deluge_cli.engine.reuse import Reuse
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.errors import ConfigError, InvalidValueError, NotRunError
from lm_deluge_cli.io.records import Record
from lm_deluge_cli.io.text_lines import Document, QueryItem, TextItem
from lm_deluge_cli.providers.retrieval import resolve_embedding_endpoint, resolve_rerank_endpoint
from lm_deluge_cli.retrieval.embed import EmbedSettings, build_embedder
from lm_deluge_cli.retrieval.rerank import RerankSettings, build_ranker
from lm_deluge_cli.retrieval.stages import stages_engine
from lm_deluge_cli.runner import Engine, run_in_memory

__all__ = [
    "EmbeddingResult",
    "RerankResult",
    "embed_parallel_async",
    "embed_parallel_sync",
    "rerank_parallel_async",
    "stack_results",
]

# The original library's defaults for these functions.
DEFAULT_EMBED_MODEL = "text-embedding-3-small"
DEFAULT_RERANK_MODEL = "rerank-english-v3.0"


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    """One text's vector (None on failure), with the fields of an `embed` record."""

    index: int
    text: str
    embedding: list[float] | None
    status: str
    model: str | None
    error: dict[str, Any] | None = None
    input_tokens: int | None = None
    cost_usd: float | None = None
    cached: bool = False

    @property
    def is_error(self) -> bool:
        return self.status != "ok"


@dataclass(frozen=True, slots=True)
class RerankResult:
    """One query's documents, best first; the original's field names are kept."""

    index: int
    query: str
    documents: list[str]
    status: str
    model: str | None
    # (document index, relevance score), best first; the top `top_k` only.
    results: list[tuple[int, float]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    cost_usd: float | None = None

    @property
    def is_error(self) -> bool:
        return self.status != "ok"

    @property
    def top_k_indices(self) -> list[int]:
        return [index for index, _ in self.results]

    @property
    def top_k_scores(self) -> list[float]:
        return [score for _, score in self.results]

    @property
    def ranked_documents(self) -> list[str]:
        return [self.documents[index] for index in self.top_k_indices]


def stack_results(results: Sequence[EmbeddingResult]) -> list[list[float]]:
    """The vectors in order; ValueError naming the first failure if any text failed."""
    vectors = []
    for result in results:
        if result.embedding is None:
            message = (result.error or {}).get("message", "no embedding")
            raise ValueError(f"text {result.index} has no embedding: {message}")
        vectors.append(result.embedding)
    return vectors


def _job(
    model: str,
    *,
    base_url: str | None,
    api_key_env: str | None,
    max_requests_per_minute: float | None,
    max_tokens_per_minute: float | None,
    max_concurrent_requests: int,
    max_attempts: int,
    request_timeout: float,
    cache: str | Cache | None,
) -> Job:
    # Limits and ModelEntry check these as they do a job file's, naming the same arguments.
    limits = Limits(
        max_requests_per_minute=max_requests_per_minute or None,
        max_tokens_per_minute=max_tokens_per_minute or None,
        max_concurrent_requests=max_concurrent_requests,
        max_attempts=max_attempts,
        request_timeout=request_timeout,
    )
    try:
        entry = ModelEntry(name=model, base_url=base_url, api_key_env=api_key_env)
    except InvalidValueError as exc:
        if exc.field != "name":
            raise
        raise exc.at("model") from None
    return Job(
        input="-", output="-", models=(entry,), limits=limits, cache=CacheConfig.given(cache)
    )


async def embed_parallel_async(
    texts: Sequence[str],
    model: str = DEFAULT_EMBED_MODEL,
    *,
    max_attempts: int = config.DEFAULT_MAX_ATTEMPTS,
    max_requests_per_minute: float | None = config.DEFAULT_MAX_REQUESTS_PER_MINUTE,
    max_tokens_per_minute: float | None = 1_000_000,
    max_concurrent_requests: int = config.DEFAULT_MAX_CONCURRENT_REQUESTS,
    request_timeout: float = config.DEFAULT_REQUEST_TIMEOUT_S,
    batch_size: int | None = None,
    dimensions: int | None = None,
    input_type: str | None = None,
    show_progress: bool = False,
    cache: str | Cache | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
) -> list[EmbeddingResult]:
    """Embed `texts` (one result per text, in order) within the given limits.

    Texts are batched up to the model's limits (or `batch_size`); identical texts share
    one slot; with `cache` (a spec as for `LLMClient`, or a Cache object) vectors seen
    before cost nothing. Failures are results with ``embedding=None`` and an ``error``.
    """
    job = _job(
        model,
        base_url=base_url,
        api_key_env=api_key_env,
        max_requests_per_minute=max_requests_per_minute,
        max_tokens_per_minute=max_tokens_per_minute,
        max_concurrent_requests=max_concurrent_requests,
        max_attempts=max_attempts,
        request_timeout=request_timeout,
        cache=cache,
    )
    endpoint = resolve_embedding_endpoint(model, base_url=base_url, api_key_env=api_key_env)
    settings = EmbedSettings(dimensions=dimensions, input_type=input_type, batch_size=batch_size)

    async def source() -> AsyncIterator[TextItem]:
        for index, text in enumerate(texts):
            yield TextItem(index, index + 1, text)

    async def build(stats: RunStats, stack: AsyncExitStack, reuse: Reuse) -> Engine:
        embedder = await build_embedder([endpoint], settings, job, stats, stack, reuse)
        return stages_engine(embedder, stats)

    records = await run_in_memory(
        job.cache, source(), len(texts), build, show_progress=show_progress
    )
    return [_embedding(i, text, records[i]) for i, text in enumerate(texts)]


def embed_parallel_sync(
    texts: Sequence[str], model: str = DEFAULT_EMBED_MODEL, **kwargs: Any
) -> list[EmbeddingResult]:
    """`embed_parallel_async` for code that is not async."""
    return anyio.run(functools.partial(embed_parallel_async, texts, model, **kwargs))


def _embedding(index: int, text: str, record: Record | None) -> EmbeddingResult:
    if record is None:
        error = {"type": NotRunError.type, "message": "the run stopped before this text was sent"}
        return EmbeddingResult(index, text, None, "error", None, error)
    usage = record.get("usage") or {}
    return EmbeddingResult(
        index=index,
        text=text,
        embedding=record.get("embedding"),
        status=record["status"],
        model=record.get("model"),
        error=record.get("error"),
        input_tokens=usage.get("input_tokens"),
        cost_usd=record.get("cost_usd"),
        cached=bool(record.get("cached")),
    )


async def rerank_parallel_async(
    queries: Sequence[str],
    documents: Sequence[str] | Sequence[Sequence[str]],
    model: str = DEFAULT_RERANK_MODEL,
    *,
    top_k: int | None = 3,
    max_attempts: int = config.DEFAULT_MAX_ATTEMPTS,
    max_requests_per_minute: float | None = config.DEFAULT_MAX_REQUESTS_PER_MINUTE,
    max_tokens_per_minute: float | None = None,
    max_concurrent_requests: int = config.DEFAULT_MAX_CONCURRENT_REQUESTS,
    request_timeout: float = config.DEFAULT_REQUEST_TIMEOUT_S,
    show_progress: bool = False,
    cache: str | Cache | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
) -> list[RerankResult]:
    """Rank documents for each query (one result per query, in order), best first.

    `documents` is one list per query, or one list of strings shared by every query.
    Each result keeps the `top_k` best (None: all), as ``top_k_indices``/``top_k_scores``.
    """
    per_query = _documents_per_query(queries, documents)
    job = _job(
        model,
        base_url=base_url,
        api_key_env=api_key_env,
        max_requests_per_minute=max_requests_per_minute,
        max_tokens_per_minute=max_tokens_per_minute,
        max_concurrent_requests=max_concurrent_requests,
        max_attempts=max_attempts,
        request_timeout=request_timeout,
        cache=cache,
    )
    endpoint = resolve_rerank_endpoint(model, base_url=base_url, api_key_env=api_key_env)

    async def source() -> AsyncIterator[QueryItem]:
        for index, (query, docs) in enumerate(zip(queries, per_query, strict=True)):
            items = tuple(Document(i, text) for i, text in enumerate(docs))
            yield QueryItem(index, index + 1, query, items)

    async def build(stats: RunStats, stack: AsyncExitStack, reuse: Reuse) -> Engine:
        settings = RerankSettings(top_n=top_k)
        ranker = await build_ranker([endpoint], settings, job, stats, stack, reuse)
        return stages_engine(ranker, stats)

    records = await run_in_memory(
        job.cache, source(), len(queries), build, show_progress=show_progress
    )
    return [
        _ranking(i, query, list(docs), records[i])
        for i, (query, docs) in enumerate(zip(queries, per_query, strict=True))
    ]


def _documents_per_query(
    queries: Sequence[str], documents: Sequence[str] | Sequence[Sequence[str]]
) -> list[Sequence[str]]:
    if all(isinstance(d, str) for d in documents):
        shared = [d for d in documents if isinstance(d, str)]
        return [shared] * len(queries)
    if len(documents) != len(queries):
        raise ConfigError(
            f"got {len(queries)} queries but {len(documents)} document lists: give one list "
            "per query, or one list of strings for all of them"
        )
    lists: list[Sequence[str]] = []
    for docs in documents:
        if isinstance(docs, str):
            raise ConfigError("documents mixes strings and lists; give one or the other")
        lists.append(docs)
    return lists


def _ranking(index: int, query: str, documents: list[str], record: Record | None) -> RerankResult:
    if record is None:
        error = {"type": NotRunError.type, "message": "the run stopped before this query was sent"}
        return RerankResult(index, query, documents, "error", None, error=error)
    results = [(r["index"], r["relevance_score"]) for r in record.get("results") or []]
    return RerankResult(
        index=index,
        query=query,
        documents=documents,
        status=record["status"],
        model=record.get("model"),
        results=results,
        error=record.get("error"),
        cost_usd=record.get("cost_usd"),
    )
