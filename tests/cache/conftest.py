"""Fixtures for the cache tests: stores of every backend (Redis runs from tests/redis_server.py),
and a clock for every backend but Redis, whose server keeps the time of its expiries."""

from __future__ import annotations

import importlib.util
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import diskcache
import pytest

from lm_deluge_cli.cache import Cache, MemoryCache, SqliteCache, open_cache
from tests.redis_server import RedisServer, StartRedis

__all__ = ["LibraryTime", "ManualTime", "RedisServer", "StartRedis", "Store"]

HAS_PLYVEL = importlib.util.find_spec("plyvel") is not None

# LevelDB runs only where its optional plyvel package is installed.
BACKENDS = (
    "memory",
    "diskcache",
    "sqlite",
    "redis",
    pytest.param("leveldb", marks=pytest.mark.skipif(not HAS_PLYVEL, reason="needs plyvel")),
)
# Backends whose instances on one location share entries, in one process or several
# (memory caches are private; a LevelDB directory is open in one process at a time, so
# test_leveldb.py checks its sharing within a process and between processes in turn).
SHARED_BACKENDS = ("diskcache", "sqlite", "redis")


class ManualTime:
    """A clock that moves only when told to, for the backends that take one (memory, SQLite,
    LevelDB) and diskcache (`LibraryTime`). It starts at the wall clock's time: another
    process reads the same entries."""

    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class LibraryTime:
    """The `time` module as diskcache sees it: the time from `clock`, sleeps for real.

    diskcache reads ``time.time()`` wherever it sets or checks an expiry (in SQL it runs
    itself), so its entries expire on `clock` through the library's own code.
    """

    def __init__(self, clock: ManualTime) -> None:
        self.time = clock
        self.sleep = time.sleep


@pytest.fixture
def anyio_backend() -> str:
    # redis-py's asyncio client runs on asyncio only.
    return "asyncio"


# -- a store of each backend ------------------------------------------------------------


@dataclass
class Store:
    """Where a test's cache lives; `open` gives another instance on the same location."""

    backend: str
    spec: str
    namespace: str | None = None
    # The clock the entries expire on (None: Redis expires keys on the server's clock).
    clock: ManualTime | None = None
    opened: list[Cache] = field(default_factory=list)

    @property
    def shared(self) -> bool:
        return self.backend in SHARED_BACKENDS

    def open(self) -> Cache:
        cache: Cache
        if self.backend == "memory":
            cache = MemoryCache(clock=self.clock or time.monotonic)
        elif self.backend == "sqlite":
            cache = SqliteCache(self.spec, clock=self.clock or time.time)
        elif self.backend == "leveldb":
            from lm_deluge_cli.cache.leveldb import LevelDBCache

            cache = LevelDBCache(self.spec.removeprefix("leveldb:"), clock=self.clock or time.time)
        else:
            cache = open_cache(self.spec, namespace=self.namespace)
        self.opened.append(cache)
        return cache

    async def wait(self, seconds: float) -> None:
        """Let `seconds` pass for the entries: on the store's clock when it has one, else for
        real."""
        if self.clock is not None:
            self.clock.advance(seconds)
        else:
            await anyio.sleep(seconds)


def _store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    if backend == "memory":
        return Store(backend, "memory:", clock=ManualTime())
    if backend == "diskcache":
        clock = ManualTime()
        monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setattr(diskcache.core, "time", LibraryTime(clock))
        return Store(backend, str(tmp_path / "diskcache"), clock=clock)
    if backend == "sqlite":
        return Store(backend, str(tmp_path / "cache.sqlite"), clock=ManualTime())
    if backend == "leveldb":
        return Store(backend, f"leveldb:{tmp_path / 'cache'}", clock=ManualTime())
    server: RedisServer = request.getfixturevalue("redis_server")
    # A namespace per test keeps tests on the shared server apart.
    return Store(backend, server.url, namespace=f"t{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh location of each backend in turn; every cache opened on it is closed after."""
    s = _store(request.param, tmp_path, request)
    yield s
    for cache in s.opened:
        await cache.aclose()


@pytest.fixture(params=SHARED_BACKENDS)
async def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Like `store`, for the backends whose instances share entries."""
    s = _store(request.param, tmp_path, request)
    yield s
    for cache in s.opened:
        await cache.aclose()


@pytest.fixture
async def cache(store: Store) -> Cache:
    """A cache on `store`."""
    return store.open()
