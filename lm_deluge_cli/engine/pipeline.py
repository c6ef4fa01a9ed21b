"""The run's structure: reader → stream → workers → stream → writer, in one task group.

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
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from lm_deluge_cli.engine.requester import Requester
from lm_deluge_cli.engine.stats import RunStatistics, RunStats
from lm_deluge_cli.engine.task import Answered
from lm_deluge_cli.errors import FatalProviderError
from lm_deluge_cli.io.reader import BadLine
from lm_deluge_cli.io.records import api_error_result, bad_line_result
from lm_deluge_cli.providers.base import redact
from lm_deluge_cli.types import ErrorInfo, Prompt, Result

__all__ = ["DEFAULT_GRACE_S", "RunOutcome", "count_record", "run_pipeline"]

log = logging.getLogger(__name__)

# How long requests in flight may take to finish after a stop is requested.
DEFAULT_GRACE_S = 10.0
# Workers beyond the concurrency limit keep slots busy while others sleep in backoff.
EXTRA_WORKER_FACTOR = 2


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended."""

    statistics: RunStatistics
    interrupted: bool
    fatal: FatalProviderError | None
    # The spending cap stopped dispatching; what was not sent is left for the resume.
    cost_cap_reached: bool = False


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
    sink: Callable[[Result], None],
    requester: Requester,
    stats: RunStats,
    *,
    stop: anyio.Event | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    finish: Callable[[Result], Result] | None = None,
    counted: bool = True,
) -> RunOutcome:
    """Process every prompt of `source`, handing each final record to `sink` as it arrives.

    Bad lines and records answered without a request (`Answered`) go straight to `sink`.
    `finish` (a tool's) completes each record before it is written and counted. With
    `counted` False the caller counts what it writes (an agent loop's rounds are not lines).
    """
    stop = stop or anyio.Event()
    workers = requester.concurrency.total_tokens * EXTRA_WORKER_FACTOR
    work_send, work_recv = anyio.create_memory_object_stream[Prompt](int(workers))
    result_send, result_recv = anyio.create_memory_object_stream[Result](int(workers))
    interrupted = False

    async def produce(
        send: MemoryObjectSendStream[Prompt], direct_send: MemoryObjectSendStream[Result]
    ) -> None:
        async with send, direct_send:
            async for item in source:
                if stop.is_set():
                    break
                if isinstance(item, BadLine):
                    await direct_send.send(bad_line_result(item))
                elif isinstance(item, Answered):
                    stats.passed_through += 1
                    await direct_send.send(item.record)
                else:
                    try:
                        # Room in the stream: no scheduling round trip per prompt.
                        send.send_nowait(item)
                    except anyio.WouldBlock:
                        await send.send(item)

    async def work(
        recv: MemoryObjectReceiveStream[Prompt], send: MemoryObjectSendStream[Result]
    ) -> None:
        async with recv, send:
            async for prompt in recv:
                if stop.is_set():
                    continue  # left for the resume
                try:
                    record = await requester.process(prompt)
                except Exception as exc:
                    # A bug must not cost the run: this prompt alone gets an error record.
                    record = api_error_result(prompt, exc, model=prompt.model, attempts=0)
                    # The exception's text may quote a request: never let a key through.
                    error = record.error or ErrorInfo("internal_error", "")
                    error = dataclasses.replace(error, message=redact(error.message))
                    record = record.replace(error=error)
                    log.error(
                        "internal error on line %d: %s",
                        prompt.line,
                        error.message,
                        exc_info=log.isEnabledFor(logging.DEBUG),
                    )
                if record is not None:
                    # A finished result is paid for: a stop must not drop it on the way out.
                    with anyio.CancelScope(shield=True):
                        await send.send(record)
                # (A None record was halted before it was sent: left for the resume.)
                if requester.should_stop:
                    stop.set()

    async def write() -> None:
        async with result_recv:
            async for record in result_recv:
                if finish is not None:
                    record = finish(record)
                sink(record)
                if counted:
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
                    while stats.in_flight > 0:
                        await anyio.sleep(0.05)
                if stats.in_flight:
                    log.warning(
                        "%d requests still in flight after %gs; abandoning them",
                        stats.in_flight,
                        grace,
                    )
                workers_scope.cancel()

            producer_scope = anyio.CancelScope()
            workers_scope = anyio.CancelScope()

            direct_send = result_send.clone()

            async def run_producer() -> None:
                with producer_scope:
                    await produce(work_send, direct_send)
                await work_send.aclose()
                await direct_send.aclose()

            async def run_workers() -> None:
                with workers_scope:
                    async with anyio.create_task_group() as pool:
                        for _ in range(int(workers)):
                            pool.start_soon(work, work_recv.clone(), result_send.clone())
                        await work_recv.aclose()
                        await result_send.aclose()
                watcher.cancel()

            watcher = anyio.CancelScope()

            async def run_watcher() -> None:
                with watcher:
                    await watch_stop()

            inner.start_soon(run_watcher)
            inner.start_soon(run_producer)
            inner.start_soon(run_workers)
    return RunOutcome(stats.snapshot(), interrupted, requester.fatal, requester.cap_reached)
