"""ResilientCache: failures become one warning and misses, a cool-off, then recovery."""

from __future__ import annotations

import hashlib
import itertools
import logging
import random
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import diskcache
import orjson
import pytest

from lm_deluge_cli.cache import (
    CacheCounters,
    CacheStats,
    CorruptEntryError,
    DiskCache,
    MemoryCache,
    ResilientCache,
    open_resilient,
)
from lm_deluge_cli.errors import ConfigError

if TYPE_CHECKING:
    from .conftest import RedisServer, StartRedis, Store

pytestmark = pytest.mark.anyio

COOL_OFF = 30.0


def k(n: int | str) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class FlakyCache(MemoryCache):
    """A memory cache that raises `failure` (when set) and can hold calls at `gate`."""

    backend = "flaky"
    location = "/srv/flaky-cache"

    def __init__(self) -> None:
        super().__init__()
        self.failure: BaseException | None = None
        self.gate: anyio.Event | None = None
        self.calls = 0
        self.close_failure: BaseException | None = None

    async def _enter(self) -> None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure

    async def get(self, key: str) -> bytes | None:
        await self._enter()
        return await super().get(key)

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        await self._enter()
        await super().set(key, value, ttl_s)

    async def stats(self) -> CacheStats:
        await self._enter()
        return await super().stats()

    async def clear(self) -> int:
        await self._enter()
        return await super().clear()

    async def aclose(self) -> None:
        if self.close_failure is not None:
            raise self.close_failure


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("lm_deluge_cli.cache")
    ]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def flaky() -> FlakyCache:
    return FlakyCache()


@pytest.fixture
def rc(flaky: FlakyCache, clock: Clock) -> ResilientCache:
    return ResilientCache(flaky, cool_off_s=COOL_OFF, clock=clock)


# -- passing through --------------------------------------------------------------------


async def test_a_healthy_backend_is_used_and_counted(rc: ResilientCache) -> None:
    assert (rc.backend, rc.location) == ("flaky", "/srv/flaky-cache")
    assert await rc.get(k(1)) is None
    await rc.set(k(1), b"v")
    assert await rc.get(k(1)) == b"v"
    assert await rc.get_decoded(k(1), bytes.decode) == "v"
    assert (await rc.stats()).entries == 1
    assert rc.statistics() == CacheCounters(
        hits=2, misses=1, writes=1, errors=0, corrupted=0, skipped=0, available=True
    )
    assert (rc.hits, rc.misses, rc.writes, rc.errors) == (2, 1, 1, 0)
    assert await rc.clear() == 1


# -- failing, cooling off, recovering ---------------------------------------------------


async def test_the_first_failure_warns_once_then_calls_skip_the_backend(
    rc: ResilientCache, flaky: FlakyCache, caplog: pytest.LogCaptureFixture
) -> None:
    flaky.failure = OSError(28, "No space left on device")
    await rc.set(k(1), b"v")
    [warning] = warnings_in(caplog)
    assert "flaky" in warning and "/srv/flaky-cache" in warning
    assert "No space left on device" in warning
    assert "continues without the cache" in warning
    for i in range(10):
        assert await rc.get(k(i)) is None
        await rc.set(k(i), b"v")
    assert flaky.calls == 1
    assert len(warnings_in(caplog)) == 1
    assert rc.statistics() == CacheCounters(
        hits=0, misses=10, writes=0, errors=1, corrupted=0, skipped=20, available=False
    )


async def test_after_the_cool_off_a_working_backend_is_used_again(
    rc: ResilientCache, flaky: FlakyCache, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    await rc.set(k(1), b"kept")
    flaky.failure = ConnectionError("connection refused")
    assert await rc.get(k(1)) is None
    flaky.failure = None
    clock.t += COOL_OFF - 0.1
    assert await rc.get(k(1)) is None  # still cooling off, though the backend works
    assert flaky.calls == 2
    clock.t += 0.1
    assert rc.available
    assert await rc.get(k(1)) == b"kept"
    warnings = warnings_in(caplog)
    assert len(warnings) == 2
    assert "works again" in warnings[1] and "/srv/flaky-cache" in warnings[1]
    await rc.set(k(2), b"new")
    assert await rc.get(k(2)) == b"new"


async def test_a_backend_that_stays_down_is_tried_and_warned_about_once_per_cool_off(
    rc: ResilientCache, flaky: FlakyCache, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    flaky.failure = TimeoutError("timed out")
    for _ in range(5 * 30):  # five cool-offs, a call every virtual second
        await rc.get(k(1))
        await rc.set(k(1), b"v")
        clock.t += 1
    warnings = warnings_in(caplog)
    assert flaky.calls == 5
    assert len(warnings) == 5
    assert "failed" in warnings[0]
    assert all("still failing" in w for w in warnings[1:])


async def test_only_one_probe_goes_out_at_a_time(
    rc: ResilientCache, flaky: FlakyCache, clock: Clock
) -> None:
    await rc.set(k(1), b"v")
    flaky.failure = OSError("down")
    await rc.get(k(1))
    clock.t += COOL_OFF
    flaky.failure = None
    flaky.gate = anyio.Event()
    results: list[bytes | None] = []

    async def probe() -> None:
        results.append(await rc.get(k(1)))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(probe)
            await anyio.wait_all_tasks_blocked()
            # The probe is waiting on the backend; everyone else skips it meanwhile.
            with anyio.move_on_after(0.5):
                assert await rc.get(k(1)) is None
                await rc.set(k(2), b"skipped")
            assert flaky.calls == 3
            flaky.gate.set()
    assert results == [b"v"]
    flaky.gate = None
    assert await rc.get(k(2)) is None
    assert await rc.get(k(1)) == b"v"


async def test_a_cancelled_probe_does_not_stop_later_probes(
    rc: ResilientCache, flaky: FlakyCache, clock: Clock
) -> None:
    await rc.set(k(1), b"v")
    flaky.failure = OSError("down")
    await rc.get(k(1))
    clock.t += COOL_OFF
    flaky.failure = None
    flaky.gate = anyio.Event()
    with anyio.move_on_after(0.05):
        await rc.get(k(1))  # the probe hangs and is cancelled
    flaky.gate = None
    with anyio.fail_after(5):
        assert await rc.get(k(1)) == b"v"


async def test_calls_in_flight_when_the_backend_fails_warn_only_once(
    rc: ResilientCache, flaky: FlakyCache, caplog: pytest.LogCaptureFixture
) -> None:
    flaky.gate = anyio.Event()
    flaky.failure = OSError("I/O error")
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(rc.get, k(i))
            await anyio.wait_all_tasks_blocked()
            flaky.gate.set()
    assert len(warnings_in(caplog)) == 1
    assert rc.errors == 5 and rc.misses == 5


async def test_warnings_are_never_closer_than_one_cool_off(
    rc: ResilientCache, flaky: FlakyCache, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(7)
    logged_at: list[float] = []
    for _ in range(2000):
        flaky.failure = OSError("flapping") if rng.random() < 0.5 else None
        before = len(warnings_in(caplog))
        await rc.get(k(1))
        if len(warnings_in(caplog)) > before:
            logged_at.append(clock.t)
        clock.t += rng.choice([0.5, 1, 5, 20, 31])
    assert len(logged_at) > 10
    assert all(b - a >= COOL_OFF for a, b in itertools.pairwise(logged_at))


@pytest.mark.parametrize(
    "failure",
    [
        OSError(5, "Input/output error"),
        PermissionError(13, "Permission denied"),
        sqlite3.DatabaseError("database disk image is malformed"),
        sqlite3.OperationalError("disk I/O error"),
        diskcache.Timeout(),
        TimeoutError(),
        RuntimeError("anything else"),
        ValueError("bad"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_nothing_the_backend_raises_escapes(
    rc: ResilientCache, flaky: FlakyCache, clock: Clock, failure: Exception
) -> None:
    flaky.failure = failure
    flaky.close_failure = failure
    for _ in range(2):
        assert await rc.get(k(1)) is None
        assert await rc.get_decoded(k(1), orjson.loads) is None
        await rc.set(k(1), b"v", ttl_s=5)
        stats = await rc.stats()
        assert (stats.backend, stats.entries, stats.size_bytes) == ("flaky", None, None)
        assert await rc.clear() == -1
        clock.t += COOL_OFF
    await rc.aclose()
    assert await rc.get(k(1)) is None  # closed: every call misses


async def test_cancellation_is_not_swallowed(rc: ResilientCache, flaky: FlakyCache) -> None:
    flaky.gate = anyio.Event()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await rc.get(k(1))
        pytest.fail("the cancellation was swallowed")  # pragma: no cover
    assert rc.errors == 0


# -- corrupted entries ------------------------------------------------------------------


async def test_a_corrupted_entry_is_dropped_with_one_warning(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    inner = store.open()
    rc = ResilientCache(inner)
    await inner.set(k(1), b'{"truncated": ')
    await inner.set(k(2), b'{"ok": 1}')
    await inner.set(k(3), b"\xff\xfe garbage")
    assert await rc.get_decoded(k(1), orjson.loads) is None
    [warning] = warnings_in(caplog)
    assert "corrupted" in warning and store.backend in warning and "removed" in warning
    assert await inner.get(k(1)) is None
    assert await rc.get_decoded(k(2), orjson.loads) == {"ok": 1}
    assert await rc.get_decoded(k(3), orjson.loads) is None
    assert await inner.get(k(3)) is None
    assert len(warnings_in(caplog)) == 1
    counters = rc.statistics()
    assert (counters.hits, counters.misses, counters.corrupted, counters.errors) == (1, 2, 2, 2)
    # A bad entry is not an outage: the cache is still in use.
    assert counters.available
    await rc.set(k(1), b'{"fixed": true}')
    assert await rc.get_decoded(k(1), orjson.loads) == {"fixed": True}


async def test_an_entry_the_backend_cannot_return_as_bytes_is_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw = diskcache.Cache(tmp_path / "dc")
    raw.set(k(1), ["a", "pickled", "list"])
    raw.close()
    rc = ResilientCache(DiskCache(tmp_path / "dc"))
    assert await rc.get(k(1)) is None
    assert len(warnings_in(caplog)) == 1
    assert rc.statistics().corrupted == 1 and rc.available
    inner = DiskCache(tmp_path / "dc")
    assert await inner.get(k(1)) is None  # gone, not merely skipped
    await inner.aclose()
    await rc.aclose()


async def test_corrupt_entry_error_counts_as_corruption_not_an_outage(
    rc: ResilientCache, flaky: FlakyCache
) -> None:
    flaky.failure = CorruptEntryError("stored as text")
    assert await rc.get(k(1)) is None
    assert rc.statistics().corrupted == 1
    assert rc.available


# -- opening ----------------------------------------------------------------------------


async def assert_permanently_disabled(rc: ResilientCache, clock: Clock | None = None) -> None:
    assert not rc.available
    for _ in range(3):
        await rc.set(k(1), b"v")
        assert await rc.get(k(1)) is None
        if clock is not None:
            clock.t += 10 * COOL_OFF
    stats = await rc.stats()
    assert (stats.entries, stats.size_bytes) == (None, None)
    assert await rc.clear() == -1
    assert rc.statistics().skipped == 8
    await rc.aclose()


async def test_a_directory_that_cannot_be_created_disables_the_cache(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # Under a regular file: refused even to root, unlike a chmod.
    (tmp_path / "file").write_text("x")
    spec = str(tmp_path / "file" / "cache")
    rc = await open_resilient(spec, clock=clock)
    [warning] = warnings_in(caplog)
    assert "diskcache" in warning and spec in warning
    assert "continues without a cache" in warning
    assert (rc.backend, rc.location) == ("diskcache", spec)
    await assert_permanently_disabled(rc, clock)
    assert len(warnings_in(caplog)) == 1


async def test_a_sqlite_file_holding_garbage_disables_the_cache_and_is_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "results.sqlite"
    garbage = b"definitely not a database\n" * 200
    path.write_bytes(garbage)
    rc = await open_resilient(str(path))
    [warning] = warnings_in(caplog)
    assert "sqlite" in warning and str(path) in warning and "DatabaseError" in warning
    await assert_permanently_disabled(rc)
    assert path.read_bytes() == garbage


async def test_a_malformed_spec_still_raises(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        await open_resilient("s3://bucket")
    with pytest.raises(ConfigError):
        await open_resilient(str(tmp_path / "d"), namespace="no spaces")


async def test_a_good_spec_opens_a_working_cache(tmp_path: Path) -> None:
    rc = await open_resilient(str(tmp_path / "c.sqlite"))
    assert rc.available and rc.backend == "sqlite"
    await rc.set(k(1), b"v")
    assert await rc.get(k(1)) == b"v"
    await rc.aclose()


async def test_redis_on_a_closed_port_disables_the_cache_quickly(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("redis")
    url = f"redis://127.0.0.1:{closed_port}/0"
    started = time.monotonic()
    rc = await open_resilient(url)
    assert time.monotonic() - started < 3.0
    [warning] = warnings_in(caplog)
    assert "redis" in warning and url in warning
    await assert_permanently_disabled(rc)


async def test_a_wrong_redis_password_disables_the_cache_without_showing_it(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "wr0ng-Pa55"
    url = f"redis://{redis_server.user}:{secret}@127.0.0.1:{redis_server.port}/0"
    rc = await open_resilient(url)
    [warning] = warnings_in(caplog)
    assert f"{redis_server.user}:***@" in warning
    assert secret not in warning and secret not in repr(rc) and secret not in rc.location
    await assert_permanently_disabled(rc)


async def test_redis_killed_mid_run_is_used_again_after_it_restarts(
    start_redis: StartRedis, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_redis()
    rc = await open_resilient(server.password_url, clock=clock)
    await rc.set(k(1), b"before the crash")
    assert await rc.get(k(1)) == b"before the crash"

    server.kill()
    assert await rc.get(k(1)) is None
    await rc.set(k(2), b"lost")
    [down] = warnings_in(caplog)
    assert "redis" in down and "continues without the cache" in down

    clock.t += COOL_OFF  # still down at the probe
    assert await rc.get(k(1)) is None
    assert "still failing" in warnings_in(caplog)[1]

    server.start()  # same port, empty (no persistence)
    assert await rc.get(k(1)) is None  # cooling off: not tried yet
    clock.t += COOL_OFF
    await rc.set(k(3), b"after the restart")
    assert await rc.get(k(3)) == b"after the restart"
    warnings = warnings_in(caplog)
    assert len(warnings) == 3 and "works again" in warnings[2]
    for text in warnings:
        assert server.password not in text and server.password_quoted not in text
    assert rc.statistics().errors == 2
    await rc.aclose()
