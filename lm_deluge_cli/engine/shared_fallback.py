"""Pacing alone while the shared budget is out of reach: a local `RateLimiter` at this
process's share of the limits, and the tickets it grants."""

from __future__ import annotations

from dataclasses import dataclass

from lm_deluge_cli.engine.clock import Clock
from lm_deluge_cli.engine.limiter import RateLimiter
from lm_deluge_cli.engine.limiter_values import Ticket

__all__ = ["LocalTicket", "fallback_limiter", "fallback_share"]


def fallback_share(live_processes: int) -> int:
    """The part of the limits a process cut off from Redis takes: one of max(2, N)."""
    return max(2, live_processes)


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalTicket(Ticket):
    """A ticket granted by the fallback limiter while Redis was unreachable."""

    limiter: RateLimiter
    inner: Ticket


def fallback_limiter(
    requests_per_minute: float | None,
    tokens_per_minute: float | None,
    *,
    share: int,
    rate_factor: float,
    pause_s: float,
    burst_s: float,
    adaptive: bool,
    name: str,
    clock: Clock,
) -> RateLimiter:
    """A limiter at 1/`share` of the limits, times the slow-down factor last seen, paused
    for `pause_s` (what is left of the shared pause, if anything)."""

    def part(rate: float | None) -> float | None:
        return None if rate is None else rate * rate_factor / share

    limiter = RateLimiter(
        part(requests_per_minute),
        part(tokens_per_minute),
        burst_s=burst_s,
        clock=clock,
        name=name,
        adaptive=adaptive,
    )
    if pause_s > 0:
        limiter.pause(pause_s)
    return limiter
