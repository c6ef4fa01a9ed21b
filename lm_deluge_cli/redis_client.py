"""One way to open a Redis client, for the result cache and the shared rate limiter.

Needs the optional ``redis`` package (``pip install 'lm-deluge-cli[redis]'``).
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = ["open_client"]


def open_client(
    url: str, *, max_connections: int, connect_timeout_s: float, timeout_s: float
) -> aioredis.Redis:
    """A client on a bounded pool that makes callers wait for a free connection.

    Calls time out after `timeout_s`; a dropped connection (a restarted server drops
    pooled ones) is retried once at once, a timeout never, so a hung server costs one
    timeout per call. Raises ValueError for a malformed URL. Closing the client closes
    the pool.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_connect_timeout=connect_timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        decode_responses=False,
    )
    return aioredis.Redis.from_pool(pool)
