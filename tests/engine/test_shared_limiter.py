"""SharedRateLimiter on a real redis-server: one budget for many processes, and its fallback.

The limiters run on a test clock, which is the budget's clock in Redis too, so waits are
exact; two OS processes sharing a budget run on wall time, as that is their point.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.redis_server import RedisServer, StartRedis

    from .conftest import FakeClock

pytest.importorskip("redis")

import anyio

from lm_deluge_cli.config import Limits, ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoints
from lm_deluge_cli.engine import shared_limiter
from lm_deluge_cli.engine.limiter import RateLimiter
from lm_deluge_cli.engine.limiter_chain import LimiterChain
from lm_deluge_cli.engine.setup import build_requester
from lm_deluge_cli.engine.shared_budget import KEY_PREFIX
from lm_deluge_cli.engine.shared_limiter import SharedRateLimiter
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.types import RateLimitInfo, SamplingParams

pytestmark = pytest.mark.anyio

Open = Callable[..., Awaitable[SharedRateLimiter]]

# The limiter's jitter, before `exact_waits` turns it off.
JITTER_S = shared_limiter._JITTER_S


@pytest.fixture
def anyio_backend() -> str:
    # redis-py's asyncio client runs on asyncio only.
    return "asyncio"


@pytest.fixture(autouse=True)
def exact_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """No jitter: the limiter stretches each wait by a few milliseconds at random, so that
    processes waiting for one refill take turns; without it, waits are exact."""
    monkeypatch.setattr(shared_limiter, "_JITTER_S", 0.0)


@pytest.fixture
def key() -> str:
    """A budget of this test's own on the session's server."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def open_limiter(
    redis_server: RedisServer, key: str, clock: FakeClock
) -> AsyncIterator[Open]:
    """Connect limiters (by default to the session server, on `key`, on the test's clock);
    all closed after."""
    opened: list[SharedRateLimiter] = []

    async def open_(url: str | None = None, **kwargs: Any) -> SharedRateLimiter:
        kwargs.setdefault("key", key)
        kwargs.setdefault("requests_per_minute", None)
        kwargs.setdefault("tokens_per_minute", None)
        kwargs.setdefault("clock", clock)
        limiter = await SharedRateLimiter.connect(url or redis_server.url, **kwargs)
        opened.append(limiter)
        return limiter

    yield open_
    for limiter in opened:
        await limiter.aclose()


def state_key(key: str) -> str:
    return f"{KEY_PREFIX}{{{key}}}:state"


async def until_in_redis(
    server: RedisServer, key: str, field_name: str, check: Callable[[float], bool]
) -> float:
    """Poll the budget's hash until `field_name` passes `check`. A limiter's background
    task sends queued pauses and credits on a connection of its own, which may reach Redis
    after the next step of the test's: the test waits for them (its clock stands still)."""
    with anyio.fail_after(5.0):
        while True:
            raw = server.hget(state_key(key), field_name)
            if raw is not None and check(float(raw)):
                return float(raw)
            await anyio.sleep(0.01)


async def until_shared(limiter: SharedRateLimiter) -> None:
    """Poll until the limiter shares redis again.

    A function of its own so that a caller's earlier `assert not limiter.shared` does not
    make a type checker read the loop as endless (it narrows the property to False).
    """
    with anyio.fail_after(5.0):
        while not limiter.shared:
            await anyio.sleep(0.05)


async def grants(limiter: SharedRateLimiter, n: int, tokens: int = 0) -> list[float]:
    """Acquire `n` times in turn; when each was granted."""
    return [(await limiter.acquire(tokens)).dispatched_s for _ in range(n)]


def most_in_any_window(times: list[float], window: float) -> int:
    """The most grants in any `window` seconds."""
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] > window:
            start += 1
        most = max(most, end - start + 1)
    return most


class TurnClock:
    """Virtual time for limiters that sleep at the same time: time moves on to the earliest
    wake-up only once each of `sleepers` is asleep, so one busy with Redis holds it still for
    the others. (A `FakeClock` moves at every sleep, which is right for one sleeper only.)"""

    def __init__(self, sleepers: int) -> None:
        self.t = 0.0
        self._sleepers = sleepers
        self._asleep: list[tuple[float, int, anyio.Event]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        woken = anyio.Event()
        heapq.heappush(self._asleep, (self.t + seconds, next(self._order), woken))
        self._turn()
        await woken.wait()

    def leave(self) -> None:
        """One sleeper is done: the others stop waiting for it."""
        self._sleepers -= 1
        self._turn()

    def _turn(self) -> None:
        if self._asleep and len(self._asleep) >= self._sleepers:
            wake, _, woken = heapq.heappop(self._asleep)
            self.t = max(self.t, wake)
            woken.set()


async def acquire_until(
    limiter: SharedRateLimiter, clock: TurnClock, deadline: float, times: list[float]
) -> None:
    """Acquire from two tasks until `clock` passes `deadline`, noting each grant by then;
    then leave the clock's sleepers (the limiter's lock holder was the one)."""

    async def worker() -> None:
        while clock.now() < deadline:
            granted = (await limiter.acquire()).dispatched_s
            if granted <= deadline:
                times.append(granted)

    async with anyio.create_task_group() as tg:
        for _ in range(2):
            tg.start_soon(worker)
    clock.leave()


# -- pacing --------------------------------------------------------------------------


async def test_one_process_paces_at_the_rate(open_limiter: Open, clock: FakeClock) -> None:
    limiter = await open_limiter(requests_per_minute=600.0)
    times: list[float] = []

    async def worker() -> None:
        times.extend(await grants(limiter, 9))

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(worker)
    # A full bucket holds half a second: 5 requests at once, then one every 0.1 s, each
    # after one sleep of exactly that.
    assert sorted(times) == pytest.approx([0.0] * 5 + [0.1 * i for i in range(1, 32)])
    assert clock.sleeps == pytest.approx([0.1] * 31)
    stats = limiter.statistics()
    assert stats.acquired == 36 and stats.requests_per_minute == 600.0
    assert stats.request_capacity == 5.0
    assert stats.request_level == pytest.approx(0.0, abs=1e-9)
    assert stats.waited_requests_s == pytest.approx(3.1)


async def test_the_budget_runs_on_the_limiters_clock(
    open_limiter: Open, redis_server: RedisServer, key: str, clock: FakeClock
) -> None:
    """A clock given to the limiter is the budget's clock in Redis too (tests only: in a
    run, the budget's time is Redis's, shared_budget.py)."""
    limiter = await open_limiter(requests_per_minute=60.0)
    clock.advance(123.0)
    await limiter.acquire()
    assert await until_in_redis(redis_server, key, "ru", lambda t: t > 0) == 123.0


async def test_two_limiters_on_one_key_share_the_rate(
    open_limiter: Open, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The jitter is what lets two processes waiting for one refill take turns: on here,
    # from a seeded generator.
    monkeypatch.setattr(shared_limiter, "_JITTER_S", JITTER_S)
    monkeypatch.setattr(shared_limiter, "random", random.Random(7))
    clock = TurnClock(sleepers=2)
    a = await open_limiter(requests_per_minute=1200.0, clock=clock)
    b = await open_limiter(requests_per_minute=1200.0, clock=clock)
    times_a: list[float] = []
    times_b: list[float] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(acquire_until, a, clock, 2.0, times_a)
        tg.start_soon(acquire_until, b, clock, 2.0, times_b)
    both = sorted(times_a + times_b)
    # 20 a second after a bucket of 10, whoever asks: each grant when the budget has it,
    # or later by no more than the jitter. Never more: no second holds over 30.
    ideal = [0.0] * 10 + [0.05 * i for i in range(1, 41)]
    assert len(both) in (49, 50)
    assert all(due - 1e-9 <= t <= due + JITTER_S for t, due in zip(both, ideal, strict=False))
    assert most_in_any_window(both, 1.0) <= 31
    # Both processes get a fair part by asking again.
    assert min(len(times_a), len(times_b)) >= 0.3 * len(both)


_CHILD = """
import sys, time, anyio
from lm_deluge_cli.engine.shared_limiter import SharedRateLimiter

async def main(url, key, rpm, seconds):
    limiter = await SharedRateLimiter.connect(url, key=key, requests_per_minute=rpm,
                                              tokens_per_minute=None)
    print("ready", flush=True)
    start = float(sys.stdin.readline())
    await anyio.sleep(max(0.0, start - time.time()))
    with anyio.move_on_after(start + seconds - time.time()):
        while True:
            await limiter.acquire()
            print(time.time(), flush=True)
    await limiter.aclose()

url, key, rpm, seconds = sys.argv[1:]
anyio.run(main, url, key, float(rpm), float(seconds))
"""


async def test_two_os_processes_share_the_rate(redis_server: RedisServer, key: str) -> None:
    args = [redis_server.url, key, "1200", "2.0"]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    # Both start at once, when both have connected: a child slow to start (a busy machine
    # takes seconds to import) must not shorten its own window.
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n", child.stderr and child.stderr.read()
    start = time.time() + 0.2
    for child in children:
        assert child.stdin is not None
        child.stdin.write(f"{start!r}\n")
        child.stdin.flush()
    outputs = [child.communicate(timeout=30) for child in children]
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    per_child = [[float(line) for line in out.split()] for out, _ in outputs]
    both = per_child[0] + per_child[1]
    assert min(both) >= start
    # 20 a second plus one bucket of 10 over 2 s, whoever sends them: never more. Fewer
    # is slow, not wrong: two processes beside a busy suite wake late (CI saw 43).
    assert 38 <= len(both) <= 51
    assert most_in_any_window(both, 1.0) <= 31
    assert min(len(times) for times in per_child) >= 0.3 * len(both)


async def test_the_token_bucket(open_limiter: Open, clock: FakeClock) -> None:
    # 400 tokens a second, a bucket of 200.
    limiter = await open_limiter(tokens_per_minute=24_000.0)
    # Larger than the bucket, the second waits for a full one (0.5 s) and takes it to -100;
    # the third waits for the 200 tokens from there.
    times = [(await limiter.acquire(tokens)).dispatched_s for tokens in (200, 300, 100)]
    assert times == pytest.approx([0.0, 0.5, 1.0])
    assert clock.sleeps == pytest.approx([0.25] * 4)  # a waiter asks again every 0.25 s
    stats = limiter.statistics()
    assert stats.tokens_acquired == 600
    # Both waits were on the token bucket.
    assert stats.waited_tokens_s == pytest.approx(1.0)
    assert stats.waited_requests_s == stats.waited_provider_s == 0.0


# -- feedback --------------------------------------------------------------------------


async def test_a_pause_holds_every_limiter_on_the_key_and_slows_them(
    open_limiter: Open, redis_server: RedisServer, key: str
) -> None:
    a = await open_limiter(requests_per_minute=600.0)
    b = await open_limiter(requests_per_minute=600.0)
    a.pause(0.6)
    a.pause(0.1)  # extends, never shortens
    await until_in_redis(redis_server, key, "pu", lambda until: until > 0)
    # The pause, then one request's refill at 0.8 of the rate, and a little more as it
    # recovers: 0.6 + 0.125 s.
    assert (await b.acquire()).dispatched_s == pytest.approx(0.725)
    stats = b.statistics()
    assert stats.rate_factor == pytest.approx(0.8 + 0.02 * 0.125)
    # All of b's wait was the provider's: the pause, then the slowed-down refill.
    assert stats.waited_provider_s == pytest.approx(0.725)
    assert stats.waited_requests_s == 0.0
    assert a.pauses == 2 and b.pauses == 0
    # A second 429 after the first pause ended compounds the slow-down.
    b.pause(0.0)
    factor = await until_in_redis(redis_server, key, "sf", lambda f: f < 0.8)
    assert factor == pytest.approx(0.8 * (0.8 + 0.02 * 0.125))


async def test_a_limiter_on_another_key_is_not_paused(
    open_limiter: Open, redis_server: RedisServer, key: str
) -> None:
    a = await open_limiter(requests_per_minute=600.0)
    other = await open_limiter(requests_per_minute=600.0, key=f"other-{uuid.uuid4().hex[:8]}")
    a.pause(5.0)
    await until_in_redis(redis_server, key, "pu", lambda until: until > 0)
    assert (await other.acquire()).dispatched_s == 0.0
    # The pause, then one request at 0.8 of the rate.
    assert (await a.acquire()).dispatched_s == pytest.approx(5.125)


async def test_keys_are_independent_budgets(open_limiter: Open) -> None:
    a = await open_limiter(requests_per_minute=60.0)
    b = await open_limiter(requests_per_minute=60.0)
    elsewhere = await open_limiter(requests_per_minute=60.0, key=f"else-{uuid.uuid4().hex[:8]}")
    assert (await a.acquire()).dispatched_s == (await elsewhere.acquire()).dispatched_s == 0.0
    # a took the key's one request: b, on the same key, waits a second for the next.
    assert (await b.acquire()).dispatched_s == pytest.approx(1.0)


async def test_reconcile_credits_and_debits_the_shared_token_bucket(
    open_limiter: Open, redis_server: RedisServer, key: str
) -> None:
    limiter = await open_limiter(tokens_per_minute=24_000.0)  # 400/s, a bucket of 200
    ticket = await limiter.acquire(200)
    # Estimated 200, used 40: 160 come back, so 160 more go at once (else after 0.4 s).
    limiter.reconcile(ticket, 40)
    await until_in_redis(redis_server, key, "tl", lambda level: level > 0)
    second = await limiter.acquire(160)
    # Estimated 160, used 360: 200 more are owed on top of an empty bucket, so the next
    # 200 wait 1 s (0.5 s without the debit).
    limiter.reconcile(second, 360)
    await until_in_redis(redis_server, key, "tl", lambda level: level < 0)
    third = await limiter.acquire(200)
    times = [t.dispatched_s for t in (ticket, second, third)]
    assert times == pytest.approx([0.0, 0.0, 1.0])


async def test_release_gives_a_ticket_back(
    open_limiter: Open, redis_server: RedisServer, key: str
) -> None:
    limiter = await open_limiter(requests_per_minute=60.0)
    limiter.release(await limiter.acquire())
    await until_in_redis(redis_server, key, "rl", lambda level: level >= 1)
    assert (await limiter.acquire()).dispatched_s == 0.0


async def test_a_chain_with_a_shared_limiter(open_limiter: Open, clock: FakeClock) -> None:
    # The shared limiter keeps real time: the wait on it below is given up after 0.3 s.
    shared = await open_limiter(requests_per_minute=60.0, clock=None)
    # 10 tokens a second, a bucket of 100, on the test's clock: no refill meanwhile.
    own = RateLimiter(None, 600.0, burst_s=10.0, clock=clock)
    chain = LimiterChain(own, shared)
    with anyio.fail_after(0.3):
        tickets = await chain.acquire(10)
    chain.observe(tickets, RateLimitInfo(), describes=(True, False))
    chain.reconcile(tickets, 5)
    # The shared budget's one request is spent: the next wait is cancelled, and the
    # model's own ticket is given back.
    with anyio.move_on_after(0.3) as scope:
        await chain.acquire(10)
    assert scope.cancelled_caught
    stats = own.statistics()
    assert stats.acquired == 2
    # 100 - 10 + 5 (reconciled) - 10 + 10 (given back); 85 if kept.
    assert stats.token_level == pytest.approx(95.0)


# -- without Redis -----------------------------------------------------------------------


async def test_redis_unreachable_at_the_start(
    redis_server: RedisServer,
    closed_port: int,
    caplog: pytest.LogCaptureFixture,
    clock: FakeClock,
) -> None:
    url = f"redis://{redis_server.user}:{redis_server.password_quoted}@127.0.0.1:{closed_port}/0"
    with caplog.at_level(logging.WARNING), anyio.fail_after(3.0):
        limiter = await SharedRateLimiter.connect(
            url, key="k", requests_per_minute=1200.0, tokens_per_minute=None, clock=clock
        )
    try:
        assert not limiter.shared
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        text = warnings[0].getMessage()
        assert f"redis://{redis_server.user}:***@127.0.0.1:{closed_port}/0" in text
        assert "1/2 of the limits (600 requests/min; no other process was seen)" in text
        for shown in (caplog.text, repr(limiter)):
            assert redis_server.password not in shown
            assert redis_server.password_quoted not in shown
        # Half of 1200/min: a bucket of 5 at once, then 10 a second.
        assert await grants(limiter, 15) == pytest.approx(
            [0.0] * 5 + [0.1 * i for i in range(1, 11)]
        )
        assert limiter.statistics().acquired == 15
        assert limiter.statistics().waited_requests_s == pytest.approx(1.0)
        # Tickets of the fallback go back to it.
        level = limiter.statistics().request_level
        limiter.release(await limiter.acquire())
        after = limiter.statistics().request_level
        assert level is not None and after is not None and after > level
    finally:
        with anyio.fail_after(3.0):
            await limiter.aclose()


async def test_falls_back_when_redis_stops_and_returns_when_it_is_back(
    start_redis: StartRedis, caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    server = start_redis()
    key = "fallback"
    # Two more processes seen alive: the fallback takes a third of the limit.
    far = repr(time.time() + 3600)  # heartbeats are on Redis's time, whatever the clock
    for member in ("peer-1", "peer-2"):
        server.command("ZADD", f"{KEY_PREFIX}{{{key}}}:processes", far, member)
    limiter = await SharedRateLimiter.connect(
        server.password_url,
        key=key,
        requests_per_minute=1200.0,
        tokens_per_minute=None,
        heartbeat_s=0.2,
        clock=clock,
    )
    try:
        assert limiter.processes == 3
        with caplog.at_level(logging.WARNING):
            # The shared rate: a bucket of 10, then 20 a second.
            shared = await grants(limiter, 30)
            server.kill()
            # A third of it, on the fallback's own bucket of 3.3 from the moment Redis was
            # found gone: 3 at once, then 6.7 a second.
            alone = await grants(limiter, 13)
            assert not limiter.shared
            waited_cut_off = limiter.statistics().waited_requests_s
            server.start()
            await until_shared(limiter)
            # All of it again, on a budget the restarted server starts full.
            again = await grants(limiter, 30)
        assert shared == pytest.approx([0.0] * 10 + [0.05 * i for i in range(1, 21)])
        assert alone == pytest.approx([1.0] * 3 + [1.1 + 0.15 * i for i in range(10)])
        assert again == pytest.approx([2.45] * 10 + [2.45 + 0.05 * i for i in range(1, 21)])
        assert limiter.processes == 1  # the peers were lost with the server's data
        # The fallback's waits stay counted once it is dropped.
        assert waited_cut_off == pytest.approx(1.0 + 1.45)
        assert limiter.statistics().waited_requests_s == pytest.approx(1.0 + 1.45 + 1.0)
        messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        cut = [m for m in messages if "unreachable" in m]
        back = [m for m in messages if " is back:" in m]
        assert len(cut) == 1 and len(back) == 1, messages
        assert "1/3 of the limits (400 requests/min; 3 processes were sharing them)" in cut[0]
        assert f"{server.user}:***@" in cut[0]
        assert server.password not in caplog.text and server.password_quoted not in caplog.text
    finally:
        await limiter.aclose()


# -- wiring ----------------------------------------------------------------------------


async def test_build_requester_shares_the_run_limit(redis_server: RedisServer, key: str) -> None:
    entries = (ModelEntry("mock:a"),)
    async with AsyncExitStack() as stack:
        requester = await build_requester(
            entries,
            resolve_endpoints(entries),
            Limits(max_requests_per_minute=600.0),
            SamplingParams(),
            retry_other_model=False,
            stats=RunStats(),
            stack=stack,
            shared_limiter=redis_server.url,
            shared_limiter_key=key,
        )
        (slot,) = requester.slots
        (run,) = slot.limits.limiters
        assert isinstance(run, SharedRateLimiter) and run.shared
        assert run.key == key and run.statistics().requests_per_minute == 600.0
        processes = f"{KEY_PREFIX}{{{key}}}:processes"
        assert redis_server.command("ZCARD", processes) == b":1"
    # Closing the run closes the limiter, which leaves the process set.
    assert redis_server.command("ZCARD", processes) == b":0"
