"""The shared limiter's budget in Redis, on a real redis-server: its keys, its clock, and
which bucket a wait it asks for is on."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.redis_server import RedisServer

pytest.importorskip("redis")

from lm_deluge_cli.engine.limiter_values import WAIT_PROVIDER, WAIT_REQUESTS, WAIT_TOKENS
from lm_deluge_cli.engine.shared_budget import (
    KEY_PREFIX,
    NOTHING_SEEN,
    BudgetReply,
    BudgetTerms,
    RedisBudget,
)
from lm_deluge_cli.errors import ConfigError


@pytest.fixture
def anyio_backend() -> str:
    # redis-py's asyncio client runs on asyncio only.
    return "asyncio"


def terms(**given: Any) -> BudgetTerms:
    """Terms with the given fields; by default unlimited, on key "k"."""
    defaults: dict[str, Any] = {
        "key": "k",
        "requests_per_minute": None,
        "tokens_per_minute": None,
        "burst_s": 0.5,
        "adaptive": True,
        "live_s": 10.0,
    }
    return BudgetTerms(**{**defaults, **given})


def budget_at(url: str, **given: Any) -> RedisBudget:
    return RedisBudget.open(url, terms(**given), connect_timeout_s=2.0, timeout_s=2.0)


@pytest.fixture
async def open_budget(redis_server: RedisServer) -> AsyncIterator[Callable[..., RedisBudget]]:
    """Open budgets on the session's server (by default on a key of the test's own)."""
    opened: list[RedisBudget] = []
    key = f"t-{uuid.uuid4().hex[:10]}"

    def open_(**terms: Any) -> RedisBudget:
        budget = budget_at(redis_server.url, **{"key": key, **terms})
        opened.append(budget)
        return budget

    yield open_
    for budget in opened:
        await budget.aclose()


def state(server: RedisServer, budget: RedisBudget, field_name: str) -> float:
    """One field of the budget's hash in Redis."""
    value = server.hget(f"{KEY_PREFIX}{{{budget.terms.key}}}:state", field_name)
    assert value is not None
    return float(value)


@pytest.mark.anyio
async def test_the_budget_runs_on_redis_time(
    open_budget: Callable[..., RedisBudget], redis_server: RedisServer
) -> None:
    """The state's timestamps are the server's clock, not this machine's monotonic one."""
    budget = open_budget(requests_per_minute=600.0)
    await budget.step(cost=0)
    assert state(redis_server, budget, "ru") == pytest.approx(time.time(), abs=5.0)


@pytest.mark.anyio
async def test_a_step_at_a_given_time_runs_the_budget_on_it(
    open_budget: Callable[..., RedisBudget], redis_server: RedisServer
) -> None:
    budget = open_budget(requests_per_minute=600.0)  # 10 a second, a bucket of 5
    first = await budget.step(cost=0, now=100.0)
    assert (first.delay, first.request_level, first.processes) == (0.0, 4.0, 0)
    assert state(redis_server, budget, "ru") == 100.0
    for _ in range(4):
        await budget.step(cost=0, now=100.0)
    empty = await budget.step(cost=0, now=100.0)
    assert empty.delay == pytest.approx(0.1) and empty.request_level == pytest.approx(0.0)
    assert (await budget.step(cost=0, now=100.05)).delay == pytest.approx(0.05)
    assert (await budget.step(cost=0, now=100.1)).delay == 0.0


@pytest.mark.anyio
async def test_a_pause_holds_the_budget_and_slows_it(
    open_budget: Callable[..., RedisBudget],
) -> None:
    budget = open_budget(requests_per_minute=600.0)
    paused = await budget.step(cost=None, pause_s=1.0, now=10.0)
    assert (paused.pause_remaining_s, paused.rate_factor, paused.request_level) == (1.0, 0.8, 0.0)
    # The rest of the pause, then one request at 0.8 of the rate.
    assert (await budget.step(cost=0, now=10.5)).delay == pytest.approx(0.5 + 0.125)
    # Without adaptive slowing down, the same pause holds it as long and no longer.
    steady = open_budget(
        requests_per_minute=600.0, adaptive=False, key="steady-" + budget.terms.key
    )
    await steady.step(cost=None, pause_s=1.0, now=10.0)
    assert (await steady.step(cost=0, now=10.5)).delay == pytest.approx(0.5 + 0.1)


@pytest.mark.anyio
async def test_a_heartbeat_counts_the_process_alive_on_redis_time(
    open_budget: Callable[..., RedisBudget],
) -> None:
    budget = open_budget(requests_per_minute=600.0)
    # The budget's time, far from Redis's, is not what heartbeats are scored by.
    assert (await budget.step(cost=None, member="a", now=5.0)).processes == 1
    assert (await budget.step(cost=None, member="b", now=1e6)).processes == 2
    await budget.leave("a")
    assert (await budget.step(cost=None, now=2e6)).processes == 1


def test_a_malformed_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"alice:\*\*\*@") as caught:
        budget_at("http://alice:hunter2@example.invalid/0", requests_per_minute=60.0)
    assert "hunter2" not in str(caught.value)


# 600 requests/min (a bucket of 5) and 6,000 tokens/min (a bucket of 50).
_SEEN = dataclasses.replace(NOTHING_SEEN, request_level=5.0, token_level=50.0)


@pytest.mark.parametrize(
    ("seen", "tokens", "on"),
    [
        (dataclasses.replace(_SEEN, pause_remaining_s=0.3), 10, WAIT_PROVIDER),
        (dataclasses.replace(_SEEN, rate_factor=0.8), 10, WAIT_PROVIDER),
        (dataclasses.replace(_SEEN, request_level=0.5), 10, WAIT_REQUESTS),
        (dataclasses.replace(_SEEN, token_level=-20.0), 10, WAIT_TOKENS),
        # 0.05 s for the request, 0.1 s to fill the token bucket for a request beyond it.
        (dataclasses.replace(_SEEN, request_level=0.5, token_level=40.0), 500, WAIT_TOKENS),
        (dataclasses.replace(_SEEN, request_level=0.0, token_level=45.0), 10, WAIT_REQUESTS),
    ],
)
def test_a_wait_is_on_the_bucket_that_needs_longest_or_on_the_provider(
    seen: BudgetReply, tokens: int, on: int
) -> None:
    both = terms(requests_per_minute=600.0, tokens_per_minute=6000.0)
    assert (both.request_capacity, both.token_capacity) == (5.0, 50.0)
    assert both.waits_on(seen, tokens) == on


@pytest.mark.parametrize(
    "given",
    [{"requests_per_minute": 0.0}, {"tokens_per_minute": -1.0}, {"burst_s": 0.0}, {"key": ""}],
)
def test_terms_check_themselves(given: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        terms(**given)
