"""The model an embed or rerank run sends to, as a `Route` of the one sender, with its
transport, limits and spending cap; and what every batch request shares as an exchange."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, nullcontext
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

from lm_deluge_cli.config import Job
from lm_deluge_cli.engine.budget import SpendCap, refuse_unpriced
from lm_deluge_cli.engine.sender import EndpointRoute, Outgoing, Sender
from lm_deluge_cli.engine.setup import Transports, model_limits, run_limiter_for
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.engine.warmup import Admission
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.providers.retrieval import (
    EmbeddingModel,
    RetrievalEndpoint,
    load_retrieval_registry,
    resolve_embedding_endpoint,
    resolve_rerank_endpoint,
)
from lm_deluge_cli.types import HttpRequest, RateLimitInfo

__all__ = [
    "BatchExchange",
    "RetrievalRoute",
    "build_sender",
    "check_cap",
    "job_endpoints",
]


@dataclass(slots=True, kw_only=True)
class RetrievalRoute(EndpointRoute):
    """An embedding or rerank model the run sends to."""

    endpoint: RetrievalEndpoint
    reads_headers: Callable[[Mapping[str, str]], RateLimitInfo]

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        return self.reads_headers(headers)


class Counted(Protocol):
    """An answer that may report the input tokens it was billed for."""

    @property
    def input_tokens(self) -> int | None: ...


A = TypeVar("A", bound=Counted)


class BatchExchange(Generic[A]):
    """What embedding and rerank requests share as exchanges of the sender: the limiter is
    charged our count of the input (`estimate`), replaced by the provider's where it
    reports one; the spending cap reserves that count's price; no prompt-cache warm-up,
    and nothing to check once an answer is read. A subclass says how to build the request
    (`request`), read the answer (`read`) and price it (`price`)."""

    __slots__ = ("estimate",)

    def __init__(self, estimate: int) -> None:
        self.estimate = estimate

    def request(self, route: RetrievalRoute) -> HttpRequest:
        raise NotImplementedError

    def price(self, tokens: int, answer: A | None) -> float | None:
        """What `tokens` of input cost, with what `answer` reports (None: before it)."""
        raise NotImplementedError

    def outgoing(self, route: RetrievalRoute, attempt: int) -> Outgoing:
        return Outgoing(self.request(route), self.estimate)

    def worst_cost(self, route: RetrievalRoute) -> float:
        return self.price(self.estimate, None) or 0.0

    def admit(self, route: RetrievalRoute) -> AbstractAsyncContextManager[Admission]:
        return nullcontext(Admission())

    def cost(self, route: RetrievalRoute, answer: A) -> float | None:
        used = answer.input_tokens
        return self.price(self.estimate if used is None else used, answer)

    def used_tokens(self, route: RetrievalRoute, answer: A) -> int:
        return answer.input_tokens or 0

    def check(self, route: RetrievalRoute, answer: A, status: int) -> None:
        return None


def job_endpoints(job: Job, command: Literal["embed", "rerank"]) -> list[RetrievalEndpoint]:
    """Each of the job's models resolved, their keys found.

    Vectors (or scores) of different models cannot be mixed, so the models must be one
    model, listed again only to fail over to another key, base URL or limits.
    """
    registry = load_retrieval_registry()
    model_of = registry.embedding_model if command == "embed" else registry.rerank_model
    if len({model_of(entry.name).id for entry in job.models}) > 1:
        names = ", ".join(m.name for m in job.models)
        raise ConfigError(
            f"{command} takes exactly one model (-m), listed again only to fail over to "
            f"another key, base URL or limits; got {len(job.models)}: {names}; vectors and "
            "scores from different models cannot be compared"
        )
    resolve = resolve_embedding_endpoint if command == "embed" else resolve_rerank_endpoint
    return [
        resolve(entry.name, base_url=entry.base_url, api_key_env=entry.api_key_env)
        for entry in job.models
    ]


def check_cap(job: Job, endpoint: RetrievalEndpoint) -> None:
    """Raise ConfigError when the job has a spending cap and the model has no price."""
    if job.limits.max_cost is None:
        return
    model = endpoint.model
    priced = model.cost(1) if isinstance(model, EmbeddingModel) else model.cost(1, 1)
    refuse_unpriced([endpoint.name] if priced is None else [])


async def build_sender(
    job: Job,
    endpoints: Sequence[RetrievalEndpoint],
    rate_limit_info: Callable[[Mapping[str, str]], RateLimitInfo],
    stats: RunStats,
    stack: AsyncExitStack,
) -> Sender[RetrievalRoute]:
    """A sender to the job's models (`endpoints`, one per entry of job.models), within the
    job's limits and spending cap; the transports close with `stack`. (What earlier runs
    on the output spent is carried over by runner.run_command.)"""
    limits = job.limits
    budget: SpendCap | None = None
    if limits.max_cost is not None:
        check_cap(job, endpoints[0])
        budget = SpendCap(limits.max_cost)
        stats.max_cost_usd = limits.max_cost
        stats.spend_cap = budget
    stats.max_concurrent_requests = limits.max_concurrent_requests
    transports = Transports(limits.max_concurrent_requests, stack)
    run_limiter = await run_limiter_for(limits, stack, limits.limiter, limits.limiter_key)
    # With one model, the provider's rate-limit headers describe the run's budget too.
    single = len(endpoints) == 1
    routes = []
    for entry, endpoint in zip(job.models, endpoints, strict=True):
        transport = transports.for_model(entry, endpoint.base_url, endpoint.model.wire_id)
        chain, describes, learner = model_limits(entry, limits, run_limiter, single, stats)
        routes.append(
            RetrievalRoute(
                endpoint=endpoint,
                reads_headers=rate_limit_info,
                transport=transport,
                limits=chain,
                headers_describe=describes,
                weight=entry.weight,
                learner=learner,
            )
        )
    return Sender(
        routes,
        max_concurrent_requests=limits.max_concurrent_requests,
        max_attempts=limits.max_attempts,
        stats=stats,
        budget=budget,
    )
