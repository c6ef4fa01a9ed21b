"""Retry policy tables: backoff, and the decision per error class and attempt."""

from __future__ import annotations

import random

import pytest

from lm_deluge_cli.engine.retry import (
    DEFAULT_RATE_LIMIT_PAUSE_S,
    MAX_SERVER_WAIT_S,
    RetryDecision,
    backoff_delay,
    decide,
    pause_for_rate_limit,
)
from lm_deluge_cli.errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APITimeoutError,
    RateLimitError,
    status_error_class,
)


class FixedRandom(random.Random):
    """A Random whose random() always returns one value."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    ("attempt", "no_jitter", "full_jitter"),
    [
        (1, 0.5, 0.375),
        (2, 1.0, 0.75),
        (3, 2.0, 1.5),
        (4, 4.0, 3.0),
        (5, 8.0, 6.0),
        (6, 8.0, 6.0),
        (50, 8.0, 6.0),
        (10_000, 8.0, 6.0),
    ],
)
def test_backoff_delay(attempt: int, no_jitter: float, full_jitter: float) -> None:
    assert backoff_delay(attempt, FixedRandom(0.0)) == pytest.approx(no_jitter)
    assert backoff_delay(attempt, FixedRandom(1.0)) == pytest.approx(full_jitter)


def test_backoff_jitter_stays_in_range() -> None:
    rng = random.Random(1234)
    delays = [backoff_delay(3, rng) for _ in range(2000)]
    assert min(delays) >= 1.5
    assert max(delays) <= 2.0
    # Jitter actually spreads retries out.
    assert max(delays) - min(delays) > 0.4


def test_backoff_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError):
        backoff_delay(0, random.Random(0))


def status_error(status: int, retry_after: float | None = None) -> APIError:
    return status_error_class(status)("failed", status_code=status, retry_after=retry_after)


# (status, retryable)
STATUS_CLASSES = [
    (400, False),
    (401, False),
    (403, False),
    (404, False),
    (408, True),
    (409, True),
    (422, False),
    (429, True),
    (500, True),
    (502, True),
    (503, True),
    (529, True),
]


@pytest.mark.parametrize(("status", "retryable"), STATUS_CLASSES)
@pytest.mark.parametrize("attempt", [1, 2, 4, 5])
def test_decide_by_status_and_attempt(status: int, retryable: bool, attempt: int) -> None:
    decision = decide(status_error(status), attempt, 5, FixedRandom(0.0))
    assert isinstance(decision, RetryDecision)
    if retryable and attempt < 5:
        assert decision.retry
        assert decision.delay_s == pytest.approx(min(0.5 * 2 ** (attempt - 1), 8.0))
        assert decision.reason.startswith(f"{status} ")
        assert "backoff" in decision.reason
    else:
        assert not decision.retry
        assert decision.delay_s == 0.0
    if not retryable:
        assert "not retryable" in decision.reason
    elif attempt == 5:
        assert "gave up after 5 attempts" in decision.reason


@pytest.mark.parametrize(
    ("error", "label"),
    [
        (APIConnectionError("reset"), "connection_error"),
        (APITimeoutError("slow"), "timeout"),
        (APIResponseValidationError("bad json", status_code=200), "200 invalid_response"),
    ],
)
def test_decide_retries_errors_without_error_status(error: APIError, label: str) -> None:
    decision = decide(error, 1, 3, FixedRandom(0.0))
    assert decision == RetryDecision(True, 0.5, f"{label}; backoff 0.50s (attempt 1 of 3)")


@pytest.mark.parametrize(
    ("retry_after", "expected_delay", "obeyed"),
    [
        (2.0, 2.0, True),
        (0.0, 0.0, True),
        (MAX_SERVER_WAIT_S, MAX_SERVER_WAIT_S, True),
        # Too long to obey: back off instead (attempt 2 → 1 s with no jitter).
        (MAX_SERVER_WAIT_S + 1, 1.0, False),
        (3600.0, 1.0, False),
        (-1.0, 1.0, False),
        (None, 1.0, False),
    ],
)
def test_decide_obeys_a_sane_server_wait(
    retry_after: float | None, expected_delay: float, obeyed: bool
) -> None:
    decision = decide(status_error(429, retry_after), 2, 5, FixedRandom(0.0))
    assert decision.retry
    assert decision.delay_s == pytest.approx(expected_delay)
    if obeyed:
        assert decision.reason == f"429 rate_limit; server asked {retry_after:.1f}s"
    else:
        assert "backoff" in decision.reason


def test_decide_does_not_obey_wait_on_last_attempt() -> None:
    assert not decide(status_error(429, 1.0), 3, 3, FixedRandom(0.0)).retry


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (None, DEFAULT_RATE_LIMIT_PAUSE_S),
        (2.5, 2.5),
        (0.0, 0.0),
        (-4.0, DEFAULT_RATE_LIMIT_PAUSE_S),
        (600.0, MAX_SERVER_WAIT_S),
    ],
)
def test_pause_for_rate_limit(retry_after: float | None, expected: float) -> None:
    error = RateLimitError("slow down", status_code=429, retry_after=retry_after)
    assert pause_for_rate_limit(error) == expected
