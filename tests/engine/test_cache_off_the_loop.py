"""The result cache never slows a run: reads go in batches ahead of the workers, writes
queue behind them, and a cache another process has locked stalls nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import pytest

from lm_deluge_cli.cache import SqliteCache
from lm_deluge_cli.cache.base import CorruptEntryError
from lm_deluge_cli.config import CacheConfig, Limits, ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoints
from lm_deluge_cli.engine.chat_stages import run_pipeline
from lm_deluge_cli.engine.pipeline import PREPARE_BATCH
from lm_deluge_cli.engine.reuse import open_reuse
from lm_deluge_cli.engine.setup import build_requester
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.results import Result
from lm_deluge_cli.types import Prompt, SamplingParams

pytestmark = pytest.mark.anyio

UNLIMITED = Limits(max_requests_per_minute=None, max_tokens_per_minute=None)

# Holds a write lock on the SQLite file until its stdin closes.
LOCK_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def prompts(count: int) -> AsyncIterator[Prompt]:
    for i in range(count):
        yield Prompt(id=i, line=i + 1, messages=[{"role": "user", "content": f"question {i}"}])


class CountingCache(SqliteCache):
    """A SQLite cache that counts the reads it is asked for."""

    def __init__(self, path: Path, **kwargs: float) -> None:
        super().__init__(path, **kwargs)  # type: ignore[arg-type]
        self.single_reads = 0
        self.batch_sizes: list[int] = []

    async def get(self, key: str) -> bytes | None:
        self.single_reads += 1
        return await super().get(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | CorruptEntryError | None]:
        self.batch_sizes.append(len(keys))
        return await super().get_many(keys)


async def run(count: int, cache: SqliteCache, seen: list[Result] | None = None) -> RunStats:
    stats = RunStats(total=count)
    records = seen if seen is not None else []
    async with AsyncExitStack() as stack:
        reuse = await open_reuse(CacheConfig(backend=cache), stack)
        entries = (ModelEntry("mock:fast"),)
        requester = await build_requester(
            entries,
            resolve_endpoints(entries),
            UNLIMITED,
            SamplingParams(),
            retry_other_model=False,
            stats=stats,
            stack=stack,
            reuse=reuse,
        )
        await run_pipeline(prompts(count), records.extend, requester, stats)
    return stats


async def test_a_rerun_reads_the_cache_in_batches_and_sends_nothing(tmp_path: Path) -> None:
    cache = CountingCache(tmp_path / "c.sqlite")
    first = await run(1000, cache)
    assert (first.requests, first.cached) == (1000, 0)
    cache.batch_sizes.clear()
    again = await run(1000, cache)
    assert (again.requests, again.cached, again.ok) == (0, 1000, 1000)
    assert cache.single_reads == 0
    # Lines read together are looked up together: far fewer reads than lines.
    assert sum(cache.batch_sizes) == 1000
    assert len(cache.batch_sizes) < 100 and max(cache.batch_sizes) <= PREPARE_BATCH
    await cache.aclose()


async def test_a_cache_locked_by_another_process_stalls_no_request(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    # Long enough that a write waiting on the event loop would hold the whole run up.
    cache = SqliteCache(path, busy_timeout_s=30.0)
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    records: list[Result] = []
    started = time.monotonic()
    try:

        async def release_when_all_written() -> None:
            # Every record reaches the output while the cache's writer is stuck behind
            # the other process's lock; only then is the lock let go.
            with anyio.fail_after(20):
                while len(records) < 2000:
                    await anyio.sleep(0.01)
            elapsed.append(time.monotonic() - started)
            await anyio.to_thread.run_sync(holder.communicate, "")

        elapsed: list[float] = []
        async with anyio.create_task_group() as group:
            group.start_soon(release_when_all_written)
            stats = await run(2000, cache, records)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert stats.ok == 2000 and all(r.ok for r in records)
    assert elapsed and elapsed[0] < 20
    # Once the lock was let go, the queued answers were stored.
    assert (await cache.stats()).entries == 2000
    await cache.aclose()
