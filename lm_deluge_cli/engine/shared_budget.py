"""The shared rate limiter's budget in Redis: its keys, the Lua script that takes one step of
it (shared_budget.lua), and the client that runs the script.

The budget lives in the hash ``lm-deluge:limiter:{KEY}:state``. One script call refills both
buckets, applies queued credits and a pause, either charges a request (replying 0) or
replies how long until its cost is covered, and counts the processes alive; it reads the
time with Redis's ``TIME``, so machines whose clocks disagree still agree (a test may give
the budget the time of its own clock instead). The rates are the ones passed in each call,
so when processes disagree the budget follows whichever asked last. Each process registers
in the sorted set ``lm-deluge:limiter:{KEY}:processes`` (score: Redis's time) when it
heartbeats. The braces make ``KEY`` a Redis Cluster hash tag, so the state and the process
set live on one node.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import redis.asyncio as aioredis

from lm_deluge_cli.engine.limiter_values import WAIT_PROVIDER, WAIT_REQUESTS, WAIT_TOKENS
from lm_deluge_cli.engine.slowdown import SLOWDOWN_FACTOR, SLOWDOWN_FLOOR, SLOWDOWN_RECOVERY_PER_S
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.redaction import redact_url, scrub, url_secrets
from lm_deluge_cli.redis_client import open_client

__all__ = ["KEY_PREFIX", "KEY_TTL_S", "NOTHING_SEEN", "BudgetReply", "BudgetTerms", "RedisBudget"]

KEY_PREFIX = "lm-deluge:limiter:"
# A budget nobody used for this long is dropped; it would be full again by then anyway.
KEY_TTL_S = 3600.0

# One acquire and the background task use a connection each; a few spare for aclose.
_MAX_CONNECTIONS = 4

# The script's KEYS, ARGV and reply are described at its top.
_SCRIPT = resources.files("lm_deluge_cli.engine").joinpath("shared_budget.lua").read_text("utf-8")


@dataclass(frozen=True, slots=True)
class BudgetReply:
    """What one step of the script replied: the wait it asked for (0: charged, or nothing
    was asked), the levels (None: unlimited), the slow-down factor, the pause left, and how
    many processes are alive."""

    delay: float
    request_level: float | None
    token_level: float | None
    rate_factor: float
    pause_remaining_s: float
    processes: int


# What a limiter knows of the budget before its first step gets through.
NOTHING_SEEN = BudgetReply(0.0, None, None, 1.0, 0.0, 0)


@dataclass(frozen=True, slots=True)
class BudgetTerms:
    """What a process tells the budget at every step: the key it shares, the limits (None:
    unlimited), the seconds of burst, whether a 429 slows the budget down, and how long a
    heartbeat counts for. Processes should agree: the budget follows whichever stepped last.
    """

    key: str
    requests_per_minute: float | None
    tokens_per_minute: float | None
    burst_s: float
    adaptive: bool
    live_s: float

    def __post_init__(self) -> None:
        for rate in (self.requests_per_minute, self.tokens_per_minute):
            if rate is not None and not rate > 0:
                raise ValueError(f"a rate limit must be positive (or None), got {rate}")
        if self.burst_s <= 0:
            raise ValueError("burst_s must be positive")
        if not self.key:
            raise ValueError("the shared limiter's key must not be empty")

    @property
    def request_capacity(self) -> float | None:
        """The most requests the budget saves up (None: unlimited)."""
        return _capacity(self.requests_per_minute, self.burst_s, 1.0)

    @property
    def token_capacity(self) -> float | None:
        """The most tokens the budget saves up (None: unlimited)."""
        return _capacity(self.tokens_per_minute, self.burst_s, 0.0)

    def waits_on(self, reply: BudgetReply, tokens: int) -> int:
        """What the wait `reply` asked a request of `tokens` for is on (a WAIT_* index),
        from the levels it replied."""
        if reply.pause_remaining_s > 0 or reply.rate_factor < 1.0:
            return WAIT_PROVIDER
        requests_s = _deficit_s(
            reply.request_level, 1.0, self.requests_per_minute, self.request_capacity
        )
        tokens_s = _deficit_s(
            reply.token_level, float(tokens), self.tokens_per_minute, self.token_capacity
        )
        return WAIT_TOKENS if tokens_s > requests_s else WAIT_REQUESTS


class RedisBudget:
    """The budget under `terms.key` at one Redis server. Redis errors are raised as they
    come: the limiter decides what a failure means."""

    def __init__(self, client: aioredis.Redis, url: str, terms: BudgetTerms) -> None:
        self.terms = terms
        self.location = redact_url(url)
        self.secrets = url_secrets(url)
        self._client = client
        self._script = client.register_script(_SCRIPT)
        key = terms.key
        self._keys = [f"{KEY_PREFIX}{{{key}}}:state", f"{KEY_PREFIX}{{{key}}}:processes"]

    @classmethod
    def open(
        cls, url: str, terms: BudgetTerms, *, connect_timeout_s: float, timeout_s: float
    ) -> RedisBudget:
        """The budget at `url` (redis://, rediss:// or unix://), its client opened but not
        connected yet. A malformed URL raises ConfigError."""
        try:
            client = open_client(
                url,
                max_connections=_MAX_CONNECTIONS,
                connect_timeout_s=connect_timeout_s,
                timeout_s=timeout_s,
            )
        except ValueError as exc:
            reason = scrub(str(exc), url_secrets(url))
            # From None: the original message may quote the URL, password included.
            raise ConfigError(f"invalid Redis URL {redact_url(url)!r}: {reason}") from None
        return cls(client, url, terms)

    async def step(
        self,
        *,
        cost: int | None,
        credit_requests: float = 0.0,
        credit_tokens: float = 0.0,
        pause_s: float | None = None,
        member: str = "",
        now: float | None = None,
    ) -> BudgetReply:
        """One step: credit both buckets, pause for `pause_s` (None: no pause), charge a
        request of `cost` tokens (None: charge nothing), and heartbeat as `member` ("": no
        heartbeat). The budget steps at Redis's time, or at `now` when given: every process
        on the key must then give times of the same clock (tests do). Heartbeats are on
        Redis's time either way."""
        terms = self.terms
        args = (
            terms.requests_per_minute or 0,
            terms.tokens_per_minute or 0,
            terms.burst_s,
            -1 if cost is None else cost,
            credit_requests,
            credit_tokens,
            -1 if pause_s is None else pause_s,
            1 if terms.adaptive else 0,
            int(KEY_TTL_S * 1000),
            member,
            terms.live_s,
            SLOWDOWN_FACTOR,
            SLOWDOWN_FLOOR,
            SLOWDOWN_RECOVERY_PER_S,
            "" if now is None else now,
        )
        reply = await self._script(keys=self._keys, args=args)
        return BudgetReply(
            float(reply[0]),
            _level(reply[1]),
            _level(reply[2]),
            float(reply[3]),
            float(reply[4]),
            int(reply[5]),
        )

    async def leave(self, member: str) -> None:
        """Take `member` out of the process set."""
        await self._client.zrem(self._keys[1], member)

    async def aclose(self) -> None:
        """Close the client and its connections."""
        await self._client.aclose()


def _level(raw: bytes) -> float | None:
    return float(raw) if raw else None


def _capacity(per_minute: float | None, burst_s: float, minimum: float) -> float | None:
    return None if per_minute is None else max(minimum, per_minute / 60.0 * burst_s)


def _deficit_s(
    level: float | None, cost: float, per_minute: float | None, capacity: float | None
) -> float:
    """Seconds one bucket needs to refill to `cost` (at most its capacity) from `level`."""
    if per_minute is None or capacity is None or level is None:
        return 0.0
    return max(0.0, min(cost, capacity) - level) / (per_minute / 60.0)
