"""One requests/min + tokens/min budget shared by every process that names the same Redis key.

Needs the optional ``redis`` package (``pip install 'lm-deluge-cli[redis]'``), a Redis
server of version 5 or later, and asyncio (redis-py's asyncio client).

The budget is the one `RateLimiter` keeps (smooth buckets, half a second of burst, a
request larger than the token bucket waiting for a full bucket and taking it below zero,
the compounding slow-down after a 429 and its recovery), kept in Redis (shared_budget.py:
its keys, and the script that takes one step of it on Redis's clock). Every process should
be given the same limits: the budget follows whichever process asked last.

A 429 (`pause`) pauses every process: the pause and the slow-down factor live in the
budget. Refunds and debits (`release`, `reconcile`) and pauses are queued, then sent with
this process's next call or at once by a background task, so they never block. `observe`
only marks the request answered: a provider's rate-limit headers count the traffic of
every process, and one process cannot tell which of it was in flight elsewhere.

Each process heartbeats every `HEARTBEAT_S` seconds; one that missed `LIVE_BEATS`
heartbeats no longer counts. When Redis cannot be reached, at the start or mid-run, the
process logs one warning and paces itself with a local `RateLimiter` at ``limit / max(2,
N)`` (times the slow-down factor last seen), N being the number of live processes it last
saw: its fair share, or half when it saw no other (shared_fallback.py). It probes at every
heartbeat and returns to the shared budget when Redis answers again, logging that once.
Nothing Redis does makes `acquire` raise.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from dataclasses import replace

import anyio

from lm_deluge_cli.engine.clock import Clock, MonotonicClock
from lm_deluge_cli.engine.limiter import DEFAULT_BURST_S, RateLimiter
from lm_deluge_cli.engine.limiter_values import (
    WAIT_PROVIDER,
    WAIT_REQUESTS,
    WAIT_TOKENS,
    LimiterStats,
    Ticket,
)
from lm_deluge_cli.engine.shared_budget import NOTHING_SEEN, BudgetTerms, RedisBudget
from lm_deluge_cli.engine.shared_fallback import LocalTicket, fallback_limiter, fallback_share
from lm_deluge_cli.redaction import scrub
from lm_deluge_cli.types import RateLimitInfo

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_TIMEOUT_S",
    "HEARTBEAT_S",
    "LIVE_BEATS",
    "SharedRateLimiter",
]

logger = logging.getLogger(__name__)

# An unreachable server should cost seconds, not minutes: the process paces alone.
DEFAULT_CONNECT_TIMEOUT_S = 2.0
DEFAULT_TIMEOUT_S = 2.0
# How often a process says it is alive, and how many heartbeats it may miss before it
# stops counting towards the number of processes sharing the budget.
HEARTBEAT_S = 2.0
LIVE_BEATS = 5

# A waiter re-asks at least this often, so other processes' refunds are seen soon.
_MAX_SLEEP_S = 0.25
# Waits are stretched at random by up to this long (and a fifth of the wait): processes
# waiting for the same refill would otherwise wake in the same order every time, and one
# would always win. A late grant leaves the bucket fuller for the next one, so the rate
# is not lowered.
_JITTER_S = 0.005
_MAX_REASON_CHARS = 300
_NO_INFO = RateLimitInfo()


class SharedRateLimiter:
    """A `RateLimiter` whose budget lives in Redis, shared by every process using `key`.

    Open with `connect`, close with `aclose`. Waiters in one process queue first come,
    first served behind one lock, and only the first of them asks Redis, so a process is
    one queue; processes take turns by asking again (at least every 0.25 s). A
    request costs one round trip to Redis while the process is not cut off from it.
    """

    def __init__(
        self,
        budget: RedisBudget,
        *,
        heartbeat_s: float,
        timeout_s: float,
        name: str,
        clock: Clock | None = None,
    ) -> None:
        if heartbeat_s <= 0:
            raise ValueError("heartbeat_s must be positive")
        terms = budget.terms
        self.name = name
        self.key = terms.key
        self.location = budget.location
        self.requests_per_minute = terms.requests_per_minute
        self.tokens_per_minute = terms.tokens_per_minute
        self._budget = budget
        self._terms = terms
        self._secrets = budget.secrets
        self._heartbeat_s = heartbeat_s
        self._timeout_s = timeout_s
        self._member = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        # A clock given (a test's) is the budget's clock too, in place of Redis's TIME.
        self._clock_in_redis = clock is not None
        self._lock = anyio.Lock()
        self._wake = anyio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._seq = 0
        self._tokens_dispatched = 0
        self._pauses = 0
        self._waiting = 0
        self._paused_until = float("-inf")
        # Queued for the next script call: credits to each bucket, and a pause.
        self._credit_requests = 0.0
        self._credit_tokens = 0.0
        self._pause_s: float | None = None
        # The budget as the latest step that got through saw it, at `_seen_at` on the clock.
        self._seen = NOTHING_SEEN
        self._seen_at = float("-inf")
        # Set while Redis is unreachable: this process paces alone with it.
        self._fallback: RateLimiter | None = None
        # This process's waits by WAIT_* index (a fallback's are added when it is dropped).
        self._waited_s = [0.0, 0.0, 0.0]

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        key: str = "default",
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        burst_s: float = DEFAULT_BURST_S,
        adaptive: bool = True,
        heartbeat_s: float = HEARTBEAT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        name: str = "",
        clock: Clock | None = None,
    ) -> SharedRateLimiter:
        """Register with the budget under `key` at `url` (redis://, rediss:// or unix://).

        An unreachable server does not fail this: the limiter starts on its fallback.
        A malformed URL raises ConfigError. `clock` is for tests: this process waits on it
        and stamps tickets with it, and the budget in Redis runs on its time instead of
        Redis's, so every process on the key must share it. Heartbeats, which only say that
        the process is alive, keep real time either way.
        """
        terms = BudgetTerms(
            key, requests_per_minute, tokens_per_minute, burst_s, adaptive, heartbeat_s * LIVE_BEATS
        )
        budget = RedisBudget.open(
            url, terms, connect_timeout_s=connect_timeout_s, timeout_s=timeout_s
        )
        limiter = cls(budget, heartbeat_s=heartbeat_s, timeout_s=timeout_s, name=name, clock=clock)
        await limiter._call(cost=None, heartbeat=True)
        limiter._task = asyncio.get_running_loop().create_task(limiter._background())
        return limiter

    def __repr__(self) -> str:
        return f"SharedRateLimiter({self.location!r}, key={self.key!r})"

    # -- acquiring -----------------------------------------------------------------

    async def acquire(self, tokens: int = 0) -> Ticket:
        """Wait until a request estimated at `tokens` may be sent, then charge it."""
        if tokens < 0:
            raise ValueError(f"tokens must be >= 0, got {tokens}")
        self._waiting += 1
        try:
            async with self._lock:
                while True:
                    fallback = self._fallback
                    if fallback is not None:
                        inner = await fallback.acquire(tokens)
                        return self._ticket(tokens, fallback, inner)
                    delay = await self._call(cost=tokens)
                    if delay is not None and delay <= 0:
                        return self._ticket(tokens, None, None)
                    if delay is not None:
                        wait = min(delay, _MAX_SLEEP_S)
                        wait += random.uniform(0.0, min(_JITTER_S, wait / 5))
                        waited_on = self._terms.waits_on(self._seen, tokens)
                        await self._clock.sleep(wait)
                        self._waited_s[waited_on] += wait
        finally:
            self._waiting -= 1

    def _ticket(self, tokens: int, fallback: RateLimiter | None, inner: Ticket | None) -> Ticket:
        self._seq += 1
        self._tokens_dispatched += tokens
        now = self._clock.now()
        if fallback is None or inner is None:
            return Ticket(tokens, self._seq, self._tokens_dispatched, now)
        return LocalTicket(
            tokens, self._seq, self._tokens_dispatched, now, limiter=fallback, inner=inner
        )

    # -- feedback from responses ---------------------------------------------------

    def reconcile(self, ticket: Ticket, actual_tokens: int) -> None:
        """Credit (or debit) the shared token bucket with estimate − actual."""
        if isinstance(ticket, LocalTicket):
            ticket.limiter.reconcile(ticket.inner, actual_tokens)
        elif self.tokens_per_minute is not None:
            self._queue(tokens=float(ticket.tokens - actual_tokens))

    def release(self, ticket: Ticket) -> None:
        """Give back a ticket whose request was never sent."""
        if isinstance(ticket, LocalTicket):
            ticket.limiter.release(ticket.inner)
        else:
            self._queue(requests=1.0, tokens=float(ticket.tokens))

    def observe(self, ticket: Ticket, info: RateLimitInfo) -> None:
        """Mark the request answered; provider headers are not applied (see the module)."""
        if isinstance(ticket, LocalTicket):
            ticket.limiter.observe(ticket.inner, _NO_INFO)

    def pause(self, seconds: float) -> None:
        """Hold every process sharing the budget until `seconds` from now, after a 429."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        self._pauses += 1
        self._paused_until = max(self._paused_until, self._clock.now() + seconds)
        if self._fallback is not None:
            self._fallback.pause(seconds)
            return
        self._pause_s = max(seconds, self._pause_s or 0.0)
        self._wake.set()

    def _queue(self, *, requests: float = 0.0, tokens: float = 0.0) -> None:
        if self._fallback is not None:
            return  # the shared budget is out of reach; it refills by itself meanwhile
        self._credit_requests += requests
        self._credit_tokens += tokens
        self._wake.set()

    # -- talking to Redis ----------------------------------------------------------

    async def _call(self, *, cost: int | None, heartbeat: bool = False) -> float | None:
        """Run the script (charging `cost` if given); the delay it replied, or None on failure.

        Queued credits and pauses go with the call. A failure switches to the fallback;
        a heartbeat that gets through while on it switches back.
        """
        credit_requests, credit_tokens, pause_s = self._take_queued()
        was_cut_off = self._fallback is not None
        try:
            reply = await self._budget.step(
                cost=cost,
                credit_requests=credit_requests,
                credit_tokens=credit_tokens,
                pause_s=pause_s,
                member=self._member if heartbeat else "",
                now=self._clock.now() if self._clock_in_redis else None,
            )
        except Exception as exc:  # any failure of Redis or of its reply
            self._cut_off(exc)
            return None
        self._seen, self._seen_at = reply, self._clock.now()
        if was_cut_off and heartbeat and self._fallback is not None:
            self._fold_waits(self._fallback.statistics())
            self._fallback = None
            logger.warning(
                "shared rate limiter %s (key %r) is back: this process shares the budget "
                "again (processes alive: %d)",
                self.location,
                self.key,
                reply.processes,
            )
        return reply.delay

    def _take_queued(self) -> tuple[float, float, float | None]:
        queued = (self._credit_requests, self._credit_tokens, self._pause_s)
        self._credit_requests = self._credit_tokens = 0.0
        self._pause_s = None
        return queued

    def _cut_off(self, exc: Exception) -> None:
        """Pace alone at a share of the limits; warn once per outage."""
        if self._fallback is not None:
            return
        live = self._seen.processes
        share = fallback_share(live)
        fallback = fallback_limiter(
            self.requests_per_minute,
            self.tokens_per_minute,
            share=share,
            rate_factor=self._seen.rate_factor,
            pause_s=self._shared_paused_until() - self._clock.now(),
            burst_s=self._terms.burst_s,
            adaptive=self._terms.adaptive,
            name=self.name,
            clock=self._clock,
        )
        self._fallback = fallback
        if self._closed:
            return
        reason = scrub(f"{type(exc).__name__}: {exc}", self._secrets)[:_MAX_REASON_CHARS]
        rates = fallback.statistics()
        limits = ", ".join(
            f"{rate:g} {unit}/min"
            for rate, unit in (
                (rates.requests_per_minute, "requests"),
                (rates.tokens_per_minute, "tokens"),
            )
            if rate is not None
        )
        seen = f"{live} processes were sharing them" if live > 1 else "no other process was seen"
        logger.warning(
            "shared rate limiter %s (key %r) is unreachable (%s): this process paces "
            "itself at 1/%d of the limits (%s; %s) until Redis answers again",
            self.location,
            self.key,
            reason,
            share,
            limits or "unlimited",
            seen,
        )

    async def _background(self) -> None:
        """Send queued credits and pauses at once, and heartbeat (probe while cut off).

        Heartbeats keep the event loop's time, not the limiter's clock: they say that the
        process is alive, and a test's clock, which jumps ahead or stands still, would send
        them all at once or never.
        """
        next_beat = anyio.current_time() + self._heartbeat_s
        while True:
            with anyio.move_on_after(max(0.0, next_beat - anyio.current_time())):
                await self._wake.wait()
            self._wake = anyio.Event()
            if anyio.current_time() >= next_beat:
                await self._call(cost=None, heartbeat=True)
                next_beat = anyio.current_time() + self._heartbeat_s
            elif self._fallback is None:
                await self._call(cost=None)

    async def aclose(self) -> None:
        """Stop heartbeating, send what is queued, leave the process set and disconnect."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
        with anyio.move_on_after(self._timeout_s):
            try:
                if self._fallback is None:
                    await self._call(cost=None)
                await self._budget.leave(self._member)
            except Exception:  # best effort: the entry expires anyway
                logger.debug("could not leave the shared limiter's process set", exc_info=True)
        await self._budget.aclose()

    # -- observation ---------------------------------------------------------------

    @property
    def shared(self) -> bool:
        """Whether the process is on the shared budget (False while on its fallback)."""
        return self._fallback is None

    @property
    def processes(self) -> int:
        """How many processes were live at the latest heartbeat (this one included)."""
        return self._seen.processes

    @property
    def pauses(self) -> int:
        """How many times `pause` was called in this process."""
        return self._pauses

    def _shared_paused_until(self) -> float:
        """When the pause ends: this process's own, or the budget's as last seen if later."""
        seen = self._seen
        if seen.pause_remaining_s > 0:
            return max(self._paused_until, self._seen_at + seen.pause_remaining_s)
        return self._paused_until

    def _fold_waits(self, stats: LimiterStats) -> None:
        """Count a dropped fallback's waits as this process's own."""
        self._waited_s[WAIT_REQUESTS] += stats.waited_requests_s
        self._waited_s[WAIT_TOKENS] += stats.waited_tokens_s
        self._waited_s[WAIT_PROVIDER] += stats.waited_provider_s

    def statistics(self) -> LimiterStats:
        """A snapshot: the shared levels as last seen (the fallback's while cut off)."""
        now = self._clock.now()
        waited = self._waited_s
        if self._fallback is not None:
            local = self._fallback.statistics()
            return replace(
                local,
                name=self.name,
                requests_per_minute=self.requests_per_minute,
                tokens_per_minute=self.tokens_per_minute,
                acquired=self._seq,
                tokens_acquired=self._tokens_dispatched,
                pauses=self._pauses,
                waiting=self._waiting,
                waited_requests_s=waited[WAIT_REQUESTS] + local.waited_requests_s,
                waited_tokens_s=waited[WAIT_TOKENS] + local.waited_tokens_s,
                waited_provider_s=waited[WAIT_PROVIDER] + local.waited_provider_s,
            )
        seen = self._seen
        paused_until = self._shared_paused_until()
        return LimiterStats(
            name=self.name,
            requests_per_minute=self.requests_per_minute,
            tokens_per_minute=self.tokens_per_minute,
            request_level=seen.request_level,
            request_capacity=self._terms.request_capacity,
            token_level=seen.token_level,
            token_capacity=self._terms.token_capacity,
            rate_factor=seen.rate_factor,
            paused_until=paused_until,
            pause_remaining_s=max(0.0, paused_until - now),
            acquired=self._seq,
            tokens_acquired=self._tokens_dispatched,
            pauses=self._pauses,
            waiting=self._waiting,
            waited_requests_s=waited[WAIT_REQUESTS],
            waited_tokens_s=waited[WAIT_TOKENS],
            waited_provider_s=waited[WAIT_PROVIDER],
        )
