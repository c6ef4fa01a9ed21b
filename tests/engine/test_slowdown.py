"""The slow-down after a 429: the factor held through the pause, cut by episode, recovering."""

from __future__ import annotations

import pytest

from lm_deluge_cli.engine.slowdown import (
    SLOWDOWN_FACTOR,
    SLOWDOWN_FLOOR,
    SLOWDOWN_RECOVERY_PER_S,
    SlowDown,
)


def test_without_a_cut_there_is_no_slowdown() -> None:
    slow = SlowDown()
    assert slow.factor(0.0) == slow.factor(1e9) == 1.0
    slow.hold_until(5.0)  # a pause without a cut (adaptive off) changes nothing
    assert slow.factor(0.0) == slow.factor(10.0) == 1.0


@pytest.mark.parametrize(
    ("t", "factor"),
    [
        (0.0, SLOWDOWN_FACTOR),
        (2.0, SLOWDOWN_FACTOR),  # held until the pause ends
        (2.5, SLOWDOWN_FACTOR + SLOWDOWN_RECOVERY_PER_S * 0.5),
        (7.0, SLOWDOWN_FACTOR + SLOWDOWN_RECOVERY_PER_S * 5.0),
        (12.0, 1.0),  # 10 s after a single cut
        (100.0, 1.0),
    ],
)
def test_one_cut_holds_through_the_pause_then_recovers(t: float, factor: float) -> None:
    slow = SlowDown()
    slow.cut(0.0)
    slow.hold_until(2.0)
    assert slow.factor(t) == pytest.approx(factor)


def test_cuts_compound_down_to_the_floor_and_recover_additively() -> None:
    slow = SlowDown()
    t, factors = 0.0, []
    for _ in range(30):
        # A 429, its pause of 0.1 s, and 0.1 s more before the next.
        slow.cut(t)
        slow.hold_until(t + 0.1)
        t += 0.2
        factors.append(slow.factor(t))
    # 0.1 s after each pause ends the factor has recovered by 0.002.
    assert factors[0] == pytest.approx(SLOWDOWN_FACTOR + SLOWDOWN_RECOVERY_PER_S * 0.1)
    assert factors[1] < factors[0]
    assert min(factors) >= SLOWDOWN_FLOOR
    assert factors[-1] == pytest.approx(SLOWDOWN_FLOOR + SLOWDOWN_RECOVERY_PER_S * 0.1)
    # A deep cut takes longer to recover than a single one: additive increase.
    assert slow.factor(t + 10.0) == pytest.approx(SLOWDOWN_FLOOR + 0.2 + 0.002)
