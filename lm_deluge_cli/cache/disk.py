"""The default cache: a diskcache directory (SQLite index + value files), safe across processes."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import diskcache

from lm_deluge_cli.cache.base import CacheStats, CorruptEntryError, effective_ttl

__all__ = ["DEFAULT_LOCK_TIMEOUT_S", "DEFAULT_SIZE_LIMIT", "DiskCache"]

logger = logging.getLogger(__name__)

# Calls run on the event loop thread (they take microseconds), so a lock held by
# another process may stall the loop for at most this long before we give up on the
# one entry: a slow cache must never slow the run.
DEFAULT_LOCK_TIMEOUT_S = 1.0
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

    Several processes may share the directory. Values of 32 KiB or more live in files
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
        # Least recently *stored* eviction keeps reads free of writes (and of locks);
        # least recently used would update a row on every hit.
        self._cache = diskcache.Cache(
            self.location,
            timeout=lock_timeout_s,
            disk=_BytesDisk,
            size_limit=size_limit,
            eviction_policy="least-recently-stored",
        )

    def __repr__(self) -> str:
        return f"DiskCache({self.location!r})"

    async def get(self, key: str) -> bytes | None:
        try:
            value = self._cache.get(key, retry=False)
        except diskcache.Timeout:
            self._timed_out("read", key)
            return None
        if value is None or isinstance(value, bytes):
            return value
        raise CorruptEntryError(f"entry is a {type(value).__name__}, not bytes")

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        ttl = effective_ttl(ttl_s)
        try:
            if ttl == 0.0:
                self._cache.delete(key, retry=False)
            else:
                self._cache.set(key, bytes(value), expire=ttl, retry=False)
        except diskcache.Timeout:
            self._timed_out("write", key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | CorruptEntryError | None]:
        """Every key's entry inside one transaction (one lock, not one per read)."""
        found: list[bytes | CorruptEntryError | None] = []
        try:
            with self._cache.transact(retry=False):
                for key in keys:
                    value = self._cache.get(key, retry=False)
                    if value is None or isinstance(value, bytes):
                        found.append(value)
                    else:
                        found.append(CorruptEntryError(f"entry is a {type(value).__name__}"))
        except diskcache.Timeout:
            self._timed_out("read", f"{len(keys)} entries")
            return [None] * len(keys)
        except CorruptEntryError:
            # A mode other than bytes, found while reading: read the rest one by one.
            return [await self._get_one(key) for key in keys]
        return found

    async def _get_one(self, key: str) -> bytes | CorruptEntryError | None:
        try:
            return await self.get(key)
        except CorruptEntryError as exc:
            return exc

    async def set_many(
        self, entries: Sequence[tuple[str, bytes]], ttl_s: float | None = None
    ) -> None:
        """Every entry in one transaction: one lock and one commit, not one per entry."""
        ttl = effective_ttl(ttl_s)
        try:
            with self._cache.transact(retry=False):
                for key, value in entries:
                    if ttl == 0.0:
                        self._cache.delete(key, retry=False)
                    else:
                        self._cache.set(key, bytes(value), expire=ttl, retry=False)
        except diskcache.Timeout:
            self._timed_out("write", f"{len(entries)} entries")

    async def delete(self, key: str) -> bool:
        try:
            return bool(self._cache.delete(key, retry=False))
        except diskcache.Timeout:
            self._timed_out("delete", key)
            return False

    async def stats(self) -> CacheStats:
        # The count includes expired entries until they are removed.
        self._cache.expire(retry=True)
        return CacheStats(self.backend, self.location, len(self._cache), self._cache.volume())

    async def clear(self) -> int:
        return int(self._cache.clear(retry=True))

    async def aclose(self) -> None:
        self._cache.close()

    def _timed_out(self, action: str, key: str) -> None:
        self.lock_timeouts += 1
        logger.debug("cache %s of %s skipped: %s is locked", action, key, self.location)
