"""What embed and rerank share in the pipeline: a bug in one batch costs only that
batch's lines, with the key redacted from the message, and the run goes on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar

import pytest

from lm_deluge_cli.engine.pipeline import Batch, BatchLimits
from lm_deluge_cli.engine.sender import Sender
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.records import Record
from lm_deluge_cli.retrieval.records import retrieval_record
from lm_deluge_cli.retrieval.stages import RetrievalStages, run_stages

pytestmark = pytest.mark.anyio

KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


class Lengths(RetrievalStages[str, str]):
    """A text's record holds its length; a batch holding "bug" raises, quoting a key."""

    null_fields: ClassVar[Mapping[str, Any]] = {"length": None}

    def admit(self, item: str) -> Record | tuple[str, int] | None:
        return item, 1

    async def send(self, work: Batch[str]) -> Sequence[Record]:
        if "bug" in work.items:
            raise KeyError(f"Authorization: Bearer {KEY}")
        return [retrieval_record(text, 1, "m", {"length": len(text)}) for text in work.items]

    def failed(self, batch: Batch[str], error: dict[str, Any], attempts: int) -> list[Record]:
        return [
            retrieval_record(text, 1, "m", {"length": None}, error=error, attempts=attempts)
            for text in batch.items
        ]


async def texts(*items: str | BadLine) -> AsyncIterator[str | BadLine]:
    for item in items:
        yield item


async def test_a_bug_in_a_batch_gives_its_lines_error_records_without_the_key() -> None:
    written: list[Record] = []
    stats = RunStats()
    sender: Sender[Any] = Sender([], max_concurrent_requests=1, max_attempts=1, stats=stats)
    bad = BadLine(line=9, id="x", reason="line 9: not JSON")
    outcome = await run_stages(
        Lengths(BatchLimits(2), sender, 1.0),
        texts("aa", "bug", bad, "ccc", "d"),
        written.extend,
        stats,
    )
    by_id = {record["id"]: record for record in written}
    assert {k: r["length"] for k, r in by_id.items() if r["status"] == "ok"} == {"ccc": 3, "d": 1}
    for text in ("aa", "bug"):
        error = by_id[text]["error"]
        assert error["type"] == "internal_error"
        assert error["message"].startswith("KeyError: ")
        assert KEY not in error["message"]
    assert by_id["x"]["error"]["type"] == "invalid_input"
    assert by_id["x"]["length"] is None
    counts = outcome.statistics
    assert (counts.ok, counts.failed) == (2, 3)
    assert counts.errors_by_type == {"internal_error": 2, "invalid_input": 1}
