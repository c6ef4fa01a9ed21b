"""The retry policy as small pure functions: server-given waits, backoff, and the decision."""

from __future__ import annotations

import random
from dataclasses import dataclass

from lm_deluge_cli.errors import APIError, APIStatusError, RateLimitError

__all__ = [
    "DEFAULT_RATE_LIMIT_PAUSE_S",
    "MAX_SERVER_WAIT_S",
    "RetryDecision",
    "backoff_delay",
    "decide",
    "pause_for_rate_limit",
]

# A server-given wait longer than this is not obeyed as is: we back off instead, so a
# bogus "retry in an hour" cannot stall the whole run.
MAX_SERVER_WAIT_S = 60.0
# How long the shared limiter pauses on a 429 that does not say how long to wait.
DEFAULT_RATE_LIMIT_PAUSE_S = 1.0
# Backoff as the OpenAI and Anthropic SDKs do it: 0.5 s doubling, capped at 8 s, and
# shortened by up to a quarter at random so retries of one burst spread out.
INITIAL_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
_JITTER = 0.25


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """The wait before retry number `attempt` (1 = the first retry), with jitter."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    # The exponent is clamped so that huge attempt numbers cannot overflow a float.
    base = min(INITIAL_BACKOFF_S * 2.0 ** min(attempt - 1, 32), MAX_BACKOFF_S)
    return base * (1.0 - _JITTER * rng.random())


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """Whether to try a failed request again, after how long, and why (for logs)."""

    retry: bool
    delay_s: float
    reason: str


def _label(error: APIError) -> str:
    if error.status_code is not None:
        return f"{error.status_code} {error.type}"
    return error.type


def decide(error: APIError, attempt: int, max_attempts: int, rng: random.Random) -> RetryDecision:
    """Decide on a retry after `attempt` attempts (counting from 1) out of `max_attempts`.

    Errors that are not retryable, and the last attempt, are final. Otherwise a
    server-given wait between 0 and `MAX_SERVER_WAIT_S` is obeyed, and anything else
    backs off exponentially with jitter.
    """
    label = _label(error)
    if not error.retryable:
        return RetryDecision(False, 0.0, f"{label}; not retryable")
    if attempt >= max_attempts:
        return RetryDecision(False, 0.0, f"{label}; gave up after {attempt} attempts")
    retry_after = error.retry_after if isinstance(error, APIStatusError) else None
    if retry_after is not None and 0.0 <= retry_after <= MAX_SERVER_WAIT_S:
        return RetryDecision(True, retry_after, f"{label}; server asked {retry_after:.1f}s")
    delay = backoff_delay(attempt, rng)
    reason = f"{label}; backoff {delay:.2f}s (attempt {attempt} of {max_attempts})"
    if retry_after is not None and retry_after > MAX_SERVER_WAIT_S:
        reason += f"; server asked {retry_after:.0f}s, above the {MAX_SERVER_WAIT_S:.0f}s cap"
    return RetryDecision(True, delay, reason)


def pause_for_rate_limit(error: RateLimitError) -> float:
    """How long the shared limiter should pause on this 429.

    The server's retry-after when given (at most `MAX_SERVER_WAIT_S`), else
    `DEFAULT_RATE_LIMIT_PAUSE_S`.
    """
    if error.retry_after is not None and error.retry_after >= 0:
        return min(error.retry_after, MAX_SERVER_WAIT_S)
    return DEFAULT_RATE_LIMIT_PAUSE_S
