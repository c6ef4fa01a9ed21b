"""SharedRateLimiter on a real redis-server: one budget for many processes, and its fallback."""

from __future__ import annotations

import logging
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

pytest.importorskip("redis")

import anyio

from lm_deluge_cli.config import Limits, ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoints
from lm_deluge_cli.engine.limiter import RateLimiter
from lm_deluge_cli.engine.limiter_chain import LimiterChain
from lm_deluge_cli.engine.setup import build_requester
from lm_deluge_cli.engine.shared_budget import KEY_PREFIX
from lm_deluge_cli.engine.shared_limiter import SharedRateLimiter
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.types import RateLimitInfo, SamplingParams

pytestmark = pytest.mark.anyio

Open = Callable[..., Awaitable[SharedRateLimiter]]


def paced(start: float, expected_s: float) -> bool:
    """Whether the time since `start` is `expected_s`: never early (that would break the
    rate), and late by less than half a second (a busy machine wakes sleepers late)."""
    elapsed = time.monotonic() - start
    return expected_s - 0.05 <= elapsed < expected_s + 0.5


@pytest.fixture
def anyio_backend() -> str:
    # redis-py's asyncio client runs on asyncio only.
    return "asyncio"


@pytest.fixture
def key() -> str:
    """A budget of this test's own on the session's server."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def open_limiter(redis_server: RedisServer, key: str) -> AsyncIterator[Open]:
    """Connect limiters (by default to the session server, on `key`); all closed after."""
    opened: list[SharedRateLimiter] = []

    async def open_(url: str | None = None, **kwargs: Any) -> SharedRateLimiter:
        kwargs.setdefault("key", key)
        kwargs.setdefault("requests_per_minute", None)
        kwargs.setdefault("tokens_per_minute", None)
        limiter = await SharedRateLimiter.connect(url or redis_server.url, **kwargs)
        opened.append(limiter)
        return limiter

    yield open_
    for limiter in opened:
        await limiter.aclose()


async def acquire_until(
    limiter: SharedRateLimiter, deadline: float, times: list[float], *, tasks: int = 2
) -> None:
    """Acquire from `tasks` concurrent tasks until `deadline` (monotonic), noting each grant."""

    async def worker() -> None:
        while True:
            with anyio.move_on_after(deadline - time.monotonic()):
                await limiter.acquire()
                times.append(time.monotonic())
                continue
            return

    async with anyio.create_task_group() as tg:
        for _ in range(tasks):
            tg.start_soon(worker)


def most_in_any_window(times: list[float], window: float) -> int:
    """The most grants in any `window` seconds."""
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] > window:
            start += 1
        most = max(most, end - start + 1)
    return most


async def until_shared(limiter: SharedRateLimiter) -> None:
    """Poll until the limiter shares redis again.

    A function of its own so that a caller's earlier `assert not limiter.shared` does not
    make a type checker read the loop as endless (it narrows the property to False).
    """
    while not limiter.shared:
        await anyio.sleep(0.05)


def rate_between(times: list[float], first: float, last: float) -> float:
    """Grants per second within [first, last]."""
    return sum(first <= t <= last for t in times) / (last - first)


# -- pacing --------------------------------------------------------------------------


async def test_one_process_paces_at_the_rate(open_limiter: Open) -> None:
    limiter = await open_limiter(requests_per_minute=600.0)
    times: list[float] = []
    start = time.monotonic()

    async def worker(n: int) -> None:
        for _ in range(n):
            await limiter.acquire()
            times.append(time.monotonic())

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(worker, 9)
    times.sort()
    # A full bucket holds half a second: 5 requests at once, then one every 0.1 s.
    assert times[4] - start < 0.05
    assert times[5] - start > 0.08
    interval = (times[35] - times[5]) / 30
    assert interval == pytest.approx(0.1, rel=0.02)
    stats = limiter.statistics()
    assert stats.acquired == 36 and stats.requests_per_minute == 600.0
    assert stats.request_capacity == 5.0
    assert stats.request_level is not None and stats.request_level < 1.0


async def test_two_limiters_on_one_key_share_the_rate(open_limiter: Open) -> None:
    a = await open_limiter(requests_per_minute=1200.0)
    b = await open_limiter(requests_per_minute=1200.0)
    times_a: list[float] = []
    times_b: list[float] = []
    start = time.monotonic()
    deadline = start + 2.0
    async with anyio.create_task_group() as tg:
        tg.start_soon(acquire_until, a, deadline, times_a)
        tg.start_soon(acquire_until, b, deadline, times_b)
    both = times_a + times_b
    # 20 a second plus one bucket of 10: at most 50 in the 2 s, and no second over 30.
    assert 45 <= len(both) <= 51
    assert most_in_any_window(both, 1.0) <= 31
    assert rate_between(both, start + 0.5, start + 2.0) == pytest.approx(20.0, rel=0.1)
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


async def test_the_token_bucket(open_limiter: Open) -> None:
    # 400 tokens a second, a bucket of 200.
    limiter = await open_limiter(tokens_per_minute=24_000.0)
    start = time.monotonic()
    await limiter.acquire(200)
    assert time.monotonic() - start < 0.05
    # Larger than the bucket: waits for a full one (0.5 s) and takes it to -100.
    await limiter.acquire(300)
    assert paced(start, 0.5)
    await limiter.acquire(100)
    assert paced(start, 1.0)
    stats = limiter.statistics()
    assert stats.tokens_acquired == 600
    # Both waits were on the token bucket.
    assert stats.waited_tokens_s == pytest.approx(1.0, abs=0.1)
    assert stats.waited_requests_s == stats.waited_provider_s == 0.0


# -- feedback --------------------------------------------------------------------------


async def test_a_pause_holds_every_limiter_on_the_key_and_slows_them(
    open_limiter: Open, redis_server: RedisServer, key: str
) -> None:
    a = await open_limiter(requests_per_minute=600.0)
    b = await open_limiter(requests_per_minute=600.0)
    start = time.monotonic()
    a.pause(0.6)
    a.pause(0.1)  # extends, never shortens
    await anyio.sleep(0.05)  # a's background task sends it
    await b.acquire()
    # The pause, then one request's refill at 0.8 of the rate: 0.6 + 0.125 s.
    assert paced(start, 0.725)
    assert b.statistics().rate_factor == pytest.approx(0.8, abs=0.01)
    # All of b's wait was the provider's: the pause, then the slowed-down refill.
    assert 0.6 < b.statistics().waited_provider_s < 0.8
    assert b.statistics().waited_requests_s == 0.0
    assert a.pauses == 2 and b.pauses == 0
    # A second 429 after the first pause ended compounds the slow-down.
    b.pause(0.0)
    await b.acquire()
    factor = float(redis_server.hget(f"{KEY_PREFIX}{{{key}}}:state", "sf") or b"nan")
    assert factor == pytest.approx(0.8 * 0.8, abs=0.02)


async def test_a_limiter_on_another_key_is_not_paused(open_limiter: Open) -> None:
    a = await open_limiter(requests_per_minute=600.0)
    other = await open_limiter(requests_per_minute=600.0, key=f"other-{uuid.uuid4().hex[:8]}")
    a.pause(5.0)
    await anyio.sleep(0.05)
    with anyio.fail_after(0.2):
        await other.acquire()
    with anyio.move_on_after(0.3) as scope:
        await a.acquire()
    assert scope.cancelled_caught


async def test_keys_are_independent_budgets(open_limiter: Open) -> None:
    a = await open_limiter(requests_per_minute=60.0)
    b = await open_limiter(requests_per_minute=60.0)
    elsewhere = await open_limiter(requests_per_minute=60.0, key=f"else-{uuid.uuid4().hex[:8]}")
    with anyio.fail_after(0.2):
        await a.acquire()
        await elsewhere.acquire()
    # a took the key's one request: b, on the same key, must wait about a second.
    with anyio.move_on_after(0.4) as scope:
        await b.acquire()
    assert scope.cancelled_caught


async def test_reconcile_credits_and_debits_the_shared_token_bucket(open_limiter: Open) -> None:
    limiter = await open_limiter(tokens_per_minute=24_000.0)  # 400/s, a bucket of 200
    start = time.monotonic()
    ticket = await limiter.acquire(200)
    # Estimated 200, used 40: 160 come back, so 160 more go at once.
    limiter.reconcile(ticket, 40)
    second = await limiter.acquire(160)
    assert time.monotonic() - start < 0.3  # without the credit: 0.4 s
    # Estimated 160, used 360: 200 more are owed, on top of an empty bucket: 1 s (0.5 s
    # without the debit). Loose bounds: the machine may be busy.
    limiter.reconcile(second, 360)
    await limiter.acquire(200)
    assert 0.85 <= time.monotonic() - start < 1.6


async def test_release_gives_a_ticket_back(open_limiter: Open) -> None:
    limiter = await open_limiter(requests_per_minute=60.0)
    with anyio.fail_after(0.3):
        ticket = await limiter.acquire()
        limiter.release(ticket)
        await limiter.acquire()


async def test_a_chain_with_a_shared_limiter(open_limiter: Open) -> None:
    shared = await open_limiter(requests_per_minute=60.0)
    own = RateLimiter(None, 600.0, burst_s=10.0)  # 10 tokens a second, a bucket of 100
    chain = LimiterChain(own, shared)
    with anyio.fail_after(0.3):
        tickets = await chain.acquire(10)
    chain.observe(tickets, RateLimitInfo(), describes=(True, False))
    chain.reconcile(tickets, 5)
    # The shared budget's one request is spent: the next wait is cancelled, and the
    # model's own ticket is given back.
    with anyio.move_on_after(0.3):
        await chain.acquire(10)
    stats = own.statistics()
    assert stats.acquired == 2
    # 100 - 10 + 5 (reconciled) + 3 (refilled) - 10 + 10 (given back); 88 if kept.
    assert stats.token_level is not None and stats.token_level >= 95


# -- without Redis -----------------------------------------------------------------------


async def test_redis_unreachable_at_the_start(
    redis_server: RedisServer, closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://{redis_server.user}:{redis_server.password_quoted}@127.0.0.1:{closed_port}/0"
    with caplog.at_level(logging.WARNING), anyio.fail_after(3.0):
        limiter = await SharedRateLimiter.connect(
            url, key="k", requests_per_minute=1200.0, tokens_per_minute=None
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
        start = time.monotonic()
        for _ in range(15):
            await limiter.acquire()
        assert paced(start, 1.0)
        assert limiter.statistics().acquired == 15
        assert limiter.statistics().waited_requests_s == pytest.approx(1.0, abs=0.1)
        # Tickets of the fallback go back to it.
        level = limiter.statistics().request_level
        limiter.release(await limiter.acquire())
        after = limiter.statistics().request_level
        assert level is not None and after is not None and after > level
    finally:
        with anyio.fail_after(3.0):
            await limiter.aclose()


async def test_falls_back_when_redis_stops_and_returns_when_it_is_back(
    start_redis: StartRedis, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_redis()
    key = "fallback"
    # Two more processes seen alive: the fallback takes a third of the limit.
    far = repr(time.time() + 3600)
    for member in ("peer-1", "peer-2"):
        server.command("ZADD", f"{KEY_PREFIX}{{{key}}}:processes", far, member)
    limiter = await SharedRateLimiter.connect(
        server.password_url,
        key=key,
        requests_per_minute=1200.0,
        tokens_per_minute=None,
        heartbeat_s=0.2,
    )
    times: list[float] = []
    try:
        assert limiter.processes == 3
        with caplog.at_level(logging.WARNING):
            start = time.monotonic()
            async with anyio.create_task_group() as tg:
                tg.start_soon(acquire_until, limiter, start + 4.5, times)
                await anyio.sleep(1.0)
                server.kill()
                killed = time.monotonic()
                await anyio.sleep(1.5)
                assert not limiter.shared
                waited_cut_off = limiter.statistics().waited_requests_s
                server.start()
                with anyio.fail_after(2.0):
                    await until_shared(limiter)
                back = time.monotonic()
        # The shared rate, a third of it (after the fallback's own bucket), then all again.
        assert rate_between(times, start + 0.5, killed) == pytest.approx(20.0, rel=0.1)
        assert rate_between(times, killed + 0.5, killed + 1.5) == pytest.approx(20 / 3, abs=1.1)
        assert rate_between(times, back + 0.5, start + 4.5) == pytest.approx(20.0, rel=0.15)
        # The fallback's waits stay counted once it is dropped.
        assert waited_cut_off > 0.5
        assert limiter.statistics().waited_requests_s > waited_cut_off
        messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        cut = [m for m in messages if "unreachable" in m]
        again = [m for m in messages if " is back:" in m]
        assert len(cut) == 1 and len(again) == 1, messages
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
