"""The pipeline with stages of its own: what it does whatever the caller's kind of line.
Batches filled to their limits, a part batch sent when the input pauses, a bug costing
only its own lines, and work the stop left unsent handed back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import pytest

from lm_deluge_cli.engine import pipeline as pipeline_module
from lm_deluge_cli.engine.pipeline import Batch, BatchLimits, Pipeline, Stages
from lm_deluge_cli.engine.sender import Sender
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.io.parse import BadLine

pytestmark = pytest.mark.anyio


class Words(Stages[str, Any, str]):
    """Lines are words; a record is ``"ok:WORD"`` or ``"error:TYPE:WORD"``. A word's
    tokens are its length; "skip" needs no request, "bug" makes `send` raise."""

    def __init__(self, limits: BatchLimits | None = None) -> None:
        self.batching = limits
        self.sent: list[list[str]] = []
        self.left_over: list[Any] = []
        self.gate: anyio.Event | None = None

    def bad_line(self, line: BadLine) -> str:
        return f"error:invalid_input:{line.line}"

    async def prepare(self, items: list[str]) -> tuple[list[str], list[Any]]:
        records = [f"ok:{word}" for word in items if word == "skip"]
        words = [word for word in items if word != "skip"]
        if self.batching is None:
            return records, words
        return records, [(word, len(word)) for word in words]

    async def send(self, work: Any) -> Sequence[str]:
        words = work.items if isinstance(work, Batch) else [work]
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(list(words))
        if "bug" in words:
            raise ValueError("a bug")
        return [f"ok:{word}" for word in words]

    def left(self, work: Any) -> None:
        self.left_over.append(work)

    def internal_error(self, work: Any, exc: Exception) -> Sequence[str]:
        words = work.items if isinstance(work, Batch) else [work]
        return [f"error:internal_error:{word}" for word in words]

    def error_type(self, record: str) -> str | None:
        return None if record.startswith("ok:") else record.split(":")[1]


async def lines(*items: str | BadLine) -> AsyncIterator[str | BadLine]:
    for item in items:
        yield item


def run_of(
    stages: Words, written: list[str], stop: anyio.Event | None = None
) -> Pipeline[str, Any, str]:
    sender: Sender[Any] = Sender([], max_concurrent_requests=2, max_attempts=1, stats=RunStats())
    return Pipeline(stages, sender, written.extend, sender.stats, request_timeout=1.0, stop=stop)


async def test_every_line_gets_one_record_and_the_counts_add_up() -> None:
    stages, written = Words(), list[str]()
    bad = BadLine(line=3, id=None, reason="not JSON")
    run = run_of(stages, written)
    outcome = await run.run(lines("a", "skip", bad, "bug", "b"))
    assert sorted(written) == sorted(
        ["ok:a", "ok:skip", "error:invalid_input:3", "error:internal_error:bug", "ok:b"]
    )
    stats = outcome.statistics
    assert (stats.ok, stats.failed) == (3, 2)
    assert stats.errors_by_type == {"invalid_input": 1, "internal_error": 1}
    assert sorted(map(tuple, stages.sent)) == [("a",), ("b",), ("bug",)]  # "skip": no request
    assert not outcome.interrupted


async def test_batches_fill_up_to_the_items_and_tokens_they_may_carry() -> None:
    stages, written = Words(BatchLimits(max_items=3, max_tokens=6)), list[str]()
    await run_of(stages, written).run(lines("aa", "bb", "cc", "dd", "eeee", "f", "g"))
    # Three items at most; six tokens at most ("dd" + "eeee"); the rest at the end.
    assert sorted(stages.sent) == [["aa", "bb", "cc"], ["dd", "eeee"], ["f", "g"]]
    assert len(written) == 7


async def test_a_part_batch_goes_once_the_input_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline_module, "IDLE_FLUSH_S", 0.01)
    stages, written = Words(BatchLimits(max_items=100)), list[str]()
    answered = anyio.Event()

    async def trickle() -> AsyncIterator[str]:
        yield "a"
        yield "b"
        # The input waits for the first two answers: only a part batch can give them.
        with anyio.fail_after(5):
            await answered.wait()
        yield "c"

    def sink(records: list[str]) -> None:
        written.extend(records)
        if len(written) >= 2:
            answered.set()

    sender: Sender[Any] = Sender([], max_concurrent_requests=2, max_attempts=1, stats=RunStats())
    run = Pipeline(stages, sender, sink, sender.stats, request_timeout=1.0)
    await run.run(trickle())
    assert stages.sent == [["a", "b"], ["c"]]


async def test_a_bug_in_one_batch_costs_only_its_lines() -> None:
    stages, written = Words(BatchLimits(max_items=2)), list[str]()
    outcome = await run_of(stages, written).run(lines("a", "bug", "c", "d"))
    assert sorted(written) == ["error:internal_error:a", "error:internal_error:bug", "ok:c", "ok:d"]
    assert outcome.statistics.errors_by_type == {"internal_error": 2}


async def test_work_the_stop_left_unsent_is_handed_back_and_gets_no_record() -> None:
    stages, written, stop = Words(), list[str](), anyio.Event()
    stages.gate = anyio.Event()

    async def stopping() -> AsyncIterator[str]:
        for word in ("a", "b", "c", "d", "e", "f"):
            yield word
        # Every line is queued or in a worker: stop, then let the workers go on.
        await anyio.sleep(0.05)
        stop.set()
        stages.gate.set()  # type: ignore[union-attr]

    outcome = await run_of(stages, written, stop).run(stopping())
    assert outcome.interrupted
    sent = {word for words in stages.sent for word in words}
    # What a worker had taken before the stop is answered; the rest is handed back.
    assert sorted(written) == sorted(f"ok:{word}" for word in sent)
    assert sorted(sent | set(stages.left_over)) == ["a", "b", "c", "d", "e", "f"]
    assert stages.left_over, (stages.sent, stages.left_over)
