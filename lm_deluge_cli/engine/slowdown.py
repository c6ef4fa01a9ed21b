"""The slow-down after a 429: the factor a limiter's rates are scaled by, cut once for each
episode of 429s and recovering once its pause ends (shared_budget.lua keeps the same curve
in Redis, with these constants)."""

from __future__ import annotations

__all__ = ["SLOWDOWN_FACTOR", "SLOWDOWN_FLOOR", "SLOWDOWN_RECOVERY_PER_S", "SlowDown"]

# After a 429 the effective rate drops to this fraction of the current one…
SLOWDOWN_FACTOR = 0.8
# …never below this fraction of the configured rate…
SLOWDOWN_FLOOR = 0.05
# …and climbs back by this fraction of the configured rate per second without a 429:
# 10 s after a single cut, longer after repeated ones, so a rate set far above what
# the provider allows settles near it instead of storming back every few seconds.
SLOWDOWN_RECOVERY_PER_S = 0.02


class SlowDown:
    """The factor on the configured rates over time.

    1.0 until the first `cut`. A cut takes the factor in force down by `SLOWDOWN_FACTOR`
    (never below `SLOWDOWN_FLOOR`), so cuts compound while 429s keep coming; the factor
    holds until the time given to `hold_until` (the end of the pause in force), then climbs
    back by `SLOWDOWN_RECOVERY_PER_S` a second to 1.0.
    """

    __slots__ = ("_factor", "_since")

    def __init__(self) -> None:
        # The factor in force until `_since`, then recovering.
        self._factor = 1.0
        self._since: float | None = None

    def factor(self, t: float) -> float:
        """The multiplier at time `t` (1.0 when no 429 was seen lately)."""
        if self._since is None:
            return 1.0
        elapsed = t - self._since
        if elapsed <= 0:
            return self._factor
        return min(1.0, self._factor + SLOWDOWN_RECOVERY_PER_S * elapsed)

    def cut(self, now: float) -> None:
        """Slow down for a new episode of 429s, from the factor in force at `now`."""
        self._factor = max(SLOWDOWN_FLOOR, SLOWDOWN_FACTOR * self.factor(now))

    def hold_until(self, t: float) -> None:
        """Keep the factor until `t` and recover only from then on."""
        self._since = t
