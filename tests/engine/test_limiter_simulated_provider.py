"""The rate limiter in virtual time against a simulated provider enforcing its own window."""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from lm_deluge_cli.engine.limiter import RateLimiter
from lm_deluge_cli.engine.limiter_values import Ticket
from lm_deluge_cli.types import RateLimitInfo

if TYPE_CHECKING:
    from .conftest import FakeClock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- against a simulated provider ---------------------------------------------------


class BucketServer:
    """A provider enforcing `per_minute` with `burst_s` of saved capacity, in virtual time."""

    def __init__(
        self, per_minute: float, burst_s: float, *, charge_refusals: bool, headers: bool
    ) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60
        self.capacity = self.rate * burst_s
        self.level = self.capacity
        self.updated = 0.0
        self.charge_refusals = charge_refusals
        self.headers = headers

    def handle(self, now: float) -> tuple[bool, RateLimitInfo]:
        self.level = min(self.capacity, self.level + self.rate * (now - self.updated))
        self.updated = now
        # Real servers count in whole milliseconds; float noise is not a refusal.
        ok = self.level >= 1 - 1e-9
        if ok or self.charge_refusals:
            self.level -= 1
        if not self.headers:
            return ok, RateLimitInfo()
        remaining = max(0, math.floor(self.level + 1e-9))
        return ok, RateLimitInfo(limit_requests=int(self.per_minute), remaining_requests=remaining)


@dataclasses.dataclass
class JobResult:
    ok: int = 0
    refused: int = 0
    sent: int = 0
    last_ok_arrival: float = 0.0
    finished: float = 0.0


@dataclasses.dataclass(order=True)
class Event:
    at: float
    order: int
    ticket: Ticket = dataclasses.field(compare=False)
    arrived: bool = dataclasses.field(compare=False, default=False)
    ok: bool = dataclasses.field(compare=False, default=False)
    info: RateLimitInfo = dataclasses.field(compare=False, default_factory=RateLimitInfo)


async def run_job(
    rl: RateLimiter,
    server: BucketServer,
    clock: FakeClock,
    prompts: int,
    *,
    uplink: tuple[float, float] = (0.0, 0.0),
    response: tuple[float, float] = (0.0, 0.0),
) -> JobResult:
    """Send `prompts` requests one after another as the limiter allows.

    A request reaches the server `uplink` = (base, jitter) seconds after dispatch and
    its response comes back `response` seconds after that (base plus up to jitter, so
    both arrive out of order). A refused request pauses the limiter and is sent again.
    """
    rng = random.Random(7)
    events: list[Event] = []
    result = JobResult()
    to_send = prompts
    order = itertools.count()

    def process(upto: float) -> None:
        nonlocal to_send
        while events and events[0].at <= upto:
            event = heapq.heappop(events)
            if not event.arrived:
                ok, info = server.handle(event.at)
                if ok:
                    result.last_ok_arrival = max(result.last_ok_arrival, event.at)
                delay = response[0] + response[1] * rng.random()
                heapq.heappush(
                    events, Event(event.at + delay, next(order), event.ticket, True, ok, info)
                )
                continue
            rl.reconcile(event.ticket, 0)
            rl.observe(event.ticket, event.info)
            if event.ok:
                result.ok += 1
            else:
                result.refused += 1
                to_send += 1
                rl.pause(1.0)

    while to_send or events:
        if not to_send:
            clock.t = max(clock.t, events[0].at)
            process(clock.now())
            continue
        ticket = await rl.acquire()
        process(clock.now())
        to_send -= 1
        result.sent += 1
        arrival = clock.now() + uplink[0] + uplink[1] * rng.random()
        heapq.heappush(events, Event(arrival, next(order), ticket))
    result.finished = clock.now()
    return result


@pytest.mark.anyio
@pytest.mark.parametrize("charge_refusals", [False, True])
@pytest.mark.parametrize("headers", [False, True])
@pytest.mark.parametrize(
    ("uplink", "response"),
    [((0.0, 0.0), (0.0, 0.0)), ((0.01, 0.2), (0.2, 0.3)), ((0.05, 0.3), (2.0, 1.5))],
)
async def test_job_at_the_limit_of_a_one_second_window(
    limiter: Callable[..., RateLimiter],
    clock: FakeClock,
    charge_refusals: bool,
    headers: bool,
    uplink: tuple[float, float],
    response: tuple[float, float],
) -> None:
    per_minute = 3000
    server = BucketServer(per_minute, 1.0, charge_refusals=charge_refusals, headers=headers)
    rl = limiter(clock, rpm=per_minute)
    result = await run_job(rl, server, clock, 3000, uplink=uplink, response=response)

    assert result.ok == 3000
    # Jittery arrivals are absorbed by the server's burst, which headers must not
    # tempt us to spend.
    assert result.refused <= 0.01 * result.sent
    # Slow responses, whose headers count seconds of our own traffic, must not hold
    # the pace below the limit.
    assert result.ok / result.last_ok_arrival >= 0.97 * per_minute / 60


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("uplink", "response"), [((0.0, 0.0), (0.0, 0.0)), ((0.01, 0.1), (0.2, 0.4))]
)
async def test_job_spends_a_minute_of_burst_the_headers_report(
    limiter: Callable[..., RateLimiter],
    clock: FakeClock,
    uplink: tuple[float, float],
    response: tuple[float, float],
) -> None:
    server = BucketServer(6000, 60.0, charge_refusals=True, headers=True)
    rl = limiter(clock, rpm=6000)
    result = await run_job(rl, server, clock, 8000, uplink=uplink, response=response)

    assert result.ok == 8000
    assert result.refused <= 0.01 * result.sent
    # Ideal: 6000 at once, then 2000 at 100/s = 20 s.
    assert result.finished <= 1.1 * 20.0
