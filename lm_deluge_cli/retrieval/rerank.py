"""`lm-deluge rerank`: relevance scores of documents for a query, many documents per request.

Two shapes of input:

* ``--query "…"`` with documents ``{"id", "text"}``, one per line: one record per document
  (``index`` = its 0-based line, ``id``, ``relevance_score``), appended as each batch
  answers; once every document has a record the file is rewritten sorted by score, best
  first, with ``rank`` (errors last). A killed run resumes, then sorts.
* lines ``{"id", "query", "documents": [...]}``: one record per query whose ``results``
  (``index``, ``id``, ``relevance_score``) are sorted best first.

Scores are cached by (provider, model, query, document text): a rerun, or another query
list that repeats pairs, sends nothing for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import orjson

from lm_deluge_cli.config import Job
from lm_deluge_cli.engine.pipeline import Batch, BatchLimits
from lm_deluge_cli.engine.reuse import Reuse
from lm_deluge_cli.engine.sender import RequestFailedError, Sender
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.io.records import Record, encode
from lm_deluge_cli.io.resume import iter_records, record_key
from lm_deluge_cli.io.text_lines import QueryItem, TextItem, parse_query_line, parse_text_line
from lm_deluge_cli.io.writer import ResultWriter
from lm_deluge_cli.progress import ProgressView
from lm_deluge_cli.providers.retrieval import (
    RerankAdapter,
    RerankBatch,
    RerankModel,
    RetrievalEndpoint,
    rerank_adapter_for,
)
from lm_deluge_cli.retrieval.keys import rerank_key
from lm_deluge_cli.retrieval.records import error_fields, retrieval_record
from lm_deluge_cli.retrieval.senders import (
    BatchExchange,
    RetrievalRoute,
    build_sender,
    check_cap,
    job_endpoints,
)
from lm_deluge_cli.retrieval.stages import RetrievalStages, stages_engine
from lm_deluge_cli.runner import Engine, JobReport, run_command
from lm_deluge_cli.tokens import estimate_text_tokens
from lm_deluge_cli.types import HttpRequest, HttpResponse

__all__ = ["RerankSettings", "run_rerank", "sort_ranked"]


# A rerank record's own fields, empty, on the record of a line it could not use.
NULL_FIELDS = {"index": None, "relevance_score": None}


@dataclass(frozen=True, slots=True)
class RerankSettings:
    """What `rerank` adds to a job: one query for a file of documents (None: the input's
    lines carry their own query and documents), and how many results a query keeps."""

    query: str | None = None
    top_n: int | None = None


class Reranker:
    """Scores documents for queries: cache first, then requests of up to the model's size."""

    def __init__(
        self,
        endpoint: RetrievalEndpoint,
        sender: Sender[RetrievalRoute],
        reuse: Reuse,
        stats: RunStats,
        request_timeout: float,
    ) -> None:
        assert isinstance(endpoint.model, RerankModel)
        self.endpoint = endpoint
        self.model: RerankModel = endpoint.model
        self.adapter: RerankAdapter = rerank_adapter_for(endpoint.provider.rerank_format)
        self.sender = sender
        self.reuse = reuse
        self.stats = stats
        self.request_timeout = request_timeout
        # Whether the provider leaves token counts out (Cohere bills search units): then
        # records carry our estimate, marked as such.
        self.tokens_estimated = False

    async def cached(self, query: str, documents: Sequence[str]) -> list[float | None]:
        """Each document's stored score for `query` (None: not stored), in one cache read."""
        cache, policy = self.reuse.cache, self.reuse.policy
        if cache is None or not policy.read:
            return [None] * len(documents)
        keys = [rerank_key(self.endpoint, query, document) for document in documents]
        return await cache.get_many_decoded(keys, _decode_score)

    async def store(self, query: str, documents: Sequence[str], scores: Sequence[float]) -> None:
        """One request's scores, in one cache write."""
        cache, policy = self.reuse.cache, self.reuse.policy
        if cache is not None and policy.write:
            entries = [
                (rerank_key(self.endpoint, query, d), orjson.dumps({"relevance_score": s}))
                for d, s in zip(documents, scores, strict=True)
            ]
            await cache.set_many(entries, policy.ttl_s)

    async def score(
        self, query: str, documents: Sequence[str], tokens: int
    ) -> tuple[list[float], int, float | None, int, float]:
        """One request: each document's score, the input tokens, the cost, the attempts
        and the latency. Raises RequestFailedError (or Halted)."""
        sent = await self.sender.send(_Scoring(self, query, documents, tokens), self.sender.pick())
        answer, cost = sent.value, sent.cost_usd
        scores: list[float] = [math.nan] * len(documents)
        for index, value in answer.scores:
            scores[index] = value
        self.tokens_estimated = answer.input_tokens is None
        used = answer.input_tokens if answer.input_tokens is not None else tokens
        self.stats.input_tokens += used
        if cost is None:
            self.stats.cost_known = False
        else:
            self.stats.cost_usd += cost
        await self.store(query, documents, scores)
        return scores, used, cost, sent.attempts, sent.latency_s


class _Scoring(BatchExchange[RerankBatch]):
    """One query's documents as an exchange of the sender."""

    __slots__ = ("documents", "query", "reranker")

    def __init__(
        self, reranker: Reranker, query: str, documents: Sequence[str], estimate: int
    ) -> None:
        super().__init__(estimate)
        self.reranker = reranker
        self.query = query
        self.documents = documents

    def request(self, route: RetrievalRoute) -> HttpRequest:
        reranker = self.reranker
        return reranker.adapter.build_request(
            route.endpoint, self.query, self.documents, reranker.request_timeout
        )

    def read(self, route: RetrievalRoute, response: HttpResponse) -> RerankBatch:
        return self.reranker.adapter.parse_response(route.endpoint, response, len(self.documents))

    def price(self, tokens: int, answer: RerankBatch | None) -> float | None:
        # The search units billed: as reported, else one per 100 documents where the model
        # is priced by them.
        units = answer.search_units if answer is not None else None
        if units is None and self.reranker.model.per_search_usd is not None:
            units = -(-len(self.documents) // 100)
        return self.reranker.model.cost(tokens, units)


def _decode_score(raw: bytes) -> float:
    value = orjson.loads(raw)["relevance_score"]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError("not a score")
    return float(value)


def _share(total: float | None, n: int) -> float | None:
    return None if total is None else round(total / n, 10)


# -- one query over a file of documents ------------------------------------------------


class DocumentRanker(RetrievalStages[TextItem, TextItem]):
    """``--query`` mode: each document line is one record."""

    null_fields = NULL_FIELDS

    def __init__(self, reranker: Reranker, query: str) -> None:
        limits = BatchLimits(reranker.model.max_batch_documents)
        super().__init__(limits, reranker.sender, reranker.request_timeout)
        self.reranker = reranker
        self.query = query
        self.query_tokens = estimate_text_tokens(query)

    def admit(self, item: TextItem) -> Record | tuple[TextItem, int] | None:
        return item, self.query_tokens + estimate_text_tokens(item.text)

    def failed(self, batch: Batch[TextItem], error: dict[str, Any], attempts: int) -> list[Record]:
        return [
            self.record(item, None, None, None, attempts, 0.0, error=error) for item in batch.items
        ]

    def record(
        self,
        item: TextItem,
        score: float | None,
        usage: int | None,
        cost: float | None,
        attempts: int,
        latency_s: float,
        *,
        cached: bool = False,
        error: dict[str, Any] | None = None,
    ) -> Record:
        own = {"index": item.line - 1, "relevance_score": score}
        return retrieval_record(
            item.id,
            item.line,
            self.reranker.endpoint.name,
            own,
            input_tokens=usage,
            estimated=self.reranker.tokens_estimated,
            cost_usd=cost,
            attempts=attempts,
            latency_s=latency_s,
            cached=cached,
            error=error,
            metadata=item.metadata,
        )

    async def send(self, work: Batch[TextItem]) -> list[Record]:
        """The batch's records: scores from the cache (one read for the batch), and from one
        request for the rest, if any."""
        stored = await self.reranker.cached(self.query, [item.text for item in work.items])
        hits: list[Record] = []
        misses: Batch[TextItem] = Batch()
        for item, tokens, score in zip(work.items, work.tokens, stored, strict=True):
            if score is None:
                misses.add(item, tokens)
            else:
                self.reranker.stats.cached += 1
                hits.append(self.record(item, score, None, 0.0, 0, 0.0, cached=True))
        if not misses.items:
            return hits
        return hits + await self._request(misses)

    async def _request(self, batch: Batch[TextItem]) -> list[Record]:
        texts = [item.text for item in batch.items]
        try:
            scores, used, cost, attempts, latency = await self.reranker.score(
                self.query, texts, batch.total_tokens
            )
        except RequestFailedError as failed:
            return self.failed(batch, error_fields(failed.error), failed.attempts)
        n = len(batch.items)
        tokens = [used * t // max(batch.total_tokens, 1) for t in batch.tokens]
        return [
            self.record(item, score, share, _share(cost, n), attempts, latency)
            for item, score, share in zip(batch.items, scores, tokens, strict=True)
        ]


def sort_ranked(path: Path) -> list[bytes]:
    """The output's latest record per document, best score first (then errors), with ranks."""
    latest: dict[str, Record] = {}
    for stored in iter_records(path):
        latest[record_key(stored.record)] = stored.record
    ok = [r for r in latest.values() if r["status"] == "ok"]
    ok.sort(key=lambda r: (-(r.get("relevance_score") or 0.0), r.get("line") or 0))
    failed = sorted(
        (r for r in latest.values() if r["status"] != "ok"), key=lambda r: r.get("line") or 0
    )
    lines = []
    for rank, record in enumerate(ok, start=1):
        lines.append(encode({"rank": rank, **{k: v for k, v in record.items() if k != "rank"}}))
    for record in failed:
        lines.append(encode({"rank": None, **{k: v for k, v in record.items() if k != "rank"}}))
    return lines


# -- many queries, each with its documents -----------------------------------------------


class QueryRanker(RetrievalStages[QueryItem, QueryItem]):
    """Query-lines mode: each line is one record with its sorted results."""

    null_fields = NULL_FIELDS

    def __init__(self, reranker: Reranker, top_n: int | None) -> None:
        # One query a batch: its documents are sent in requests of their own.
        super().__init__(BatchLimits(1), reranker.sender, reranker.request_timeout)
        self.reranker = reranker
        self.top_n = top_n

    def admit(self, item: QueryItem) -> Record | tuple[QueryItem, int] | None:
        tokens = estimate_text_tokens(item.query) * len(item.documents)
        tokens += sum(estimate_text_tokens(d.text) for d in item.documents)
        return item, tokens

    async def send(self, work: Batch[QueryItem]) -> list[Record]:
        return [await self.rank(item) for item in work.items]

    def failed(self, batch: Batch[QueryItem], error: dict[str, Any], attempts: int) -> list[Record]:
        return [self.record(item, None, 0, 0.0, attempts, 0.0, error) for item in batch.items]

    async def rank(self, item: QueryItem) -> Record:
        reranker = self.reranker
        scores = await reranker.cached(item.query, [d.text for d in item.documents])
        missing = [i for i, s in enumerate(scores) if s is None]
        if not missing:
            reranker.stats.cached += 1
        size = reranker.model.max_batch_documents
        query_tokens = estimate_text_tokens(item.query)
        usage = 0
        cost: float | None = 0.0
        attempts = 0
        latency = 0.0
        for start in range(0, len(missing), size):
            chunk = missing[start : start + size]
            texts = [item.documents[i].text for i in chunk]
            tokens = sum(query_tokens + estimate_text_tokens(t) for t in texts)
            try:
                got, used, spent, tries, took = await reranker.score(item.query, texts, tokens)
            except RequestFailedError as failed:
                return self.record(
                    item,
                    None,
                    usage,
                    cost,
                    attempts + failed.attempts,
                    latency,
                    error_fields(failed.error),
                )
            for i, value in zip(chunk, got, strict=True):
                scores[i] = value
            usage += used
            cost = None if cost is None or spent is None else cost + spent
            attempts += tries
            latency += took
        ranked = sorted(range(len(scores)), key=lambda i: (-(scores[i] or 0.0), i))
        results: list[dict[str, Any]] = [
            {"index": i, "id": item.documents[i].id, "relevance_score": scores[i]} for i in ranked
        ]
        if self.top_n is not None:
            results = results[: self.top_n]
        return self.record(item, results, usage, cost, attempts, latency, None)

    def record(
        self,
        item: QueryItem,
        results: list[dict[str, Any]] | None,
        usage: int,
        cost: float | None,
        attempts: int,
        latency_s: float,
        error: dict[str, Any] | None,
    ) -> Record:
        return retrieval_record(
            item.id,
            item.line,
            self.reranker.endpoint.name,
            {"results": results},
            input_tokens=usage if attempts else None,
            estimated=self.reranker.tokens_estimated,
            cost_usd=cost if attempts else 0.0,
            attempts=attempts,
            latency_s=latency_s,
            cached=attempts == 0 and error is None,
            error=error,
            metadata=item.metadata,
        )


# -- running ---------------------------------------------------------------------------


async def build_ranker(
    endpoints: Sequence[RetrievalEndpoint],
    settings: RerankSettings,
    job: Job,
    stats: RunStats,
    stack: AsyncExitStack,
    reuse: Reuse,
) -> DocumentRanker | QueryRanker:
    """The rerank stages for the job's models (one model, maybe at several keys or base
    URLs), with their sender: text items with `settings.query`, else query items; shared
    by the CLI and Python."""
    endpoint = endpoints[0]
    assert isinstance(endpoint.model, RerankModel)
    adapter = rerank_adapter_for(endpoint.provider.rerank_format)
    sender = await build_sender(job, endpoints, adapter.rate_limit_info, stats, stack)
    reranker = Reranker(endpoint, sender, reuse, stats, job.limits.request_timeout)
    if settings.query is not None:
        return DocumentRanker(reranker, settings.query)
    return QueryRanker(reranker, settings.top_n)


def check_settings(settings: RerankSettings) -> None:
    if settings.query is not None and not settings.query.strip():
        raise ConfigError("--query must not be empty")
    if settings.top_n is not None and settings.top_n < 1:
        raise ConfigError(f"--top-n must be a positive integer, got {settings.top_n}")
    if settings.top_n is not None and settings.query is not None:
        raise ConfigError(
            "--top-n applies to query lines; with --query every document gets a record "
            "(take the first N lines of the sorted output instead)"
        )


async def run_rerank(
    job: Job,
    settings: RerankSettings,
    *,
    fresh: bool = False,
    view: ProgressView | None = None,
    stop: anyio.Event | None = None,
    manifest: dict[str, Any] | None = None,
) -> JobReport:
    """Rerank the job's input into its output; rerun to resume (and, with a query, sort)."""
    endpoints = job_endpoints(job, "rerank")
    endpoint = endpoints[0]
    check_settings(settings)
    check_cap(job, endpoint)

    async def build(stats: RunStats, stack: AsyncExitStack, reuse: Reuse) -> Engine:
        ranker = await build_ranker(endpoints, settings, job, stats, stack, reuse)
        return stages_engine(ranker, stats, stop=stop)

    single_query = settings.query is not None
    return await run_command(
        job,
        build,
        parse=parse_text_line if single_query else parse_query_line,
        fresh=fresh,
        view=view,
        manifest=manifest,
        when_complete=_sort_output if single_query else None,
    )


def _sort_output(writer: ResultWriter) -> None:
    """Rewrite the finished output best first (atomically, under the lock)."""
    if writer.path is not None:
        writer.replace_contents(sort_ranked(writer.path))
