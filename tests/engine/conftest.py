"""Helpers shared by the rate limiter tests: a virtual clock and limiters that run on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel
import pytest

from lm_deluge_cli.engine.limiter import DEFAULT_BURST_S, RateLimiter
from lm_deluge_cli.engine.limiter_values import Ticket


class FakeClock:
    """Virtual time: sleeping advances it at once. Only the limiter's lock holder sleeps."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_clock() -> Callable[[], FakeClock]:
    """A factory for extra, independent clocks."""
    return FakeClock


def _limiter(
    clock: FakeClock,
    rpm: float | None = None,
    tpm: float | None = None,
    *,
    burst_s: float = DEFAULT_BURST_S,
    adaptive: bool = True,
    name: str = "",
) -> RateLimiter:
    return RateLimiter(rpm, tpm, clock=clock, burst_s=burst_s, adaptive=adaptive, name=name)


async def _acquire_concurrently(rl: RateLimiter, tasks: int, each: int) -> list[Ticket]:
    tickets: list[Ticket] = []

    async def worker() -> None:
        for _ in range(each):
            tickets.append(await rl.acquire())

    async with anyio.create_task_group() as tg:
        for _ in range(tasks):
            tg.start_soon(worker)
    return tickets


@pytest.fixture
def limiter() -> Callable[..., RateLimiter]:
    """Build a `RateLimiter` on the given `FakeClock`."""
    return _limiter


@pytest.fixture
def acquire_concurrently() -> Callable[..., Awaitable[list[Ticket]]]:
    """Acquire `each` tickets from `rl` in each of `tasks` concurrent tasks."""
    return _acquire_concurrently
