"""RedisCache against a real redis-server: key prefixes, PX expiry, passwords, failing fast."""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from lm_deluge_cli.cache import open_cache

if TYPE_CHECKING:
    from .conftest import RedisServer

pytest.importorskip("redis")

import anyio
import redis.exceptions

from lm_deluge_cli.cache.redis import DEFAULT_PREFIX, RedisCache

pytestmark = pytest.mark.anyio


def k(n: int | str) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def unique_prefix() -> str:
    return f"test:{uuid.uuid4().hex[:12]}:"


def exists(server: RedisServer, name: str) -> bool:
    return server.command("EXISTS", name) == b":1"


async def test_entries_are_named_prefix_plus_key(redis_server: RedisServer) -> None:
    prefix = unique_prefix()
    cache = RedisCache(redis_server.url, prefix=prefix)
    await cache.set(k(1), b"v")
    assert exists(redis_server, prefix + k(1))
    assert redis_server.command("GET", prefix + k(1)) == b"$1"
    await cache.aclose()


async def test_the_default_prefix_and_namespaces(redis_server: RedisServer) -> None:
    ns = f"n{uuid.uuid4().hex[:8]}"
    plain = open_cache(redis_server.url)
    spaced = open_cache(redis_server.url, namespace=ns)
    assert isinstance(plain, RedisCache) and isinstance(spaced, RedisCache)
    assert plain.prefix == DEFAULT_PREFIX == "lm-deluge:cache:"
    assert spaced.prefix == f"lm-deluge:cache:{ns}:"
    await spaced.set(k(1), b"namespaced")
    assert await plain.get(k(1)) is None
    # The nested namespace is not "directly under" the default prefix: a plain clear
    # leaves it alone.
    await plain.clear()
    assert await spaced.get(k(1)) == b"namespaced"
    assert await spaced.clear() == 1
    await plain.aclose()
    await spaced.aclose()


async def test_clear_and_stats_touch_only_keys_under_the_prefix(
    redis_server: RedisServer,
) -> None:
    # Glob metacharacters in the prefix must match literally.
    prefix = f"g[{uuid.uuid4().hex[:6]}]*?:"
    cache = RedisCache(redis_server.url, prefix=prefix)
    foreign = [
        "unrelated-key",
        prefix[:-1],  # the prefix without its colon
        prefix + "nested:" + k(1),  # a nested namespace
        prefix.replace("[", "").replace("]", "") + k(1),  # what an unescaped glob matches
        "x" + prefix + k(1),
    ]
    for name in foreign:
        redis_server.command("SET", name, "not ours")
    for i in range(3):
        await cache.set(k(i), b"ours")
    assert (await cache.stats()).entries == 3
    assert await cache.clear() == 3
    assert all(exists(redis_server, name) for name in foreign)
    assert (await cache.stats()).entries == 0
    for name in foreign:
        redis_server.command("DEL", name)
    await cache.aclose()


async def test_clear_works_in_batches(redis_server: RedisServer) -> None:
    cache = RedisCache(redis_server.url, prefix=unique_prefix())
    for i in range(1200):
        await cache.set(k(i), b"v")
    assert await cache.clear() == 1200
    assert (await cache.stats()).entries == 0
    await cache.aclose()


async def test_ttl_is_set_on_the_server_in_milliseconds(redis_server: RedisServer) -> None:
    prefix = unique_prefix()
    cache = RedisCache(redis_server.url, prefix=prefix)
    await cache.set(k(1), b"v", ttl_s=1.5)
    await cache.set(k(2), b"v", ttl_s=0.0001)  # rounds up to 1 ms, not down to an error
    await cache.set(k(3), b"v")
    pttl = int(redis_server.command("PTTL", prefix + k(1))[1:])
    assert 1000 < pttl <= 1500
    assert redis_server.command("PTTL", prefix + k(3)) == b":-1"  # no expiry
    time.sleep(0.01)
    assert await cache.get(k(2)) is None
    await cache.aclose()


async def test_a_password_works_and_never_shows(redis_server: RedisServer) -> None:
    cache = open_cache(redis_server.password_url, namespace="pw")
    await cache.set(k(1), b"authenticated")
    assert await cache.get(k(1)) == b"authenticated"
    assert cache.location == f"redis://{redis_server.user}:***@127.0.0.1:{redis_server.port}/0"
    assert (await cache.stats()).location == cache.location
    for text in (cache.location, str(cache), repr(cache)):
        assert redis_server.password not in text
        assert redis_server.password_quoted not in text
    await cache.clear()
    await cache.aclose()


async def test_a_wrong_password_is_refused(redis_server: RedisServer) -> None:
    url = f"redis://{redis_server.user}:wrong@127.0.0.1:{redis_server.port}/0"
    cache = open_cache(url)
    with pytest.raises(redis.exceptions.AuthenticationError):
        await cache.get(k(1))
    await cache.aclose()


async def test_a_unix_socket_url_works_and_hides_its_password(
    redis_server: RedisServer,
) -> None:
    url = (
        f"unix://{redis_server.user}@{redis_server.socket_path}"
        f"?db=0&password={redis_server.password_quoted}"
    )
    cache = open_cache(url, namespace="unix")
    await cache.set(k(1), b"over a socket")
    assert await cache.get(k(1)) == b"over a socket"
    assert cache.location.endswith("?db=0&password=***")
    assert redis_server.password_quoted not in repr(cache)
    await cache.clear()
    await cache.aclose()


async def test_a_closed_port_fails_at_once(closed_port: int) -> None:
    cache = RedisCache(f"redis://127.0.0.1:{closed_port}/0")
    started = time.monotonic()
    with pytest.raises(redis.exceptions.ConnectionError):
        await cache.get(k(1))
    assert time.monotonic() - started < 1.0
    await cache.aclose()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers, like a hung server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


async def test_a_server_that_never_answers_costs_one_timeout(silent_server: int) -> None:
    cache = RedisCache(f"redis://127.0.0.1:{silent_server}/0", timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(redis.exceptions.TimeoutError):
        await cache.get(k(1))
    # Not retried: a retry would double it.
    assert time.monotonic() - started < 0.55
    await cache.aclose()


async def test_many_concurrent_calls_share_a_bounded_pool(redis_server: RedisServer) -> None:
    # A run has hundreds of requests in flight: each call waits for a pooled connection
    # rather than failing with "too many connections".
    cache = RedisCache(redis_server.url, prefix=unique_prefix())
    try:
        async with anyio.create_task_group() as tg:
            for n in range(600):
                tg.start_soon(cache.set, k(n), str(n).encode())
        values = []
        async with anyio.create_task_group() as tg:

            async def read(n: int) -> None:
                values.append((n, await cache.get(k(n))))

            for n in range(600):
                tg.start_soon(read, n)
        assert sorted(values) == [(n, str(n).encode()) for n in range(600)]
    finally:
        await cache.aclose()
