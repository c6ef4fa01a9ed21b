"""The default cache: a diskcache directory (SQLite index + value files), safe across processes."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

import anyio
import diskcache

from lm_deluge_cli.cache.base import CacheStats, CorruptEntryError, effective_ttl

__all__ = ["DEFAULT_LOCK_TIMEOUT_S", "DEFAULT_SIZE_LIMIT", "DiskCache"]

logger = logging.getLogger(__name__)

# How long a call waits for a lock held by another process before it gives up (a miss,
# or entries not written). Calls run in worker threads, so a wait slows only the cache.
DEFAULT_LOCK_TIMEOUT_S = 1.0
# SQLite's page cache and memory map for the index (diskcache's own defaults are 32 MiB
# and 64 MiB, which a run of a million entries fills): memory stays flat.
SQLITE_CACHE_PAGES = 2**9
SQLITE_MMAP_BYTES = 0
# Beyond this, diskcache culls the least recently stored entries (its own default).
DEFAULT_SIZE_LIMIT = 2**30


class _BytesDisk(diskcache.Disk):  # type: ignore[misc]  # diskcache has no type hints
    """diskcache's storage, refusing to unpickle.

    We only ever store bytes; an entry in another form was written by something else,
    and unpickling a file from disk would run whatever code it names.
    """

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode not in (diskcache.core.MODE_RAW, diskcache.core.MODE_BINARY):
            raise CorruptEntryError(f"entry stored in diskcache mode {mode}, not as bytes")
        return super().fetch(mode, filename, value, read)


class DiskCache:
    """Entries in a diskcache directory, created if missing.

    Several processes may share the directory. Every call runs in a worker thread, never
    on the event loop. Values of 32 KiB or more live in files
    beside the index. Expired entries miss at once and are removed as later writes
    make room. A write that cannot get the index lock within `lock_timeout_s` is
    skipped, and a read that cannot is a miss; `lock_timeouts` counts both.
    """

    backend = "diskcache"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
        size_limit: int = DEFAULT_SIZE_LIMIT,
    ) -> None:
        self.location = os.path.abspath(os.fspath(directory))
        self.lock_timeouts = 0
        # Writes of this process take turns here: each runs in a worker thread, and
        # several at once would wait on the file's lock and be skipped after
        # `lock_timeout_s` (an embed run's batches, answered together, lost most of
        # their entries so). The lock timeout is for other processes.
        self._write_lock = threading.Lock()
        # Least recently *stored* eviction keeps reads free of writes (and of locks);
        # least recently used would update a row on every hit.
        self._cache = diskcache.Cache(
            self.location,
            timeout=lock_timeout_s,
            disk=_BytesDisk,
            size_limit=size_limit,
            eviction_policy="least-recently-stored",
            sqlite_cache_size=SQLITE_CACHE_PAGES,
            sqlite_mmap_size=SQLITE_MMAP_BYTES,
        )

    def __repr__(self) -> str:
        return f"DiskCache({self.location!r})"

    async def get(self, key: str) -> bytes | None:
        value = await anyio.to_thread.run_sync(self._get, key)
        if isinstance(value, CorruptEntryError):
            raise value
        return value

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        await anyio.to_thread.run_sync(self._set_many, ((key, value),), ttl_s, False)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | CorruptEntryError | None]:
        """Every key's entry, in one trip to a worker thread. Reads take no lock (the
        index is in WAL mode), so a writer elsewhere never makes them wait."""
        return await anyio.to_thread.run_sync(self._get_many, keys)

    async def set_many(
        self, entries: Sequence[tuple[str, bytes]], ttl_s: float | None = None
    ) -> None:
        """Every entry in one transaction: one lock and one commit, not one per entry."""
        await anyio.to_thread.run_sync(self._set_many, entries, ttl_s, True)

    async def delete(self, key: str) -> bool:
        return await anyio.to_thread.run_sync(self._delete, key)

    async def stats(self) -> CacheStats:
        return await anyio.to_thread.run_sync(self._stats)

    async def clear(self) -> int:
        return await anyio.to_thread.run_sync(lambda: int(self._cache.clear(retry=True)))

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._cache.close)

    # -- in a worker thread ----------------------------------------------------------

    def _get(self, key: str) -> bytes | CorruptEntryError | None:
        try:
            value = self._cache.get(key, retry=False)
        except diskcache.Timeout:
            self._timed_out("read", key)
            return None
        except CorruptEntryError as exc:
            return exc  # stored in a mode other than bytes
        if value is None or isinstance(value, bytes):
            return value
        return CorruptEntryError(f"entry is a {type(value).__name__}, not bytes")

    def _get_many(self, keys: Sequence[str]) -> list[bytes | CorruptEntryError | None]:
        return [self._get(key) for key in keys]

    def _set_many(
        self, entries: Sequence[tuple[str, bytes]], ttl_s: float | None, together: bool
    ) -> None:
        ttl = effective_ttl(ttl_s)
        try:
            with (
                self._write_lock,
                self._cache.transact(retry=False) if together else contextlib.nullcontext(),
            ):
                for key, value in entries:
                    if ttl == 0.0:
                        self._cache.delete(key, retry=False)
                    else:
                        self._cache.set(key, bytes(value), expire=ttl, retry=False)
        except diskcache.Timeout:
            self._timed_out("write", f"{len(entries)} entries")

    def _delete(self, key: str) -> bool:
        try:
            with self._write_lock:
                return bool(self._cache.delete(key, retry=False))
        except diskcache.Timeout:
            self._timed_out("delete", key)
            return False

    def _stats(self) -> CacheStats:
        # The count includes expired entries until they are removed.
        self._cache.expire(retry=True)
        return CacheStats(self.backend, self.location, len(self._cache), self._cache.volume())

    def _timed_out(self, action: str, key: str) -> None:
        self.lock_timeouts += 1
        logger.debug("cache %s of %s skipped: %s is locked", action, key, self.location)
