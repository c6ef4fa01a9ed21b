"""The one sender: everything about getting one HTTP request answered, for every command.

A caller (chat prompts, embedding and rerank batches) hands `Sender.send` an `Exchange`:
what to send to a model and how to read its answer. The sender owns the rest, the same
for all of them: the run's concurrency slots, the model's limiter chain, the spending cap,
the provider's rate-limit headers, the shared pause after a 429, retries with backoff, a
model that refuses its key or quota (no more requests go to it; the request moves to
another live model unless it is pinned), and the run's statistics.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Generic, NamedTuple, Protocol, TypeVar

import anyio

from lm_deluge_cli.engine.budget import SpendCap
from lm_deluge_cli.engine.choice import alive, draw_live
from lm_deluge_cli.engine.halt import Halted
from lm_deluge_cli.engine.learning import LimitLearner
from lm_deluge_cli.engine.limiter_chain import LimiterChain
from lm_deluge_cli.engine.limiter_values import RUN_LIMITER, Ticket
from lm_deluge_cli.engine.retry import decide, pause_for_rate_limit
from lm_deluge_cli.engine.slots import Slots
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.engine.warmup import Admission
from lm_deluge_cli.errors import (
    AllModelsDeadError,
    APIError,
    ModelUnavailableError,
    RateLimitError,
)
from lm_deluge_cli.transport import Transport
from lm_deluge_cli.types import HttpRequest, HttpResponse, RateLimitInfo

__all__ = [
    "Budget",
    "Exchange",
    "Outgoing",
    "RequestFailedError",
    "Route",
    "Sender",
    "Sent",
    "budget_of",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R", bound="Route")
R_contra = TypeVar("R_contra", bound="Route", contravariant=True)

NO_INFO = RateLimitInfo()


@dataclass(slots=True, kw_only=True)
class Route:
    """One model as the sender sees it: where its requests go, the limits they pass, and
    whether it still takes requests. Subclasses say which model it is (`name`, its key's
    variable, how to read its rate-limit headers)."""

    transport: Transport
    # The model's own limiter (if it has limits) then the run's: acquired in that order.
    limits: LimiterChain
    # Per limiter of `limits`: whether this model's rate-limit headers describe its budget.
    headers_describe: tuple[bool, ...]
    weight: float = 1.0
    # Learns the model's "auto" limits (and applies them to limits.limiters[0]).
    learner: LimitLearner | None = None
    # Set when the provider refused the key or quota: no more requests go here.
    dead_reason: str | None = None

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def key_variable(self) -> str:
        """The environment variable holding the model's key ("" when it needs none)."""
        raise NotImplementedError

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        raise NotImplementedError


class NamedEndpoint(Protocol):
    """What a route reads of its model's endpoint (chat's and retrieval's have both)."""

    @property
    def name(self) -> str: ...

    @property
    def api_key_env(self) -> str: ...


@dataclass(slots=True, kw_only=True)
class EndpointRoute(Route):
    """A route to a model resolved from the registry: its name and key come from its
    endpoint."""

    endpoint: NamedEndpoint

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def key_variable(self) -> str:
        return self.endpoint.api_key_env


@dataclass(frozen=True, slots=True)
class Budget:
    """The smallest tokens/min a model's requests pass through: a model's own limit
    (`model` names it; `learned` when learned from its provider), or the run's (None)."""

    tokens_per_minute: float
    model: str | None = None
    learned: bool = False


def budget_of(route: Route) -> Budget | None:
    """The smallest tokens/min `route`'s requests pass through, and whose it is."""
    tightest = route.limits.token_budget()
    if tightest is None:
        return None
    rate, limiter = tightest
    if limiter.name == RUN_LIMITER:
        return Budget(rate)
    return Budget(rate, limiter.name, learned=route.learner is not None)


class Outgoing(NamedTuple):
    """One request ready to go: the request, the tokens the limiter is charged for it, and
    its input line (0: none)."""

    request: HttpRequest
    tokens: int
    line: int = 0


class Exchange(Protocol[R_contra, T]):
    """What one request asks and how its answer is read, on whichever model it goes to."""

    def outgoing(self, route: R_contra, attempt: int) -> Outgoing:
        """The request for `route` (built for each attempt: the model may change)."""
        ...

    def worst_cost(self, route: R_contra) -> float:
        """The most the request `outgoing` last built may cost in US dollars, reserved
        against the spending cap (asked only when the run has one)."""
        ...

    def admit(self, route: R_contra) -> AbstractAsyncContextManager[Admission]:
        """Held around the request (the prompt-cache warm-up); nullcontext(Admission())."""
        ...

    def read(self, route: R_contra, response: HttpResponse) -> T:
        """The answer of a response; raises APIError for an error status or bad body."""
        ...

    def cost(self, route: R_contra, answer: T) -> float | None:
        """What the answer cost in US dollars (None: the model has no price)."""
        ...

    def used_tokens(self, route: R_contra, answer: T) -> int:
        """The tokens the provider reports, for the tokens/min limiter (0: not reported)."""
        ...

    def check(self, route: R_contra, answer: T, status: int) -> None:
        """Raise an APIError when a paid answer is still unusable (empty, off-schema)."""
        ...


@dataclass(frozen=True, slots=True)
class Sent(Generic[R, T]):
    """An answer, the model that gave it, the attempts it took, the last one's own
    latency (no queueing) and its cost."""

    value: T
    route: R
    attempts: int
    latency_s: float
    cost_usd: float | None


class RequestFailedError(Exception):
    """The request ended in an error: no attempts left, an error no retry can fix, or its
    pinned model stopped taking requests. `route` is the model it was last sent to."""

    def __init__(self, error: APIError, attempts: int, route: Route) -> None:
        super().__init__(error.message)
        self.error = error
        self.attempts = attempts
        self.route = route


class _RouteStopped(Exception):
    """The model a request waited for was found unusable (a refused key) meanwhile."""


class Sender(Generic[R]):
    """Sends the run's requests to its models (`routes`), sharing their limits, pauses and
    health, the concurrency slots and the spending cap across every caller."""

    def __init__(
        self,
        routes: Sequence[R],
        *,
        max_concurrent_requests: int,
        max_attempts: int,
        stats: RunStats,
        rng: random.Random | None = None,
        budget: SpendCap | None = None,
        retry_other_model: bool = False,
    ) -> None:
        self.routes = list(routes)
        self.concurrency = Slots(max_concurrent_requests)
        self.max_attempts = max_attempts
        self.stats = stats
        self.rng = rng or random.Random()
        # The spending cap, if the job has one.
        self.budget = budget
        # Each retry draws another model (for requests not pinned to one).
        self.retry_other_model = retry_other_model
        # Set when every model refused its key or quota: the run cannot go on.
        self.fatal: AllModelsDeadError | None = None
        # Set when the run stops: nothing more is sent; requests not sent raise Halted.
        self.halted = False
        # Made by `wait_idle` and set when the last request in flight is answered.
        self._idle: anyio.Event | None = None

    def halt(self) -> None:
        """Send nothing more; requests already sent still complete."""
        self.halted = True

    async def wait_idle(self) -> None:
        """Return once no request is in flight (at once when none is)."""
        while self.stats.in_flight:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    @property
    def cap_reached(self) -> bool:
        """Whether the spending cap refused a request: the run should stop dispatching."""
        return self.budget is not None and self.budget.reached

    @property
    def should_stop(self) -> bool:
        """Whether the run cannot usefully go on (every model dead, or the cap reached)."""
        return self.fatal is not None or self.cap_reached

    def alive(self, exclude: R | None) -> R | None:
        """A live model with weight other than `exclude`, if there is one."""
        return alive(self.routes, exclude)

    def pick(self) -> R:
        """A live model by weight, for a request that may go to any of them."""
        return draw_live(self.routes, None, None, self.rng)

    async def send(
        self,
        exchange: Exchange[R, T],
        route: R,
        *,
        pinned: bool = False,
        moved: Callable[[R], None] | None = None,
    ) -> Sent[R, T]:
        """Send until an answer reads and checks, retrying (and moving to another model
        when `route` stops, unless `pinned`). Raises RequestFailedError when attempts run
        out or the error is final, Halted when the run stopped (or the cap was reached)
        before the request was sent. `moved` hears of each change of model."""
        attempt = 0
        while True:
            if route.dead_reason is not None:
                # Another request found this model unusable while this one waited.
                if self.alive(exclude=None) is None:
                    raise Halted  # the run is stopping: unsent requests are left for the resume
                if pinned:
                    error = ModelUnavailableError(f"{route.name} stopped: {route.dead_reason}")
                    raise RequestFailedError(error, attempt, route)
                route = self._move(route, moved)
            attempt += 1
            try:
                value, latency, cost = await self._attempt(exchange, route, attempt)
            except _RouteStopped:
                # Found unusable while this request waited for its turn: nothing was sent.
                attempt -= 1
                continue
            except APIError as error:
                self._note_error(route, error)
                decision = decide(error, attempt, self.max_attempts, self.rng)
                # A refused key moves the request to another live model, if there is one.
                moving = (
                    error.fatal
                    and not pinned
                    and attempt < self.max_attempts
                    and self.alive(exclude=route) is not None
                )
                if not (decision.retry or moving):
                    raise RequestFailedError(error, attempt, route) from error
                self.stats.retries += 1
                if decision.retry:
                    log.debug("retrying on %s: %s", route.name, decision.reason)
                    await anyio.sleep(decision.delay_s)
                if self.retry_other_model and not pinned:
                    route = self._move(route, moved)
                continue
            return Sent(value, route, attempt, latency, cost)

    def _move(self, route: R, moved: Callable[[R], None] | None) -> R:
        other = draw_live(self.routes, route, None, self.rng)
        if moved is not None and other is not route:
            moved(other)
        return other

    async def _attempt(
        self, exchange: Exchange[R, T], route: R, attempt: int
    ) -> tuple[T, float, float | None]:
        """One request; its answer, its own latency and its cost."""
        outgoing = exchange.outgoing(route, attempt)
        if self.halted:
            raise Halted
        budget = self.budget
        reserved = exchange.worst_cost(route) if budget is not None else 0.0
        if budget is not None and not await budget.reserve(reserved):
            self.stats.cost_cap_reached = True
            raise Halted  # the cap is reached: left for a run with a higher cap
        cost: float | None = None
        try:
            probe: AbstractAsyncContextManager[None] = (
                route.learner.probe() if route.learner is not None else nullcontext()
            )
            async with probe, exchange.admit(route) as admission:
                response, tickets, sent = await self._send(route, outgoing)
                admission.warmed = response.status < 300
                info = route.rate_limit_info(response.headers)
                if route.learner is not None:
                    route.learner.learn(info, response.status)
                route.limits.observe(tickets, info, describes=route.headers_describe)
            answer = exchange.read(route, response)
            cost = exchange.cost(route, answer)
        finally:
            if budget is not None:
                budget.settle(reserved, cost or 0.0)
        used = exchange.used_tokens(route, answer)
        if used:
            route.limits.reconcile(tickets, used)
        exchange.check(route, answer, response.status)
        return answer, time.monotonic() - sent, cost

    async def _send(
        self, route: R, outgoing: Outgoing
    ) -> tuple[HttpResponse, tuple[Ticket, ...], float]:
        """Wait for a concurrency slot and the limiters, then send; also when it left. A
        request holding much of a tokens/min budget is named in the progress."""
        stats = self.stats
        tokens = outgoing.tokens
        # While every slot is sending and a request waits for one, concurrency is what holds
        # the run back: stats.slots_full_s adds up that time (engine/bound_by.py).
        wants_slot = not self.concurrency.available_tokens
        if wants_slot:
            stats.slot_waiters += 1
            full = stats.in_flight == stats.max_concurrent_requests
            if full and stats.slots_full_since is None:
                stats.slots_full_since = time.monotonic()
        try:
            await self.concurrency.acquire()
        finally:
            if wants_slot:
                stats.slot_waiters -= 1
        try:
            budget = budget_of(route)
            big = None
            if budget is not None:
                big = stats.note_big_line(
                    outgoing.line, tokens, budget.tokens_per_minute, budget.model
                )
            try:
                tickets = await route.limits.acquire(tokens)
                if self.halted or route.dead_reason is not None:
                    route.limits.release(tickets)
                    raise Halted if self.halted else _RouteStopped
            except BaseException:
                stats.drop_big_line(big)
                raise
            stats.requests += 1
            stats.in_flight += 1
            sent = time.monotonic()
            if big is not None:
                big.sent_at = sent
            if stats.in_flight == stats.max_concurrent_requests and stats.slot_waiters:
                stats.slots_full_since = sent
            try:
                response = await route.transport.send(outgoing.request)
            except BaseException:
                # Answered, if only by a failure: the limiter stops counting it as in flight.
                route.limits.observe(tickets, NO_INFO, describes=route.headers_describe)
                raise
            finally:
                stats.in_flight -= 1
                if not stats.in_flight and self._idle is not None:
                    self._idle.set()
                    self._idle = None
                if stats.slots_full_since is not None:
                    stats.slots_full_s += time.monotonic() - stats.slots_full_since
                    stats.slots_full_since = None
        finally:
            self.concurrency.release()
        return response, tickets, sent

    def _note_error(self, route: R, error: APIError) -> None:
        """Update what all requests share after a failed attempt: pauses, dead models."""
        if isinstance(error, RateLimitError):
            self.stats.rate_limited += 1
            # The limiter the provider's budget belongs to: the model's own, else the run's.
            route.limits.limiters[0].pause(pause_for_rate_limit(error))
        if not error.fatal or route.dead_reason is not None:
            return
        route.dead_reason = error.message
        self.stats.dead_models.append(route.name)
        if self.alive(exclude=None) is None:
            if self.fatal is None:
                self.fatal = AllModelsDeadError(error, route.name, route.key_variable)
        else:
            # The run goes on with the other models; the summary names the last one only.
            key = route.key_variable
            log.error(
                "stopped sending to %s%s: %s",
                route.name,
                f" (check {key})" if key else "",
                error.message,
            )
