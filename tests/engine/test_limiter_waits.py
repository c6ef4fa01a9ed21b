"""The rate limiter in virtual time: how long requests waited, and on what (`waited_*`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
import pytest

from lm_deluge_cli.engine.limiter import RateLimiter
from lm_deluge_cli.types import RateLimitInfo

if TYPE_CHECKING:
    from .conftest import FakeClock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def waits(rl: RateLimiter) -> tuple[float, float, float]:
    stats = rl.statistics()
    return stats.waited_requests_s, stats.waited_tokens_s, stats.waited_provider_s


@pytest.mark.anyio
async def test_waits_on_the_token_bucket_count_as_tokens(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    # Plenty of requests, 100 tokens/s holding 50: each 50-token request after the first
    # waits half a second for the bucket to refill.
    rl = limiter(clock, rpm=6000, tpm=6000)
    for _ in range(10):
        await rl.acquire(50)
    assert waits(rl) == pytest.approx((0.0, 4.5, 0.0))


@pytest.mark.anyio
async def test_waits_on_the_request_bucket_count_as_requests(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=600, tpm=600_000)  # 10 requests/s, 5 saved; tokens to spare
    for _ in range(15):
        await rl.acquire(10)
    assert waits(rl) == pytest.approx((1.0, 0.0, 0.0))


@pytest.mark.anyio
async def test_a_wait_is_counted_once_however_many_requests_queue_behind_it(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=600)
    done: list[float] = []

    async def one() -> None:
        done.append((await rl.acquire()).dispatched_s)

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(one)
    # Five went at once and five more 0.1 s apart: the run was held back for 0.5 s, though
    # the queued requests waited 1.5 s between them.
    assert max(done) == pytest.approx(0.5)
    assert waits(rl) == pytest.approx((0.5, 0.0, 0.0))


@pytest.mark.anyio
async def test_a_pause_after_a_429_and_the_slow_down_count_as_the_provider(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=600)
    rl.pause(2.0)
    ticket = await rl.acquire()
    # Two seconds paused, then a refill from zero at the slowed-down rate: all the provider's.
    assert ticket.dispatched_s > 2.0
    assert waits(rl) == pytest.approx((0.0, 0.0, ticket.dispatched_s))


@pytest.mark.anyio
async def test_a_level_lowered_by_the_providers_headers_counts_as_the_provider_once(
    limiter: Callable[..., RateLimiter], clock: FakeClock
) -> None:
    rl = limiter(clock, rpm=600)  # 10/s, 5 saved
    ticket = await rl.acquire()
    rl.observe(ticket, RateLimitInfo(remaining_requests=0))
    await rl.acquire()  # waits 0.1 s for the room the provider said it lacked
    await rl.acquire()  # then 0.1 s at our own pace
    assert waits(rl) == pytest.approx((0.1, 0.0, 0.1))


@pytest.mark.anyio
async def test_the_fast_path_reads_the_clock_once_and_counts_no_wait(
    limiter: Callable[..., RateLimiter], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rl = limiter(clock, rpm=6000, tpm=600_000)
    reads: list[float] = []
    now = clock.now

    def counted() -> float:
        reads.append(now())
        return reads[-1]

    monkeypatch.setattr(clock, "now", counted)
    for _ in range(40):
        await rl.acquire(100)
    assert len(reads) == 40
    assert clock.sleeps == []
    assert waits(rl) == (0.0, 0.0, 0.0)
