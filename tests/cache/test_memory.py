"""MemoryCache: TTLs on an injected clock, and least-recently-used eviction."""

from __future__ import annotations

import pytest

from lm_deluge_cli.cache import MemoryCache

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_ttl_runs_on_the_injected_clock() -> None:
    clock = Clock()
    cache = MemoryCache(clock=clock)
    await cache.set("a", b"1", ttl_s=10)
    clock.t += 9.999
    assert await cache.get("a") == b"1"
    clock.t += 0.001
    assert await cache.get("a") is None


async def test_the_least_recently_used_entry_is_evicted_first() -> None:
    cache = MemoryCache(max_entries=3)
    for name in "abc":
        await cache.set(name, name.encode())
    assert await cache.get("a") == b"a"  # now b is the least recently used
    await cache.set("d", b"d")
    assert await cache.get("b") is None
    assert [await cache.get(n) for n in "acd"] == [b"a", b"c", b"d"]
    await cache.set("c", b"c2")  # a write counts as a use too
    await cache.set("e", b"e")
    assert await cache.get("a") is None
    assert (await cache.stats()).entries == 3


async def test_expired_entries_make_room_before_live_ones() -> None:
    clock = Clock()
    cache = MemoryCache(max_entries=2, clock=clock)
    await cache.set("live", b"1")
    await cache.set("short", b"2", ttl_s=1)
    clock.t += 2
    await cache.set("new", b"3")
    assert await cache.get("live") == b"1"
    assert await cache.get("new") == b"3"


async def test_stats_count_bytes_and_skip_expired_entries() -> None:
    clock = Clock()
    cache = MemoryCache(clock=clock)
    await cache.set("a", b"12345")
    await cache.set("b", b"123", ttl_s=1)
    assert (await cache.stats()).size_bytes == 8
    clock.t += 1
    stats = await cache.stats()
    assert (stats.entries, stats.size_bytes, stats.location) == (1, 5, "memory:")


async def test_instances_are_private() -> None:
    a, b = MemoryCache(), MemoryCache()
    await a.set("k", b"a")
    assert await b.get("k") is None


async def test_delete_reports_whether_there_was_an_entry() -> None:
    cache = MemoryCache()
    await cache.set("k", b"v")
    assert await cache.delete("k") is True
    assert await cache.delete("k") is False


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryCache(max_entries=0)
