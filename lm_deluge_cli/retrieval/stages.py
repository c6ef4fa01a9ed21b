"""What the pipeline does to an embed or rerank line: admit it (a record at once, or an
entry to batch with its estimated tokens), then send each batch the pipeline fills up to
the model's limits (engine/pipeline.py) and make its records."""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import anyio

from lm_deluge_cli.engine.pipeline import Batch, BatchLimits, Pipeline, RunOutcome, Stages
from lm_deluge_cli.engine.sender import Sender
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.records import INTERNAL_ERROR, Record
from lm_deluge_cli.redaction import redact_keys
from lm_deluge_cli.retrieval.records import bad_line_record
from lm_deluge_cli.runner import Engine

__all__ = ["RetrievalStages", "run_stages", "stages_engine"]

log = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
EntryT = TypeVar("EntryT")


class RetrievalStages(Stages[ItemT, tuple[EntryT, int], Record], Generic[ItemT, EntryT]):
    """An embed or rerank command's half of the pipeline; records are in their JSON shape."""

    # The command's own fields, empty, on the record of a line it could not use.
    null_fields: ClassVar[Mapping[str, Any]]

    def __init__(self, limits: BatchLimits, sender: Sender[Any], request_timeout: float) -> None:
        self.batching = limits
        self.sender = sender
        self.request_timeout = request_timeout

    @abstractmethod
    def admit(self, item: ItemT) -> Record | tuple[EntryT, int] | None:
        """A record at once (a text too long), the entry to batch with its estimated
        tokens, or None (it joined an identical text's entry)."""

    @abstractmethod
    async def send(self, work: Batch[EntryT]) -> Sequence[Record]:
        """The batch's records: from the cache, and from requests for the rest."""

    @abstractmethod
    def failed(self, batch: Batch[EntryT], error: dict[str, Any], attempts: int) -> list[Record]:
        """The error records of every line of a batch that could not be answered."""

    def bad_line(self, line: BadLine) -> Record:
        return bad_line_record(line, self.null_fields)

    async def prepare(self, items: list[ItemT]) -> tuple[list[Record], list[tuple[EntryT, int]]]:
        records: list[Record] = []
        entries: list[tuple[EntryT, int]] = []
        for item in items:
            admitted = self.admit(item)
            if isinstance(admitted, dict):
                records.append(admitted)
            elif admitted is not None:
                entries.append(admitted)
        return records, entries

    def internal_error(self, work: Batch[EntryT], exc: Exception) -> Sequence[Record]:
        """A bug must not cost the run: this batch's lines alone get error records."""
        # The exception's text may quote a request: never let a key through.
        message = redact_keys(f"{type(exc).__name__}: {exc}")
        log.error(
            "internal error on a batch of %d: %s",
            len(work.items),
            message,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
        error = {"type": INTERNAL_ERROR, "message": message, "status_code": None}
        return self.failed(work, error, 0)

    def error_type(self, record: Record) -> str | None:
        if record["status"] == "ok":
            return None
        return (record.get("error") or {}).get("type") or "error"


async def run_stages(
    stages: RetrievalStages[Any, Any],
    source: AsyncIterable[Any],
    sink: Callable[[list[Record]], None],
    stats: RunStats,
    *,
    stop: anyio.Event | None = None,
) -> RunOutcome:
    """Every line of `source` through `stages`, records to `sink` as batches answer."""
    pipeline = Pipeline(
        stages, stages.sender, sink, stats, request_timeout=stages.request_timeout, stop=stop
    )
    return await pipeline.run(source)


def stages_engine(
    stages: RetrievalStages[Any, Any], stats: RunStats, *, stop: anyio.Event | None = None
) -> Engine:
    """`stages` as a command's engine (runner.run_command, runner.run_in_memory)."""

    async def run(items: AsyncIterator[Any], sink: Callable[[list[Record]], None]) -> RunOutcome:
        return await run_stages(stages, items, sink, stats, stop=stop)

    return Engine(stages.sender, run)
