"""DiskCache: a locked index skips instead of hanging, and pickled entries are refused."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import anyio
import diskcache
import pytest

from lm_deluge_cli.cache import CorruptEntryError, DiskCache, open_cache

pytestmark = pytest.mark.anyio


def k(n: int | str) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def hold_write_lock(directory: Path) -> sqlite3.Connection:
    """Take the index's write lock from another connection, as a busy process would."""
    conn = sqlite3.connect(directory / "cache.db", isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


async def test_a_write_behind_a_held_lock_is_skipped_after_the_timeout(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "dc", lock_timeout_s=0.2)
    await cache.set(k(1), b"before")
    conn = hold_write_lock(tmp_path / "dc")
    try:
        started = time.monotonic()
        await cache.set(k(2), b"while locked")
        await cache.set(k(3), b"x" * 100_000, ttl_s=60)  # a value file is cleaned up too
        elapsed = time.monotonic() - started
        # Readers do not wait for writers (WAL).
        assert await cache.get(k(1)) == b"before"
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    assert 0.3 <= elapsed < 2.0
    assert cache.lock_timeouts == 2
    assert await cache.get(k(2)) is None
    assert await cache.get(k(3)) is None
    assert not any((tmp_path / "dc").rglob("*.val"))
    await cache.set(k(2), b"after")
    assert await cache.get(k(2)) == b"after"
    await cache.aclose()


async def test_a_pickled_entry_is_refused_not_unpickled(tmp_path: Path) -> None:
    raw = diskcache.Cache(tmp_path / "dc")
    raw.set(k(1), {"pickled": True})
    raw.set(k(2), "a str is stored as text")
    raw.close()
    cache = DiskCache(tmp_path / "dc")
    with pytest.raises(CorruptEntryError):
        await cache.get(k(1))
    with pytest.raises(CorruptEntryError):
        await cache.get(k(2))
    # Read among others, each is reported in its place and the rest still come back.
    await cache.set(k(3), b"fine")
    found = await cache.get_many([k(1), k(3), k(2), k(4)])
    assert isinstance(found[0], CorruptEntryError) and isinstance(found[2], CorruptEntryError)
    assert (found[1], found[3]) == (b"fine", None)
    assert await cache.delete(k(1)) is True
    assert await cache.get(k(1)) is None
    await cache.aclose()


async def test_large_values_live_in_files_and_clear_removes_them(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "dc")
    await cache.set(k(1), b"x" * 200_000)
    files = list((tmp_path / "dc").rglob("*.val"))
    assert len(files) == 1
    size = (await cache.stats()).size_bytes
    assert size is not None and size >= 200_000
    assert await cache.clear() == 1
    assert not any((tmp_path / "dc").rglob("*.val"))
    await cache.aclose()


async def test_a_namespace_is_a_subdirectory_with_its_own_entries(tmp_path: Path) -> None:
    root = open_cache(str(tmp_path / "dc"))
    team = open_cache(str(tmp_path / "dc"), namespace="team-a")
    assert team.location == str(tmp_path / "dc" / "namespaces" / "team-a")
    await root.set(k(1), b"root")
    await team.set(k(1), b"team")
    assert await root.get(k(1)) == b"root"
    assert await team.get(k(1)) == b"team"
    assert await root.clear() == 1
    assert await team.get(k(1)) == b"team"
    await root.aclose()
    await team.aclose()


def test_a_directory_under_a_regular_file_cannot_be_opened(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(OSError):
        DiskCache(tmp_path / "file" / "cache")


async def test_writes_from_one_process_take_turns_instead_of_timing_out(tmp_path: Path) -> None:
    # Twenty batches at once (an embed run's answers arriving together), each in its own
    # worker thread: they wait for each other's transaction, none is skipped for a lock
    # that is ours.
    cache = DiskCache(tmp_path / "c", lock_timeout_s=0.05)
    batches = [[(f"{b}.{i}", b"v" * 2000) for i in range(2000)] for b in range(20)]
    async with anyio.create_task_group() as group:
        for batch in batches:
            group.start_soon(cache.set_many, batch)
    assert cache.lock_timeouts == 0
    found = await cache.get_many([key for batch in batches for key, _ in batch])
    assert all(value is not None for value in found)
    await cache.aclose()
