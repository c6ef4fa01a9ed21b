"""Fixtures for the cache tests: stores of every backend (Redis runs from tests/redis_server.py)."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lm_deluge_cli.cache import Cache, open_cache
from tests.redis_server import RedisServer, StartRedis

__all__ = ["RedisServer", "StartRedis", "Store"]

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
    opened: list[Cache] = field(default_factory=list)

    @property
    def shared(self) -> bool:
        return self.backend in SHARED_BACKENDS

    def open(self) -> Cache:
        cache = open_cache(self.spec, namespace=self.namespace)
        self.opened.append(cache)
        return cache


def _store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    if backend == "memory":
        return Store(backend, "memory:")
    if backend == "diskcache":
        return Store(backend, str(tmp_path / "diskcache"))
    if backend == "sqlite":
        return Store(backend, str(tmp_path / "cache.sqlite"))
    if backend == "leveldb":
        return Store(backend, f"leveldb:{tmp_path / 'cache'}")
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
