"""The one model an embed or rerank run sends to, with its transport and limits."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack

from lm_deluge_cli.config import Job, ModelEntry
from lm_deluge_cli.engine.batch_sender import BatchSender
from lm_deluge_cli.engine.setup import Transports, model_limits, run_limiter_for
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.providers.retrieval import RetrievalEndpoint
from lm_deluge_cli.types import RateLimitInfo

__all__ = ["build_sender", "one_model"]


def one_model(job: Job, command: str) -> ModelEntry:
    """The job's only model: vectors (or scores) of different models cannot be mixed."""
    if len(job.models) != 1:
        names = ", ".join(m.name for m in job.models)
        raise ConfigError(
            f"{command} takes exactly one model (-m), got {len(job.models)}: {names}; "
            "vectors and scores from different models cannot be compared"
        )
    if job.limits.max_cost is not None:
        raise ConfigError(
            f"{command} does not take a spending cap (max_cost) yet: remove it from the job "
            "file; the summary and every record still report the cost"
        )
    return job.models[0]


async def build_sender(
    job: Job,
    endpoint: RetrievalEndpoint,
    rate_limit_info: Callable[[Mapping[str, str]], RateLimitInfo],
    stats: RunStats,
    stack: AsyncExitStack,
) -> BatchSender:
    """A sender within the job's limits; the transport closes with `stack`."""
    entry, limits = job.models[0], job.limits
    transports = Transports(limits.max_concurrent_requests, stack)
    transport = transports.for_model(entry, endpoint.base_url, endpoint.model.wire_id)
    run_limiter = await run_limiter_for(limits, stack, limits.limiter, limits.limiter_key)
    chain, describes, learner = model_limits(entry, limits, run_limiter, True, stats)
    return BatchSender(
        model=endpoint.name,
        api_key_env=endpoint.api_key_env,
        transport=transport,
        limits=chain,
        headers_describe=describes,
        rate_limit_info=rate_limit_info,
        max_concurrent_requests=limits.max_concurrent_requests,
        max_attempts=limits.max_attempts,
        stats=stats,
        learner=learner,
    )
