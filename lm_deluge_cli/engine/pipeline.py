"""The run's structure: reader → look-up → workers → writer, joined by streams, in one task group.

The look-up stage plans prompts in batches and reads their cache entries in one go: a hit
goes straight to the writer without touching a worker or a limiter.

Memory stays flat: at most a few buffers' worth of prompts and records exist at once,
however long the input. Stopping (Ctrl-C, SIGTERM, a dead provider) closes the
reader's side first; prompts not yet sent are left for the resume, requests in
flight get a grace period to finish, and every record produced is written.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass

import anyio
import anyio.abc

from lm_deluge_cli.engine.channel import Channel
from lm_deluge_cli.engine.line_plan import Plan
from lm_deluge_cli.engine.requester import Requester
from lm_deluge_cli.engine.stats import RunStatistics, RunStats
from lm_deluge_cli.engine.task import Answered
from lm_deluge_cli.engine.worker_pool import WorkerPool
from lm_deluge_cli.errors import FatalProviderError
from lm_deluge_cli.io.reader import BadLine
from lm_deluge_cli.io.records import api_error_result, bad_line_result
from lm_deluge_cli.redaction import redact_keys
from lm_deluge_cli.results import ErrorInfo, Result
from lm_deluge_cli.types import Prompt

__all__ = ["DEFAULT_GRACE_S", "RunOutcome", "count_record", "run_pipeline"]

log = logging.getLogger(__name__)

# How long requests in flight may take to finish after a stop is requested.
DEFAULT_GRACE_S = 10.0
# Workers beyond the concurrency limit keep slots busy while others sleep in backoff.
EXTRA_WORKER_FACTOR = 2
# Prompts planned and looked up in the cache together (one read for all of them).
LOOKUP_BATCH = 256
# The most records handed to the sink at once (those that are ready; none waits).
WRITE_BATCH = 256


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended."""

    statistics: RunStatistics
    interrupted: bool
    fatal: FatalProviderError | None
    # The spending cap stopped dispatching; what was not sent is left for the resume.
    cost_cap_reached: bool = False


def _internal_error(prompt: Prompt, exc: Exception) -> Result:
    """A bug must not cost the run: this prompt alone gets an error record."""
    record = api_error_result(prompt, exc, model=prompt.model, attempts=0)
    # The exception's text may quote a request: never let a key through.
    error = record.error or ErrorInfo("internal_error", "")
    error = dataclasses.replace(error, message=redact_keys(error.message))
    log.error(
        "internal error on line %d: %s",
        prompt.line,
        error.message,
        exc_info=log.isEnabledFor(logging.DEBUG),
    )
    return record.replace(error=error)


def count_record(stats: RunStats, record: Result) -> None:
    """Count a line's final record: ok, or failed by its error type."""
    if record.status == "ok":
        stats.ok += 1
    else:
        stats.failed += 1
        kind = record.error.type if record.error is not None else "error"
        stats.errors_by_type[kind] = stats.errors_by_type.get(kind, 0) + 1


async def run_pipeline(
    source: AsyncIterable[Prompt | BadLine | Answered],
    sink: Callable[[list[Result]], None],
    requester: Requester,
    stats: RunStats,
    *,
    stop: anyio.Event | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    finish: Callable[[Result], Result] | None = None,
    counted: bool = True,
) -> RunOutcome:
    """Process every prompt of `source`, handing final records to `sink` as they arrive
    (those that arrive together in one list, so the output takes them in one write).

    Bad lines and records answered without a request (`Answered`) go straight to `sink`.
    `finish` (a tool's) completes each record before it is written and counted. With
    `counted` False the caller counts what it writes (an agent loop's rounds are not lines).
    """
    stop = stop or anyio.Event()
    # The most workers there may be. They are started as lines reach them (`hire`), so a
    # huge concurrency limit costs nothing for a short input: 1,000,000 started up front
    # was two million tasks before the first request.
    workers = int(requester.concurrency.total_tokens * EXTRA_WORKER_FACTOR)
    prompts = Channel[Prompt](LOOKUP_BATCH)
    # One batch: the next is read from the cache while the one before it is sent on.
    looked_up = Channel[list[Plan]](1)
    work_queue = Channel[Plan](workers)
    # Bad lines, lines the look-up could not plan and cache hits come from the stages
    # before the workers; the workers close their side together, once all have ended.
    results = Channel[Result](workers, senders=4)
    interrupted = False
    # Closed once `dispatch` sends no more: the pool then ends with its last worker.
    pool = WorkerPool(workers)

    def hire() -> None:
        """Start a worker for the plan about to be queued unless one is waiting for it."""
        if pool.can_hire and not work_queue.receivers_waiting:
            pool.hire(work)

    async def produce() -> None:
        try:
            async for item in source:
                if stop.is_set():
                    break
                if isinstance(item, BadLine):
                    await results.send(bad_line_result(item))
                elif isinstance(item, Answered):
                    stats.passed_through += 1
                    await results.send(item.record)
                else:
                    await prompts.send(item)
        finally:
            prompts.close_sender()
            results.close_sender()

    async def look_up() -> None:
        """Plan the prompts waiting (up to LOOKUP_BATCH at a time) and read their cache
        entries in one go, then hand them to `dispatch`: while it sends one batch on, the
        next is read (the cache's own work in its thread goes on beside the loop's)."""
        try:
            while (first := await prompts.receive()) is not None:
                batch = [first]
                while len(batch) < LOOKUP_BATCH and (more := prompts.receive_nowait()) is not None:
                    batch.append(more)
                plans: list[Plan] = []
                for prompt in batch:
                    try:
                        planned = requester.plan(prompt)
                    except Exception as exc:
                        planned = _internal_error(prompt, exc)
                    if isinstance(planned, Result):
                        await results.send(planned)
                    else:
                        plans.append(planned)
                await requester.look_up(plans)
                try:
                    await looked_up.send(plans)
                except anyio.ClosedResourceError:
                    # `dispatch` was stopped while this batch was read (a cache read runs
                    # to its end): the run is stopping, and these lines are left for the
                    # resume.
                    break
        finally:
            prompts.close_receiver()
            looked_up.close_sender()
            results.close_sender()

    async def dispatch() -> None:
        """Send each looked-up plan's hit straight to the writer, the rest to the workers."""
        try:
            while (plans := await looked_up.receive()) is not None:
                for plan in plans:
                    if stop.is_set():
                        break  # left for the resume (the reader stops too)
                    record = requester.hit(plan)
                    if record is None:
                        hire()
                        await work_queue.send(plan)
                    elif not results.send_nowait(record):
                        await results.send(record)
        finally:
            looked_up.close_receiver()
            work_queue.close_sender()
            results.close_sender()
            pool.close()

    async def work() -> None:
        while (plan := await work_queue.receive()) is not None:
            if stop.is_set():
                continue  # left for the resume
            try:
                record = await requester.run(plan)
            except Exception as exc:
                record = _internal_error(plan.prompt, exc)
            if record is not None and not results.send_nowait(record):
                # A finished result is paid for: a stop must not drop it on the way.
                with anyio.CancelScope(shield=True):
                    await results.send(record)
            # (A None record was halted before it was sent: left for the resume.)
            if requester.should_stop:
                stop.set()

    async def write() -> None:
        while (first := await results.receive()) is not None:
            # The records that arrived together go out together: one write for all.
            batch = [first]
            while len(batch) < WRITE_BATCH and (more := results.receive_nowait()) is not None:
                batch.append(more)
            if finish is not None:
                batch = [finish(record) for record in batch]
            sink(batch)
            if counted:
                # Counted by the batch: most records are ok.
                failed = [record for record in batch if record.status != "ok"]
                stats.ok += len(batch) - len(failed)
                for record in failed:
                    count_record(stats, record)

    async with anyio.create_task_group() as outer:
        outer.start_soon(write)
        async with anyio.create_task_group() as inner:

            async def watch_stop() -> None:
                nonlocal interrupted
                await stop.wait()
                interrupted = not requester.should_stop
                requester.halt()
                producer_scope.cancel()
                # Requests in flight when the cap is reached are paid for: wait them out.
                grace = (
                    max(grace_s, requester.request_timeout) if requester.cap_reached else grace_s
                )
                with anyio.move_on_after(grace):
                    await requester.sender.wait_idle()
                if stats.in_flight:
                    log.warning(
                        "%d requests still in flight after %gs; abandoning them",
                        stats.in_flight,
                        grace,
                    )
                workers_scope.cancel()

            producer_scope = anyio.CancelScope()
            workers_scope = anyio.CancelScope()

            async def run_producer() -> None:
                try:
                    with producer_scope:
                        async with anyio.create_task_group() as stages:
                            stages.start_soon(produce)
                            stages.start_soon(look_up)
                            stages.start_soon(dispatch)
                finally:
                    pool.close()

            async def run_workers(
                *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
            ) -> None:
                try:
                    with workers_scope:
                        await pool.run(task_status=task_status)
                finally:
                    results.close_sender()
                watcher.cancel()

            watcher = anyio.CancelScope()

            async def run_watcher() -> None:
                with watcher:
                    await watch_stop()

            # The pool first: `dispatch` hires into it.
            await inner.start(run_workers)
            inner.start_soon(run_watcher)
            inner.start_soon(run_producer)
    return RunOutcome(stats.snapshot(), interrupted, requester.fatal, requester.cap_reached)
