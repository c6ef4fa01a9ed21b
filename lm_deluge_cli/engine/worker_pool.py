"""Workers started as work reaches them, up to a limit: a huge concurrency limit costs
nothing for a short input (1,000,000 started up front was two million tasks before the
first request). Shared by the chat pipeline and the embed/rerank batching."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.abc

__all__ = ["WorkerPool"]


class WorkerPool:
    """A task group of at most `limit` workers, open from `run` until `close` is called and
    its last worker has ended."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.hired = 0
        self._group: anyio.abc.TaskGroup | None = None
        self._closed = anyio.Event()

    @property
    def can_hire(self) -> bool:
        """Whether `hire` would start a worker: the pool runs and is below its limit."""
        return self._group is not None and self.hired < self.limit

    def hire(self, worker: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Start ``worker(*args)`` in the pool; check `can_hire` first."""
        if self._group is None or self.hired >= self.limit:
            raise RuntimeError("the pool is not running or is full")
        self.hired += 1
        self._group.start_soon(worker, *args)

    def close(self) -> None:
        """No more hiring: the pool ends with its last worker."""
        self._closed.set()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Hold the pool open until `close`, then until its workers end (started once it can
        hire)."""
        try:
            async with anyio.create_task_group() as group:
                self._group = group
                group.start_soon(self._closed.wait)
                task_status.started()
        finally:
            self._group = None
