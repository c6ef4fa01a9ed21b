"""The run's concurrency limit: at most N requests hold a slot at once.

Like anyio's CapacityLimiter, less the cost: a free slot is taken without a trip through
the event loop, and a freed slot goes straight to the longest waiter (first come, first
served), so no one is passed over.
"""

from __future__ import annotations

from collections import deque

import anyio

__all__ = ["Slots"]


class Slots:
    """`async with slots:` holds one of `total_tokens` slots for the block."""

    def __init__(self, total_tokens: int) -> None:
        if total_tokens < 1:
            raise ValueError(f"need at least one slot, got {total_tokens}")
        self.total_tokens = total_tokens
        self.borrowed_tokens = 0
        self._waiters: deque[anyio.Event] = deque()

    def __repr__(self) -> str:
        return f"Slots({self.borrowed_tokens}/{self.total_tokens}, {len(self._waiters)} waiting)"

    @property
    def available_tokens(self) -> int:
        """Slots free now (none while anyone waits: a freed slot goes to them)."""
        return self.total_tokens - self.borrowed_tokens

    @property
    def waiting(self) -> int:
        """How many are waiting for a slot."""
        return len(self._waiters)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()

    async def acquire(self) -> None:
        """Take a slot, waiting for one (first come, first served) when none is free."""
        if self.borrowed_tokens < self.total_tokens and not self._waiters:
            self.borrowed_tokens += 1
            return
        turn = anyio.Event()
        self._waiters.append(turn)
        try:
            await turn.wait()
        except BaseException:
            if turn.is_set():
                self.release()  # handed a slot as it was cancelled: pass it on
            else:
                self._waiters.remove(turn)
            raise

    def release(self) -> None:
        """Give the slot back: to the longest waiter, else to the free ones."""
        if self._waiters:
            # The slot changes hands without being counted free: no one can jump the queue.
            self._waiters.popleft().set()
        else:
            self.borrowed_tokens -= 1
