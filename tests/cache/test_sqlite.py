"""SqliteCache: the file's schema and WAL mode, waiting for and giving up on locks, purging."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import lm_deluge_cli.cache.sqlite as sqlite_module
from lm_deluge_cli.cache import CorruptEntryError, SqliteCache, open_cache

pytestmark = pytest.mark.anyio


def k(n: int | str) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def rows(path: Path, table: str = "cache_entries") -> int:
    with sqlite3.connect(path) as conn:
        (count,) = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    return int(count)


async def test_the_file_is_in_wal_mode_with_the_documented_table(tmp_path: Path) -> None:
    cache = SqliteCache(tmp_path / "sub" / "c.sqlite")
    assert cache.journal_mode == "wal"
    conn = sqlite3.connect(tmp_path / "sub" / "c.sqlite")
    # WAL is a property of the file: every other connection gets it too.
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    columns = {row[1]: (row[2], row[5]) for row in conn.execute("PRAGMA table_info(cache_entries)")}
    assert columns == {
        "key": ("TEXT", 1),
        "value": ("BLOB", 0),
        "expires_at": ("REAL", 0),
        "created_at": ("REAL", 0),
    }
    conn.close()
    await cache.aclose()


async def test_a_write_waits_for_a_lock_released_within_the_busy_timeout(
    tmp_path: Path,
) -> None:
    cache = SqliteCache(tmp_path / "c.sqlite", busy_timeout_s=5.0)
    other = sqlite3.connect(tmp_path / "c.sqlite", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(0.2, lambda: other.execute("COMMIT"))
    releaser.start()
    started = time.monotonic()
    await cache.set(k(1), b"waited")
    elapsed = time.monotonic() - started
    releaser.join()
    other.close()
    assert 0.15 <= elapsed < 4.0
    assert cache.lock_timeouts == 0
    assert await cache.get(k(1)) == b"waited"
    await cache.aclose()


async def test_a_write_behind_a_longer_lock_is_skipped_after_the_busy_timeout(
    tmp_path: Path,
) -> None:
    cache = SqliteCache(tmp_path / "c.sqlite", busy_timeout_s=0.2)
    await cache.set(k(1), b"before")
    other = sqlite3.connect(tmp_path / "c.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        await cache.set(k(2), b"while locked")
        elapsed = time.monotonic() - started
        assert await cache.get(k(1)) == b"before"  # readers never wait in WAL mode
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert 0.15 <= elapsed < 2.0
    assert cache.lock_timeouts == 1
    assert await cache.get(k(2)) is None
    await cache.aclose()


async def test_expiry_follows_the_clock_and_expired_rows_are_purged(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "c.sqlite"
    cache = SqliteCache(path, clock=clock)
    await cache.set(k(1), b"short", ttl_s=10)
    await cache.set(k(2), b"kept")
    clock.t += 9.9
    assert await cache.get(k(1)) == b"short"
    clock.t += 0.1
    assert await cache.get(k(1)) is None
    assert rows(path) == 2  # the read only noted it
    await cache.set(k(3), b"next write")
    assert rows(path) == 2  # …and the next write purged it
    assert await cache.get(k(2)) == b"kept"
    await cache.aclose()


async def test_rows_record_creation_and_expiry_times(tmp_path: Path) -> None:
    clock = Clock()
    cache = SqliteCache(tmp_path / "c.sqlite", clock=clock)
    await cache.set(k(1), b"v", ttl_s=60)
    await cache.set(k(2), b"v")
    with sqlite3.connect(tmp_path / "c.sqlite") as conn:
        select = "SELECT key, expires_at, created_at FROM cache_entries"
        got = {key: (exp, created) for key, exp, created in conn.execute(select)}
    # A SHA-256 hex key is stored as its 32 bytes.
    assert got == {
        bytes.fromhex(k(1)): (clock.t + 60, clock.t),
        bytes.fromhex(k(2)): (None, clock.t),
    }
    await cache.aclose()


async def test_a_value_that_is_not_a_blob_is_a_corrupt_entry(tmp_path: Path) -> None:
    cache = SqliteCache(tmp_path / "c.sqlite")
    with sqlite3.connect(tmp_path / "c.sqlite") as conn:
        conn.execute(
            "INSERT INTO cache_entries VALUES (?, ?, NULL, 0)",
            (bytes.fromhex(k(1)), "text, not a blob"),
        )
    with pytest.raises(CorruptEntryError):
        await cache.get(k(1))
    # Read among others, it is reported in its place and the rest still come back.
    await cache.set(k(2), b"fine")
    found = await cache.get_many([k(1), k(2), k(3)])
    assert isinstance(found[0], CorruptEntryError) and found[1:] == [b"fine", None]
    await cache.aclose()


async def test_hex_keys_are_stored_as_bytes_and_other_keys_as_text(tmp_path: Path) -> None:
    cache = SqliteCache(tmp_path / "c.sqlite")
    await cache.set_many([(k(1), b"a"), ("not-a-hash", b"b"), (k(2).upper(), b"c")])
    with sqlite3.connect(tmp_path / "c.sqlite") as conn:
        kinds = dict(conn.execute("SELECT value, typeof(key) FROM cache_entries"))
    assert kinds == {b"a": "blob", b"b": "text", b"c": "text"}
    assert await cache.get_many([k(1), "not-a-hash", k(2).upper(), k(2)]) == [
        b"a",
        b"b",
        b"c",
        None,
    ]
    assert await cache.delete(k(1)) and await cache.get(k(1)) is None
    await cache.aclose()


async def test_a_file_with_keys_written_as_text_is_still_read(tmp_path: Path) -> None:
    """Files from before keys were stored as bytes: their answers are not paid for again."""
    path = tmp_path / "c.sqlite"
    await SqliteCache(path).aclose()
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO cache_entries VALUES (?, ?, NULL, 0)",
            [(k(1), b"old one"), (k(2), b"old two"), (k(3), b"old three")],
        )
    cache = SqliteCache(path)
    assert await cache.get(k(1)) == b"old one"
    await cache.set(k(2), b"new two")  # written as bytes: the newer wins
    assert await cache.get_many([k(1), k(2), k(4)]) == [b"old one", b"new two", None]
    assert await cache.delete(k(3)) and await cache.get(k(3)) is None
    await cache.set(k(2), b"gone", ttl_s=0)  # a zero TTL deletes both forms
    assert await cache.get(k(2)) is None
    assert rows(path) == 1
    await cache.aclose()


async def test_a_namespace_is_its_own_table(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    root = open_cache(str(path))
    team = open_cache(str(path), namespace="team.a")
    await root.set(k(1), b"root")
    await team.set(k(1), b"team")
    assert await root.get(k(1)) == b"root"
    assert await team.get(k(1)) == b"team"
    assert await team.clear() == 1
    assert await root.get(k(1)) == b"root"
    assert rows(path, "cache_entries:team.a") == 0
    await root.aclose()
    await team.aclose()


def test_a_file_that_is_not_a_database_cannot_be_opened(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database, just some text " * 100)
    with pytest.raises(sqlite3.DatabaseError):
        SqliteCache(path)


async def test_the_wal_is_copied_into_the_file_by_a_thread_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.sqlite"
    wal = tmp_path / "c.sqlite-wal"
    cache = SqliteCache(path)
    copying = threading.Event()
    release = threading.Event()
    real = sqlite_module._Checkpointer._checkpoint

    def slow(self: sqlite_module._Checkpointer) -> None:
        copying.set()
        release.wait(10)  # a copy that takes as long as the test wants
        real(self)

    monkeypatch.setattr(sqlite_module._Checkpointer, "_checkpoint", slow)
    every = sqlite_module.CHECKPOINT_EVERY_ENTRIES
    started = time.perf_counter()
    for batch in range(3):
        await cache.set_many([(k(f"{batch}.{i}"), b"v" * 600) for i in range(every)])
    # A copy was asked for and is under way; the writes did not wait for it.
    assert copying.wait(5)
    assert time.perf_counter() - started < 5
    assert cache.checkpoints == 0
    grown = wal.stat().st_size
    release.set()
    deadline = time.monotonic() + 10
    while cache.checkpoints == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.checkpoints >= 1
    # The WAL was copied whole: the next write starts it over from its beginning instead
    # of adding to its end.
    await cache.set_many([(k(f"after.{i}"), b"v" * 600) for i in range(10)])
    assert wal.stat().st_size == grown
    await cache.aclose()
    assert not any(t.name == "sqlite-checkpoint" and t.is_alive() for t in threading.enumerate())
    assert rows(path) == 3 * every + 10
