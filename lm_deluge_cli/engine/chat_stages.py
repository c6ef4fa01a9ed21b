"""What the pipeline does to a chat line: plan it, read its cache entries with its
neighbours', write a hit at once, and ask the requester for the rest.

`run_pipeline` is the run's one entry for chat lines (`run`, the toolkit, agent loops and
the Python API).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterable, Callable, Sequence

import anyio

from lm_deluge_cli.engine.line_plan import Plan
from lm_deluge_cli.engine.pipeline import (
    DEFAULT_GRACE_S,
    Pipeline,
    RunOutcome,
    Stages,
    count_outcome,
)
from lm_deluge_cli.engine.requester import Requester
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.engine.task import Answered
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.records import api_error_result, bad_line_result
from lm_deluge_cli.redaction import redact_keys
from lm_deluge_cli.results import ErrorInfo, Result
from lm_deluge_cli.types import Prompt

__all__ = ["ChatStages", "count_record", "run_pipeline"]

log = logging.getLogger(__name__)


class ChatStages(Stages[Prompt, Plan, Result]):
    """Chat lines through the requester; `finish` (a tool's) completes each record."""

    def __init__(
        self, requester: Requester, finish: Callable[[Result], Result] | None = None
    ) -> None:
        self.requester = requester
        self._finish = finish

    def bad_line(self, line: BadLine) -> Result:
        return bad_line_result(line)

    async def prepare(self, items: list[Prompt]) -> tuple[list[Result], list[Plan]]:
        """Plan every prompt and read their cache entries in one go (the cache's own work in
        its thread goes on beside the loop's); a plan the cache answers is a record."""
        requester = self.requester
        records: list[Result] = []
        plans: list[Plan] = []
        for prompt in items:
            try:
                planned = requester.plan(prompt)
            except Exception as exc:
                planned = internal_error(prompt, exc)
            if isinstance(planned, Result):
                records.append(planned)
            else:
                plans.append(planned)
        await requester.look_up(plans)
        misses: list[Plan] = []
        for plan in plans:
            record = requester.hit(plan)
            if record is None:
                misses.append(plan)
            else:
                records.append(record)
        return records, misses

    async def send(self, work: Plan) -> Sequence[Result]:
        record = await self.requester.run(work)
        # (None: halted before it was sent, left for the resume.)
        return () if record is None else (record,)

    def internal_error(self, work: Plan, exc: Exception) -> Sequence[Result]:
        return (internal_error(work.prompt, exc),)

    def error_type(self, record: Result) -> str | None:
        return error_type(record)

    def finish(self, records: list[Result]) -> list[Result]:
        finish = self._finish
        return records if finish is None else [finish(record) for record in records]


def internal_error(prompt: Prompt, exc: Exception) -> Result:
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


def error_type(record: Result) -> str | None:
    """None for an ok record, else the type of its error."""
    if record.status == "ok":
        return None
    return record.error.type if record.error is not None else "error"


def count_record(stats: RunStats, record: Result) -> None:
    """Count a line's final record (an agent loop's, which the pipeline leaves uncounted)."""
    count_outcome(stats, error_type(record))


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
    pipeline = Pipeline(
        ChatStages(requester, finish),
        requester.sender,
        sink,
        stats,
        request_timeout=requester.request_timeout,
        stop=stop,
        grace_s=grace_s,
        counted=counted,
    )
    return await pipeline.run(source)
