"""Endpoints + limits → the model slots, limiters and transports one run shares."""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from lm_deluge_cli.config import AUTO, Limits, ModelEntry, Rate
from lm_deluge_cli.engine.budget import SpendCap, check_priced
from lm_deluge_cli.engine.fit import check_answers
from lm_deluge_cli.engine.learning import LimitLearner
from lm_deluge_cli.engine.limiter import RateLimiter
from lm_deluge_cli.engine.limiter_chain import Limiter, LimiterChain
from lm_deluge_cli.engine.limiter_values import RUN_LIMITER
from lm_deluge_cli.engine.line_plan import ModelSlot
from lm_deluge_cli.engine.requester import Requester
from lm_deluge_cli.engine.reuse import Reuse
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.engine.warmup import PrefixGate
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.providers import Endpoint, adapter_for, max_output_tokens
from lm_deluge_cli.providers.base_url import is_mock_url
from lm_deluge_cli.redaction import redact_url
from lm_deluge_cli.transport import Transport, make_transport
from lm_deluge_cli.types import PromptCache, RequestDefaults, SamplingParams

if TYPE_CHECKING:
    from lm_deluge_cli.engine.shared_limiter import SharedRateLimiter

__all__ = [
    "Transports",
    "build_requester",
    "model_limits",
    "run_limiter_for",
]

log = logging.getLogger(__name__)


class Transports:
    """What each model sends through, chosen by its base URL's scheme: ``mock://`` is answered
    in-process by a simulator of its own (its entry's ``mock`` settings), whatever its
    provider; any other URL goes through the one network transport the run's models share,
    made when first needed and closed with `stack`."""

    def __init__(self, max_connections: int, stack: AsyncExitStack) -> None:
        self._max_connections = max_connections
        self._stack = stack
        self._network: Transport | None = None

    def for_model(self, entry: ModelEntry, base_url: str, wire_id: str) -> Transport:
        """The transport of `entry`, resolved to `base_url` and the model id `wire_id`."""
        if is_mock_url(base_url):
            # Imported here: a run that sends over the network never loads the simulator.
            from lm_deluge_cli.mock.transport import mock_transport

            return mock_transport(entry.mock, wire_id)
        if self._network is None:
            self._network = make_transport(self._max_connections)
            self._stack.push_async_callback(self._network.aclose)
        return self._network


def _fixed(rate: Rate) -> float | None:
    """A limiter's starting rate: an AUTO dimension is unlimited until it is learned."""
    return None if isinstance(rate, str) else rate


def _own_rate(entry_rate: Rate, run_rate: Rate) -> Rate:
    """A model's own limit: the entry's, else AUTO when the run's is (headers are per model)."""
    if entry_rate is not None:
        return entry_rate
    return run_rate if run_rate == AUTO else None


async def _shared(
    url: str, key: str, requests: float | None, tokens: float | None
) -> SharedRateLimiter:
    try:
        from lm_deluge_cli.engine.shared_limiter import SharedRateLimiter
    except ImportError as exc:
        raise ConfigError(
            f"the shared limiter at {redact_url(url)} needs the redis package: "
            "pip install 'lm-deluge-cli[redis]'"
        ) from exc
    return await SharedRateLimiter.connect(
        url, key=key, requests_per_minute=requests, tokens_per_minute=tokens, name=RUN_LIMITER
    )


async def run_limiter_for(
    limits: Limits,
    stack: AsyncExitStack,
    shared_limiter: str | None = None,
    shared_limiter_key: str = "default",
) -> Limiter:
    """The run-wide limiter: this process's own, or the budget shared through Redis."""
    run_requests = _fixed(limits.max_requests_per_minute)
    run_tokens = _fixed(limits.max_tokens_per_minute)
    if shared_limiter is None:
        return RateLimiter(run_requests, run_tokens, name=RUN_LIMITER)
    shared = await _shared(shared_limiter, shared_limiter_key, run_requests, run_tokens)
    stack.push_async_callback(shared.aclose)
    return shared


def model_limits(
    entry: ModelEntry, limits: Limits, run_limiter: Limiter, single: bool, stats: RunStats
) -> tuple[LimiterChain, tuple[bool, ...], LimitLearner | None]:
    """One model's limiters (its own, if it has limits, then the run's), which of them its
    rate-limit headers describe, and the learner of its "auto" limits. `stats` snapshots
    read every limiter (to say which one holds the run back)."""
    requests = _own_rate(entry.max_requests_per_minute, limits.max_requests_per_minute)
    tokens = _own_rate(entry.max_tokens_per_minute, limits.max_tokens_per_minute)
    stats.watch(run_limiter)
    if requests is None and tokens is None:
        return LimiterChain(run_limiter), (single,), None
    own = RateLimiter(_fixed(requests), _fixed(tokens), name=entry.name)
    stats.watch(own)
    learner: LimitLearner | None = None
    if AUTO in (requests, tokens):
        learner = LimitLearner(
            own, model=entry.name, requests=requests, tokens=tokens, learned=stats.learned_limits
        )
    return LimiterChain(own, run_limiter), (True, single), learner


async def build_requester(
    entries: Sequence[ModelEntry],
    endpoints: Sequence[Endpoint],
    limits: Limits,
    sampling: SamplingParams,
    *,
    retry_other_model: bool,
    stats: RunStats,
    stack: AsyncExitStack,
    rng: random.Random | None = None,
    reuse: Reuse | None = None,
    shared_limiter: str | None = None,
    shared_limiter_key: str = "default",
    defaults: RequestDefaults | None = None,
    prompt_cache: PromptCache | None = None,
    dedupe: bool = True,
    warmup_s: float = 0.0,
) -> Requester:
    """Everything the run sends through; transports close when `stack` does.

    A run-wide "auto" limit becomes each model's own learned limit, since a provider's
    headers describe one model's budget; the run itself is then not limited in that
    dimension. With `limits.max_cost` every model must have a price (ConfigError); the
    job's max_new_tokens must fit some model's context window (ConfigError).
    With `shared_limiter` (a Redis URL) the run's limits are one budget shared with
    every process given the same URL and `shared_limiter_key` (see shared_limiter.py).
    `defaults` (tools, tool choice, prompt cache key) go to lines without their own,
    `prompt_cache` places every model's prompt-cache breakpoints, and `dedupe` False sends
    identical lines as requests of their own. `warmup_s` > 0 lets the first request for
    each cached prefix go alone, the others waiting up to that long (engine/warmup.py).
    """
    # An answer longer than a model's context window is refused by its provider: with no
    # model able to give one, nothing is sent; the lines of one that cannot go to the others.
    asked = [
        (e.name, e.model, max_output_tokens(e, sampling.merged(e.sampling_overrides)))
        for e in endpoints
    ]
    for problem in check_answers(asked):
        log.warning(
            "%s; its lines go to the job's other models (lines naming it are refused)", problem
        )
    budget: SpendCap | None = None
    if limits.max_cost is not None:
        check_priced(endpoints)
        budget = SpendCap(limits.max_cost)
        stats.max_cost_usd = limits.max_cost
        stats.spend_cap = budget
    stats.max_concurrent_requests = limits.max_concurrent_requests
    transports = Transports(limits.max_concurrent_requests, stack)
    run_limiter = await run_limiter_for(limits, stack, shared_limiter, shared_limiter_key)
    # With one model, the provider's rate-limit headers describe the run's budget too.
    single = len(entries) == 1
    slots = []
    for entry, endpoint in zip(entries, endpoints, strict=True):
        if prompt_cache is not None:
            endpoint = dataclasses.replace(endpoint, prompt_cache=prompt_cache)
        transport = transports.for_model(entry, endpoint.base_url, endpoint.model.wire_id)
        chain, describes, learner = model_limits(entry, limits, run_limiter, single, stats)
        slots.append(
            ModelSlot(
                endpoint=endpoint,
                adapter=adapter_for(endpoint.wire_format),
                transport=transport,
                weight=entry.weight,
                sampling=sampling.merged(endpoint.sampling_overrides),
                limits=chain,
                headers_describe=describes,
                learner=learner,
            )
        )
    return Requester(
        slots,
        max_concurrent_requests=limits.max_concurrent_requests,
        max_attempts=limits.max_attempts,
        request_timeout=limits.request_timeout,
        retry_other_model=retry_other_model,
        stats=stats,
        rng=rng,
        budget=budget,
        reuse=reuse,
        defaults=defaults,
        dedupe=dedupe,
        warmup=PrefixGate(warmup_s) if warmup_s > 0 else None,
    )
