"""Run counters, and the frozen snapshot that progress views and summaries read."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from lm_deluge_cli.engine.learning import LearnedLimits
from lm_deluge_cli.engine.limiter_values import LimiterStats

if TYPE_CHECKING:
    from lm_deluge_cli.engine.budget import SpendCap
    from lm_deluge_cli.engine.limiter_chain import Limiter

__all__ = ["BIG_LINE_S", "BigLine", "BigLineNote", "RunStatistics", "RunStats"]

# A request holding at least this many seconds of a tokens/min budget is named in the
# progress: the lines behind it wait about that long, long enough for the progress's rate
# window (15 s) to show 0 requests/min and the ETA to grow with no other sign why.
BIG_LINE_S = 15.0


@dataclass(frozen=True, slots=True)
class BigLine:
    """A line whose request takes a large share of a tokens/min budget, as a snapshot shows
    it. `model` names a model's own limit (None: the run's). Until it is sent (`sent`
    False) it waits for the budget; once sent, the lines behind it wait `left_s` more
    while the limiter makes up for it."""

    line: int
    tokens: int
    tokens_per_minute: float
    model: str | None
    sent: bool
    left_s: float


@dataclass(slots=True)
class BigLineNote:
    """The sender's note of a big line (see BigLine); `sent_at` (time.monotonic) once sent."""

    line: int
    tokens: int
    tokens_per_minute: float
    model: str | None
    sent_at: float | None = None

    def at(self, now: float) -> BigLine | None:
        """The line as a snapshot at `now` shows it; None once its share is made up for."""
        share_s = self.tokens * 60.0 / self.tokens_per_minute
        if self.sent_at is None:
            return BigLine(
                self.line, self.tokens, self.tokens_per_minute, self.model, False, share_s
            )
        left = self.sent_at + share_s - now
        if left <= 0:
            return None
        return BigLine(self.line, self.tokens, self.tokens_per_minute, self.model, True, left)


@dataclass(frozen=True, slots=True)
class RunStatistics:
    """A moment's view of a run. Views read it; nothing mutates it."""

    total: int | None
    total_is_estimate: bool
    ok: int
    failed: int
    skipped: int
    in_flight: int
    requests: int
    retries: int
    rate_limited: int
    # Answered from the cache, and answered by an identical line's request (both also `ok`).
    cached: int
    deduplicated: int
    # Answered by a tool without any request (also `ok`): translate's pass-through.
    passed_through: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cost_known: bool
    elapsed_s: float
    dead_models: tuple[str, ...]
    # Per model name, what its "auto" limits became (empty until learned).
    learned_limits: Mapping[str, LearnedLimits] = field(default_factory=dict)
    # Failed records by error type (rate_limit, invalid_input, …).
    errors_by_type: Mapping[str, int] = field(default_factory=dict)
    # The spending cap, if any, and what earlier runs on the same output spent.
    max_cost_usd: float | None = None
    earlier_cost_usd: float = 0.0
    cost_cap_reached: bool = False
    # Of input_tokens: read from the provider's prompt cache, and written to it.
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    # What can hold requests back (engine/bound_by.py reads these): each limiter's snapshot
    # (the run's, and each model's own), the concurrency limit and the seconds every slot
    # was sending while another request waited for one, and the seconds a request waited
    # on the spending cap.
    limiters: tuple[LimiterStats, ...] = ()
    max_concurrent_requests: int = 0
    slots_full_s: float = 0.0
    cost_cap_waited_s: float = 0.0
    # The latest line whose request holds BIG_LINE_S or more of a tokens/min budget, while
    # it waits to be sent or the lines behind it wait for it (None: no such line).
    big_line: BigLine | None = None
    # Of `skipped`: lines whose record from an earlier run is an error (a bad input line
    # reported then); the output's final state counts them as failed.
    skipped_failed: int = 0

    @property
    def cost_toward_cap_usd(self) -> float:
        """What the output has cost so far, earlier runs included."""
        return self.earlier_cost_usd + self.cost_usd

    @property
    def done(self) -> int:
        """Records written this run."""
        return self.ok + self.failed

    @property
    def remaining(self) -> int | None:
        if self.total is None:
            return None
        return max(self.total - self.skipped - self.done, 0)


@dataclass(slots=True)
class RunStats:
    """The engine's own mutable counters (one event loop, so no locking)."""

    total: int | None = None
    total_is_estimate: bool = True
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    skipped_failed: int = 0
    in_flight: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    cached: int = 0
    deduplicated: int = 0
    passed_through: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True
    dead_models: list[str] = field(default_factory=list)
    learned_limits: dict[str, LearnedLimits] = field(default_factory=dict)
    errors_by_type: dict[str, int] = field(default_factory=dict)
    max_cost_usd: float | None = None
    earlier_cost_usd: float = 0.0
    cost_cap_reached: bool = False
    started: float = field(default_factory=time.monotonic)
    # What can hold requests back, read at each snapshot; the sender adds up `slots_full_s`
    # (time.monotonic) while every one of `max_concurrent_requests` slots is sending and
    # `slot_waiters` requests wait for one.
    limiters: list[Limiter] = field(default_factory=list)
    spend_cap: SpendCap | None = None
    max_concurrent_requests: int = 0
    slot_waiters: int = 0
    slots_full_since: float | None = None
    slots_full_s: float = 0.0
    # Set by the sender for the latest big line (see BigLine).
    big_line: BigLineNote | None = None

    def note_big_line(
        self, line: int, tokens: int, tokens_per_minute: float, model: str | None
    ) -> BigLineNote | None:
        """Note a request about to wait for `tokens` of a `tokens_per_minute` budget when it
        holds BIG_LINE_S or more of it (it becomes the snapshots' big line); else None."""
        if tokens * 60.0 / tokens_per_minute < BIG_LINE_S:
            return None
        note = self.big_line = BigLineNote(line, tokens, tokens_per_minute, model)
        return note

    def drop_big_line(self, note: BigLineNote | None) -> None:
        """Forget `note` if it was never sent (the run stopped first)."""
        if note is not None and note.sent_at is None and self.big_line is note:
            self.big_line = None

    def watch(self, limiter: Limiter) -> None:
        """Read `limiter`'s statistics into every snapshot (once, however often it is given)."""
        if not any(known is limiter for known in self.limiters):
            self.limiters.append(limiter)

    def snapshot(self) -> RunStatistics:
        now = time.monotonic()
        slots_full_s = self.slots_full_s
        if self.slots_full_since is not None:
            slots_full_s += now - self.slots_full_since
        return RunStatistics(
            total=self.total,
            total_is_estimate=self.total_is_estimate,
            ok=self.ok,
            failed=self.failed,
            skipped=self.skipped,
            in_flight=self.in_flight,
            requests=self.requests,
            retries=self.retries,
            rate_limited=self.rate_limited,
            cached=self.cached,
            deduplicated=self.deduplicated,
            passed_through=self.passed_through,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            cost_usd=self.cost_usd,
            cost_known=self.cost_known,
            elapsed_s=now - self.started,
            dead_models=tuple(self.dead_models),
            # A read-only copy: views must not see (or make) later changes.
            learned_limits=MappingProxyType(dict(self.learned_limits)),
            errors_by_type=MappingProxyType(dict(self.errors_by_type)),
            max_cost_usd=self.max_cost_usd,
            earlier_cost_usd=self.earlier_cost_usd,
            cost_cap_reached=self.cost_cap_reached,
            limiters=tuple(limiter.statistics() for limiter in self.limiters),
            max_concurrent_requests=self.max_concurrent_requests,
            slots_full_s=slots_full_s,
            cost_cap_waited_s=self.spend_cap.waited_s if self.spend_cap is not None else 0.0,
            big_line=self.big_line.at(now) if self.big_line is not None else None,
            skipped_failed=self.skipped_failed,
        )
