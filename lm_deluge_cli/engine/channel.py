"""A bounded queue between two stages of a run, cheap enough to cross once per line.

anyio's memory object streams take a scheduling round trip and look up the running
async library on every `receive`, and make an event for every wait: at thousands of lines
a second that was a fifth of the event loop's time. A run's stages always live on one
asyncio loop (aiohttp needs it), so a wait here is one asyncio future.

Items pass in order. A sender that finds the queue full waits for room; a receiver that
finds it empty waits for an item. When every sender has closed its side, receivers take
what is left and then get `None` (the end). When the receiving side closes, senders get
`anyio.ClosedResourceError`. A waiter woken as it is cancelled passes its turn on, so no
item and no room is lost to a cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Generic, TypeVar

import anyio

__all__ = ["Channel"]

T = TypeVar("T")


class Channel(Generic[T]):
    """Holds up to `capacity` items; `senders` is how many will call `close_sender`."""

    def __init__(self, capacity: int, senders: int = 1) -> None:
        if capacity < 1:
            raise ValueError(f"a channel holds at least one item, got {capacity}")
        if senders < 1:
            raise ValueError(f"a channel needs at least one sender, got {senders}")
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._senders = senders
        self._receiving = True
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()

    def __repr__(self) -> str:
        return (
            f"Channel({len(self._items)}/{self.capacity}, {self._senders} senders,"
            f" {len(self._getters)} receivers and {len(self._putters)} senders waiting)"
        )

    def __len__(self) -> int:
        return len(self._items)

    @property
    def receivers_waiting(self) -> int:
        """How many receivers wait for an item (and have not been handed one yet)."""
        return len(self._getters)

    @property
    def ended(self) -> bool:
        """Every sender has closed and nothing is left to receive."""
        return not self._senders and not self._items

    # -- sending ---------------------------------------------------------------------

    def send_nowait(self, item: T) -> bool:
        """Queue `item` if there is room (True), else leave it (False)."""
        if not self._receiving:
            raise anyio.ClosedResourceError
        if not self._senders:
            raise RuntimeError("send on a channel whose senders have all closed")
        if len(self._items) >= self.capacity:
            return False
        self._items.append(item)
        _wake_one(self._getters)
        return True

    async def send(self, item: T) -> None:
        """Queue `item`, waiting for room."""
        while not self.send_nowait(item):
            await _wait(self._putters)

    def close_sender(self) -> None:
        """One sender is done; after the last, receivers see the end once the queue is empty."""
        if self._senders:
            self._senders -= 1
            if not self._senders:
                _wake_all(self._getters)

    # -- receiving -------------------------------------------------------------------

    def receive_nowait(self) -> T | None:
        """The next item if one is queued; None otherwise (see `ended` for which None)."""
        if not self._items:
            return None
        item = self._items.popleft()
        _wake_one(self._putters)
        return item

    async def receive(self) -> T | None:
        """The next item, waiting for one; None once every sender has closed and the queue
        is empty."""
        while not self._items:
            if not self._senders:
                return None
            await _wait(self._getters)
        item = self._items.popleft()
        _wake_one(self._putters)
        return item

    def close_receiver(self) -> None:
        """No more items will be taken: waiting and later senders get ClosedResourceError."""
        self._receiving = False
        self._items.clear()
        _wake_all(self._putters)


async def _wait(waiters: deque[asyncio.Future[None]]) -> None:
    """Wait in line until woken; a turn given to a waiter that is cancelled goes to the next."""
    turn = asyncio.get_running_loop().create_future()
    waiters.append(turn)
    try:
        await turn
    except BaseException:
        if turn.done() and not turn.cancelled():
            _wake_one(waiters)
        else:
            turn.cancel()
            with contextlib.suppress(ValueError):
                waiters.remove(turn)
        raise


def _wake_one(waiters: deque[asyncio.Future[None]]) -> None:
    while waiters:
        turn = waiters.popleft()
        if not turn.done():
            turn.set_result(None)
            return


def _wake_all(waiters: deque[asyncio.Future[None]]) -> None:
    while waiters:
        _wake_one(waiters)
