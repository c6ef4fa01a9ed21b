"""Several limiters acquired as one: a model's own limiter, then the run's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from lm_deluge_cli.engine.limiter_values import LimiterStats, Ticket
from lm_deluge_cli.types import RateLimitInfo

__all__ = ["Limiter", "LimiterChain"]

_NO_INFO = RateLimitInfo()


class Limiter(Protocol):
    """What a chain needs of a limiter: `RateLimiter` in one process, `SharedRateLimiter`
    across processes. See `RateLimiter` for what each method means."""

    name: str

    async def acquire(self, tokens: int = 0) -> Ticket: ...

    def release(self, ticket: Ticket) -> None: ...

    def reconcile(self, ticket: Ticket, actual_tokens: int) -> None: ...

    def observe(self, ticket: Ticket, info: RateLimitInfo) -> None: ...

    def pause(self, seconds: float) -> None: ...

    @property
    def pauses(self) -> int: ...

    @property
    def tokens_per_minute(self) -> float | None: ...

    def statistics(self) -> LimiterStats: ...


class LimiterChain:
    """Acquire from several limiters in order: the per-model limiter first, then the global one.

    Tickets come back in the same order. If waiting on a later limiter is cancelled,
    the earlier tickets are released. Feed a response's rate-limit headers to the
    limiter they describe (usually the per-model one) with its own ticket.
    """

    def __init__(self, *limiters: Limiter) -> None:
        self.limiters: tuple[Limiter, ...] = limiters

    async def acquire(self, tokens: int = 0) -> tuple[Ticket, ...]:
        """Acquire from every limiter in order; see `RateLimiter.acquire`."""
        tickets: list[Ticket] = []
        try:
            for limiter in self.limiters:
                tickets.append(await limiter.acquire(tokens))
        except BaseException:
            for limiter, ticket in zip(self.limiters, tickets, strict=False):
                limiter.release(ticket)
            raise
        return tuple(tickets)

    def token_budget(self) -> tuple[float, Limiter] | None:
        """The smallest tokens/min on the way and the limiter that sets it (None: no limiter
        limits tokens). A request needing more can never be covered by a minute's budget."""
        tightest: tuple[float, Limiter] | None = None
        for limiter in self.limiters:
            rate = limiter.tokens_per_minute
            if rate is not None and (tightest is None or rate < tightest[0]):
                tightest = (rate, limiter)
        return tightest

    def reconcile(self, tickets: Sequence[Ticket], actual_tokens: int) -> None:
        """Reconcile each limiter with its own ticket."""
        for limiter, ticket in zip(self.limiters, tickets, strict=True):
            limiter.reconcile(ticket, actual_tokens)

    def observe(
        self, tickets: Sequence[Ticket], info: RateLimitInfo, *, describes: Sequence[bool]
    ) -> None:
        """Mark the request answered everywhere; sync only the limiters `info` describes."""
        for limiter, ticket, applies in zip(self.limiters, tickets, describes, strict=True):
            limiter.observe(ticket, info if applies else _NO_INFO)

    def release(self, tickets: Sequence[Ticket]) -> None:
        """Give back tickets whose request was never sent."""
        for limiter, ticket in zip(self.limiters, tickets, strict=True):
            limiter.release(ticket)
