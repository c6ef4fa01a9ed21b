"""`lm-deluge embed`: texts → vectors, many texts per request, within the run's limits.

Each input line ``{"id", "text"}`` becomes one record with its ``embedding``. Texts are
batched up to the model's limits (inputs and tokens per request); the cache is keyed by
(provider, model, dimensions, input type, text), so a rerun, or another input holding
the same texts, embeds nothing twice; identical texts in one run share one slot of a
request. Records are appended as each batch answers, so a killed run resumes by id.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, ClassVar

import anyio

from lm_deluge_cli.config import Job
from lm_deluge_cli.engine.pipeline import Batch, BatchLimits
from lm_deluge_cli.engine.reuse import Reuse
from lm_deluge_cli.engine.sender import RequestFailedError, Sender
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.io.records import INVALID_INPUT, Record
from lm_deluge_cli.io.text_lines import TextItem, parse_text_line
from lm_deluge_cli.progress import ProgressView
from lm_deluge_cli.providers.retrieval import (
    EmbedAdapter,
    EmbedBatch,
    EmbeddingModel,
    EmbedOptions,
    RetrievalEndpoint,
    embed_adapter_for,
)
from lm_deluge_cli.retrieval.keys import embed_key
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

__all__ = ["EmbedSettings", "build_embedder", "run_embed"]

COST_DECIMALS = 10


@dataclass(frozen=True, slots=True)
class EmbedSettings:
    """What `embed` adds to a job: the vector size, the input type and a batch size cap."""

    dimensions: int | None = None
    input_type: str | None = None  # "document" | "query"
    batch_size: int | None = None  # at most the model's own limit


def _share(total: int, weights: list[int]) -> list[int]:
    """`total` split in proportion to `weights` (largest remainder), summing to `total`."""
    whole = sum(weights)
    if whole <= 0:
        return [0] * len(weights)
    exact = [total * w / whole for w in weights]
    shares = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: exact[i] - shares[i], reverse=True)
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


class Embedder(RetrievalStages[TextItem, tuple[str, TextItem]]):
    """Turns text items into records: cache, identical texts, batches, requests."""

    null_fields: ClassVar[Mapping[str, Any]] = {"embedding": None, "dimensions": None}

    def __init__(
        self,
        endpoint: RetrievalEndpoint,
        options: EmbedOptions,
        sender: Sender[RetrievalRoute],
        reuse: Reuse,
        stats: RunStats,
        request_timeout: float,
        limits: BatchLimits,
    ) -> None:
        assert isinstance(endpoint.model, EmbeddingModel)
        super().__init__(limits, sender, request_timeout)
        self.endpoint = endpoint
        self.model: EmbeddingModel = endpoint.model
        self.adapter: EmbedAdapter = embed_adapter_for(endpoint.provider.embed_format)
        self.options = options
        self.reuse = reuse
        self.stats = stats
        # Texts batched or in flight, by key: the items waiting for each one's vector.
        self.waiting: dict[str, list[TextItem]] = {}

    def record(self, item: TextItem, embedding: list[float] | None, **fields: Any) -> Record:
        """One text's record (`fields` as `retrieval_record` takes them)."""
        own = {"embedding": embedding, "dimensions": None if embedding is None else len(embedding)}
        name = self.endpoint.name
        return retrieval_record(item.id, item.line, name, own, metadata=item.metadata, **fields)

    def admit(self, item: TextItem) -> Record | tuple[tuple[str, TextItem], int] | None:
        key = embed_key(self.endpoint, self.options, item.text)
        if key in self.waiting:
            self.waiting[key].append(item)
            return None
        tokens = estimate_text_tokens(item.text)
        limit = self.model.max_input_tokens
        if limit is not None and tokens > limit:
            return self.record(
                item,
                None,
                error={
                    "type": INVALID_INPUT,
                    "message": f"line {item.line}: the text has about {tokens:,} tokens; "
                    f"{self.model.id} takes at most {limit:,} per text (shorten or split it)",
                    "status_code": None,
                },
            )
        self.waiting[key] = [item]
        return (key, item), tokens

    def left(self, work: Batch[tuple[str, TextItem]]) -> None:
        for key, _ in work.items:
            self.waiting.pop(key, None)

    def failed(
        self, batch: Batch[tuple[str, TextItem]], error: dict[str, Any], attempts: int
    ) -> list[Record]:
        return [
            self.record(item, None, attempts=attempts, error=error)
            for key, _ in batch.items
            for item in self.waiting.pop(key, [])
        ]

    async def send(self, work: Batch[tuple[str, TextItem]]) -> list[Record]:
        """The batch's records: vectors from the cache (one read for the batch), and from
        one request for the rest, if any."""
        hits, batch = await self._from_cache(work)
        if not batch.items:
            return hits
        return hits + await self._request(batch)

    async def _from_cache(
        self, batch: Batch[tuple[str, TextItem]]
    ) -> tuple[list[Record], Batch[tuple[str, TextItem]]]:
        """The records of the texts the cache holds, and the batch of the others."""
        cache, policy = self.reuse.cache, self.reuse.policy
        if cache is None or not policy.read:
            return [], batch
        stored = await cache.get_many_decoded([key for key, _ in batch.items], _decode_vector)
        records: list[Record] = []
        misses: Batch[tuple[str, TextItem]] = Batch()
        for entry, tokens, hit in zip(batch.items, batch.tokens, stored, strict=True):
            if hit is None:
                misses.add(entry, tokens)
                continue
            vector, used = hit
            for item in self.waiting.pop(entry[0], []):
                self.stats.cached += 1
                records.append(
                    self.record(item, vector, input_tokens=used, cost_usd=0.0, cached=True)
                )
        return records, misses

    async def _request(self, batch: Batch[tuple[str, TextItem]]) -> list[Record]:
        texts = [item.text for _, item in batch.items]
        estimate = batch.total_tokens
        try:
            sent = await self.sender.send(_Embedding(self, texts, estimate), self.sender.pick())
        except RequestFailedError as failed:
            return self.failed(batch, error_fields(failed.error), failed.attempts)
        except BaseException:
            self.left(batch)
            raise
        return await self._records(batch, sent.value, sent.attempts, sent.latency_s)

    async def _records(
        self, batch: Batch[tuple[str, TextItem]], answer: EmbedBatch, attempts: int, latency: float
    ) -> list[Record]:
        estimated = answer.input_tokens is None
        total = batch.total_tokens if estimated else int(answer.input_tokens or 0)
        shares = _share(total, batch.tokens)
        self.stats.input_tokens += total
        cost = self.model.cost(total)
        if cost is None:
            self.stats.cost_known = False
        else:
            self.stats.cost_usd += cost
        cache, policy = self.reuse.cache, self.reuse.policy
        records: list[Record] = []
        stored: list[tuple[str, bytes]] = []
        for (key, _), vector, tokens in zip(batch.items, answer.vectors, shares, strict=True):
            item_cost = None if cost is None or not total else round(cost * tokens / total, 10)
            waiting = self.waiting.pop(key, [])
            for n, item in enumerate(waiting):
                if n:
                    self.stats.deduplicated += 1
                records.append(
                    self.record(
                        item,
                        vector,
                        input_tokens=tokens,
                        estimated=estimated,
                        cost_usd=item_cost if n == 0 else 0.0,
                        attempts=attempts if n == 0 else 0,
                        latency_s=latency if n == 0 else 0.0,
                        deduplicated=n > 0,
                    )
                )
            stored.append((key, _encode_vector(vector, tokens)))
        if cache is not None and policy.write:
            # One write for the batch: a transaction per vector would bound the run.
            await cache.set_many(stored, policy.ttl_s)
        return records


# A stored vector: this tag, the input tokens (uint32, little-endian), then the floats as
# little-endian float64: exact, and decoded without a per-number check.
_VECTOR_TAG = b"vec1"
_HEADER = struct.Struct("<4sI")


class _Embedding(BatchExchange[EmbedBatch]):
    """One batch of texts as an exchange of the sender."""

    __slots__ = ("embedder", "texts")

    def __init__(self, embedder: Embedder, texts: list[str], estimate: int) -> None:
        super().__init__(estimate)
        self.embedder = embedder
        self.texts = texts

    def request(self, route: RetrievalRoute) -> HttpRequest:
        embedder = self.embedder
        return embedder.adapter.build_request(
            route.endpoint, self.texts, embedder.options, embedder.request_timeout
        )

    def read(self, route: RetrievalRoute, response: HttpResponse) -> EmbedBatch:
        return self.embedder.adapter.parse_response(route.endpoint, response, len(self.texts))

    def price(self, tokens: int, answer: EmbedBatch | None) -> float | None:
        return self.embedder.model.cost(tokens)


def _encode_vector(vector: list[float], tokens: int) -> bytes:
    floats = array("d", vector)
    if sys.byteorder != "little":
        floats.byteswap()
    return _HEADER.pack(_VECTOR_TAG, tokens) + floats.tobytes()


def _decode_vector(raw: bytes) -> tuple[list[float], int]:
    tag, tokens = _HEADER.unpack_from(raw)
    body = memoryview(raw)[_HEADER.size :]
    if tag != _VECTOR_TAG or not body or len(body) % 8:
        raise ValueError("not a stored vector")
    floats = array("d")
    floats.frombytes(body)
    if sys.byteorder != "little":
        floats.byteswap()
    return floats.tolist(), tokens


def embed_options(endpoint: RetrievalEndpoint, settings: EmbedSettings) -> EmbedOptions:
    """The options sent, checked against what the model takes (ConfigError otherwise)."""
    assert isinstance(endpoint.model, EmbeddingModel)
    if settings.dimensions is not None:
        endpoint.model.check_dimensions(settings.dimensions)
    if settings.input_type not in (None, "document", "query"):
        raise ConfigError(f"input type must be document or query, got {settings.input_type!r}")
    if settings.batch_size is not None and settings.batch_size < 1:
        raise ConfigError(f"batch size must be a positive integer, got {settings.batch_size}")
    return EmbedOptions(dimensions=settings.dimensions, input_type=settings.input_type)


def batch_limits(model: EmbeddingModel, batch_size: int | None) -> BatchLimits:
    size = model.max_batch_inputs if batch_size is None else min(batch_size, model.max_batch_inputs)
    return BatchLimits(size, model.max_batch_tokens)


async def build_embedder(
    endpoints: Sequence[RetrievalEndpoint],
    settings: EmbedSettings,
    job: Job,
    stats: RunStats,
    stack: AsyncExitStack,
    reuse: Reuse,
) -> Embedder:
    """The embed stages for the job's models (one model, maybe at several keys or base
    URLs), with their sender; shared by the CLI and Python."""
    endpoint = endpoints[0]
    assert isinstance(endpoint.model, EmbeddingModel)
    options = embed_options(endpoint, settings)
    adapter = embed_adapter_for(endpoint.provider.embed_format)
    sender = await build_sender(job, endpoints, adapter.rate_limit_info, stats, stack)
    limits = batch_limits(endpoint.model, settings.batch_size)
    timeout = job.limits.request_timeout
    return Embedder(endpoint, options, sender, reuse, stats, timeout, limits)


async def run_embed(
    job: Job,
    settings: EmbedSettings,
    *,
    fresh: bool = False,
    view: ProgressView | None = None,
    stop: anyio.Event | None = None,
    manifest: dict[str, Any] | None = None,
) -> JobReport:
    """Embed every line of the job's input into its output; rerun to resume."""
    endpoints = job_endpoints(job, "embed")
    endpoint = endpoints[0]
    # A bad option, or a cap the model's price cannot hold, fails before the output is touched.
    embed_options(endpoint, settings)
    check_cap(job, endpoint)

    async def build(stats: RunStats, stack: AsyncExitStack, reuse: Reuse) -> Engine:
        embedder = await build_embedder(endpoints, settings, job, stats, stack, reuse)
        return stages_engine(embedder, stats, stop=stop)

    return await run_command(
        job, build, parse=parse_text_line, fresh=fresh, view=view, manifest=manifest
    )
