"""`run_embed` end to end: batching, records, the cache, identical texts, bad lines, faults,
a refused key and a stop mid-run, against the in-process mock and a loopback server."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from lm_deluge_cli.engine.stats import RunStatistics
from lm_deluge_cli.errors import (
    EXIT_FATAL_PROVIDER,
    EXIT_INTERRUPTED,
    EXIT_LINES_LEFT,
    EXIT_OK,
    EXIT_SOME_FAILED,
    ConfigError,
)
from lm_deluge_cli.mock.wire import embedding_vector
from lm_deluge_cli.progress import ProgressView
from lm_deluge_cli.retrieval.embed import EmbedSettings, run_embed
from lm_deluge_cli.runner import JobReport
from lm_deluge_cli.tokens import estimate_text_tokens
from tests.faults.support import KEY
from tests.loopback import Loopback
from tests.retrieval.support import (
    DIMENSIONS,
    StopAfter,
    by_id,
    make_job,
    read_records,
    run_sync,
    text_of,
    write_lines,
    write_texts,
)

OPENAI_MODEL = "openai:text-embedding-3-small"
# The mock's own embedding model: 2048 texts per request, no per-text token limit.
MOCK_LIMIT = 2048


def embed(
    tmp_path: Path,
    model: str = "mock:embed",
    *,
    settings: EmbedSettings | None = None,
    fresh: bool = False,
    view: StopAfter | None = None,
    **job: Any,
) -> JobReport:
    chosen = settings or EmbedSettings(dimensions=DIMENSIONS)
    built = make_job(tmp_path, model, **job)
    stop = view.event if view is not None else None
    return run_sync(lambda: run_embed(built, chosen, fresh=fresh, view=view, stop=stop))


@pytest.mark.parametrize(
    ("batch_size", "requests"),
    [(100, 100), (64, math.ceil(10_000 / 64)), (None, math.ceil(10_000 / MOCK_LIMIT))],
    ids=["batch-100", "batch-64", "model-limit"],
)
def test_ten_thousand_texts_take_ceil_texts_over_batch_size_requests(
    tmp_path: Path, batch_size: int | None, requests: int
) -> None:
    ids = write_texts(tmp_path / "in.jsonl", 10_000)
    settings = EmbedSettings(dimensions=DIMENSIONS, batch_size=batch_size)
    report = embed(tmp_path, settings=settings, concurrency=8)

    summary = report.to_dict()
    assert report.exit_code == EXIT_OK, summary
    assert summary["requests"] == requests, summary
    assert summary["ok"] == 10_000 and summary["failed"] == 0 and summary["retries"] == 0
    records = by_id(read_records(tmp_path / "out.jsonl"))
    assert set(records) == set(ids)
    for i, key in enumerate(ids):
        record = records[key]
        assert record["status"] == "ok", record
        assert record["dimensions"] == DIMENSIONS
        # The same vector whatever the batch: one text's vector depends on the text only.
        assert record["embedding"] == embedding_vector("embed", text_of(i), DIMENSIONS)
        assert record["line"] == i + 1 and record["cached"] is False


class CountTasks(ProgressView):
    """Notes how many tasks the event loop holds at each update."""

    interval_s = 0.01

    def __init__(self) -> None:
        self.seen: list[int] = []

    def update(self, stats: RunStatistics) -> None:
        self.seen.append(len(asyncio.all_tasks()))


def test_a_huge_concurrency_limit_starts_no_more_workers_than_there_are_batches(
    tmp_path: Path,
) -> None:
    write_texts(tmp_path / "in.jsonl", 3)
    view = CountTasks()
    built = make_job(tmp_path, "mock:embed", mock={"latency_s": 0.2}, concurrency=20_000)
    settings = EmbedSettings(dimensions=DIMENSIONS, batch_size=1)
    report = run_sync(lambda: run_embed(built, settings, fresh=False, view=view), 30)
    assert report.to_dict()["ok"] == 3
    # A worker per batch and the run's few stages: not 20,000 workers for 3 texts.
    assert view.seen and max(view.seen) < 30, view.seen


def test_batches_also_keep_to_the_model_token_limit(
    tmp_path: Path, loopback: Callable[..., Loopback], monkeypatch: pytest.MonkeyPatch
) -> None:
    # OpenAI takes at most 300,000 tokens per request (the mock server refuses more): texts
    # of ~6,000 tokens fit 49 to a request, far below the 2048 texts the count allows.
    server = loopback()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    count = 120
    write_texts(tmp_path / "in.jsonl", count, text=lambda i: f"{i:04d} " + "abcd" * 6_000)
    tokens = estimate_text_tokens(f"{0:04d} " + "abcd" * 6_000)
    per_request = 300_000 // tokens
    report = embed(tmp_path, OPENAI_MODEL, base_url=server.url)

    summary = report.to_dict()
    assert report.exit_code == EXIT_OK, summary
    assert summary["requests"] == math.ceil(count / per_request), (summary, per_request)
    assert server.stats()["inputs_embedded"] == count


def test_rerun_with_fresh_is_served_from_the_cache(tmp_path: Path) -> None:
    ids = write_texts(tmp_path / "in.jsonl", 300)
    cache = tmp_path / "cache"
    first = embed(tmp_path, cache_dir=cache)
    assert first.outcome.statistics.requests > 0
    vectors = {r["id"]: r["embedding"] for r in read_records(tmp_path / "out.jsonl")}

    second = embed(tmp_path, cache_dir=cache, fresh=True)
    summary = second.to_dict()
    assert summary["requests"] == 0, summary
    assert summary["cached"] == 300 and summary["ok"] == 300
    records = by_id(read_records(tmp_path / "out.jsonl"))
    assert set(records) == set(ids)
    for key, record in records.items():
        assert record["status"] == "ok" and record["cached"] is True, record
        assert record["embedding"] == vectors[key]
        assert record["cost_usd"] == 0.0


def test_another_vector_size_is_not_served_from_the_cache(tmp_path: Path) -> None:
    write_texts(tmp_path / "in.jsonl", 20)
    cache = tmp_path / "cache"
    embed(tmp_path, cache_dir=cache)
    other = EmbedSettings(dimensions=DIMENSIONS * 2)
    report = embed(tmp_path, settings=other, cache_dir=cache, fresh=True)
    assert report.to_dict()["cached"] == 0 and report.to_dict()["requests"] == 1
    assert all(len(r["embedding"]) == 16 for r in read_records(tmp_path / "out.jsonl"))


def test_identical_texts_share_one_slot(
    tmp_path: Path, loopback: Callable[..., Loopback], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = loopback()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    write_texts(tmp_path / "in.jsonl", 1_000, text=lambda i: f"distinct text {i % 10}")
    report = embed(tmp_path, OPENAI_MODEL, base_url=server.url)

    summary = report.to_dict()
    assert report.exit_code == EXIT_OK, summary
    assert server.stats()["inputs_embedded"] == 10
    assert summary["requests"] == 1 and summary["deduplicated"] == 990
    records = by_id(read_records(tmp_path / "out.jsonl"))
    assert len(records) == 1_000
    for i in range(1_000):
        record = records[f"t{i}"]
        expected = embedding_vector("text-embedding-3-small", f"distinct text {i % 10}", 8)
        assert record["status"] == "ok" and record["embedding"] == expected
        # The first line of each text paid for it; the others say they shared it.
        assert record["deduplicated"] is (i >= 10)
    assert sum(1 for r in records.values() if r["attempts"] == 1) == 10


def test_a_text_over_the_model_limit_is_an_invalid_input_record(
    tmp_path: Path, loopback: Callable[..., Loopback], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = loopback()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    write_texts(tmp_path / "in.jsonl", 5, text=lambda i: "word " * 10_000 if i == 2 else text_of(i))
    report = embed(tmp_path, OPENAI_MODEL, base_url=server.url)

    assert report.exit_code == EXIT_SOME_FAILED
    records = by_id(read_records(tmp_path / "out.jsonl"))
    long = records["t2"]
    assert long["status"] == "error" and long["embedding"] is None
    assert long["error"]["type"] == "invalid_input"
    assert "8,191" in long["error"]["message"]
    assert long["attempts"] == 0  # never sent
    assert all(records[f"t{i}"]["status"] == "ok" for i in (0, 1, 3, 4))
    assert server.stats()["inputs_embedded"] == 4


def test_bad_lines_become_error_records_and_the_run_goes_on(tmp_path: Path) -> None:
    write_lines(
        tmp_path / "in.jsonl",
        [
            {"id": "a", "text": "first"},
            "{not json",
            {"id": "b"},
            {"id": "c", "text": "   "},
            {"id": "a", "text": "again"},
            {"id": "d", "text": "last", "metadata": {"k": 1}},
        ],
    )
    report = embed(tmp_path)

    summary = report.to_dict()
    assert report.exit_code == EXIT_SOME_FAILED
    assert summary["ok"] == 2 and summary["failed"] == 4, summary
    records = {r["line"]: r for r in read_records(tmp_path / "out.jsonl")}
    assert sorted(records) == [1, 2, 3, 4, 5, 6]
    for line in (2, 3, 4, 5):
        record = records[line]
        assert record["status"] == "error" and record["error"]["type"] == "invalid_input"
        assert record["error"]["message"].startswith(f"line {line}:"), record
    assert "JSON" in records[2]["error"]["message"]
    assert "'text'" in records[3]["error"]["message"]
    assert "duplicate id" in records[5]["error"]["message"]
    assert records[5]["id"] is None  # the first line with id "a" keeps its result
    assert records[1]["status"] == "ok" and records[1]["id"] == "a"
    assert records[6]["status"] == "ok" and records[6]["metadata"] == {"k": 1}


def test_faults_with_attempts_to_spare_all_end_ok(tmp_path: Path) -> None:
    ids = write_texts(tmp_path / "in.jsonl", 400)
    mock = {"faults": {"500": 0.2, "503": 0.1}, "seed": 11}
    settings = EmbedSettings(dimensions=DIMENSIONS, batch_size=20)
    report = embed(tmp_path, settings=settings, mock=mock, attempts=10, concurrency=8)

    summary = report.to_dict()
    assert report.exit_code == EXIT_OK, summary
    assert summary["ok"] == 400
    retries = summary["retries"]
    assert isinstance(retries, int) and retries > 0
    assert summary["requests"] == 20 + retries
    records = by_id(read_records(tmp_path / "out.jsonl"))
    assert set(records) == set(ids)
    assert any(r["attempts"] > 1 for r in records.values())


def test_faults_with_one_attempt_are_error_records_with_status_codes(tmp_path: Path) -> None:
    write_texts(tmp_path / "in.jsonl", 400)
    mock = {"faults": {"500": 0.5}, "seed": 3}
    settings = EmbedSettings(dimensions=DIMENSIONS, batch_size=20)
    report = embed(tmp_path, settings=settings, mock=mock, attempts=1)

    summary = report.to_dict()
    assert report.exit_code == EXIT_SOME_FAILED, summary
    assert summary["requests"] == 20 and summary["retries"] == 0
    records = by_id(read_records(tmp_path / "out.jsonl"))
    assert len(records) == 400
    failed = [r for r in records.values() if r["status"] == "error"]
    assert failed and len(failed) % 20 == 0  # whole batches fail together
    assert summary["failed"] == len(failed)
    for record in failed:
        assert record["error"]["status_code"] == 500, record
        assert record["embedding"] is None and record["attempts"] == 1


def test_a_refused_key_is_fatal_and_stops_the_run(
    tmp_path: Path, loopback: Callable[..., Loopback], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = loopback(api_key=KEY)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-0000000000000000")
    write_texts(tmp_path / "in.jsonl", 1_000)
    settings = EmbedSettings(dimensions=DIMENSIONS, batch_size=10)
    report = embed(tmp_path, OPENAI_MODEL, settings=settings, base_url=server.url, concurrency=2)

    assert report.exit_code == EXIT_FATAL_PROVIDER
    assert report.outcome.fatal is not None
    assert "OPENAI_API_KEY" in str(report.outcome.fatal)
    assert server.stats()["requests_seen"] <= 2  # what was in flight, nothing after
    records = read_records(tmp_path / "out.jsonl")
    assert 0 < len(records) < 1_000
    assert all(r["status"] == "error" for r in records)
    assert any(r["error"]["status_code"] == 401 for r in records)
    assert "sk-wrong" not in (tmp_path / "out.jsonl").read_text()


def test_a_refused_key_moves_its_batches_to_the_same_model_at_another_key(
    tmp_path: Path, loopback: Callable[..., Loopback], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = loopback(api_key=KEY)
    monkeypatch.setenv("WRONG_KEY", "sk-wrong-0000000000000000")
    monkeypatch.setenv("RIGHT_KEY", KEY)
    ids = write_texts(tmp_path / "in.jsonl", 1_000)
    built = make_job(tmp_path, OPENAI_MODEL, base_url=server.url, api_key_env="WRONG_KEY")
    wrong = built.models[0]
    right = dataclasses.replace(wrong, api_key_env="RIGHT_KEY")
    built = dataclasses.replace(built, models=(wrong, right))
    settings = EmbedSettings(dimensions=DIMENSIONS, batch_size=10)
    report = run_sync(lambda: run_embed(built, settings))

    assert report.exit_code == EXIT_OK, report.to_dict()
    assert report.outcome.statistics.dead_models == (OPENAI_MODEL,)
    records = by_id(read_records(tmp_path / "out.jsonl"))
    assert set(records) == set(ids)
    assert all(r["status"] == "ok" for r in records.values())
    # Each batch refused once at most, then answered at the other key.
    assert server.stats()["requests_seen"] <= 100 + 4
    assert "sk-wrong" not in (tmp_path / "out.jsonl").read_text()


def test_the_spending_cap_stops_the_run_and_a_higher_cap_finishes_it(
    tmp_path: Path, loopback: Callable[..., Loopback], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = loopback(api_key=KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    ids = write_texts(tmp_path / "in.jsonl", 1_000)
    settings = EmbedSettings(dimensions=DIMENSIONS, batch_size=50)
    run = partial(embed, tmp_path, OPENAI_MODEL, settings=settings, base_url=server.url)
    whole = run(output="whole.jsonl")
    assert whole.exit_code == EXIT_OK
    price = sum(r["cost_usd"] for r in read_records(tmp_path / "whole.jsonl"))
    assert price > 0

    cap = price * 0.4
    first = run(max_cost=cap, concurrency=2)
    assert first.exit_code == EXIT_LINES_LEFT and first.outcome.cost_cap_reached
    done = read_records(tmp_path / "out.jsonl")
    assert 0 < len(done) < 1_000
    assert all(r["status"] == "ok" for r in done)
    assert sum(r["cost_usd"] for r in done) <= cap

    # The cap is the output's: what the first run spent counts toward the second's.
    second = run(max_cost=price * 1.01, concurrency=2)
    assert second.exit_code == EXIT_OK, second.to_dict()
    records = read_records(tmp_path / "out.jsonl")
    assert sorted(r["id"] for r in records) == sorted(ids)
    assert sum(r["cost_usd"] for r in records) == pytest.approx(price)


def test_an_unpriced_model_refuses_a_spending_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CO_API_KEY", KEY)
    write_texts(tmp_path / "in.jsonl", 3)
    with pytest.raises(ConfigError, match=r"price of \S*embed-english-light-v3\.0 is not known"):
        embed(tmp_path, "cohere:embed-english-light-v3.0", settings=EmbedSettings(), max_cost=1.0)
    assert not (tmp_path / "out.jsonl").exists()


def test_a_stop_mid_run_is_interrupted_and_a_rerun_completes(tmp_path: Path) -> None:
    ids = write_texts(tmp_path / "in.jsonl", 2_000)
    settings = EmbedSettings(dimensions=DIMENSIONS, batch_size=20)
    mock = {"latency_s": 0.02}
    view = StopAfter(ok=200)
    first = embed(tmp_path, settings=settings, mock=mock, concurrency=2, view=view)

    assert first.outcome.interrupted and first.exit_code == EXIT_INTERRUPTED
    done = by_id(read_records(tmp_path / "out.jsonl"))
    assert 200 <= len(done) < 2_000
    assert all(r["status"] == "ok" for r in done.values())
    first_requests = first.outcome.statistics.requests

    second = embed(tmp_path, settings=settings, mock=mock, concurrency=2)
    assert second.exit_code == EXIT_OK, second.to_dict()
    assert second.resumed_ok == len(done)
    assert second.to_dict()["skipped_already_done"] == len(done)
    records = by_id(read_records(tmp_path / "out.jsonl"))
    assert set(records) == set(ids)
    for i, key in enumerate(ids):
        assert records[key]["embedding"] == embedding_vector("embed", text_of(i), DIMENSIONS)
    # Nothing finished was sent again: the two runs together paid for each batch once
    # (a part batch at the stop may split one batch in two).
    total = first_requests + second.outcome.statistics.requests
    assert 100 <= total <= 101, (first_requests, total)
