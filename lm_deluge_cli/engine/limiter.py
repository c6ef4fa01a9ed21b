"""Client-side rate limiting: smooth request and token buckets, synced with provider headers.

It only decides when a request may leave; a progress view reads `statistics()` snapshots.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

import anyio

from lm_deluge_cli.engine.clock import Clock, MonotonicClock
from lm_deluge_cli.engine.limiter_values import (
    WAIT_PROVIDER,
    WAIT_REQUESTS,
    WAIT_TOKENS,
    LimiterStats,
    Ticket,
)
from lm_deluge_cli.engine.slowdown import SlowDown
from lm_deluge_cli.types import RateLimitInfo

__all__ = ["DEFAULT_BURST_S", "RateLimiter"]

logger = logging.getLogger(__name__)

# Seconds of traffic a bucket may save up. Providers enforce "per minute" limits over
# short windows, so saving a whole minute and spending it at once gets most of it
# refused; half a second keeps us inside a window of one second or more.
DEFAULT_BURST_S = 0.5

# A waiter re-checks at least this often, so a raised level (observe) or a faster
# rate (set_limits) takes effect without waking sleepers explicitly.
_MAX_SLEEP_S = 0.25
# Float slack when comparing a bucket level with a cost.
_EPS = 1e-9
# A request with no response observed after this long, or beyond this many, is
# assumed finished: it no longer counts as in flight when judging a provider report.
# Both bound the memory kept when responses are never observed.
_IN_FLIGHT_EXPIRY_S = 600.0
_IN_FLIGHT_MAX = 50_000


@dataclass(slots=True)
class _Bucket:
    """One continuously refilled bucket; `level` may go negative or above `capacity`."""

    per_minute: float
    burst_s: float
    minimum: float
    level: float
    updated: float
    # Sequence number of the newest ticket whose provider report set this level.
    synced_seq: int = 0
    # The dispatch count when a provider report last lowered the level: a wait before the
    # next dispatch is the provider's doing, not this bucket's rate.
    lowered_at_seq: int = -1

    @property
    def rate(self) -> float:
        return self.per_minute / 60.0

    @property
    def capacity(self) -> float:
        return max(self.minimum, self.rate * self.burst_s)


class RateLimiter:
    """Paces requests to a request rate and a token rate, both per minute.

    Each limited dimension is a bucket refilled continuously at rate/60 per second,
    holding at most `burst_s` seconds of traffic (at least one request) and starting
    full. A request may leave when the request bucket holds 1 and the token bucket
    holds its token estimate, or is full: a request larger than the token bucket waits
    for a full bucket and takes it below zero, so the average stays at the rate.
    `None` for a dimension means unlimited; with both unlimited `acquire` is a few
    comparisons and never sleeps.

    Waiters are served first come, first served: one holds a lock and sleeps until
    its cost is covered, the rest queue behind it.

    After a 429 (`pause`) the effective rates slow down (`SlowDown`: a cut for each
    episode of 429s, compounding while they keep coming, recovering after the pause
    ends). Without 429s the rate is never reduced. Pass ``adaptive=False`` to turn this off.
    """

    def __init__(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        *,
        burst_s: float = DEFAULT_BURST_S,
        clock: Clock | None = None,
        name: str = "",
        adaptive: bool = True,
    ) -> None:
        if burst_s <= 0:
            raise ValueError(f"burst_s must be positive, got {burst_s}")
        self.name = name
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._burst_s = burst_s
        self._adaptive = adaptive
        self._lock = anyio.Lock()
        self._seq = 0
        self._tokens_dispatched = 0
        self._paused_until = float("-inf")
        self._pauses = 0
        # Reports on requests sent before the latest 429 are stale.
        self._seq_at_pause = 0
        self._waiting = 0
        # The slow-down after 429s (turned on by `adaptive`).
        self._slow = SlowDown()
        # Requests without an observed response: seq → (dispatch time, tokens), oldest
        # first, so that expired ones come off the front cheaply.
        self._in_flight: OrderedDict[int, tuple[float, int]] = OrderedDict()
        self._in_flight_tokens = 0
        # Indexed by WAIT_REQUESTS, WAIT_TOKENS, WAIT_PROVIDER; only the slow path adds to it.
        self._waited_s = [0.0, 0.0, 0.0]
        now = self._clock.now()
        self._requests = self._new_bucket(requests_per_minute, 1.0, now, full=True)
        self._tokens = self._new_bucket(tokens_per_minute, 0.0, now, full=True)

    # -- acquiring -----------------------------------------------------------------

    async def acquire(self, tokens: int = 0) -> Ticket:
        """Wait until a request estimated at `tokens` may be sent, then charge it."""
        if tokens < 0:
            raise ValueError(f"tokens must be >= 0, got {tokens}")
        now = self._clock.now()
        # Fast path: nobody queued, no pause, budget available. Taken every time when
        # both dimensions are unlimited.
        if not self._lock.locked() and now >= self._paused_until:
            if self._requests is None and self._tokens is None:
                return self._dispatch(tokens, now)
            self._refill(now)
            if self._delay(tokens, now) <= 0:
                return self._dispatch(tokens, now)
        self._waiting += 1
        try:
            async with self._lock:
                # The holder of the lock heads the queue: its sleeps are the limiter's waits,
                # each counted against what it waited on when it went to sleep.
                waited_on, slept_at = -1, now
                while True:
                    now = self._clock.now()
                    if waited_on >= 0:
                        self._waited_s[waited_on] += now - slept_at
                    self._refill(now)
                    delay, waited_on = self._delay_on(tokens, now)
                    if delay <= 0:
                        return self._dispatch(tokens, now)
                    slept_at = now
                    await self._clock.sleep(min(delay, _MAX_SLEEP_S))
        finally:
            self._waiting -= 1

    def _delay(self, tokens: int, now: float) -> float:
        """Seconds until a request of `tokens` could go (0 when it can go now)."""
        delay = self._paused_until - now
        if self._requests is not None:
            delay = max(delay, self._bucket_delay(self._requests, 1.0, now))
        if self._tokens is not None:
            delay = max(delay, self._bucket_delay(self._tokens, float(tokens), now))
        return delay

    def _delay_on(self, tokens: int, now: float) -> tuple[float, int]:
        """`_delay`, and what the wait is on (a WAIT_* index; -1 when there is none)."""
        if now < self._paused_until:
            # No bucket refills before the pause ends: the 429 is the wait.
            return self._delay(tokens, now), WAIT_PROVIDER
        delay, on = 0.0, -1
        if self._requests is not None:
            delay = self._bucket_delay(self._requests, 1.0, now)
            on = WAIT_REQUESTS
        if self._tokens is not None:
            token_delay = self._bucket_delay(self._tokens, float(tokens), now)
            if token_delay > delay:
                delay, on = token_delay, WAIT_TOKENS
        if delay <= 0:
            return delay, -1
        bucket = self._tokens if on == WAIT_TOKENS else self._requests
        if self._slow.factor(now) < 1.0 or (
            bucket is not None and bucket.lowered_at_seq == self._seq
        ):
            # Slowed down after a 429, or the provider reported less room than we had.
            on = WAIT_PROVIDER
        return delay, on

    def _bucket_delay(self, bucket: _Bucket, cost: float, now: float) -> float:
        target = min(cost, bucket.capacity)
        deficit = target - bucket.level
        if deficit <= _EPS:
            return 0.0
        # Refill is held back during a pause; the factor only grows from `start`, so
        # the planned wait is never too short by more than float noise.
        start = max(now, bucket.updated)
        return (start - now) + deficit / (bucket.rate * self._slow.factor(start))

    def _dispatch(self, tokens: int, now: float) -> Ticket:
        if self._requests is not None:
            self._requests.level -= 1.0
        if self._tokens is not None:
            self._tokens.level -= tokens
        self._seq += 1
        self._tokens_dispatched += tokens
        # Tracked even while unlimited, so that limits learned later (set_limits) see
        # what is already in flight.
        in_flight = self._in_flight
        while in_flight:
            seq, (sent, _) = next(iter(in_flight.items()))
            if sent >= now - _IN_FLIGHT_EXPIRY_S and len(in_flight) < _IN_FLIGHT_MAX:
                break
            self._answered(seq)
        ticket = Ticket(
            tokens,
            self._seq,
            self._tokens_dispatched,
            now,
            len(in_flight),
            self._in_flight_tokens,
        )
        in_flight[self._seq] = (now, tokens)
        self._in_flight_tokens += tokens
        return ticket

    def _answered(self, seq: int) -> None:
        entry = self._in_flight.pop(seq, None)
        if entry is not None:
            self._in_flight_tokens -= entry[1]

    # -- feedback from responses ---------------------------------------------------

    def reconcile(self, ticket: Ticket, actual_tokens: int) -> None:
        """Replace the ticket's token estimate with what the provider reported.

        A refund never lifts the level above capacity; an undercharge is taken now.
        Does nothing when the token level was already synced (`observe`) from this
        ticket's report or a later one, since the provider's count included it.
        """
        bucket = self._tokens
        if bucket is None or ticket.seq <= bucket.synced_seq:
            return
        self._refill(self._clock.now())
        self._credit(bucket, ticket.tokens - actual_tokens)

    def release(self, ticket: Ticket) -> None:
        """Give back a ticket whose request was never sent (cancelled before dispatch)."""
        self._answered(ticket.seq)
        self._refill(self._clock.now())
        if self._requests is not None:
            self._credit(self._requests, 1.0)
        if self._tokens is not None:
            self._credit(self._tokens, float(ticket.tokens))

    @staticmethod
    def _credit(bucket: _Bucket, amount: float) -> None:
        if amount >= 0:
            # A refund fills up to capacity but never lowers a level already above it.
            bucket.level = max(bucket.level, min(bucket.level + amount, bucket.capacity))
        else:
            # A debt never exceeds a minute's worth: providers count usage over windows of
            # a minute at most, so more could only stall the run for no benefit.
            bucket.level = max(bucket.level + amount, min(bucket.level, -60.0 * bucket.rate))

    def observe(self, ticket: Ticket, info: RateLimitInfo) -> None:
        """Sync the buckets with the provider's rate-limit headers from `ticket`'s response.

        Call it for every response, with an empty `RateLimitInfo` when there were no
        headers: it also marks the request answered. Reports from tickets older than
        one already applied are ignored (responses arrive out of order), and so are
        dimensions we do not limit.

        The provider's `remaining` was true when this request arrived. Requests may
        reach the provider in another order than we sent them, so two estimates of
        what it has now are kept apart (tokens likewise, with reserved tokens):

        Raising, to spend a burst the provider reports. Since this request arrived the
        provider may have counted every request sent after it, and every one sent
        before it whose response we had not seen when it left: ``low = remaining −
        (sent since) − ticket.earlier_in_flight``, a level it surely still has
        (ignoring its refill), capped at the reported limit. When ``low − capacity`` is
        above our level we raise ours to it, even far past our own capacity: that is
        how a minute of burst gets spent. One burst stays unspent on the provider's
        side so that requests arriving early or late through network jitter are not
        refused.

        Lowering, to prevent a 429 when the provider has less than we think:
        ``high = remaining − (sent since) + rate × (now − ticket.dispatched_s)``, which
        credits the provider's refill since dispatch (without it, a response that took
        seconds would count seconds of our own paced traffic against the provider and
        stall a job running exactly at its limit). When `high` is below our level we
        lower ours to it, but not below zero: reordered arrivals can make `high` far too
        low, and a deeper debt is left to the 429 and `pause`.
        """
        self._answered(ticket.seq)
        if info.empty:
            return
        now = self._clock.now()
        self._refill(now)
        elapsed = max(0.0, now - ticket.dispatched_s)
        if self._requests is not None and info.remaining_requests is not None:
            since = self._seq - ticket.seq
            self._sync(
                self._requests,
                ticket.seq,
                self._seq,
                low=info.remaining_requests - since - ticket.earlier_in_flight,
                high=info.remaining_requests - since,
                limit=info.limit_requests,
                elapsed=elapsed,
            )
        if self._tokens is not None and info.remaining_tokens is not None:
            since = self._tokens_dispatched - ticket.tokens_dispatched
            self._sync(
                self._tokens,
                ticket.seq,
                self._seq,
                low=info.remaining_tokens - since - ticket.earlier_in_flight_tokens,
                high=info.remaining_tokens - since,
                limit=info.limit_tokens,
                elapsed=elapsed,
            )

    @staticmethod
    def _sync(
        bucket: _Bucket,
        seq: int,
        dispatched: int,
        *,
        low: float,
        high: float,
        limit: int | None,
        elapsed: float,
    ) -> None:
        if seq <= bucket.synced_seq:
            return
        bucket.synced_seq = seq
        refill_rate = bucket.rate
        if limit is not None:
            low = min(low, float(limit))
            refill_rate = min(refill_rate, limit / 60.0)
        if low - bucket.capacity > bucket.level:
            bucket.level = low - bucket.capacity
            return
        high += refill_rate * elapsed
        if limit is not None:
            high = min(high, float(limit))
        if high < bucket.level:
            bucket.level = max(high, min(bucket.level, 0.0))
            bucket.lowered_at_seq = dispatched

    def pause(self, seconds: float) -> None:
        """Hold every waiter until `seconds` from now, after a 429.

        A pause in force is extended, never shortened. Both levels drop to at most
        zero and refill only once the pause ends, so no saved burst fires the moment
        it does. Reports from requests dispatched before now are then treated as
        stale: the 429 is newer news than any of them.
        """
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        now = self._clock.now()
        self._refill(now)
        already_paused = now < self._paused_until
        if self._adaptive and not already_paused:
            # One slow-down per episode: the 429s of one burst arrive inside its pause.
            self._slow.cut(now)
        self._paused_until = max(self._paused_until, now + seconds)
        if self._adaptive:
            self._slow.hold_until(self._paused_until)
        self._pauses += 1
        self._seq_at_pause = self._seq
        for bucket in (self._requests, self._tokens):
            if bucket is not None:
                bucket.level = min(bucket.level, 0.0)
                bucket.lowered_at_seq = self._seq
                bucket.updated = max(bucket.updated, self._paused_until)
                bucket.synced_seq = max(bucket.synced_seq, self._seq)
        logger.debug("limiter %s paused until %.3f", self.name, self._paused_until)

    # -- configuration -------------------------------------------------------------

    def set_limits(
        self, requests_per_minute: float | None, tokens_per_minute: float | None
    ) -> None:
        """Change the rates at run time.

        A dimension that becomes limited starts empty (we were sending unlimited, so
        the provider's budget is likely spent); one whose capacity shrinks keeps at
        most the new capacity. Call before `observe` for the same response.
        """
        now = self._clock.now()
        self._refill(now)
        self._requests = self._update_bucket(self._requests, requests_per_minute, 1.0, now)
        self._tokens = self._update_bucket(self._tokens, tokens_per_minute, 0.0, now)

    def _update_bucket(
        self, bucket: _Bucket | None, per_minute: float | None, minimum: float, now: float
    ) -> _Bucket | None:
        if bucket is None or per_minute is None:
            return self._new_bucket(per_minute, minimum, now, full=False)
        _check_rate(per_minute)
        old_capacity = bucket.capacity
        bucket.per_minute = per_minute
        if bucket.capacity < old_capacity:
            bucket.level = min(bucket.level, bucket.capacity)
        return bucket

    def _new_bucket(
        self, per_minute: float | None, minimum: float, now: float, *, full: bool
    ) -> _Bucket | None:
        if per_minute is None:
            return None
        _check_rate(per_minute)
        bucket = _Bucket(
            per_minute,
            self._burst_s,
            minimum,
            level=0.0,
            updated=max(now, self._paused_until),
            synced_seq=self._seq_at_pause,
        )
        if full:
            bucket.level = bucket.capacity
        return bucket

    # -- time ----------------------------------------------------------------------

    def _level_at(self, bucket: _Bucket, now: float) -> float:
        """The bucket's level at `now` after refilling, without changing it."""
        if now <= bucket.updated or bucket.level >= bucket.capacity:
            return bucket.level
        # From a bucket's last update on, the factor rises linearly then stays flat
        # (concave), so the trapezoid slightly undercounts the refill: the safe side.
        mean_factor = (self._slow.factor(bucket.updated) + self._slow.factor(now)) / 2.0
        gain = bucket.rate * (now - bucket.updated) * mean_factor
        return min(bucket.capacity, bucket.level + gain)

    def _refill(self, now: float) -> None:
        for bucket in (self._requests, self._tokens):
            if bucket is not None and now > bucket.updated:
                bucket.level = self._level_at(bucket, now)
                bucket.updated = now

    # -- observation ---------------------------------------------------------------

    @property
    def pauses(self) -> int:
        """How many times `pause` was called."""
        return self._pauses

    @property
    def tokens_per_minute(self) -> float | None:
        """The token rate in force (None: tokens are not limited, or not learned yet)."""
        return self._tokens.per_minute if self._tokens is not None else None

    def statistics(self) -> LimiterStats:
        """A frozen snapshot for the progress view; reading it changes nothing."""
        now = self._clock.now()
        req, tok = self._requests, self._tokens
        return LimiterStats(
            name=self.name,
            requests_per_minute=req.per_minute if req else None,
            tokens_per_minute=tok.per_minute if tok else None,
            request_level=self._level_at(req, now) if req else None,
            request_capacity=req.capacity if req else None,
            token_level=self._level_at(tok, now) if tok else None,
            token_capacity=tok.capacity if tok else None,
            rate_factor=self._slow.factor(now),
            paused_until=self._paused_until,
            pause_remaining_s=max(0.0, self._paused_until - now),
            acquired=self._seq,
            tokens_acquired=self._tokens_dispatched,
            pauses=self._pauses,
            waiting=self._waiting,
            waited_requests_s=self._waited_s[WAIT_REQUESTS],
            waited_tokens_s=self._waited_s[WAIT_TOKENS],
            waited_provider_s=self._waited_s[WAIT_PROVIDER],
        )


def _check_rate(per_minute: float) -> None:
    if not per_minute > 0:
        raise ValueError(f"a rate limit must be positive (or None for unlimited), got {per_minute}")
