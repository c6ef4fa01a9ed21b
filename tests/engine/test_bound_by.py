"""bound_by: which limit held the run back, and by how much, from statistics snapshots."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from lm_deluge_cli.config import Limits, ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoints
from lm_deluge_cli.engine.bound_by import (
    CONCURRENCY,
    COST_CAP,
    PROVIDER,
    REQUESTS,
    TOKENS,
    Bound,
    bound_by,
)
from lm_deluge_cli.engine.chat_stages import run_pipeline
from lm_deluge_cli.engine.learning import FROM_DEFAULT, FROM_HEADERS, LearnedLimits
from lm_deluge_cli.engine.limiter_values import LimiterStats
from lm_deluge_cli.engine.setup import build_requester
from lm_deluge_cli.engine.stats import RunStatistics, RunStats
from lm_deluge_cli.types import Prompt, SamplingParams


def limiter(
    name: str = "run",
    *,
    rpm: float | None = 3000.0,
    tpm: float | None = 100_000.0,
    acquired: int = 100,
    tokens_acquired: int = 52_100,
    requests_s: float = 0.0,
    tokens_s: float = 0.0,
    provider_s: float = 0.0,
) -> LimiterStats:
    return LimiterStats(
        name=name,
        requests_per_minute=rpm,
        tokens_per_minute=tpm,
        request_level=None,
        request_capacity=None,
        token_level=None,
        token_capacity=None,
        rate_factor=1.0,
        paused_until=float("-inf"),
        pause_remaining_s=0.0,
        acquired=acquired,
        tokens_acquired=tokens_acquired,
        pauses=0,
        waiting=0,
        waited_requests_s=requests_s,
        waited_tokens_s=tokens_s,
        waited_provider_s=provider_s,
    )


def snapshot(**fields: Any) -> RunStatistics:
    base: dict[str, Any] = {
        "requests": 100,
        "elapsed_s": 20.0,
        "input_tokens": 900,
        "output_tokens": 2_600,
        "max_concurrent_requests": 256,
        "limiters": (limiter(),),
        **fields,
    }
    return dataclasses.replace(RunStats().snapshot(), **base)


# The user's case: 3,000 requests/min allowed, but 100,000 tokens/min with 521 tokens held
# per request (its prompt and max_new_tokens 512) while answers used 35.
USERS_CASE = snapshot(limiters=(limiter(tokens_s=18.4),))


def test_the_users_case_names_tokens_per_minute_and_how_to_lift_it() -> None:
    bound = bound_by(USERS_CASE)
    assert bound is not None
    assert (bound.limit, bound.model) == (TOKENS, None)
    assert bound.waited_fraction == pytest.approx(0.92)
    assert "100,000 tokens/min" in bound.detail
    assert "holds ~521 of them until it is answered" in bound.detail
    assert "answers used ~35" in bound.detail
    assert "the run sent ~300 requests/min" in bound.detail
    assert "--max-tokens-per-minute (max_tokens_per_minute under [limits])" in bound.detail
    assert "--max-new-tokens" in bound.detail
    assert bound.describe().startswith(
        "held back by tokens/min: requests waited on it 92% of the time; 100,000 tokens/min"
    )
    assert bound.short() == "tokens/min 92%"
    assert bound.to_dict() == {
        "limit": "tokens_per_minute",
        "model": None,
        "waited_fraction": 0.92,
        "detail": bound.detail,
    }


@pytest.mark.parametrize(
    ("fields", "limit", "model", "says"),
    [
        (
            {"limiters": (limiter(requests_s=15.0, tokens_s=2.0),)},
            REQUESTS,
            None,
            "3,000 requests/min; the run sent ~300 requests/min; raise --max-requests-per-minute",
        ),
        (
            {"limiters": (limiter(provider_s=12.0, tokens_s=5.0),), "rate_limited": 7},
            PROVIDER,
            None,
            "the provider allows no more: 7 answers were 429",
        ),
        (
            {"limiters": (limiter(provider_s=12.0),)},
            PROVIDER,
            None,
            "its rate-limit headers reported less room than the limits here",
        ),
        (
            {"slots_full_s": 19.0, "limiters": (limiter(tokens_s=0.5),)},
            CONCURRENCY,
            None,
            "all 256 slots were sending while more requests waited",
        ),
        (
            {"cost_cap_waited_s": 11.0, "max_cost_usd": 2.0},
            COST_CAP,
            None,
            "the rest of $2.0000",
        ),
        (
            # A model's own limit, second in the list after the run's.
            {"limiters": (limiter(tokens_s=3.0), limiter("gpt", rpm=None, tokens_s=16.0))},
            TOKENS,
            "gpt",
            "raise max_tokens_per_minute in gpt's [[models]] entry",
        ),
        (
            {
                "limiters": (limiter(), limiter("gpt", requests_s=16.0)),
                "learned_limits": {
                    "gpt": LearnedLimits(1200.0, None, FROM_HEADERS, ("requests_per_minute",))
                },
            },
            PROVIDER,
            "gpt",
            "gpt's limit as its provider reports it (1,200 requests/min)",
        ),
        (
            {
                "limiters": (limiter(), limiter("gpt", requests_s=16.0)),
                "learned_limits": {
                    "gpt": LearnedLimits(60.0, None, FROM_DEFAULT, ("requests_per_minute",))
                },
            },
            REQUESTS,
            "gpt",
            "set a number instead of auto",
        ),
    ],
)
def test_the_limit_waited_on_longest_binds(
    fields: dict[str, Any], limit: str, model: str | None, says: str
) -> None:
    bound = bound_by(snapshot(**fields))
    assert bound is not None
    assert (bound.limit, bound.model) == (limit, model)
    assert says in bound.detail


def test_nothing_binds_below_half_the_time_or_without_requests() -> None:
    assert bound_by(snapshot(limiters=(limiter(tokens_s=9.9),))) is None
    assert bound_by(snapshot(limiters=(limiter(tokens_s=10.0),))) is not None
    assert bound_by(snapshot(limiters=(limiter(tokens_s=9.9),)), threshold=0.4) is not None
    assert bound_by(snapshot(requests=0, limiters=(limiter(tokens_s=20.0),))) is None
    assert bound_by(snapshot(limiters=())) is None


def test_between_two_snapshots_only_the_waits_in_between_count() -> None:
    # Tokens/min held the first 10 s back, then nothing did.
    before = snapshot(elapsed_s=10.0, requests=50, limiters=(limiter(tokens_s=10.0),))
    now = snapshot(elapsed_s=20.0, requests=400, limiters=(limiter(tokens_s=10.0),))
    assert bound_by(now, before) is None
    whole = bound_by(now)
    assert whole is not None and whole.waited_fraction == pytest.approx(0.5)
    # A limiter that appeared after `before` counts from zero.
    later = snapshot(
        elapsed_s=20.0, requests=400, limiters=(limiter(tokens_s=10.0), limiter("m", requests_s=8))
    )
    bound = bound_by(later, before)
    assert bound is not None and (bound.limit, bound.model) == (REQUESTS, "m")


def test_a_bound_labels_a_models_own_limit() -> None:
    bound = Bound(TOKENS, "gpt", 0.8, "…")
    assert bound.short() == "tokens/min of gpt 80%"
    assert Bound(PROVIDER, "gpt", 0.8, "…").short() == "the provider 80%"


# -- measured on real runs of the engine (in-process mock) -----------------------------


async def prompts(count: int) -> AsyncIterator[Prompt]:
    for i in range(count):
        yield Prompt(id=i, line=i + 1, messages=[{"role": "user", "content": f"n{i}"}])


async def run(count: int, limits: Limits, latency_s: float) -> RunStatistics:
    mock = {"latency_s": latency_s, "latency_jitter_s": 0.0}
    entries = (ModelEntry(name="mock:sim", mock=mock),)
    stats = RunStats()
    async with AsyncExitStack() as stack:
        requester = await build_requester(
            entries,
            resolve_endpoints(entries),
            limits,
            SamplingParams(),
            retry_other_model=False,
            stats=stats,
            stack=stack,
        )
        outcome = await run_pipeline(prompts(count), lambda _: None, requester, stats)
    return outcome.statistics


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_busy_slots_bind_and_free_ones_do_not() -> None:
    tight = await run(20, Limits(None, None, 2, 1, 5.0), latency_s=0.1)
    bound = bound_by(tight)
    # Both slots sent from start to end but for the last answer and a little overhead.
    assert bound is not None and bound.limit == CONCURRENCY, tight
    assert tight.slots_full_s > 0.7 and "all 2 slots" in bound.detail
    roomy = await run(20, Limits(None, None, 64, 1, 5.0), latency_s=0.1)
    assert roomy.slots_full_s == 0.0
    assert bound_by(roomy) is None


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_tight_token_limit_binds_in_a_run() -> None:
    # 60,000 tokens/min holds 500 tokens; each request holds ~520 (max_new_tokens 512).
    stats = await run(6, Limits(None, 60_000, 64, 1, 5.0), latency_s=0.02)
    assert [s.name for s in stats.limiters] == ["run"]
    bound = bound_by(stats)
    assert bound is not None and bound.limit == TOKENS, stats
    assert "60,000 tokens/min" in bound.detail
