"""LevelDBCache: its spec, one process at a time, corrupt entries, expiry, file modes.

Every test that opens a LevelDB directory needs the optional plyvel package and is
skipped without it; the spec and missing-package tests run either way.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest
from typer.testing import CliRunner

from lm_deluge_cli.cache import (
    ACCEPTED_FORMS,
    CorruptEntryError,
    ResilientCache,
    open_cache,
    open_resilient,
    parse_spec,
)
from lm_deluge_cli.errors import ConfigError

pytestmark = pytest.mark.anyio

MISSING_PLYVEL = "the LevelDB cache needs the plyvel package: pip install 'lm-deluge-cli[leveldb]'"


def k(n: int | str) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def plyvel() -> ModuleType:
    # importorskip returns Any: the module it imports is known only at run time.
    return cast(ModuleType, pytest.importorskip("plyvel"))


@pytest.fixture
def leveldb(plyvel: ModuleType) -> ModuleType:
    from lm_deluge_cli.cache import leveldb

    return leveldb


def raw_entries(plyvel: ModuleType, path: Path) -> dict[bytes, bytes]:
    """Every key and stored value, read past the cache (which must be closed)."""
    db = plyvel.DB(str(path))
    try:
        return dict(db.iterator())
    finally:
        db.close()


# -- the spec ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "location"),
    [
        ("leveldb:answers", "answers"),
        ("LEVELDB:answers", "answers"),
        ("leveldb:answers.sqlite", "answers.sqlite"),
        ("answers.leveldb", "answers.leveldb"),
        ("sub/Answers.LevelDB", "sub/Answers.LevelDB"),
    ],
)
def test_leveldb_specs(spec: str, location: str, tmp_path: Path) -> None:
    os.chdir(tmp_path)
    parsed = parse_spec(spec)
    assert (parsed.backend, parsed.location) == ("leveldb", str(tmp_path / location))


def test_a_leveldb_path_expands_the_home_directory() -> None:
    assert parse_spec("leveldb:~/answers").location == str(Path.home() / "answers")


@pytest.mark.parametrize("spec", ["leveldb:", "leveldb:  ", "leveldb://host/answers"])
def test_malformed_leveldb_specs_are_refused(spec: str) -> None:
    with pytest.raises(ConfigError, match="write leveldb:PATH") as caught:
        parse_spec(spec)
    assert ACCEPTED_FORMS in str(caught.value)
    assert "leveldb:PATH" in ACCEPTED_FORMS


def test_without_plyvel_opening_a_leveldb_cache_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # None in sys.modules makes `import plyvel` raise ImportError, installed or not.
    monkeypatch.setitem(sys.modules, "plyvel", None)
    monkeypatch.delitem(sys.modules, "lm_deluge_cli.cache.leveldb", raising=False)
    assert parse_spec(str(tmp_path / "a.leveldb")).backend == "leveldb"  # parsing needs none
    with pytest.raises(ConfigError) as caught:
        open_cache(f"leveldb:{tmp_path / 'a'}")
    assert str(caught.value) == MISSING_PLYVEL
    assert not (tmp_path / "a").exists()


async def test_without_plyvel_a_run_stops_rather_than_going_on_uncached(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "plyvel", None)
    monkeypatch.delitem(sys.modules, "lm_deluge_cli.cache.leveldb", raising=False)
    with pytest.raises(ConfigError, match="plyvel"):
        await open_resilient(str(tmp_path / "a.leveldb"))


def test_the_package_imports_without_plyvel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "plyvel", None)
    monkeypatch.delitem(sys.modules, "lm_deluge_cli.cache.leveldb", raising=False)
    import lm_deluge_cli.cache as cache_package

    assert "LevelDBCache" not in cache_package.__all__
    with pytest.raises(ImportError):
        _ = cache_package.LevelDBCache


# -- one process at a time --------------------------------------------------------------

_HOLDER = textwrap.dedent(
    """
    import sys
    import plyvel

    db = plyvel.DB(sys.argv[1], create_if_missing=True)
    print("open", flush=True)
    sys.stdin.read()  # until the test closes our stdin
    db.close()
    """
)


@pytest.fixture
def held_elsewhere(plyvel: ModuleType, tmp_path: Path) -> Iterator[Path]:
    """A LevelDB directory held open by another process for the test's duration."""
    path = tmp_path / "held.leveldb"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"open\n"
        yield path
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


async def test_a_directory_in_use_by_another_process_is_a_clear_error(
    leveldb: ModuleType, held_elsewhere: Path
) -> None:
    cache = open_cache(str(held_elsewhere))
    with pytest.raises(leveldb.LevelDBLockedError) as caught:
        await cache.get(k(1))
    message = str(caught.value)
    assert str(held_elsewhere) in message
    assert "another process" in message
    assert "SQLite" in message and "Redis" in message
    assert isinstance(caught.value, OSError)
    await cache.aclose()


async def test_a_run_on_a_directory_in_use_warns_and_goes_on_uncached(
    leveldb: ModuleType, held_elsewhere: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = await open_resilient(str(held_elsewhere))
    assert not cache.statistics().available
    assert await cache.get(k(1)) is None
    assert "LevelDBLockedError" in caplog.text and "another process" in caplog.text
    await cache.aclose()


def test_the_cache_command_names_the_lock(leveldb: ModuleType, held_elsewhere: Path) -> None:
    from lm_deluge_cli.cli.app import app

    result = CliRunner().invoke(app, ["cache", "stats", "--cache", str(held_elsewhere)])
    assert result.exit_code != 0
    assert "another process" in str(result.exception) + result.output


_READER = textwrap.dedent(
    """
    import sys
    import anyio
    from lm_deluge_cli.cache import LevelDBLockedError, open_cache

    async def main(spec, key):
        cache = open_cache(spec)
        try:
            got = await cache.get(key)
        except LevelDBLockedError:
            got = "locked"
        await cache.aclose()
        sys.stdout.write(repr(got))

    anyio.run(main, *sys.argv[1:])
    """
)


def read_in_another_process(spec: str, key: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _READER, spec, key], capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


async def test_caches_of_one_process_share_the_directory_and_keep_its_lock(
    leveldb: ModuleType, tmp_path: Path
) -> None:
    spec = f"leveldb:{tmp_path / 'shared'}"
    a, b = open_cache(spec), open_cache(spec)
    await a.set(k(1), b"from a")
    assert await b.get(k(1)) == b"from a"
    # A second open in one process must not drop the lock other processes see.
    assert read_in_another_process(spec, k(1)) == "'locked'"
    await a.aclose()
    assert await b.get(k(1)) == b"from a"
    assert read_in_another_process(spec, k(1)) == "'locked'"
    await b.aclose()
    # Free once the last one is closed: another process reads what this one wrote.
    assert read_in_another_process(spec, k(1)) == repr(b"from a")


async def test_reopening_after_close_keeps_entries(leveldb: ModuleType, tmp_path: Path) -> None:
    cache = leveldb.LevelDBCache(tmp_path / "c")
    await cache.set(k(1), b"kept")
    await cache.set(k(2), b"also kept", ttl_s=3600)
    await cache.aclose()
    await cache.aclose()  # twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        await cache.get(k(1))
    again = leveldb.LevelDBCache(tmp_path / "c")
    assert await again.get(k(1)) == b"kept"
    assert await again.get(k(2)) == b"also kept"
    assert (await again.stats()).entries == 2
    await again.aclose()


async def test_nothing_is_opened_before_the_first_call(leveldb: ModuleType, tmp_path: Path) -> None:
    cache = leveldb.LevelDBCache(tmp_path / "deep" / "er" / "c")
    assert not (tmp_path / "deep").exists()
    await cache.set(k(1), b"v")
    assert (tmp_path / "deep" / "er" / "c" / "CURRENT").is_file()
    await cache.aclose()


# -- stored values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x01short", b"\x02" + bytes(8) + b"a future format", b"\x01" + b"\x7f\xf8" + bytes(6)],
    ids=["empty", "short", "unknown-format", "nan-expiry"],
)
async def test_an_entry_not_written_by_the_cache_is_corrupt(
    leveldb: ModuleType, plyvel: ModuleType, tmp_path: Path, raw: bytes
) -> None:
    db = plyvel.DB(str(tmp_path / "c"), create_if_missing=True)
    db.put(k(1).encode(), raw)
    db.close()
    cache = leveldb.LevelDBCache(tmp_path / "c")
    with pytest.raises(CorruptEntryError):
        await cache.get(k(1))
    # Through the wrapper a run uses: a miss, and the entry is removed.
    resilient = ResilientCache(cache)
    assert await resilient.get(k(1)) is None
    assert resilient.statistics().corrupted == 1
    assert await cache.get(k(1)) is None
    await cache.aclose()


async def test_values_are_stored_with_their_expiry(
    leveldb: ModuleType, plyvel: ModuleType, tmp_path: Path
) -> None:
    clock = Clock()
    cache = leveldb.LevelDBCache(tmp_path / "c", clock=clock)
    await cache.set(k("soon"), b"soon", ttl_s=10)
    await cache.set(k("never"), b"never")
    await cache.aclose()
    raw = raw_entries(plyvel, tmp_path / "c")
    assert raw[k("soon").encode()].endswith(b"soon")
    assert len(raw[k("soon").encode()]) == len(b"soon") + 9  # format byte, float64 expiry


async def test_expired_entries_miss_and_are_removed_when_read(
    leveldb: ModuleType, plyvel: ModuleType, tmp_path: Path
) -> None:
    clock = Clock()
    cache = leveldb.LevelDBCache(tmp_path / "c", clock=clock)
    await cache.set(k(1), b"short", ttl_s=10)
    await cache.set(k(2), b"unread, short", ttl_s=10)
    await cache.set(k(3), b"long", ttl_s=100)
    clock.t += 9.9
    assert await cache.get(k(1)) == b"short"
    clock.t += 0.1
    assert await cache.get(k(1)) is None
    assert await cache.get(k(3)) == b"long"
    await cache.aclose()
    # Expiry is wall-clock time, so it holds across reopening.
    assert set(raw_entries(plyvel, tmp_path / "c")) == {k(2).encode(), k(3).encode()}
    reopened = leveldb.LevelDBCache(tmp_path / "c", clock=clock)
    assert (await reopened.stats()).entries == 1  # and `stats` removes k(2)
    await reopened.aclose()
    assert set(raw_entries(plyvel, tmp_path / "c")) == {k(3).encode()}


async def test_writes_sweep_out_expired_entries_nobody_reads(
    leveldb: ModuleType, plyvel: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leveldb, "_SWEEP_EVERY", 10)
    monkeypatch.setattr(leveldb, "_SWEEP_BATCH", 7)
    clock = Clock()
    cache = leveldb.LevelDBCache(tmp_path / "c", clock=clock)
    for i in range(20):
        await cache.set(k(f"old{i}"), b"old", ttl_s=1)
    clock.t += 2
    # 20 sweeps of 7 entries: several passes over the 30 entries.
    for i in range(200):
        await cache.set(k(f"new{i % 10}"), b"new")
    await cache.aclose()
    remaining = raw_entries(plyvel, tmp_path / "c")
    assert len(remaining) == 10
    assert all(value.endswith(b"new") for value in remaining.values())


async def test_namespaces_keep_separate_entries(leveldb: ModuleType, tmp_path: Path) -> None:
    spec = f"leveldb:{tmp_path / 'c'}"
    plain, team = open_cache(spec), open_cache(spec, namespace="team")
    await plain.set(k(1), b"plain")
    await team.set(k(1), b"team")
    await team.set(k(2), b"team only")
    assert await plain.get(k(1)) == b"plain"
    assert await plain.get(k(2)) is None
    assert (await plain.stats()).entries == 1
    assert (await team.stats()).entries == 2
    assert await plain.clear() == 1
    assert await team.get(k(1)) == b"team"
    assert await team.clear() == 2
    await plain.aclose()
    await team.aclose()


async def test_files_follow_the_umask_like_the_other_backends(
    leveldb: ModuleType, tmp_path: Path
) -> None:
    old = os.umask(0o077)
    try:
        cache = leveldb.LevelDBCache(tmp_path / "parent" / "c")
        await cache.set(k(1), b"private")
        await cache.aclose()
    finally:
        os.umask(old)
    paths = [tmp_path / "parent", *(tmp_path / "parent").rglob("*")]
    assert len(paths) > 3
    for path in paths:
        assert path.stat().st_mode & 0o077 == 0, path


def test_the_cache_command_shows_counts_and_clears(leveldb: ModuleType, tmp_path: Path) -> None:
    import anyio

    from lm_deluge_cli.cli.app import app

    spec = f"leveldb:{tmp_path / 'c'}"

    async def fill() -> None:
        cache = open_cache(spec)
        for i in range(3):
            await cache.set(k(i), b"x" * 100)
        await cache.aclose()

    anyio.run(fill)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        result = runner.invoke(app, ["cache", *args, "--cache", spec, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    assert invoke("path") == {"backend": "leveldb", "location": str(tmp_path / "c")}
    stats = invoke("stats")
    assert (stats["backend"], stats["entries"]) == ("leveldb", 3)
    assert stats["size_bytes"] >= 300
    assert invoke("clear")["removed"] == 3
    assert invoke("stats")["entries"] == 0
