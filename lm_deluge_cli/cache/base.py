"""The result cache's interface: what every backend offers, and the TTL rule they share.

A cache maps a 64-character hex key (chosen by the caller) to opaque bytes. Backends
raise their own exceptions (OSError, sqlite3.Error, redis errors); `ResilientCache`
is the one place that turns those into warnings and misses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "Cache",
    "CacheStats",
    "CorruptEntryError",
    "SupportsDelete",
    "SupportsGetMany",
    "SupportsSetMany",
    "effective_ttl",
]


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of a cache for display.

    `location` is a path, or a Redis URL with any password replaced by ``***``.
    `entries` and `size_bytes` are None when the backend cannot count them cheaply.
    """

    backend: str
    location: str
    entries: int | None
    size_bytes: int | None


class Cache(Protocol):
    """A key → bytes store with optional per-entry expiry.

    `ttl_s` is seconds until the entry expires; None (or infinity) means never, and a
    TTL of zero or less stores nothing and removes any older entry under the key.
    """

    backend: str
    location: str

    async def get(self, key: str) -> bytes | None:
        """The value stored under `key`, or None for a miss (absent or expired)."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        """Store `value` under `key`, replacing any older value."""
        ...

    async def stats(self) -> CacheStats:
        """Counts for display; may scan the store, so not for every request."""
        ...

    async def clear(self) -> int:
        """Remove every entry; returns how many were removed, or -1 when unknown."""
        ...

    async def aclose(self) -> None:
        """Release connections and file handles; the cache is unusable afterwards."""
        ...


@runtime_checkable
class SupportsDelete(Protocol):
    """A cache that can remove one entry (every backend here can)."""

    async def delete(self, key: str) -> bool:
        """Remove the entry under `key`; returns whether there was one."""
        ...


@runtime_checkable
class SupportsGetMany(Protocol):
    """A cache that reads many entries in one go (one query, one transaction)."""

    async def get_many(self, keys: Sequence[str]) -> list[bytes | CorruptEntryError | None]:
        """Per key, in order: its bytes, None for a miss, or the CorruptEntryError that
        `get` would have raised for it (the other entries are still returned)."""
        ...


@runtime_checkable
class SupportsSetMany(Protocol):
    """A cache that stores many entries in one write (one transaction), far cheaper than
    one `set` each; `ResilientCache.set_many` falls back to `set` for the others."""

    async def set_many(
        self, entries: Sequence[tuple[str, bytes]], ttl_s: float | None = None
    ) -> None:
        """Store every (key, value) of `entries`, each as `set` would."""
        ...


class CorruptEntryError(ValueError):
    """A stored entry cannot be returned as bytes; the store itself still works.

    Never reaches a caller of `ResilientCache`, which drops the entry and misses.
    """


def effective_ttl(ttl_s: float | None) -> float | None:
    """Normalise a TTL: None for "never expires", else positive seconds or 0.0.

    0.0 means the entry is expired already (so setting it is a delete). NaN counts as
    expired: a cache that keeps a value it was told nothing sensible about is worse
    than one that misses.
    """
    if ttl_s is None or ttl_s == math.inf:
        return None
    if not ttl_s > 0:
        return 0.0
    return float(ttl_s)
