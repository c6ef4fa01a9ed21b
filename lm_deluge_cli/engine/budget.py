"""The spending cap (--max-cost): no request leaves that could take the spend past it.

Spend is what finished requests cost plus what requests in flight may cost at most
(their estimated input and every token of max_new_tokens), so the cap holds unless
the provider bills more input than estimated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import anyio

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.providers.registry import ModelInfo
from lm_deluge_cli.results import Usage

__all__ = ["SpendCap", "check_priced", "estimate_cost", "refuse_unpriced"]

# Float slack when comparing sums of small costs with the cap.
_EPS = 1e-12


def estimate_cost(
    model: ModelInfo, input_tokens: int, max_output_tokens: int, cache_write_ttl: str | None = None
) -> float | None:
    """The most one request may cost: every output token used, and every input token
    uncached, or written to the prompt cache (with `cache_write_ttl`, "5m" or "1h"),
    which costs more."""
    writes = input_tokens if cache_write_ttl is not None else 0
    return model.cost(
        Usage(
            input_tokens=input_tokens,
            output_tokens=max_output_tokens,
            cache_write_tokens=writes,
            cache_write_1h_tokens=writes if cache_write_ttl == "1h" else 0,
        )
    )


def check_priced(endpoints: Sequence[Endpoint]) -> None:
    """Raise ConfigError naming the models whose price is unknown: the cap cannot hold."""
    refuse_unpriced([e.name for e in endpoints if estimate_cost(e.model, 1, 1) is None])


def refuse_unpriced(unpriced: Sequence[str]) -> None:
    """Raise ConfigError naming these models, if any: the cap cannot hold without a price."""
    if unpriced:
        raise ConfigError(
            f"max_cost (--max-cost) cannot be enforced: the price of {', '.join(unpriced)} "
            "is not known (`lm-deluge models` lists the models with prices); drop the cap "
            "or use a priced model"
        )


class SpendCap:
    """Admits a request only while finished spend + in-flight estimates + its own fit.

    A request that does not fit waits for requests in flight to finish (they usually
    cost less than their estimate); when nothing is in flight and it still does not
    fit, the cap is `reached` and every request from then on is refused.
    """

    def __init__(
        self,
        max_usd: float,
        spent_usd: float = 0.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not max_usd > 0:
            raise ValueError(f"max_usd must be positive, got {max_usd}")
        self.max_usd = max_usd
        # Finished requests, this run's and (see carry_over) earlier runs'.
        self.spent_usd = spent_usd
        self.reserved_usd = 0.0
        self.in_flight = 0
        self.reached = False
        # Created on first wait: anyio events need a running event loop.
        self._changed: anyio.Event | None = None
        # Wall-clock seconds during which at least one request waited for room (read only
        # where a request waits), and since when the current such stretch has lasted.
        self._clock = clock
        self._waiters = 0
        self._waiting_since = 0.0
        self._waited_s = 0.0

    def carry_over(self, usd: float) -> None:
        """Count what earlier runs on the same output spent."""
        self.spent_usd += usd

    async def reserve(self, estimate_usd: float) -> bool:
        """Wait until a request estimated at `estimate_usd` fits; False once the cap is reached."""
        while not self.reached:
            if self.spent_usd + self.reserved_usd + estimate_usd <= self.max_usd + _EPS:
                self.reserved_usd += estimate_usd
                self.in_flight += 1
                return True
            if self.in_flight == 0 or self.spent_usd >= self.max_usd - _EPS:
                # Nothing in flight can free room, or finished spend alone fills the cap.
                self.reached = True
                self._wake()
                break
            if self._changed is None:
                self._changed = anyio.Event()
            if not self._waiters:
                self._waiting_since = self._clock()
            self._waiters += 1
            try:
                await self._changed.wait()
            finally:
                self._waiters -= 1
                if not self._waiters:
                    self._waited_s += self._clock() - self._waiting_since
        return False

    @property
    def waited_s(self) -> float:
        """Seconds during which a request waited for requests in flight to settle: the time
        the cap held the run back (the stretch going on now included)."""
        if self._waiters:
            return self._waited_s + self._clock() - self._waiting_since
        return self._waited_s

    def settle(self, estimate_usd: float, actual_usd: float) -> None:
        """A reserved request finished: its estimate is replaced by what it cost (0 if failed)."""
        self.reserved_usd = max(0.0, self.reserved_usd - estimate_usd)
        self.in_flight -= 1
        self.spent_usd += actual_usd
        self._wake()

    def _wake(self) -> None:
        # anyio events cannot be cleared: the next waiter creates a fresh one.
        if self._changed is not None:
            self._changed.set()
            self._changed = None
