"""One request for many inputs (an embeddings or rerank batch) through the run's limits and
retry policy: the same rules as a chat prompt's request, for commands that batch."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio

from lm_deluge_cli.engine.halt import Halted
from lm_deluge_cli.engine.learning import LimitLearner
from lm_deluge_cli.engine.limiter_chain import LimiterChain
from lm_deluge_cli.engine.retry import decide, pause_for_rate_limit
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.errors import (
    AllModelsDeadError,
    APIError,
    ModelUnavailableError,
    RateLimitError,
)
from lm_deluge_cli.transport import Transport
from lm_deluge_cli.types import HttpRequest, HttpResponse, RateLimitInfo

__all__ = [
    "BatchFailedError",
    "BatchSender",
    "Sent",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
NO_INFO = RateLimitInfo()


@dataclass(frozen=True, slots=True)
class Sent(Generic[T]):
    """A batch's parsed answer, the attempts it took and the last one's own latency."""

    value: T
    attempts: int
    latency_s: float


class BatchFailedError(Exception):
    """The batch ended in an error: no attempts left, or an error no retry can fix."""

    def __init__(self, error: APIError, attempts: int) -> None:
        super().__init__(error.message)
        self.error = error
        self.attempts = attempts


class BatchSender:
    """Sends batches to one model, sharing its limits, pauses and health across a run.

    `tokens` passed to `send` is the batch's estimated input tokens: what the tokens/min
    limit is charged before the answer, reconciled with the usage the provider reports.
    """

    def __init__(
        self,
        *,
        model: str,
        api_key_env: str,
        transport: Transport,
        limits: LimiterChain,
        headers_describe: tuple[bool, ...],
        rate_limit_info: Callable[[Mapping[str, str]], RateLimitInfo],
        max_concurrent_requests: int,
        max_attempts: int,
        stats: RunStats,
        learner: LimitLearner | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.model = model
        self.api_key_env = api_key_env
        self.transport = transport
        self.limits = limits
        self.headers_describe = headers_describe
        self.rate_limit_info = rate_limit_info
        self.concurrency = anyio.CapacityLimiter(max_concurrent_requests)
        self.max_attempts = max_attempts
        self.stats = stats
        self.learner = learner
        self.rng = rng or random.Random()
        # Set when the provider refused the key or quota: nothing more is sent.
        self.fatal: AllModelsDeadError | None = None
        # Set when the run stops: batches not yet sent are left for the resume.
        self.halted = False

    def halt(self) -> None:
        self.halted = True

    async def send(
        self,
        build: Callable[[], HttpRequest],
        parse: Callable[[HttpResponse], T],
        tokens: int,
        used_tokens: Callable[[T], int | None] = lambda _: None,
    ) -> Sent[T]:
        """Send until an answer parses, retrying as `run` does; raises BatchFailedError when
        attempts run out (or the error is final) and Halted when the run stopped first.

        `used_tokens` reads the provider's token count from an answer (None: not reported).
        """
        attempt = 0
        while True:
            if self.fatal is not None:
                raise BatchFailedError(self.fatal_error(), attempt)
            attempt += 1
            try:
                value, latency = await self._attempt(build(), parse, tokens, used_tokens)
            except APIError as error:
                self._note_error(error)
                decision = decide(error, attempt, self.max_attempts, self.rng)
                if not decision.retry:
                    raise BatchFailedError(error, attempt) from error
                self.stats.retries += 1
                log.debug("retrying a batch on %s: %s", self.model, decision.reason)
                await anyio.sleep(decision.delay_s)
                continue
            return Sent(value, attempt, latency)

    def fatal_error(self) -> APIError:
        return ModelUnavailableError(f"{self.model} stopped: {self.fatal}")

    async def _attempt(
        self,
        request: HttpRequest,
        parse: Callable[[HttpResponse], T],
        tokens: int,
        used_tokens: Callable[[T], int | None],
    ) -> tuple[T, float]:
        if self.halted:
            raise Halted
        probe: AbstractAsyncContextManager[None] = (
            self.learner.probe() if self.learner is not None else nullcontext()
        )
        async with probe, self.concurrency:
            tickets = await self.limits.acquire(tokens)
            if self.halted:
                self.limits.release(tickets)
                raise Halted
            self.stats.requests += 1
            self.stats.in_flight += 1
            sent = time.monotonic()
            try:
                response = await self.transport.send(request)
            except BaseException:
                self.limits.observe(tickets, NO_INFO, describes=self.headers_describe)
                raise
            finally:
                self.stats.in_flight -= 1
            info = self.rate_limit_info(response.headers)
            if self.learner is not None:
                self.learner.learn(info, response.status)
            self.limits.observe(tickets, info, describes=self.headers_describe)
        value = parse(response)
        used = used_tokens(value)
        if used is not None:
            self.limits.reconcile(tickets, used)
        return value, time.monotonic() - sent

    def _note_error(self, error: APIError) -> None:
        if isinstance(error, RateLimitError):
            self.stats.rate_limited += 1
            self.limits.limiters[0].pause(pause_for_rate_limit(error))
        if error.fatal and self.fatal is None:
            self.fatal = AllModelsDeadError(error, self.model, self.api_key_env)
            self.stats.dead_models.append(self.model)
