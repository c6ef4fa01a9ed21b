"""Cache writes that never wait: entries handed over at once, stored in batches behind the run.

A result is written to the output the moment it arrives; its cache entry is only queued
here. A background task stores the queue in batches (one `set_many`, so one transaction,
per batch) when `batch_size` entries are waiting or `interval_s` after the first one came,
and everything left when the run ends or stops. The queue is bounded: when the cache
falls behind, new entries are dropped and counted, and requests never wait for it. A
killed process loses the entries still queued (at most `max_pending`, at most
`interval_s` of results when the cache keeps up), never a record.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from lm_deluge_cli.cache.resilient import ResilientCache

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_FLUSH_TIMEOUT_S",
    "DEFAULT_INTERVAL_S",
    "DEFAULT_MAX_PENDING",
    "WriteBehind",
    "WriteBehindCounters",
]

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
DEFAULT_INTERVAL_S = 0.5
DEFAULT_MAX_PENDING = 5_000
# How long the end of a run waits for the last batches before it gives them up.
DEFAULT_FLUSH_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class WriteBehindCounters:
    """A snapshot: entries waiting to be stored, and entries dropped because the queue
    was full (the cache had fallen behind) or left when the run ended."""

    pending: int
    dropped: int


class WriteBehind:
    """A bounded queue of cache entries and the task that stores them in batches.

    `put` never waits. `run` is the background task (start it in the run's task group);
    `aclose` stores what is queued, then ends `run`.
    """

    def __init__(
        self,
        cache: ResilientCache,
        *,
        ttl_s: float | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        interval_s: float = DEFAULT_INTERVAL_S,
        max_pending: int = DEFAULT_MAX_PENDING,
        flush_timeout_s: float = DEFAULT_FLUSH_TIMEOUT_S,
        interval_timer: Callable[[float], anyio.CancelScope] = anyio.move_on_after,
    ) -> None:
        """`interval_timer(interval_s)` is the scope the task waits in for more entries,
        ended by the time passing (a test gives one it ends itself)."""
        if batch_size < 1 or max_pending < batch_size:
            raise ValueError("need 1 <= batch_size <= max_pending")
        self.cache = cache
        self.ttl_s = ttl_s
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.max_pending = max_pending
        self.flush_timeout_s = flush_timeout_s
        self._interval_timer = interval_timer
        self.dropped = 0
        self._queue: deque[tuple[str, bytes]] = deque()
        # The batch being stored counts toward the bound until it is stored.
        self._in_write = 0
        # Set when a full batch waits (or the run ends) and the task may be asleep.
        self._wake: anyio.Event | None = None
        self._closing = False
        self._finished: anyio.Event | None = None
        # Entries queued and stored so far, in order: `synced` waits for the second to
        # reach the first.
        self._queued_seq = 0
        self._stored_seq = 0
        self._progress: anyio.Event | None = None

    @property
    def pending(self) -> int:
        """Entries queued or being stored."""
        return len(self._queue) + self._in_write

    @property
    def running(self) -> bool:
        """Whether `run` is storing batches (else entries wait for `flush`)."""
        return self._finished is not None and not self._finished.is_set()

    def statistics(self) -> WriteBehindCounters:
        return WriteBehindCounters(self.pending, self.dropped)

    def put(self, key: str, value: bytes) -> bool:
        """Queue one entry; False (and counted as dropped) when the queue is full or the
        writer has stopped."""
        if self._closing or len(self._queue) + self._in_write >= self.max_pending:
            self.dropped += 1
            return False
        self._queue.append((key, value))
        self._queued_seq += 1
        if len(self._queue) >= self.batch_size and self._wake is not None:
            self._wake.set()
        return True

    async def synced(self) -> None:
        """Until every entry queued so far is stored (or given up): for what exists only in
        the cache, such as an agent loop's rounds. Asks the writer to store it now."""
        target = self._queued_seq
        while self._stored_seq < target and not self._closing:
            if not self.running:
                await self.flush()
                return
            if self._progress is None:
                self._progress = anyio.Event()
            progress = self._progress
            if self._wake is not None:
                self._wake.set()
            await progress.wait()

    async def run(self) -> None:
        """Store batches until `aclose`; never raises (the cache turns failures into
        warnings)."""
        self._finished = anyio.Event()
        try:
            while True:
                if len(self._queue) < self.batch_size and not self._closing:
                    self._wake = anyio.Event()
                    if self._progress is not None and self._queue:
                        self._wake.set()  # someone waits in `synced`: store now
                    with self._interval_timer(self.interval_s):
                        await self._wake.wait()
                    self._wake = None
                if self._queue:
                    await self._store_one_batch()
                elif self._closing:
                    return
        finally:
            self._finished.set()

    async def aclose(self) -> None:
        """Store everything queued (waiting up to `flush_timeout_s`), then end `run`.
        Entries still queued after that are dropped and counted."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self.flush_timeout_s):
                if self._finished is not None:
                    await self._finished.wait()
                else:  # `run` never started: store what is queued here
                    await self.flush()
        if self._queue:
            log.warning(
                "the result cache took longer than %g s to store the last entries; "
                "%d were not stored (the output has their records)",
                self.flush_timeout_s,
                len(self._queue),
            )
            self.dropped += len(self._queue)
            self._queue.clear()
        if self._progress is not None:
            self._progress.set()  # nothing more will be stored: no one waits for ever

    async def flush(self) -> None:
        """Store everything queued now, in batches (for a writer whose `run` is not going)."""
        while self._queue:
            await self._store_one_batch()

    async def _store_one_batch(self) -> None:
        count = min(self.batch_size, len(self._queue))
        batch = [self._queue.popleft() for _ in range(count)]
        self._in_write = count
        try:
            # Shielded: a batch handed to the store is finished, never torn half-way.
            with anyio.CancelScope(shield=True):
                await self.cache.set_many(batch, self.ttl_s)
        finally:
            self._in_write = 0
            # FIFO: everything up to the batch's last entry is now stored (or given up).
            self._stored_seq += count
            progress, self._progress = self._progress, None
            if progress is not None:
                progress.set()
