"""A cache damaged on disk: recognised by SQLite's codes, its files removed only when safe."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import diskcache
import pytest

from lm_deluge_cli.cache.damage import DamagedCacheError, is_damage, remove_damaged
from lm_deluge_cli.cache.spec import default_cache_file, parse_spec
from lm_deluge_cli.cache.sqlite import SqliteCache

pytestmark = pytest.mark.anyio


def _error_of(path: Path) -> sqlite3.Error:
    try:
        sqlite3.connect(path).execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        return exc
    raise AssertionError(f"{path} opened as a database")


def _spoil_pages(path: Path) -> None:
    """Keep SQLite's header, write over the pages after it: "malformed"."""
    with path.open("r+b") as f:
        f.seek(100)
        f.write(b"\xff" * 8000)


def _a_sqlite_cache(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(str(i), b"x" * 500) for i in range(50)])
    conn.commit()
    conn.close()


def test_not_a_database_and_malformed_are_damage_and_a_busy_lock_is_not(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"no database here " * 300)
    assert is_damage(_error_of(garbage))
    spoiled = tmp_path / "spoiled.sqlite"
    _a_sqlite_cache(spoiled)
    _spoil_pages(spoiled)
    assert is_damage(_error_of(spoiled))
    assert not is_damage(sqlite3.OperationalError("database is locked"))
    assert not is_damage(OSError("disk full"))


def test_a_damaged_sqlite_file_is_removed_with_its_log(tmp_path: Path) -> None:
    path = tmp_path / "answers.sqlite"
    _a_sqlite_cache(path)
    _spoil_pages(path)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").write_bytes(b"left over")
    removed = remove_damaged(parse_spec(str(path)))
    assert sorted(removed) == sorted([str(path), f"{path}-wal", f"{path}-shm"])
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_sqlite_is_left_alone_unless_it_is_the_default_cache(
    tmp_path: Path,
) -> None:
    results = tmp_path / "results.db"
    results.write_text('{"id": 1, "status": "ok"}\n')
    with pytest.raises(DamagedCacheError, match=r"not a SQLite database.*rm "):
        remove_damaged(parse_spec(str(results)))
    assert results.read_text() == '{"id": 1, "status": "ok"}\n'
    default = default_cache_file()
    default.parent.mkdir(parents=True)
    default.write_bytes(b"\x00" * 4096)  # ours, damaged past recognition
    assert remove_damaged(parse_spec(str(default))) == [str(default)]
    assert not default.exists()


def test_a_damaged_diskcache_directory_loses_its_index_and_values_but_nothing_else(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "cache"
    with diskcache.Cache(str(directory)) as cache:
        for i in range(5):
            cache.set(f"big{i}", b"v" * 100_000)  # large values live in files
    values = list(directory.rglob("*.val"))
    assert len(values) == 5
    (directory / "notes.txt").write_text("mine")
    _spoil_pages(directory / "cache.db")
    removed = remove_damaged(parse_spec(str(directory)))
    assert set(map(str, values)) <= set(removed) and str(directory / "cache.db") in removed
    assert [p.name for p in directory.iterdir()] == ["notes.txt"]


def test_a_directory_without_a_sqlite_index_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "cache.db").write_text("not an index")
    with pytest.raises(DamagedCacheError, match=r"left alone.*rm -r"):
        remove_damaged(parse_spec(str(tmp_path)))
    assert (tmp_path / "cache.db").exists()


@pytest.mark.parametrize("spec", ["memory:", "redis://localhost:6379/0", "leveldb:somewhere"])
def test_other_backends_say_how_to_remove_them_by_hand(spec: str) -> None:
    with pytest.raises(DamagedCacheError, match="remove it by hand"):
        remove_damaged(parse_spec(spec))


async def test_a_cache_made_anew_after_removal_works(tmp_path: Path) -> None:
    path = tmp_path / "answers.sqlite"
    _a_sqlite_cache(path)
    _spoil_pages(path)
    with pytest.raises(sqlite3.DatabaseError) as opened:
        SqliteCache(path)
    assert is_damage(opened.value)
    remove_damaged(parse_spec(str(path)))
    cache = SqliteCache(path)
    await cache.set("k" * 64, b"answer")
    assert await cache.get("k" * 64) == b"answer"
    await cache.aclose()
