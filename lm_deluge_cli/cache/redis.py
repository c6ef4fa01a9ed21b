"""A cache in Redis through redis-py's asyncio client, every key under one prefix.

Needs the optional ``redis`` package (``pip install 'lm-deluge-cli[redis]'``).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence

from lm_deluge_cli.cache.base import CacheStats, CorruptEntryError, effective_ttl
from lm_deluge_cli.redaction import redact_url
from lm_deluge_cli.redis_client import open_client

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_PREFIX",
    "DEFAULT_TIMEOUT_S",
    "RedisCache",
]

# Connections per process; more callers than this wait their turn.
MAX_CONNECTIONS = 32
DEFAULT_PREFIX = "lm-deluge:cache:"
# An unreachable server should cost seconds, not minutes: the run goes on uncached.
DEFAULT_CONNECT_TIMEOUT_S = 2.0
DEFAULT_TIMEOUT_S = 5.0

# `stats` counts entries with SCAN only while the whole database holds at most this
# many keys (DBSIZE is O(1)); beyond it counting is not cheap and entries is None.
_COUNT_LIMIT = 100_000
_SCAN_COUNT = 1000
_UNLINK_BATCH = 500


class RedisCache:
    """Entries as Redis strings named ``prefix + key``, expiring through SET PX.

    `clear` and `stats` see only keys directly under the prefix: the rest of the name
    has no ``:``, so a nested namespace (``prefix + "team:" + key``) and every other
    key in the database are left alone. Nothing is sent until the first call; the
    client reconnects by itself when the server comes back.
    """

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.location = redact_url(url)
        self.prefix = prefix
        self._prefix = prefix.encode()
        # Bounded: hundreds of requests in flight wait for a connection rather than
        # opening one each and hitting the client's limit.
        self._client = open_client(
            url,
            max_connections=MAX_CONNECTIONS,
            connect_timeout_s=connect_timeout_s,
            timeout_s=timeout_s,
        )

    def __repr__(self) -> str:
        return f"RedisCache({self.location!r}, prefix={self.prefix!r})"

    async def get(self, key: str) -> bytes | None:
        value = await self._client.get(self._prefix + key.encode())
        if value is None or isinstance(value, bytes):
            return value
        raise CorruptEntryError(f"entry came back as {type(value).__name__}, not bytes")

    async def get_many(self, keys: Sequence[str]) -> list[bytes | CorruptEntryError | None]:
        """Every key in one MGET: one round trip, not one per key."""
        if not keys:
            return []
        values = await self._client.mget([self._prefix + key.encode() for key in keys])
        return [
            v
            if v is None or isinstance(v, bytes)
            else CorruptEntryError(f"entry came back as {type(v).__name__}, not bytes")
            for v in values
        ]

    async def set_many(
        self, entries: Sequence[tuple[str, bytes]], ttl_s: float | None = None
    ) -> None:
        """Every entry in one pipelined round trip (MULTI/EXEC is not needed: each SET
        stands alone, as `set`'s would)."""
        ttl = effective_ttl(ttl_s)
        async with self._client.pipeline(transaction=False) as pipe:
            for key, value in entries:
                name = self._prefix + key.encode()
                if ttl is None:
                    pipe.set(name, value)
                elif ttl == 0.0:
                    pipe.unlink(name)
                else:
                    pipe.set(name, value, px=max(1, math.ceil(ttl * 1000)))
            await pipe.execute()

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        ttl = effective_ttl(ttl_s)
        name = self._prefix + key.encode()
        if ttl is None:
            await self._client.set(name, value)
        elif ttl == 0.0:
            await self._client.unlink(name)
        else:
            # Milliseconds, rounded up: a TTL never ends early, and is never 0 (an error).
            await self._client.set(name, value, px=max(1, math.ceil(ttl * 1000)))

    async def delete(self, key: str) -> bool:
        return bool(await self._client.unlink(self._prefix + key.encode()))

    async def stats(self) -> CacheStats:
        entries: int | None = None
        if await self._client.dbsize() <= _COUNT_LIMIT:
            entries = 0
            async for _ in self._keys():
                entries += 1
        return CacheStats(self.backend, self.location, entries, None)

    async def clear(self) -> int:
        removed = 0
        batch: list[bytes] = []
        async for name in self._keys():
            batch.append(name)
            if len(batch) >= _UNLINK_BATCH:
                removed += await self._client.unlink(*batch)
                batch.clear()
        if batch:
            removed += await self._client.unlink(*batch)
        return removed

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _keys(self) -> AsyncIterator[bytes]:
        """The names of this cache's entries, by SCAN (never KEYS, which blocks the server)."""
        pattern = _glob_escape(self._prefix) + b"*"
        async for name in self._client.scan_iter(match=pattern, count=_SCAN_COUNT):
            if isinstance(name, bytes) and b":" not in name[len(self._prefix) :]:
                yield name


def _glob_escape(text: bytes) -> bytes:
    """`text` as a literal in a Redis MATCH pattern."""
    out = bytearray()
    for byte in text:
        if byte in b"\\*?[]":
            out += b"\\"
        out.append(byte)
    return bytes(out)
