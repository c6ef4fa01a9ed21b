"""The pipeline: every item ends as one record; stopping leaves the rest for the resume."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import pytest

from lm_deluge_cli.config import Limits, ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoints
from lm_deluge_cli.engine.chat_stages import run_pipeline
from lm_deluge_cli.engine.pipeline import RunOutcome
from lm_deluge_cli.engine.setup import build_requester
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.records import to_json
from lm_deluge_cli.results import Result
from lm_deluge_cli.types import Prompt, SamplingParams

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def items(
    count: int, bad_every: int = 0, tasks_seen: list[int] | None = None
) -> AsyncIterator[Prompt | BadLine]:
    for i in range(count):
        if bad_every and i % bad_every == 0:
            yield BadLine(i + 1, f"line {i + 1}: broken")
        else:
            yield Prompt(id=i, line=i + 1, messages=[{"role": "user", "content": f"n{i}"}])
    if tasks_seen is not None:
        # Every line is on its way: the tasks the run holds now are all it will have.
        await anyio.sleep(0.05)
        tasks_seen.append(len(asyncio.all_tasks()))


async def run(
    count: int,
    mock: dict[str, Any],
    *,
    concurrency: int = 8,
    bad_every: int = 0,
    stop_after: int | None = None,
    grace_s: float = 10.0,
    attempts: int = 3,
    max_cost: float | None = None,
    outcomes: list[RunOutcome] | None = None,
    model: str = "mock:sim",
    tasks_seen: list[int] | None = None,
) -> tuple[list[dict[str, Any]], RunStats, bool]:
    mock = {"latency_s": 0.0, "latency_jitter_s": 0.0, **mock}
    entries = (ModelEntry(name=model, mock=mock),)
    stats = RunStats()
    records: list[dict[str, Any]] = []
    stop = anyio.Event()

    def sink(batch: list[Result]) -> None:
        records.extend(to_json(record) for record in batch)
        if stop_after is not None and len(records) >= stop_after:
            stop.set()

    async with AsyncExitStack() as stack:
        requester = await build_requester(
            entries,
            resolve_endpoints(entries),
            Limits(None, None, concurrency, attempts, 5.0, max_cost=max_cost),
            SamplingParams(),
            retry_other_model=False,
            stats=stats,
            stack=stack,
        )
        outcome = await run_pipeline(
            items(count, bad_every, tasks_seen), sink, requester, stats, stop=stop, grace_s=grace_s
        )
    if outcomes is not None:
        outcomes.append(outcome)
    return records, stats, outcome.interrupted


async def test_every_item_ends_as_one_record() -> None:
    records, stats, interrupted = await run(500, {"latency_s": 0.001}, bad_every=50)
    assert not interrupted
    assert len(records) == 500
    assert sorted(r["line"] for r in records) == list(range(1, 501))
    assert stats.ok == 490 and stats.failed == 10
    assert stats.errors_by_type == {"invalid_input": 10}


async def test_a_huge_concurrency_limit_starts_no_more_workers_than_there_are_lines() -> None:
    tasks_seen: list[int] = []
    with anyio.fail_after(30):
        records, stats, _ = await run(
            3, {"latency_s": 0.2}, concurrency=20_000, tasks_seen=tasks_seen
        )
    assert stats.ok == 3 and len(records) == 3
    # A worker per line and the run's few stages: not 40,000 workers for 3 lines.
    assert tasks_seen and tasks_seen[0] < 30, tasks_seen


async def test_faults_are_retried_to_success(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lm_deluge_cli.engine.retry.backoff_delay", lambda attempt, rng: 0.001)
    records, stats, _ = await run(
        300, {"error_rate": 0.2, "overload_rate": 0.1, "seed": 3}, attempts=20
    )
    assert len(records) == 300
    assert all(r["status"] == "ok" for r in records)
    assert stats.retries > 30


async def test_stop_lets_in_flight_finish_and_leaves_the_rest() -> None:
    records, stats, interrupted = await run(
        1000, {"latency_s": 0.05}, concurrency=10, stop_after=25
    )
    assert interrupted
    assert 25 <= len(records) <= 25 + 2 * 10  # what was in flight when the stop came
    assert all(r["status"] == "ok" for r in records)
    assert stats.in_flight == 0
    # Nothing is sent after the stop: every request sent ended as a written record.
    assert stats.requests == len(records)


async def test_stop_abandons_requests_that_outlive_the_grace_period() -> None:
    with anyio.fail_after(10):
        records, _, interrupted = await run(
            100,
            {"latency_s": 0.02, "hang_rate": 0.5, "seed": 1},
            concurrency=4,
            stop_after=3,
            grace_s=0.3,
        )
    assert interrupted
    assert len(records) >= 3


async def test_an_internal_error_costs_one_record_not_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lm_deluge_cli.engine.requester import Plan, Requester

    real = Requester.run

    async def flaky(self: Requester, plan: Plan) -> Result | None:
        if plan.prompt.line == 7:
            raise RuntimeError("boom")
        return await real(self, plan)

    monkeypatch.setattr(Requester, "run", flaky)
    records, stats, _ = await run(20, {})
    assert stats.failed == 1
    assert len(records) == 20
    broken = [r for r in records if r["status"] == "error"]
    assert [r["line"] for r in broken] == [7]
    assert broken[0]["error"]["type"] == "internal_error"


async def test_the_spending_cap_stops_the_run_and_keeps_what_was_paid_for() -> None:
    outcomes: list[RunOutcome] = []
    records, stats, interrupted = await run(
        1000,
        {"latency_s": 0.02},
        concurrency=10,
        max_cost=0.002,
        outcomes=outcomes,
        model="mock:standard",  # a priced model: the cap needs prices
    )
    outcome = outcomes[0]
    assert outcome.cost_cap_reached and not interrupted and outcome.fatal is None
    assert outcome.statistics.cost_cap_reached
    assert 0 < len(records) < 1000
    # Every request sent ended as a written ok record; the rest is left for the resume.
    assert all(r["status"] == "ok" for r in records)
    assert stats.requests == len(records)
    assert stats.cost_usd <= 0.002
    assert stats.in_flight == 0
