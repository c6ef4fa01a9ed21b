"""What every limiter grants and shows, in one process or shared through Redis: the Ticket
for one request, the LimiterStats snapshot a progress view reads, and what a wait was on."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "RUN_LIMITER",
    "WAIT_PROVIDER",
    "WAIT_REQUESTS",
    "WAIT_TOKENS",
    "LimiterStats",
    "Ticket",
]

# The name of the run-wide limiter (engine/setup.py); any other limiter is a model's own.
RUN_LIMITER = "run"


@dataclass(frozen=True, slots=True)
class Ticket:
    """Permission for one request, as a limiter's `acquire` granted it.

    `seq` numbers dispatches from 1 and is also the count of requests dispatched so
    far, this one included; `tokens_dispatched` is the running token total likewise.
    `dispatched_s` is the limiter clock's time of dispatch. `earlier_in_flight` and
    `earlier_in_flight_tokens` count the requests dispatched before this one whose
    responses had not been observed yet.
    """

    tokens: int
    seq: int
    tokens_dispatched: int
    dispatched_s: float
    earlier_in_flight: int = 0
    earlier_in_flight_tokens: int = 0

    @property
    def requests_dispatched(self) -> int:
        return self.seq


@dataclass(frozen=True, slots=True)
class LimiterStats:
    """A snapshot of a limiter for display; levels and capacities are None when unlimited."""

    name: str
    requests_per_minute: float | None
    tokens_per_minute: float | None
    request_level: float | None
    request_capacity: float | None
    token_level: float | None
    token_capacity: float | None
    rate_factor: float
    paused_until: float
    pause_remaining_s: float
    acquired: int
    tokens_acquired: int
    pauses: int
    waiting: int
    # Seconds the request at the head of the queue spent waiting, by what it waited on: the
    # request bucket, the token bucket, or the provider (a 429's pause, the slow-down after
    # one, or a level its rate-limit headers lowered). Requests queued behind it wait on the
    # same thing, so each is wall-clock time during which this limiter held the run back.
    waited_requests_s: float = 0.0
    waited_tokens_s: float = 0.0
    waited_provider_s: float = 0.0


# What a waiting request waits on (see LimiterStats.waited_*).
WAIT_REQUESTS = 0
WAIT_TOKENS = 1
WAIT_PROVIDER = 2
