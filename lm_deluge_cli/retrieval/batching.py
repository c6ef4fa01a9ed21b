"""The batching stages embed and rerank share: items in, batches out, a sender per batch.

reader → items stream → batcher (fills a batch up to the model's limits, or sends a part
batch after a short idle wait, so a trickling stdin is not held back) → batches stream →
workers (one request each, within the run's limits) → records to the sink as they arrive.
Stopping closes the reader's side first; batches in flight get a grace period; every
record produced is written, and what was not sent is left for the resume.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from lm_deluge_cli.engine.halt import Halted
from lm_deluge_cli.engine.pipeline import DEFAULT_GRACE_S, RunOutcome
from lm_deluge_cli.engine.sender import Sender
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.engine.worker_pool import WorkerPool
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.records import Record
from lm_deluge_cli.retrieval.senders import RetrievalRoute

__all__ = ["IDLE_FLUSH_S", "Batch", "BatchLimits", "run_batches"]

log = logging.getLogger(__name__)

# A part batch is sent once no new item has arrived for this long.
IDLE_FLUSH_S = 0.25

ItemT = TypeVar("ItemT")
InT = TypeVar("InT")


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """How much one request may carry."""

    max_items: int
    max_tokens: int | None = None


@dataclass(slots=True)
class Batch(Generic[ItemT]):
    """Items sent in one request, with their estimated tokens."""

    items: list[ItemT] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    # Kept as items are added: summing on every check made filling a batch quadratic.
    total_tokens: int = 0

    def add(self, item: ItemT, tokens: int) -> None:
        self.items.append(item)
        self.tokens.append(tokens)
        self.total_tokens += tokens

    def fits(self, tokens: int, limits: BatchLimits) -> bool:
        if not self.items:
            return True
        if len(self.items) >= limits.max_items:
            return False
        return limits.max_tokens is None or self.total_tokens + tokens <= limits.max_tokens


async def run_batches(
    source: AsyncIterable[InT | BadLine],
    admit: Callable[[InT], Awaitable[Record | tuple[ItemT, int] | None]],
    send: Callable[[Batch[ItemT]], Awaitable[list[Record]]],
    on_halt: Callable[[Batch[ItemT]], None],
    bad_line: Callable[[BadLine], Record],
    sink: Callable[[Record], None],
    sender: Sender[RetrievalRoute],
    stats: RunStats,
    limits: BatchLimits,
    *,
    stop: anyio.Event | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    idle_flush_s: float | None = None,
) -> RunOutcome:
    """Batch every item of `source` and send each batch with `send` (which returns the
    batch's records); `on_halt` forgets a batch the stop left unsent.

    `admit` decides each input: a record at once (a cache hit, a text too long), or
    (entry, estimated tokens) to batch, or None (it joined an identical input's request).
    A part batch is sent once no item has arrived for `idle_flush_s` (IDLE_FLUSH_S).
    """
    idle_s = IDLE_FLUSH_S if idle_flush_s is None else idle_flush_s
    stop = stop or anyio.Event()
    # The most workers there may be; they are started as batches reach them (`hire`), so a
    # huge concurrency limit costs nothing for a short input.
    workers = int(max(1, sender.concurrency.total_tokens))
    item_send, item_recv = anyio.create_memory_object_stream[tuple[Any, int]](1000)
    batch_send, batch_recv = anyio.create_memory_object_stream[Batch[ItemT]](workers)
    interrupted = False
    # Workers that will be free once every batch sent is taken (a started worker counts
    # before it first waits; a batch sent counts before a worker takes it).
    spare = 0
    # Closed once the batcher sends no more: the pool then ends with its last worker.
    pool = WorkerPool(workers)

    def hire() -> None:
        """Count the batch about to be sent, starting a worker for it if none will be free."""
        nonlocal spare
        if spare <= 0 and pool.can_hire:
            spare += 1
            pool.hire(work, batch_recv.clone())
        spare -= 1

    def write(record: Record) -> None:
        sink(record)
        if record["status"] == "ok":
            stats.ok += 1
        else:
            stats.failed += 1
            kind = (record.get("error") or {}).get("type") or "error"
            stats.errors_by_type[kind] = stats.errors_by_type.get(kind, 0) + 1

    async def read(send_items: MemoryObjectSendStream[tuple[Any, int]]) -> None:
        async with send_items:
            async for item in source:
                if stop.is_set():
                    break
                if isinstance(item, BadLine):
                    write(bad_line(item))
                    continue
                admitted = await admit(item)
                if isinstance(admitted, dict):
                    write(admitted)
                elif admitted is not None:
                    try:
                        # Room in the stream: no scheduling round trip per item.
                        send_items.send_nowait(admitted)
                    except anyio.WouldBlock:
                        await send_items.send(admitted)

    async def batch(
        recv: MemoryObjectReceiveStream[tuple[Any, int]],
        out: MemoryObjectSendStream[Batch[ItemT]],
    ) -> None:
        async with recv, out:
            current: Batch[ItemT] = Batch()
            while True:
                entry: tuple[Any, int] | None = None
                try:
                    # Items already waiting are taken without a timer each (the common case).
                    entry = recv.receive_nowait()
                except anyio.WouldBlock:
                    with anyio.move_on_after(idle_s if current.items else None):
                        try:
                            entry = await recv.receive()
                        except anyio.EndOfStream:
                            break
                except anyio.EndOfStream:
                    break
                if entry is None:  # idle: send what there is
                    hire()
                    await out.send(current)
                    current = Batch()
                    continue
                item, tokens = entry
                if not current.fits(tokens, limits):
                    hire()
                    await out.send(current)
                    current = Batch()
                current.add(item, tokens)
            if current.items:
                hire()
                await out.send(current)

    async def work(recv: MemoryObjectReceiveStream[Batch[ItemT]]) -> None:
        nonlocal spare
        async with recv:
            async for job in recv:
                try:
                    if stop.is_set():
                        on_halt(job)
                        continue
                    try:
                        produced = await send(job)
                    except Halted:
                        on_halt(job)
                        continue
                    # Paid for: a stop must not drop these on the way out.
                    with anyio.CancelScope(shield=True):
                        for record in produced:
                            write(record)
                    if sender.should_stop:
                        stop.set()
                finally:
                    spare += 1  # free for the next batch

    async with anyio.create_task_group() as tg:
        reader_scope = anyio.CancelScope()
        batcher_scope = anyio.CancelScope()
        workers_scope = anyio.CancelScope()
        watcher = anyio.CancelScope()

        async def watch_stop() -> None:
            nonlocal interrupted
            with watcher:
                await stop.wait()
                interrupted = not sender.should_stop
                sender.halt()
                reader_scope.cancel()
                batcher_scope.cancel()
                with anyio.move_on_after(grace_s):
                    await sender.wait_idle()
                if stats.in_flight:
                    log.warning(
                        "%d requests still in flight after %gs; abandoning them",
                        stats.in_flight,
                        grace_s,
                    )
                workers_scope.cancel()

        async def run_reader() -> None:
            with reader_scope:
                await read(item_send)
            await item_send.aclose()

        async def run_batcher() -> None:
            try:
                with batcher_scope:
                    await batch(item_recv, batch_send)
                await batch_send.aclose()
            finally:
                pool.close()

        async def run_workers(
            *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
        ) -> None:
            try:
                with workers_scope:
                    # Holds the stream open too (hiring clones it) while the batcher may hire.
                    await pool.run(task_status=task_status)
            finally:
                await batch_recv.aclose()
            watcher.cancel()

        # The pool first: the batcher hires into it.
        await tg.start(run_workers)
        tg.start_soon(watch_stop)
        tg.start_soon(run_reader)
        tg.start_soon(run_batcher)
    return RunOutcome(stats.snapshot(), interrupted, sender.fatal, sender.cap_reached)
