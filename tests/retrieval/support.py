"""Helpers of the embed and rerank suites: inputs, jobs, running with a deadline, and a view
that stops a run once enough records are written."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio

from lm_deluge_cli.config import CacheConfig, Job, Limits, ModelEntry
from lm_deluge_cli.engine.stats import RunStatistics
from lm_deluge_cli.progress import ProgressView

T = TypeVar("T")

DIMENSIONS = 8


def text_of(i: int) -> str:
    return f"text number {i} about topic {i % 7}"


def write_texts(path: Path, count: int, *, text: Callable[[int], str] = text_of) -> list[str]:
    """`count` lines ``{"id": "t<i>", "text": …}``; returns the ids."""
    rows = [{"id": f"t{i}", "text": text(i)} for i in range(count)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return [row["id"] for row in rows]


def write_lines(path: Path, rows: Sequence[Mapping[str, Any] | str]) -> None:
    """Lines as given: a mapping is written as JSON, a string as it is."""
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("".join(line + "\n" for line in lines))


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every line of an output, each of which must be valid JSON."""
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def by_id(records: Sequence[Mapping[str, Any]]) -> dict[Any, Mapping[str, Any]]:
    """Records by id; fails if an id has more than one."""
    counts = Counter(record["id"] for record in records)
    repeated = {key: n for key, n in counts.items() if n > 1}
    assert not repeated, f"ids with more than one record: {repeated}"
    return {record["id"]: record for record in records}


def make_job(
    tmp_path: Path,
    model: str,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    mock: Mapping[str, Any] | None = None,
    concurrency: int = 4,
    attempts: int = 3,
    max_cost: float | None = None,
    cache_dir: Path | None = None,
    source: str = "in.jsonl",
    output: str = "out.jsonl",
) -> Job:
    """A job over `tmp_path/source` into `tmp_path/output`: no rate limits, no cache unless
    `cache_dir` is given; a mock model answers at once unless `mock` says otherwise."""
    settings: dict[str, Any] = {"latency_s": 0.0, "latency_jitter_s": 0.0, **(mock or {})}
    entry = ModelEntry(name=model, base_url=base_url, api_key_env=api_key_env, mock=settings)
    limits = Limits(
        max_requests_per_minute=None,
        max_tokens_per_minute=None,
        max_concurrent_requests=concurrency,
        max_attempts=attempts,
        request_timeout=30.0,
        max_cost=max_cost,
    )
    cache = CacheConfig(location=str(cache_dir)) if cache_dir is not None else CacheConfig(False)
    return Job(
        input=str(tmp_path / source),
        output=str(tmp_path / output),
        models=(entry,),
        limits=limits,
        cache=cache,
    )


def run_sync(work: Callable[[], Awaitable[T]], deadline_s: float = 60.0) -> T:
    """Run `work` in a fresh event loop; a run still going after `deadline_s` fails."""

    async def within_deadline() -> T:
        with anyio.fail_after(deadline_s):
            return await work()

    return anyio.run(within_deadline)


class StopAfter(ProgressView):
    """Sets `event`, the run's stop, once `ok` records are written (as Ctrl-C would)."""

    interval_s = 0.01

    def __init__(self, ok: int) -> None:
        self.ok = ok
        self.event = anyio.Event()
        self.fired_at: int | None = None

    def update(self, stats: RunStatistics) -> None:
        if stats.ok >= self.ok and not self.event.is_set():
            self.fired_at = stats.ok
            self.event.set()
