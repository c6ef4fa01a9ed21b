"""A rate limit as the mock provider keeps it: a bucket holding some seconds of its
per-minute rate, refilled continuously on the simulator's clock."""

from __future__ import annotations

import math

from lm_deluge_cli.mock.formats.base import LimitKind, LimitState

__all__ = ["EPSILON", "Bucket"]

EPSILON = 1e-9  # float slack, so a bucket refilled to 0.9999999999 can still pay 1


class Bucket:
    """One limit: holds ``burst_s`` seconds of its per-minute rate, refilled continuously."""

    __slots__ = ("capacity", "kind", "level", "per_minute", "per_second", "updated")

    def __init__(self, kind: LimitKind, per_minute: float, burst_s: float, now: float) -> None:
        self.kind: LimitKind = kind
        self.per_minute = per_minute
        self.per_second = per_minute / 60.0
        self.capacity = self.per_second * burst_s
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        if now > self.updated:
            elapsed = now - self.updated
            self.level = min(self.capacity, self.level + elapsed * self.per_second)
            self.updated = now

    def wait_s(self, cost: float) -> float:
        # A cost bigger than the bucket is admitted when the bucket is full (it then goes
        # negative), so the long-run rate still holds without refusing it forever.
        return max(0.0, (min(cost, self.capacity) - self.level) / self.per_second)

    def charge(self, cost: float) -> None:
        self.level = max(self.level - cost, -self.per_minute)

    def state(self) -> LimitState:
        return LimitState(
            kind=self.kind,
            per_minute=self.per_minute,
            remaining=max(0, math.floor(self.level + EPSILON)),
            reset_s=(self.capacity - self.level) / self.per_second,
        )
