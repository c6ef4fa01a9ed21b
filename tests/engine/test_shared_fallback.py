"""The shared limiter's fallback: a process cut off from Redis paces alone at its share."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from lm_deluge_cli.engine.shared_fallback import fallback_limiter, fallback_share

if TYPE_CHECKING:
    from .conftest import FakeClock


@pytest.mark.parametrize(("live", "share"), [(0, 2), (1, 2), (2, 2), (3, 3), (10, 10)])
def test_fallback_share(live: int, share: int) -> None:
    assert fallback_share(live) == share


def test_the_fallback_takes_its_share_of_the_slowed_limits(clock: FakeClock) -> None:
    limiter = fallback_limiter(
        1200.0,
        None,
        share=3,
        rate_factor=0.5,
        pause_s=2.0,
        burst_s=0.5,
        adaptive=False,
        name="run",
        clock=clock,
    )
    stats = limiter.statistics()
    assert (stats.name, stats.requests_per_minute, stats.tokens_per_minute) == ("run", 200.0, None)
    # Paused, on the clock it was given, for what was left of the shared pause.
    assert stats.paused_until == 2.0
    clock.advance(2.0)
    assert limiter.statistics().pause_remaining_s == 0.0


def test_without_a_pause_left_the_fallback_starts_at_once(clock: FakeClock) -> None:
    limiter = fallback_limiter(
        None,
        600.0,
        share=2,
        rate_factor=1.0,
        pause_s=-0.5,  # the shared pause ended before Redis went away
        burst_s=0.5,
        adaptive=True,
        name="",
        clock=clock,
    )
    stats = limiter.statistics()
    assert (stats.tokens_per_minute, stats.pauses, stats.rate_factor) == (300.0, 0, 1.0)
