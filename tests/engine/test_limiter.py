"""The rate limiter in virtual time: pacing, tokens, fairness, snapshots and run-time changes."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import pytest

from lm_deluge_cli.engine.limiter import RateLimiter
from lm_deluge_cli.engine.limiter_chain import LimiterChain
from lm_deluge_cli.engine.limiter_values import LimiterStats, Ticket
from lm_deluge_cli.types import RateLimitInfo

if TYPE_CHECKING:
    from .conftest import FakeClock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def max_in_window(times: list[float], window: float) -> int:
    """The most dispatches in any closed interval [t, t + window]."""
    best = 0
    j = 0
    for i in range(len(times)):
        while times[i] - times[j] > window + 1e-9:
            j += 1
        best = max(best, i - j + 1)
    return best


# -- pacing -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_paces_exactly_at_the_rate_after_one_burst(
    limiter: Callable[..., RateLimiter],
    acquire_concurrently: Callable[..., Awaitable[list[Ticket]]],
    clock: FakeClock,
) -> None:
    rl = limiter(clock, rpm=3000)  # 50/s; half a second of burst = 25 requests
    tickets = await acquire_concurrently(rl, tasks=20, each=50)
    times = sorted(t.dispatched_s for t in tickets)

    assert len(times) == 1000
    assert times[:25] == [0.0] * 25
    # N requests take (N − burst) / rate.
    assert times[-1] == pytest.approx((1000 - 25) / 50, abs=1e-6)
    gaps = [b - a for a, b in itertools.pairwise(times[25:])]
    assert min(gaps) == pytest.approx(0.02, abs=1e-6)
    assert max(gaps) == pytest.approx(0.02, abs=1e-6)
    for window in (1.0, 2.0, 5.0):
        assert max_in_window(times, window) <= 50 * window + 25 + 1
    # One sleep per paced request: waiters sleep, they do not spin.
    assert len(clock.sleeps) == 1000 - 25
    assert [t.seq for t in sorted(tickets, key=lambda t: t.seq)] == list(range(1, 1001))


@pytest.mark.anyio
async def test_small_rates_still_allow_one_request(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=6)  # one every 10 s; the burst would be 0.05 requests
    times = [(await rl.acquire()).dispatched_s for _ in range(3)]
    assert times == pytest.approx([0.0, 10.0, 20.0])


@pytest.mark.anyio
async def test_burst_s_sets_the_saved_capacity(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=600, burst_s=2.0)  # 10/s, 20 saved
    times = [(await rl.acquire()).dispatched_s for _ in range(22)]
    assert times[:20] == [0.0] * 20
    assert times[20:] == pytest.approx([0.1, 0.2])


# -- tokens -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_token_bucket_paces_by_cost(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, tpm=6000)  # 100 tokens/s, capacity 50
    first = await rl.acquire(30)
    second = await rl.acquire(30)
    assert first.dispatched_s == 0.0
    assert second.dispatched_s == pytest.approx(0.1)
    assert (first.tokens, second.tokens) == (30, 30)
    assert second.tokens_dispatched == 60


@pytest.mark.anyio
async def test_a_request_bigger_than_the_bucket_waits_for_full_and_goes_negative(
    limiter: Callable[..., RateLimiter],
    clock: FakeClock,
) -> None:
    rl = limiter(clock, tpm=6000)  # 100 tokens/s, capacity 50
    await rl.acquire(20)  # level 30
    big = await rl.acquire(500)
    # It waits for a full bucket (20 tokens at 100/s), then takes the level to −450.
    assert big.dispatched_s == pytest.approx(0.2)
    stats = rl.statistics()
    assert stats.token_level == pytest.approx(-450)
    # The debt is paid before anything else goes: 460 tokens at 100/s.
    after = await rl.acquire(10)
    assert after.dispatched_s == pytest.approx(0.2 + 4.6)


@pytest.mark.anyio
async def test_requests_and_tokens_both_bind(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=60, tpm=60_000)  # 1 request/s, 1000 tokens/s
    a = await rl.acquire(400)
    b = await rl.acquire(400)  # tokens are there; the request bucket makes it wait
    c = await rl.acquire(500)  # capacity 500: needs level 500 from 200 at t=1 → t=1.3
    assert [a.dispatched_s, b.dispatched_s] == pytest.approx([0.0, 1.0])
    assert c.dispatched_s == pytest.approx(2.0)
    d = await rl.acquire(500)
    assert d.dispatched_s == pytest.approx(3.0)


@pytest.mark.anyio
async def test_reconcile_refunds_up_to_capacity_and_charges_overruns(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, tpm=6000)  # capacity 50
    ticket = await rl.acquire(40)
    assert rl.statistics().token_level == pytest.approx(10)
    rl.reconcile(ticket, 15)  # 25 back
    assert rl.statistics().token_level == pytest.approx(35)
    ticket = await rl.acquire(30)  # 5 left
    clock.advance(0.4)  # refilled to 45
    rl.reconcile(ticket, 0)  # 30 back, but the bucket holds 50
    assert rl.statistics().token_level == pytest.approx(50)
    ticket = await rl.acquire(10)  # 40 left
    rl.reconcile(ticket, 90)  # 80 more than reserved
    assert rl.statistics().token_level == pytest.approx(-40)
    late = await rl.acquire(10)  # 50 tokens short at 100/s
    assert late.dispatched_s == pytest.approx(0.4 + 0.5)


@pytest.mark.anyio
async def test_a_debt_never_exceeds_a_minute_of_tokens(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, tpm=6000)  # 100 a second, capacity 50
    ticket = await rl.acquire(50)
    rl.reconcile(ticket, 500_000)  # a report far beyond any real answer
    assert rl.statistics().token_level == pytest.approx(-6000)
    late = await rl.acquire(10)
    assert late.dispatched_s == pytest.approx(60.1)  # a minute and 10 tokens, not 83 minutes
    # Each overrun is floored the same way.
    rl.reconcile(late, 20_000)
    assert rl.statistics().token_level == pytest.approx(-6000)


@pytest.mark.anyio
async def test_reconcile_is_skipped_once_the_provider_reported_on_the_ticket(
    limiter: Callable[..., RateLimiter],
    clock: FakeClock,
) -> None:
    rl = limiter(clock, tpm=6000)
    ticket = await rl.acquire(40)
    rl.observe(ticket, RateLimitInfo(remaining_tokens=5))
    rl.reconcile(ticket, 0)  # the provider's 5 already counts this request
    assert rl.statistics().token_level == pytest.approx(5)


# -- unlimited, fairness, snapshot -------------------------------------------------


@pytest.mark.anyio
async def test_unlimited_is_a_fast_path(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock)
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        ticket = await rl.acquire(1000)
    elapsed = time.perf_counter() - start
    assert clock.sleeps == []
    assert ticket.seq == n
    assert ticket.tokens_dispatched == 1000 * n
    assert rl.statistics().request_level is None
    # Thousands of requests a second must pass through with room to spare.
    assert elapsed < 1.0


@pytest.mark.anyio
async def test_unlimited_still_obeys_a_pause(
    limiter: Callable[..., RateLimiter],
    acquire_concurrently: Callable[..., Awaitable[list[Ticket]]],
    clock: FakeClock,
) -> None:
    rl = limiter(clock)
    rl.pause(0.75)
    tickets = await acquire_concurrently(rl, tasks=5, each=2)
    assert all(t.dispatched_s == pytest.approx(0.75) for t in tickets)


@pytest.mark.anyio
async def test_waiters_are_served_first_come_first_served(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, tpm=6000)  # 100 tokens/s, capacity 50
    await rl.acquire(50)  # empty
    order: list[int] = []
    waiting: list[int] = []

    async def worker(i: int, tokens: int) -> None:
        ticket = await rl.acquire(tokens)
        order.append(i)
        assert ticket.tokens == tokens

    async def watch() -> None:
        await anyio.lowlevel.checkpoint()
        waiting.append(rl.statistics().waiting)

    async with anyio.create_task_group() as tg:
        # The big request comes first; small ones behind it must not overtake it.
        tg.start_soon(worker, 0, 40)
        for i in range(1, 6):
            tg.start_soon(worker, i, 1)
        tg.start_soon(watch)
    assert order == [0, 1, 2, 3, 4, 5]
    assert waiting == [6]
    assert rl.statistics().waiting == 0
    assert clock.now() == pytest.approx(0.45)


@pytest.mark.anyio
async def test_statistics_is_a_frozen_snapshot_that_changes_nothing(
    limiter: Callable[..., RateLimiter], make_clock: Callable[[], FakeClock], clock: FakeClock
) -> None:
    async def run(probe: bool) -> list[float]:
        c = make_clock()
        rl = RateLimiter(3000, 60_000, clock=c)
        times = []
        for i in range(200):
            c.advance(0.003 if i % 7 == 0 else 0.0)
            if probe:
                rl.statistics()
            times.append((await rl.acquire(37)).dispatched_s)
        return times

    # Reading snapshots between acquires leaves every dispatch time exactly as it was.
    assert await run(True) == await run(False)

    rl = limiter(clock, rpm=3000, tpm=60_000, name="gpt")
    await rl.acquire(100)
    snapshot = rl.statistics()
    assert isinstance(snapshot, LimiterStats)
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.acquired = 5  # type: ignore[misc]
    await rl.acquire(100)
    assert snapshot.acquired == 1
    assert rl.statistics().acquired == 2
    assert snapshot == LimiterStats(
        name="gpt",
        requests_per_minute=3000,
        tokens_per_minute=60_000,
        request_level=24.0,
        request_capacity=25.0,
        token_level=400.0,
        token_capacity=500.0,
        rate_factor=1.0,
        paused_until=-math.inf,
        pause_remaining_s=0.0,
        acquired=1,
        tokens_acquired=100,
        pauses=0,
        waiting=0,
    )
    # Reading the level later shows the refill without storing it.
    clock.advance(0.04)
    assert rl.statistics().request_level == pytest.approx(23 + 2)
    clock.advance(1.0)
    assert rl.statistics().request_level == pytest.approx(25)


# -- run-time changes ---------------------------------------------------------------


@pytest.mark.anyio
async def test_set_limits_changes_rates_at_run_time(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock)
    await rl.acquire()
    # Newly limited: starts empty, since unlimited sending likely spent the budget.
    rl.set_limits(600, None)
    assert (await rl.acquire()).dispatched_s == pytest.approx(0.1)
    # Faster: the bucket keeps its level and refills faster.
    rl.set_limits(6000, None)
    assert (await rl.acquire()).dispatched_s == pytest.approx(0.11)
    # Slower: the capacity shrinks and the level with it.
    clock.advance(10)
    rl.set_limits(60, None)
    assert rl.statistics().request_level == pytest.approx(1.0)
    # Unlimited again.
    rl.set_limits(None, None)
    start = clock.now()
    times = [(await rl.acquire()).dispatched_s for _ in range(100)]
    assert times == [start] * 100


@pytest.mark.anyio
async def test_limits_learned_mid_run_use_the_report_that_taught_them(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock)
    tickets = [await rl.acquire() for _ in range(100)]
    # The first response names the limit; requests sent while unlimited count too.
    rl.set_limits(6000, None)
    rl.observe(tickets[9], RateLimitInfo(limit_requests=6000, remaining_requests=5990))
    assert rl.statistics().request_level == pytest.approx(5990 - 90 - 9 - 50)


@pytest.mark.anyio
async def test_invalid_rates_are_rejected(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    for rpm in (0, -5, math.nan):
        with pytest.raises(ValueError):
            limiter(clock, rpm=rpm)
    with pytest.raises(ValueError):
        limiter(clock, rpm=60, burst_s=0)
    with pytest.raises(ValueError):
        await limiter(clock).acquire(-1)


@pytest.mark.anyio
async def test_release_returns_an_unsent_ticket(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=60, tpm=6000)  # 1 request, 50 tokens
    ticket = await rl.acquire(30)
    rl.release(ticket)
    stats = rl.statistics()
    assert (stats.request_level, stats.token_level) == (1.0, 50.0)
    assert (await rl.acquire(30)).dispatched_s == 0.0
    assert (await rl.acquire(0)).earlier_in_flight == 1  # the released one is gone


@pytest.mark.anyio
async def test_chain_acquires_model_then_global_and_releases_on_cancel(
    limiter: Callable[..., RateLimiter],
    clock: FakeClock,
) -> None:
    model = limiter(clock, rpm=600, name="model")  # capacity 5
    shared = limiter(clock, rpm=60, name="all")  # capacity 1
    chain = LimiterChain(model, shared)
    tickets = await chain.acquire(10)
    assert [t.seq for t in tickets] == [1, 1]
    chain.reconcile(tickets, 5)

    with anyio.move_on_after(0):
        # The model limiter grants at once; the shared one would wait, and is cancelled.
        await chain.acquire(10)
    assert model.statistics().request_level == pytest.approx(4.0)
    assert shared.statistics().request_level == pytest.approx(0.0)
