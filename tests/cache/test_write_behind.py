"""WriteBehind: entries queued without waiting, stored in batches, dropped (and counted)
when the cache falls behind, flushed at the end; `synced` waits for what was queued."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import anyio
import pytest

from lm_deluge_cli.cache import MemoryCache, ResilientCache, WriteBehind

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recording(MemoryCache):
    """A MemoryCache that records each set_many's size, and may block in a thread."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    async def set_many(
        self, entries: Sequence[tuple[str, bytes]], ttl_s: float | None = None
    ) -> None:
        await anyio.to_thread.run_sync(self.gate.wait)
        self.batches.append(len(entries))
        for key, value in entries:
            await self.set(key, value, ttl_s)


def key(n: int) -> str:
    return f"{n:064x}"


async def test_a_full_batch_is_stored_at_once_in_one_write() -> None:
    inner = Recording()
    writer = WriteBehind(ResilientCache(inner), batch_size=10, interval_s=60)
    async with anyio.create_task_group() as group:
        group.start_soon(writer.run)
        for n in range(25):
            assert writer.put(key(n), b"v")
        with anyio.fail_after(5):
            while len(inner.batches) < 2:
                await anyio.sleep(0.01)
        assert inner.batches == [10, 10]  # the rest waits for the interval or the end
        await writer.aclose()
    assert inner.batches == [10, 10, 5]
    assert await inner.get(key(24)) == b"v"
    assert writer.statistics().pending == 0 and writer.dropped == 0


class ManualTimer:
    """The writer's interval timer, its time passing only when `elapse` says so."""

    def __init__(self) -> None:
        self.waits: list[tuple[float, anyio.CancelScope]] = []

    def __call__(self, interval_s: float) -> anyio.CancelScope:
        scope = anyio.CancelScope()
        self.waits.append((interval_s, scope))
        return scope

    def elapse(self) -> float:
        """End the interval being waited for; its length."""
        interval_s, scope = self.waits[-1]
        scope.cancel()
        return interval_s


async def test_a_partial_batch_is_stored_after_the_interval() -> None:
    inner = Recording()
    timer = ManualTimer()
    writer = WriteBehind(
        ResilientCache(inner), batch_size=100, interval_s=0.05, interval_timer=timer
    )
    async with anyio.create_task_group() as group:
        group.start_soon(writer.run)
        writer.put(key(1), b"v")
        await anyio.wait_all_tasks_blocked()
        assert inner.batches == []  # not before the interval
        assert timer.elapse() == 0.05
        with anyio.fail_after(5):
            while not inner.batches:
                await anyio.sleep(0.01)  # the store's thread
        assert inner.batches == [1]
        await writer.aclose()


async def test_when_the_cache_falls_behind_entries_are_dropped_and_put_never_waits() -> None:
    inner = Recording()
    inner.gate.clear()  # the store hangs: nothing gets written
    writer = WriteBehind(ResilientCache(inner), batch_size=5, interval_s=0.01, max_pending=20)
    async with anyio.create_task_group() as group:
        group.start_soon(writer.run)
        accepted = 0
        with anyio.fail_after(5):
            for n in range(100):
                accepted += writer.put(key(n), b"v")
                await anyio.sleep(0)
        assert accepted == 20
        assert writer.dropped == 80
        assert writer.statistics().pending == 20
        inner.gate.set()
        await writer.aclose()
    assert sum(inner.batches) == 20
    assert writer.dropped == 80


async def test_a_writer_that_never_ran_stores_everything_when_closed() -> None:
    inner = Recording()
    writer = WriteBehind(ResilientCache(inner), batch_size=3)
    for n in range(7):
        writer.put(key(n), b"v")
    assert not writer.running
    await writer.aclose()
    assert inner.batches == [3, 3, 1]
    assert not writer.put(key(99), b"late")  # closed: refused, and counted
    assert writer.dropped == 1


async def test_closing_gives_up_after_the_flush_timeout_and_counts_what_is_left() -> None:
    inner = Recording()
    inner.gate.clear()
    writer = WriteBehind(ResilientCache(inner), batch_size=2, flush_timeout_s=0.2)
    async with anyio.create_task_group() as group:
        group.start_soon(writer.run)
        for n in range(6):
            writer.put(key(n), b"v")
        await anyio.wait_all_tasks_blocked()  # the first batch is stuck in the store
        with anyio.fail_after(5):
            await writer.aclose()
        assert writer.dropped == 4  # the batch being written is not given up
        inner.gate.set()  # the stuck write finishes (a real store gives up on its own)


async def test_synced_waits_until_what_was_queued_is_stored() -> None:
    inner = Recording()
    writer = WriteBehind(ResilientCache(inner), batch_size=100, interval_s=60)
    async with anyio.create_task_group() as group:
        group.start_soon(writer.run)
        writer.put(key(1), b"round 1")
        with anyio.fail_after(5):
            await writer.synced()  # without waiting for the minute-long interval
        assert await inner.get(key(1)) == b"round 1"
        await writer.aclose()


async def test_a_failing_cache_never_raises_from_the_writer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(MemoryCache):
        async def set_many(
            self, entries: Sequence[tuple[str, bytes]], ttl_s: float | None = None
        ) -> None:
            raise OSError("disk full")

    cache = ResilientCache(Broken())
    writer = WriteBehind(cache, batch_size=2, interval_s=0.01)
    async with anyio.create_task_group() as group:
        group.start_soon(writer.run)
        for n in range(4):
            writer.put(key(n), b"v")
        await writer.aclose()
    assert cache.statistics().errors >= 1
    assert "disk full" in caplog.text


def test_the_bounds_are_checked() -> None:
    with pytest.raises(ValueError):
        WriteBehind(ResilientCache(MemoryCache()), batch_size=10, max_pending=5)
