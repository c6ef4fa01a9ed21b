"""The run's structure, one class under every command: read → prepare → dispatch (→ batch)
→ work → write, stages joined by bounded channels in one task group.

What a stage does to a line is the caller's (`Stages`): chat plans each prompt and reads
its cache entries (engine/chat_stages.py); embed and rerank admit texts and send them in
batches (retrieval/). The pipeline owns the order, the back-pressure, the workers and the
stop; the one sender (engine/sender.py) owns each request.

Memory stays flat: at most a few buffers' worth of lines and records exist at once,
however long the input. Stopping (Ctrl-C, SIGTERM, a dead provider, the spending cap)
closes the reading side first; lines not yet sent are left for the resume, requests in
flight get a grace period to finish, and every record produced is written.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import anyio
import anyio.abc

from lm_deluge_cli.engine.channel import Channel
from lm_deluge_cli.engine.halt import Halted
from lm_deluge_cli.engine.sender import Sender
from lm_deluge_cli.engine.stats import RunStatistics, RunStats
from lm_deluge_cli.engine.task import Answered
from lm_deluge_cli.engine.worker_pool import WorkerPool
from lm_deluge_cli.errors import FatalProviderError
from lm_deluge_cli.io.parse import BadLine

__all__ = [
    "DEFAULT_GRACE_S",
    "IDLE_FLUSH_S",
    "Batch",
    "BatchLimits",
    "Pipeline",
    "RunOutcome",
    "Stages",
    "count_outcome",
]

log = logging.getLogger(__name__)

# How long requests in flight may take to finish after a stop is requested.
DEFAULT_GRACE_S = 10.0
# Workers beyond the concurrency limit keep slots busy while others sleep in backoff.
EXTRA_WORKER_FACTOR = 2
# Lines prepared together (a chat line's cache entries are read in one go for all of them).
PREPARE_BATCH = 256
# The most records handed to the sink at once (those that are ready; none waits).
WRITE_BATCH = 256
# A part batch is sent once no new line has arrived for this long.
IDLE_FLUSH_S = 0.25

ItemT = TypeVar("ItemT")
UnitT = TypeVar("UnitT")
RecordT = TypeVar("RecordT")
EntryT = TypeVar("EntryT")


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended."""

    statistics: RunStatistics
    interrupted: bool
    fatal: FatalProviderError | None
    # The spending cap stopped dispatching; what was not sent is left for the resume.
    cost_cap_reached: bool = False


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """How much one request may carry."""

    max_items: int
    max_tokens: int | None = None


@dataclass(slots=True)
class Batch(Generic[EntryT]):
    """Entries sent in one request, with their estimated tokens."""

    items: list[EntryT] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    # Kept as entries are added: summing on every check made filling a batch quadratic.
    total_tokens: int = 0

    def add(self, item: EntryT, tokens: int) -> None:
        self.items.append(item)
        self.tokens.append(tokens)
        self.total_tokens += tokens

    def fits(self, tokens: int, limits: BatchLimits) -> bool:
        if not self.items:
            return True
        if len(self.items) >= limits.max_items:
            return False
        return limits.max_tokens is None or self.total_tokens + tokens <= limits.max_tokens


class Stages(ABC, Generic[ItemT, UnitT, RecordT]):
    """The caller's half of a pipeline: what each stage does to its kind of line.

    `prepare` turns read items into records (no request needed) and units of work. A unit
    is what a worker sends; with `batching`, a unit is an ``(entry, estimated tokens)``
    pair and a worker sends a `Batch` of entries, filled up to the limits.
    """

    # Units grouped into one request up to these limits (embed, rerank); None: one each.
    batching: BatchLimits | None = None
    # Workers per concurrency slot: more than one keeps slots busy while some sleep in a
    # backoff.
    workers_per_slot: int = EXTRA_WORKER_FACTOR

    @abstractmethod
    def bad_line(self, line: BadLine) -> RecordT:
        """The record of a line that could not be read."""

    @abstractmethod
    async def prepare(self, items: list[ItemT]) -> tuple[list[RecordT], list[UnitT]]:
        """The records of the items that need no request, and the units of the others (an
        item joined to an identical one's request gives neither)."""

    @abstractmethod
    async def send(self, work: Any) -> Sequence[RecordT]:
        """The records of one unit (or one batch); raises `Halted` if the run stopped
        before it was sent."""

    def left(self, work: Any) -> None:
        """Forget a unit (or batch) the stop left unsent: it is the resume's."""
        return None

    def internal_error(self, work: Any, exc: Exception) -> Sequence[RecordT]:
        """The records of a unit whose sending raised a bug; by default the run stops."""
        raise exc

    @abstractmethod
    def error_type(self, record: RecordT) -> str | None:
        """None for an ok record, else the type of its error (how the summary counts it)."""

    def finish(self, records: list[RecordT]) -> list[RecordT]:
        """Complete records before they are written and counted (a tool's fields)."""
        return records


def count_outcome(stats: RunStats, error_type: str | None) -> None:
    """Count a line's final record: ok (None), or failed by its error type."""
    if error_type is None:
        stats.ok += 1
    else:
        stats.failed += 1
        stats.errors_by_type[error_type] = stats.errors_by_type.get(error_type, 0) + 1


class Pipeline(Generic[ItemT, UnitT, RecordT]):
    """One run of `stages` over a source: `run` returns how it ended.

    `sink` takes the records that arrived together (one write for all of them). With
    `counted` False the caller counts what it writes (an agent loop's rounds are not lines).
    """

    def __init__(
        self,
        stages: Stages[ItemT, UnitT, RecordT],
        sender: Sender[Any],
        sink: Callable[[list[RecordT]], None],
        stats: RunStats,
        *,
        request_timeout: float,
        stop: anyio.Event | None = None,
        grace_s: float = DEFAULT_GRACE_S,
        counted: bool = True,
    ) -> None:
        self.stages = stages
        self.sender = sender
        self.sink = sink
        self.stats = stats
        self.request_timeout = request_timeout
        self.stop = stop or anyio.Event()
        self.grace_s = grace_s
        self.counted = counted
        self.interrupted = False
        # The most workers there may be. They are started as units reach them (`hire`), so a
        # huge concurrency limit costs nothing for a short input: 1,000,000 started up front
        # was two million tasks before the first request.
        workers = int(max(1, sender.concurrency.total_tokens) * stages.workers_per_slot)
        self.items = Channel[ItemT](PREPARE_BATCH)
        # One list: the next is prepared while the one before it is dispatched.
        self.prepared = Channel[list[UnitT]](1)
        self.queue = Channel[Any](workers)
        # Bad lines, records prepared without a request and the workers' records, as each
        # stage made them together (a batch's records pass in one hand-off); the workers
        # close their side together, once all have ended.
        self.results = Channel[Sequence[RecordT]](workers, senders=4)
        # Closed once `dispatch` sends no more: the pool then ends with its last worker.
        self.pool = WorkerPool(workers)
        self._reading = anyio.CancelScope()
        self._working = anyio.CancelScope()
        self._watching = anyio.CancelScope()

    async def run(self, source: AsyncIterable[ItemT | BadLine | Answered]) -> RunOutcome:
        """Every line of `source` through the stages; returns once every record is written."""
        async with anyio.create_task_group() as outer:
            outer.start_soon(self.write)
            async with anyio.create_task_group() as inner:
                # The pool first: `dispatch` hires into it.
                await inner.start(self._run_workers)
                inner.start_soon(self._run_watcher)
                inner.start_soon(self._run_reading, source)
        sender = self.sender
        return RunOutcome(self.stats.snapshot(), self.interrupted, sender.fatal, sender.cap_reached)

    # -- the stages, in the order a line passes them ----------------------------------

    async def read(self, source: AsyncIterable[ItemT | BadLine | Answered]) -> None:
        """Bad lines and records answered without a request go straight to the writer."""
        items, results = self.items, self.results
        try:
            async for item in source:
                if self.stop.is_set():
                    break
                if isinstance(item, BadLine):
                    await results.send((self.stages.bad_line(item),))
                elif isinstance(item, Answered):
                    self.stats.passed_through += 1
                    await results.send((item.record,))  # type: ignore[arg-type]
                elif not items.send_nowait(item):
                    await items.send(item)
        finally:
            items.close_sender()
            results.close_sender()

    async def prepare(self) -> None:
        """Prepare the items waiting (up to PREPARE_BATCH) in one go and hand their units
        to `dispatch`: while it sends one list on, the next is prepared."""
        items, results = self.items, self.results
        try:
            while (first := await items.receive()) is not None:
                batch = [first]
                while len(batch) < PREPARE_BATCH and (more := items.receive_nowait()) is not None:
                    batch.append(more)
                records, units = await self.stages.prepare(batch)
                if records and not results.send_nowait(records):
                    await results.send(records)
                if not units:
                    continue
                try:
                    await self.prepared.send(units)
                except anyio.ClosedResourceError:
                    # `dispatch` was stopped while these were prepared (a cache read runs to
                    # its end): the run is stopping, and these lines are left for the resume.
                    break
        finally:
            items.close_receiver()
            self.prepared.close_sender()
            results.close_sender()

    async def dispatch(self) -> None:
        """Queue each unit for the workers, or, with batching, fill batches with them: a
        batch goes when the next unit would not fit, or when none has come for
        IDLE_FLUSH_S (a trickling stdin is not held back)."""
        limits = self.stages.batching
        try:
            if limits is None:
                while (units := await self.prepared.receive()) is not None:
                    for unit in units:
                        if self.stop.is_set():
                            return  # left for the resume (the reader stops too)
                        await self._queue(unit)
            else:
                await self._batch(limits)
        finally:
            self.prepared.close_receiver()
            self.queue.close_sender()
            self.results.close_sender()
            self.pool.close()

    async def _batch(self, limits: BatchLimits) -> None:
        prepared = self.prepared
        current: Batch[Any] = Batch()
        while True:
            units = prepared.receive_nowait()
            if units is None:
                # Nothing waiting: wait for more, or (read at call time: a test may
                # lengthen it) send a part batch once none has come for IDLE_FLUSH_S.
                with anyio.move_on_after(IDLE_FLUSH_S if current.items else None) as idle:
                    units = await prepared.receive()
                if idle.cancelled_caught:
                    await self._queue(current)
                    current = Batch()
                    continue
                if units is None:
                    break  # the end
            for entry, tokens in cast("list[tuple[Any, int]]", units):
                if self.stop.is_set():
                    self.stages.left(current)
                    return  # left for the resume (the reader stops too)
                if not current.fits(tokens, limits):
                    await self._queue(current)
                    current = Batch()
                current.add(entry, tokens)
        if current.items:
            await self._queue(current)

    async def _queue(self, work: Any) -> None:
        """Queue a unit (or batch), first starting a worker for it unless one is waiting."""
        if self.pool.can_hire and not self.queue.receivers_waiting:
            self.pool.hire(self.work)
        if not self.queue.send_nowait(work):
            await self.queue.send(work)

    async def work(self) -> None:
        """One worker: sends a unit at a time until the queue ends."""
        stages, results, stop = self.stages, self.results, self.stop
        while (work := await self.queue.receive()) is not None:
            if stop.is_set():
                stages.left(work)
                continue
            try:
                records = await stages.send(work)
            except Halted:
                stages.left(work)
                continue
            except Exception as exc:
                records = stages.internal_error(work, exc)
            if records and not results.send_nowait(records):
                # A finished record is paid for: a stop must not drop it on the way.
                with anyio.CancelScope(shield=True):
                    await results.send(records)
            if self.sender.should_stop:
                stop.set()

    async def write(self) -> None:
        """Hand the records that arrived together to the sink in one call, and count them."""
        results, stages, stats = self.results, self.stages, self.stats
        while (first := await results.receive()) is not None:
            batch = list(first)
            while len(batch) < WRITE_BATCH and (more := results.receive_nowait()) is not None:
                batch.extend(more)
            batch = stages.finish(batch)
            self.sink(batch)
            if self.counted:
                for record in batch:
                    count_outcome(stats, stages.error_type(record))

    async def watch_stop(self) -> None:
        """On a stop: send nothing more, give requests in flight their grace, then end."""
        sender, stats = self.sender, self.stats
        await self.stop.wait()
        self.interrupted = not sender.should_stop
        sender.halt()
        self._reading.cancel()
        # Requests in flight when the cap is reached are paid for: wait them out.
        grace = max(self.grace_s, self.request_timeout) if sender.cap_reached else self.grace_s
        with anyio.move_on_after(grace):
            await sender.wait_idle()
        if stats.in_flight:
            log.warning(
                "%d requests still in flight after %gs; abandoning them", stats.in_flight, grace
            )
        self._working.cancel()

    # -- the task tree -----------------------------------------------------------------

    async def _run_reading(self, source: AsyncIterable[ItemT | BadLine | Answered]) -> None:
        try:
            with self._reading:
                async with anyio.create_task_group() as stages:
                    stages.start_soon(self.read, source)
                    stages.start_soon(self.prepare)
                    stages.start_soon(self.dispatch)
        finally:
            self.pool.close()

    async def _run_workers(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            with self._working:
                await self.pool.run(task_status=task_status)
        finally:
            self.results.close_sender()
        self._watching.cancel()

    async def _run_watcher(self) -> None:
        with self._watching:
            await self.watch_stop()
