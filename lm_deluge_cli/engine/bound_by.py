"""What holds a run back: the limit requests waited on most, read from statistics snapshots.

Each candidate counts wall-clock seconds during which it made a request wait: a limiter's
requests/min, tokens/min and the provider (a 429's pause and slow-down, or less room than
ours in its rate-limit headers), every concurrency slot sending while a request wanted
one, and the spending cap. The one that held requests back for the largest share of the
time binds, if that share is at least `BINDING_FRACTION`; otherwise nothing does and the
provider's answers set the pace. Views call `bound_by` on snapshots; nothing here
touches the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from lm_deluge_cli.engine.learning import FROM_HEADERS
from lm_deluge_cli.engine.limiter_values import RUN_LIMITER, LimiterStats
from lm_deluge_cli.engine.stats import RunStatistics

__all__ = [
    "BINDING_FRACTION",
    "CONCURRENCY",
    "COST_CAP",
    "PROVIDER",
    "REQUESTS",
    "TOKENS",
    "Bound",
    "bound_by",
    "where_to_raise",
]

# A limit binds when requests waited on it at least this share of the time.
BINDING_FRACTION = 0.5

# What `Bound.limit` names: the job's key for a limit the user sets, or "provider".
REQUESTS = "requests_per_minute"
TOKENS = "tokens_per_minute"
CONCURRENCY = "max_concurrent_requests"
COST_CAP = "max_cost"
PROVIDER = "provider"

_LABELS = {
    REQUESTS: "requests/min",
    TOKENS: "tokens/min",
    CONCURRENCY: "concurrency",
    COST_CAP: "the spending cap",
    PROVIDER: "the provider",
}


@dataclass(frozen=True, slots=True)
class Bound:
    """The limit that held the run back, and for which share of the time.

    `model` is set when the limit is a model's own (its [[models]] entry, or learned from
    its provider); `detail` says how much the limit allows and which flag or key lifts it.
    """

    limit: str
    model: str | None
    waited_fraction: float
    detail: str

    @property
    def label(self) -> str:
        """``tokens/min``, ``concurrency``, …; a model's own limit names the model."""
        label = _LABELS[self.limit]
        return f"{label} of {self.model}" if self.model and self.limit != PROVIDER else label

    def short(self) -> str:
        """``tokens/min 92%``, for a progress line."""
        return f"{self.label} {self.waited_fraction:.0%}"

    def describe(self) -> str:
        """One sentence for the summary."""
        return (
            f"held back by {self.label}: requests waited on it "
            f"{self.waited_fraction:.0%} of the time; {self.detail}"
        )

    def to_dict(self) -> dict[str, object]:
        """The ``bound_by`` field of the --json summary."""
        return {
            "limit": self.limit,
            "model": self.model,
            "waited_fraction": round(self.waited_fraction, 2),
            "detail": self.detail,
        }


def bound_by(
    now: RunStatistics,
    before: RunStatistics | None = None,
    *,
    threshold: float = BINDING_FRACTION,
) -> Bound | None:
    """What held requests back between `before` (the run's start if None) and `now`.

    None when no request was sent in between, or when nothing held them back for at least
    `threshold` of the time.
    """
    span = now.elapsed_s - (before.elapsed_s if before is not None else 0.0)
    requests = now.requests - (before.requests if before is not None else 0)
    if span <= 0 or requests <= 0:
        return None
    earlier = before.limiters if before is not None else ()
    # (waited seconds, limit, index of the limiter or -1)
    best: tuple[float, str, int] = (0.0, "", -1)
    for index, stats in enumerate(now.limiters):
        old = earlier[index] if index < len(earlier) else None
        for waited, limit in (
            (stats.waited_requests_s - (old.waited_requests_s if old else 0.0), REQUESTS),
            (stats.waited_tokens_s - (old.waited_tokens_s if old else 0.0), TOKENS),
            (stats.waited_provider_s - (old.waited_provider_s if old else 0.0), PROVIDER),
        ):
            if waited > best[0]:
                best = (waited, limit, index)
    for waited, limit in (
        (now.slots_full_s - (before.slots_full_s if before is not None else 0.0), CONCURRENCY),
        (now.cost_cap_waited_s - (before.cost_cap_waited_s if before else 0.0), COST_CAP),
    ):
        if waited > best[0]:
            best = (waited, limit, -1)
    waited, limit, index = best
    fraction = min(1.0, waited / span)
    if fraction < threshold:
        return None
    window = _Window(now, before, span, requests)
    if index < 0:
        return Bound(limit, None, fraction, window.detail(limit))
    stats = now.limiters[index]
    old = earlier[index] if index < len(earlier) else None
    model = None if stats.name == RUN_LIMITER else stats.name
    learned = now.learned_limits.get(stats.name) if model is not None else None
    if learned is not None and learned.source == FROM_HEADERS and limit in learned.auto:
        # A limit learned from the provider's own headers: the provider's, not ours.
        detail = (
            f"{model}'s limit as its provider reports it ({learned.describe()}); "
            "only the provider raises it (a higher tier), or more models share the work"
        )
        return Bound(PROVIDER, model, fraction, detail)
    return Bound(limit, model, fraction, window.limiter_detail(limit, stats, old, model))


@dataclass(frozen=True, slots=True)
class _Window:
    """The snapshots a Bound's detail is worked out from."""

    now: RunStatistics
    before: RunStatistics | None
    span: float
    requests: int

    def _rate(self) -> str:
        return f"the run sent ~{self.requests * 60 / self.span:,.0f} requests/min"

    def detail(self, limit: str) -> str:
        now = self.now
        if limit == CONCURRENCY:
            return (
                f"all {now.max_concurrent_requests:,} slots were sending while more requests "
                f"waited ({self._rate()}); raise --max-concurrent-requests "
                "(max_concurrent_requests under [limits])"
            )
        cap = f"${now.max_cost_usd:.4f}" if now.max_cost_usd is not None else "the cap"
        return (
            f"a request waits while those in flight could spend the rest of {cap} (each "
            "counts its most possible cost, all of max_new_tokens included); raise --max-cost "
            "or lower --max-new-tokens"
        )

    def limiter_detail(
        self, limit: str, stats: LimiterStats, old: LimiterStats | None, model: str | None
    ) -> str:
        now, before = self.now, self.before
        if limit == PROVIDER:
            refused = now.rate_limited - (before.rate_limited if before is not None else 0)
            whose = f"{model}'s provider" if model else "the provider"
            why = (
                f"{refused:,} answers were 429 (the run pauses, then eases back)"
                if refused
                else "its rate-limit headers reported less room than the limits here"
            )
            return f"{whose} allows no more: {why}; {self._rate()}"
        learned = now.learned_limits.get(stats.name) if model is not None else None
        if learned is not None and limit in learned.auto:
            # "auto" without headers: the cautious default applies.
            return (
                f"{model} sends no rate-limit headers, so auto paces it at the default "
                f"{learned.describe()}; set a number instead of auto if the provider allows more"
            )
        if limit == REQUESTS:
            return (
                f"{stats.requests_per_minute or 0:,.0f} requests/min; {self._rate()}; "
                f"raise {where_to_raise(REQUESTS, model)} if the provider allows more"
            )
        acquired = stats.acquired - (old.acquired if old is not None else 0)
        reserved = stats.tokens_acquired - (old.tokens_acquired if old is not None else 0)
        used = now.input_tokens + now.output_tokens
        if before is not None:
            used -= before.input_tokens + before.output_tokens
        per_request = f"~{reserved / acquired:,.0f}" if acquired else "its estimate"
        used_part = f" though answers used ~{used / self.requests:,.0f}" if used else ""
        return (
            f"{stats.tokens_per_minute or 0:,.0f} tokens/min, and each request holds "
            f"{per_request} of them until it is answered (its prompt plus all of "
            f"max_new_tokens){used_part}; {self._rate()}; raise {where_to_raise(TOKENS, model)} "
            "or lower --max-new-tokens (max_new_tokens under [sampling])"
        )


def where_to_raise(limit: str, model: str | None) -> str:
    """Where a rate is set (`limit` is REQUESTS or TOKENS): the flag and the job's key for
    the run's (`model` None), else the model's [[models]] entry."""
    key = f"max_{limit}"
    if model is not None:
        return f"{key} in {model}'s [[models]] entry"
    return f"--{key.replace('_', '-')} ({key} under [limits])"
