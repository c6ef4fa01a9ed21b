"""The rate limiter in virtual time: provider feedback, pauses and the slowdown after a 429."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pytest

from lm_deluge_cli.engine.limiter import RateLimiter
from lm_deluge_cli.engine.limiter_values import Ticket
from lm_deluge_cli.engine.slowdown import SLOWDOWN_FACTOR, SLOWDOWN_RECOVERY_PER_S
from lm_deluge_cli.types import RateLimitInfo

if TYPE_CHECKING:
    from .conftest import FakeClock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- provider feedback --------------------------------------------------------------


@pytest.mark.anyio
async def test_observe_raises_the_level_to_spend_reported_capacity(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=6000)  # 100/s, capacity 50
    first = await rl.acquire()
    for _ in range(49):
        await rl.acquire()
    # The provider counted `first`, so it had 5999 left; 49 more went out since, and
    # one burst (50) stays in reserve on the provider's side.
    rl.observe(first, RateLimitInfo(limit_requests=6000, remaining_requests=5999))
    assert rl.statistics().request_level == pytest.approx(5999 - 49 - 50)
    times = [(await rl.acquire()).dispatched_s for _ in range(5901)]
    assert times[:5900] == [0.0] * 5900
    assert times[-1] == pytest.approx(0.01)


@pytest.mark.anyio
async def test_raised_level_is_capped_at_the_reported_limit(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=600)
    ticket = await rl.acquire()
    rl.observe(ticket, RateLimitInfo(limit_requests=100, remaining_requests=10_000))
    assert rl.statistics().request_level == pytest.approx(100 - 5)


@pytest.mark.anyio
async def test_observe_lowers_the_level_to_prevent_a_429(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=3000)  # 50/s, capacity 25
    ticket = await rl.acquire()
    rl.observe(ticket, RateLimitInfo(remaining_requests=3))
    times = [(await rl.acquire()).dispatched_s for _ in range(4)]
    assert times == pytest.approx([0.0, 0.0, 0.0, 0.02])


@pytest.mark.anyio
async def test_lowering_credits_the_providers_refill_since_dispatch(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=3000)  # 50/s, capacity 25
    ticket = await rl.acquire()
    clock.advance(0.2)
    # Empty when the request arrived, but 0.2 s of refill (10 requests) since.
    rl.observe(ticket, RateLimitInfo(remaining_requests=0))
    assert rl.statistics().request_level == pytest.approx(10)
    # A report claiming more than our own level is not a reason to lower it.
    ticket = await rl.acquire()
    clock.advance(1.0)
    rl.observe(ticket, RateLimitInfo(remaining_requests=0))
    assert rl.statistics().request_level == pytest.approx(25)


@pytest.mark.anyio
async def test_observe_counts_tokens_dispatched_since_the_ticket(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, tpm=600_000)  # 10,000 tokens/s, capacity 5000
    ticket = await rl.acquire(1000)
    await rl.acquire(2000)
    rl.observe(ticket, RateLimitInfo(remaining_tokens=50_000, limit_tokens=600_000))
    assert rl.statistics().token_level == pytest.approx(50_000 - 2000 - 5000)
    rl.observe(await rl.acquire(100), RateLimitInfo(remaining_tokens=500))
    assert rl.statistics().token_level == pytest.approx(500)


@pytest.mark.anyio
async def test_raising_counts_earlier_requests_still_in_flight(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=6000)  # capacity 50
    tickets = [await rl.acquire() for _ in range(50)]
    assert [t.earlier_in_flight for t in tickets[:3]] == [0, 1, 2]
    rl.observe(tickets[0], RateLimitInfo())  # answered, without headers
    # The 30 requests unanswered when ticket 31 left may reach the provider after it,
    # so its "5990" need not count them; 19 more went out since.
    rl.observe(tickets[30], RateLimitInfo(remaining_requests=5990))
    assert tickets[30].earlier_in_flight == 30
    assert rl.statistics().request_level == pytest.approx(5990 - 19 - 30 - 50)
    later = await rl.acquire()
    assert later.earlier_in_flight == 50 - 2


@pytest.mark.anyio
async def test_in_flight_requests_expire(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=6000)
    await rl.acquire()
    clock.advance(601)
    assert (await rl.acquire()).earlier_in_flight == 0


@pytest.mark.anyio
async def test_lowering_stops_at_zero(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=3000)  # 50/s, capacity 25
    ticket = await rl.acquire()
    for _ in range(10):
        await rl.acquire()
    # "0 left, and 10 sent since" may be reordering rather than a debt; a real debt
    # shows up as a 429, and pause() handles it.
    rl.observe(ticket, RateLimitInfo(remaining_requests=0))
    assert rl.statistics().request_level == 0.0


@pytest.mark.anyio
async def test_stale_reports_are_ignored(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=3000)
    tickets = [await rl.acquire() for _ in range(5)]
    rl.observe(tickets[4], RateLimitInfo(remaining_requests=2))
    assert rl.statistics().request_level == pytest.approx(2)
    # An older response arriving late says there was plenty: it is out of date.
    rl.observe(tickets[2], RateLimitInfo(remaining_requests=1000))
    rl.observe(tickets[4], RateLimitInfo(remaining_requests=1000))
    assert rl.statistics().request_level == pytest.approx(2)
    # Dimensions are tracked separately, and empty reports change nothing.
    rl.observe(tickets[3], RateLimitInfo())
    assert rl.statistics().request_level == pytest.approx(2)


@pytest.mark.anyio
async def test_observe_ignores_dimensions_we_do_not_limit(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=3000)
    ticket = await rl.acquire()
    rl.observe(ticket, RateLimitInfo(remaining_tokens=0))
    stats = rl.statistics()
    assert stats.token_level is None
    assert stats.request_level == pytest.approx(24)


# -- pauses -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_pause_delays_everyone_and_empties_the_saved_burst(
    limiter: Callable[..., RateLimiter],
    acquire_concurrently: Callable[..., Awaitable[list[Ticket]]],
    clock: FakeClock,
) -> None:
    rl = limiter(clock, rpm=3000, adaptive=False)  # full: 25 saved
    rl.pause(1.0)
    assert rl.statistics().request_level == 0.0
    tickets = await acquire_concurrently(rl, tasks=10, each=3)
    times = sorted(t.dispatched_s for t in tickets)
    # Nothing during the pause, and no burst when it ends: paced from 1.0 at 50/s.
    assert times == pytest.approx([1.0 + 0.02 * i for i in range(1, 31)])
    assert rl.pauses == 1


@pytest.mark.anyio
async def test_pause_extends_but_never_shortens(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, adaptive=False)  # unlimited
    rl.pause(2.0)
    clock.advance(0.5)
    rl.pause(0.5)  # would end at 1.0: the pause in force until 2.0 stands
    assert rl.statistics().paused_until == 2.0
    assert rl.statistics().pause_remaining_s == pytest.approx(1.5)
    rl.pause(3.0)  # extends to 3.5
    ticket = await rl.acquire()
    assert ticket.dispatched_s == pytest.approx(3.5)
    assert rl.statistics().pauses == 3
    assert rl.statistics().pause_remaining_s == 0.0


@pytest.mark.anyio
async def test_pause_makes_earlier_reports_stale(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=3000, adaptive=False)
    old = await rl.acquire()
    rl.pause(1.0)
    rl.observe(old, RateLimitInfo(remaining_requests=1000))
    assert rl.statistics().request_level == 0.0


@pytest.mark.anyio
async def test_pause_rejects_negative_seconds(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    with pytest.raises(ValueError):
        limiter(clock).pause(-1.0)


@pytest.mark.anyio
async def test_after_a_429_the_rate_dips_and_recovers(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=3000)  # 50/s
    rl.pause(1.0)
    assert rl.statistics().rate_factor == SLOWDOWN_FACTOR
    rl.pause(1.0)  # the same episode: no second cut
    assert rl.statistics().rate_factor == SLOWDOWN_FACTOR
    times: list[float] = []
    while clock.now() < 11.0:
        times.append((await rl.acquire()).dispatched_s)
    # The rate ramps from 40/s to 50/s over the 10 s after the pause: 450, not 500.
    in_ramp = sum(1 for t in times if t <= 11.0)
    assert in_ramp == pytest.approx(450, abs=2)
    clock.advance(1.0)
    assert rl.statistics().rate_factor == 1.0


@pytest.mark.anyio
async def test_a_429_after_the_pause_ended_cuts_again(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=3000)
    rl.pause(0.1)
    clock.advance(0.2)  # a new episode: the factor in force (recovered by 0.002) is cut
    rl.pause(0.1)
    factor = SLOWDOWN_FACTOR * (SLOWDOWN_FACTOR + SLOWDOWN_RECOVERY_PER_S * 0.1)
    assert rl.statistics().rate_factor == pytest.approx(factor)
    assert rl.pauses == 2


@pytest.mark.anyio
async def test_no_slowdown_when_adaptive_is_off(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=3000, adaptive=False)
    rl.pause(1.0)
    assert rl.statistics().rate_factor == 1.0
