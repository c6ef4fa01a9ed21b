"""An in-process cache in a dict: for library use and tests; nothing outlives the process."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from lm_deluge_cli.cache.base import CacheStats, effective_ttl

__all__ = ["MemoryCache"]


class MemoryCache:
    """Entries in an insertion-ordered dict, with TTLs and an optional LRU bound.

    With `max_entries` set, storing one more entry first drops expired ones, then the
    least recently used (read or written). `clock` gives expiry times (monotonic
    seconds by default; tests pass a virtual one). Each instance is private: two
    instances never share entries.
    """

    backend = "memory"
    location = "memory:"

    def __init__(
        self, *, max_entries: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries is not None and max_entries < 1:
            raise ValueError(f"max_entries must be at least 1 (or None), got {max_entries}")
        self.max_entries = max_entries
        self._clock = clock
        # key -> (value, expires_at or None); the end is the most recently used.
        self._entries: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()

    def __repr__(self) -> str:
        return f"MemoryCache(max_entries={self.max_entries}, entries={len(self._entries)})"

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at is not None and expires_at <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        ttl = effective_ttl(ttl_s)
        if ttl == 0.0:
            self._entries.pop(key, None)
            return
        expires_at = None if ttl is None else self._clock() + ttl
        self._entries[key] = (bytes(value), expires_at)
        self._entries.move_to_end(key)
        if self.max_entries is not None and len(self._entries) > self.max_entries:
            self._purge_expired()
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    async def delete(self, key: str) -> bool:
        return self._entries.pop(key, None) is not None

    async def stats(self) -> CacheStats:
        self._purge_expired()
        size = sum(len(value) for value, _ in self._entries.values())
        return CacheStats(self.backend, self.location, len(self._entries), size)

    async def clear(self) -> int:
        self._purge_expired()
        removed = len(self._entries)
        self._entries.clear()
        return removed

    async def aclose(self) -> None:
        self._entries.clear()

    def _purge_expired(self) -> None:
        now = self._clock()
        expired = [k for k, (_, exp) in self._entries.items() if exp is not None and exp <= now]
        for key in expired:
            del self._entries[key]
