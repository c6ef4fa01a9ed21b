"""The Cache contract, run against every backend: memory, diskcache, SQLite, Redis, LevelDB."""

from __future__ import annotations

import hashlib
import math
import os
import sys
import textwrap
from typing import TYPE_CHECKING

import anyio
import pytest

from lm_deluge_cli.cache import Cache, CacheStats, ResilientCache

if TYPE_CHECKING:
    from .conftest import Store

pytestmark = pytest.mark.anyio

# Long enough that a loaded machine reads the entry before it expires, short enough
# that waiting it out costs little; the wait adds a margin for clocks and Redis. Stores
# on a test clock (every backend but Redis, whose server keeps the time) wait on it, not
# for real.
SHORT_TTL_S = 0.3
PAST_SHORT_TTL_S = 0.45


def k(n: int | str) -> str:
    """A 64-character hex key, as the caller's SHA-256 gives."""
    return hashlib.sha256(str(n).encode()).hexdigest()


async def test_miss_then_hit(cache: Cache) -> None:
    assert await cache.get(k(1)) is None
    await cache.set(k(1), b'{"completion": "hi"}')
    assert await cache.get(k(1)) == b'{"completion": "hi"}'
    assert await cache.get(k(2)) is None


async def test_set_overwrites(cache: Cache) -> None:
    await cache.set(k(1), b"first")
    await cache.set(k(1), b"second, longer than the first")
    assert await cache.get(k(1)) == b"second, longer than the first"
    await cache.set(k(1), b"3")
    assert await cache.get(k(1)) == b"3"


async def test_entries_expire_after_their_ttl(cache: Cache, store: Store) -> None:
    await cache.set(k("short"), b"short", ttl_s=SHORT_TTL_S)
    await cache.set(k("long"), b"long", ttl_s=3600)
    await cache.set(k("forever"), b"forever")
    await cache.set(k("inf"), b"inf", ttl_s=math.inf)
    assert await cache.get(k("short")) == b"short"
    if store.clock is not None:
        # On a clock of the store's own, the entry lasts its TTL, to the millisecond.
        await store.wait(SHORT_TTL_S - 0.001)
        assert await cache.get(k("short")) == b"short"
        await store.wait(0.002)
    else:
        await store.wait(PAST_SHORT_TTL_S)
    assert await cache.get(k("short")) is None
    assert await cache.get(k("long")) == b"long"
    assert await cache.get(k("forever")) == b"forever"
    assert await cache.get(k("inf")) == b"inf"
    # An expired entry is not counted either.
    assert (await cache.stats()).entries in (3, None)


async def test_overwrite_without_ttl_clears_the_old_ttl(cache: Cache, store: Store) -> None:
    await cache.set(k(1), b"old", ttl_s=SHORT_TTL_S)
    await cache.set(k(1), b"new")
    await store.wait(PAST_SHORT_TTL_S)
    assert await cache.get(k(1)) == b"new"


@pytest.mark.parametrize("ttl_s", [0, -1, -0.001, math.nan])
async def test_non_positive_ttl_stores_nothing_and_removes_the_old_entry(
    cache: Cache, ttl_s: float
) -> None:
    await cache.set(k(1), b"old")
    await cache.set(k(1), b"new", ttl_s=ttl_s)
    assert await cache.get(k(1)) is None
    await cache.set(k(2), b"never", ttl_s=ttl_s)
    assert await cache.get(k(2)) is None


async def test_one_megabyte_value_round_trips(cache: Cache) -> None:
    value = os.urandom(1 << 20)
    await cache.set(k("big"), value)
    assert await cache.get(k("big")) == value
    # Replacing a big value with a small one (diskcache moves it out of a file).
    await cache.set(k("big"), b"small")
    assert await cache.get(k("big")) == b"small"


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\x00",
        bytes(range(256)),
        b"\xff\xfe not utf-8 \x80",
        b"\r\n*3\r\n$3\r\nSET\r\n",  # looks like the Redis protocol
        "ünïcödé ✓".encode(),
    ],
    ids=["empty", "nul", "all-bytes", "invalid-utf8", "resp-lookalike", "utf8"],
)
async def test_binary_values_round_trip_exactly(cache: Cache, value: bytes) -> None:
    await cache.set(k(1), value)
    got = await cache.get(k(1))
    assert got == value
    assert type(got) is bytes


async def test_many_keys_keep_their_own_values(cache: Cache) -> None:
    keys = [k(i) for i in range(500)]
    for i, name in enumerate(keys):
        await cache.set(name, f"value {i}".encode())
    for i, name in enumerate(keys):
        assert await cache.get(name) == f"value {i}".encode()
    assert (await cache.stats()).entries in (500, None)


async def test_concurrent_tasks_do_not_mix_entries(cache: Cache) -> None:
    async def worker(n: int) -> None:
        for i in range(20):
            await cache.set(k(f"{n}-{i}"), f"{n}-{i}".encode())
            assert await cache.get(k(f"{n}-{i}")) == f"{n}-{i}".encode()

    async with anyio.create_task_group() as tg:
        for n in range(20):
            tg.start_soon(worker, n)
    for n in range(20):
        assert await cache.get(k(f"{n}-19")) == f"{n}-19".encode()


async def test_many_entries_in_one_write_are_each_stored(cache: Cache, store: Store) -> None:
    # Through the resilient wrapper, as runs store a batch: one write where the backend has
    # set_many (diskcache, SQLite), one set per entry otherwise; TTLs as for set.
    wrapper = ResilientCache(cache)
    await cache.set(k("old"), b"old")
    await wrapper.set_many([(k(i), f"value {i}".encode()) for i in range(50)])
    await wrapper.set_many([(k("old"), b"new"), (k("brief"), b"brief")], ttl_s=SHORT_TTL_S)
    assert [await cache.get(k(i)) for i in range(50)] == [f"value {i}".encode() for i in range(50)]
    assert await cache.get(k("old")) == b"new"
    await store.wait(PAST_SHORT_TTL_S)
    assert await cache.get(k("brief")) is None
    await wrapper.set_many([(k(0), b"gone")], ttl_s=0)
    assert await cache.get(k(0)) is None
    assert wrapper.statistics().writes == 53


async def test_many_entries_are_read_in_one_go(cache: Cache, store: Store) -> None:
    # As embed reads a batch's keys: in order, misses as None, an entry its decoder refuses
    # dropped (a miss), expired entries missed; one query where the backend has get_many.
    wrapper = ResilientCache(cache)
    await wrapper.set_many([(k(i), str(i).encode()) for i in range(700)])
    await cache.set(k("junk"), b"not a number")
    await cache.set(k("brief"), b"1", ttl_s=SHORT_TTL_S)
    await store.wait(PAST_SHORT_TTL_S)
    keys = [k(i) for i in range(700)] + [k("absent"), k("junk"), k("brief")]
    values = await wrapper.get_many_decoded(keys, int)
    assert values == [*range(700), None, None, None]
    counters = wrapper.statistics()
    assert (counters.hits, counters.misses, counters.corrupted) == (700, 3, 1)
    assert await cache.get(k("junk")) is None  # the refused entry was removed
    assert await wrapper.get_many_decoded([], int) == []


async def test_stats_describe_the_cache(cache: Cache, store: Store) -> None:
    empty = await cache.stats()
    assert isinstance(empty, CacheStats)
    assert (empty.backend, empty.location) == (cache.backend, cache.location)
    assert cache.backend == store.backend
    assert empty.entries == 0
    for i in range(3):
        await cache.set(k(i), b"x" * 1000)
    stats = await cache.stats()
    assert stats.entries == 3
    if stats.size_bytes is not None:
        assert stats.size_bytes >= 3000


async def test_clear_removes_everything_and_counts_it(cache: Cache) -> None:
    for i in range(3):
        await cache.set(k(i), b"v")
    assert await cache.clear() == 3
    for i in range(3):
        assert await cache.get(k(i)) is None
    assert (await cache.stats()).entries == 0
    assert await cache.clear() == 0
    # Still usable after a clear.
    await cache.set(k(9), b"again")
    assert await cache.get(k(9)) == b"again"


async def test_two_instances_on_one_location_share_entries(shared_store: Store) -> None:
    a, b = shared_store.open(), shared_store.open()
    await a.set(k(1), b"from a")
    assert await b.get(k(1)) == b"from a"
    await b.set(k(1), b"from b")
    assert await a.get(k(1)) == b"from b"
    await b.set(k(2), b"expires", ttl_s=SHORT_TTL_S)
    assert await a.get(k(2)) == b"expires"
    assert await b.clear() == 2
    assert await a.get(k(1)) is None


_CHILD = textwrap.dedent(
    """
    import sys
    import anyio
    from lm_deluge_cli.cache import open_cache

    async def main(spec, namespace, parent_key, child_key):
        cache = open_cache(spec, namespace=namespace or None)
        got = await cache.get(parent_key)
        await cache.set(child_key, b"written by the child \\x00\\xff")
        await cache.aclose()
        sys.stdout.write(repr(got))

    anyio.run(main, *sys.argv[1:])
    """
)


async def test_two_processes_share_entries(shared_store: Store) -> None:
    cache = shared_store.open()
    await cache.set(k("parent"), b"written by the parent")
    result = await anyio.run_process(
        [
            sys.executable,
            "-c",
            _CHILD,
            shared_store.spec,
            shared_store.namespace or "",
            k("parent"),
            k("child"),
        ],
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == repr(b"written by the parent")
    assert await cache.get(k("child")) == b"written by the child \x00\xff"
