"""The model an embed or rerank run sends to, as a `Route` of the one sender, with its
transport, limits and spending cap; and what every batch request shares as an exchange."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, nullcontext
from dataclasses import dataclass
from typing import Generic, TypeVar

from lm_deluge_cli.config import Job, ModelEntry
from lm_deluge_cli.engine.budget import SpendCap
from lm_deluge_cli.engine.sender import Route, Sender
from lm_deluge_cli.engine.setup import Transports, model_limits, run_limiter_for
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.engine.warmup import Admission
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.providers.retrieval import EmbeddingModel, RetrievalEndpoint
from lm_deluge_cli.types import RateLimitInfo

__all__ = ["BatchExchange", "RetrievalRoute", "build_sender", "check_cap", "one_model"]

T = TypeVar("T")


@dataclass(slots=True, kw_only=True)
class RetrievalRoute(Route):
    """An embedding or rerank model the run sends to."""

    endpoint: RetrievalEndpoint
    reads_headers: Callable[[Mapping[str, str]], RateLimitInfo]

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def key_variable(self) -> str:
        return self.endpoint.api_key_env

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        return self.reads_headers(headers)


class BatchExchange(Generic[T]):
    """What embedding and rerank requests share as exchanges of the sender: no prompt-cache
    warm-up, and nothing to check once an answer is read."""

    def admit(self, route: RetrievalRoute) -> AbstractAsyncContextManager[Admission]:
        return nullcontext(Admission())

    def check(self, route: RetrievalRoute, answer: T, status: int) -> None:
        return None


def one_model(job: Job, command: str) -> ModelEntry:
    """The job's only model: vectors (or scores) of different models cannot be mixed."""
    if len(job.models) != 1:
        names = ", ".join(m.name for m in job.models)
        raise ConfigError(
            f"{command} takes exactly one model (-m), got {len(job.models)}: {names}; "
            "vectors and scores from different models cannot be compared"
        )
    return job.models[0]


def check_cap(job: Job, endpoint: RetrievalEndpoint) -> None:
    """Raise ConfigError when the job has a spending cap and the model has no price."""
    if job.limits.max_cost is None:
        return
    model = endpoint.model
    priced = model.cost(1) if isinstance(model, EmbeddingModel) else model.cost(1, 1)
    if priced is None:
        raise ConfigError(
            f"max_cost (--max-cost) cannot be enforced: the price of {endpoint.name} is not "
            "known (`lm-deluge models` lists the models with prices); drop the cap or use "
            "a priced model"
        )


async def build_sender(
    job: Job,
    endpoint: RetrievalEndpoint,
    rate_limit_info: Callable[[Mapping[str, str]], RateLimitInfo],
    stats: RunStats,
    stack: AsyncExitStack,
) -> Sender[RetrievalRoute]:
    """A sender within the job's limits and spending cap; the transport closes with
    `stack`. What earlier runs on the output spent (stats.earlier_cost_usd) counts."""
    entry = job.models[0]
    limits = job.limits
    budget: SpendCap | None = None
    if limits.max_cost is not None:
        check_cap(job, endpoint)
        budget = SpendCap(limits.max_cost)
        budget.carry_over(stats.earlier_cost_usd)
        stats.max_cost_usd = limits.max_cost
        stats.spend_cap = budget
    stats.max_concurrent_requests = limits.max_concurrent_requests
    transports = Transports(limits.max_concurrent_requests, stack)
    transport = transports.for_model(entry, endpoint.base_url, endpoint.model.wire_id)
    run_limiter = await run_limiter_for(limits, stack, limits.limiter, limits.limiter_key)
    chain, describes, learner = model_limits(entry, limits, run_limiter, True, stats)
    route = RetrievalRoute(
        endpoint=endpoint,
        reads_headers=rate_limit_info,
        transport=transport,
        limits=chain,
        headers_describe=describes,
        learner=learner,
    )
    return Sender(
        [route],
        max_concurrent_requests=limits.max_concurrent_requests,
        max_attempts=limits.max_attempts,
        stats=stats,
        budget=budget,
    )
