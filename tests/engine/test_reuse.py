"""Answers paid for once: cache hits cost nothing, identical lines share one request."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

import anyio
import orjson
import pytest

from lm_deluge_cli.cache.memory import MemoryCache
from lm_deluge_cli.cache.resilient import ResilientCache
from lm_deluge_cli.config import Limits, ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoints
from lm_deluge_cli.engine.chat_stages import run_pipeline
from lm_deluge_cli.engine.reuse import CachePolicy, Reuse, StoredAnswer, cached_record
from lm_deluge_cli.engine.setup import build_requester
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.io.records import encode, ok_result, to_json
from lm_deluge_cli.mock.simulator import mock_completion
from lm_deluge_cli.results import Answer, Completion, Reasoning, Result, ToolCall, Usage
from lm_deluge_cli.types import Prompt, SamplingParams

pytestmark = pytest.mark.anyio

UNLIMITED = Limits(max_requests_per_minute=None, max_tokens_per_minute=None)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def lines(texts: Sequence[str]) -> list[Prompt]:
    return [
        Prompt(id=i, line=i + 1, messages=[{"role": "user", "content": t}], metadata={"i": i})
        for i, t in enumerate(texts)
    ]


async def run(
    prompts: Sequence[Prompt],
    reuse: Reuse | None,
    models: Sequence[str] = ("mock:fast",),
    sampling: SamplingParams | None = None,
    mock: dict[str, Any] | None = None,
    limits: Limits = UNLIMITED,
) -> tuple[list[dict[str, Any]], RunStats]:
    entries = [ModelEntry(name, mock=mock or {}) for name in models]
    stats = RunStats(total=len(prompts))
    out: list[dict[str, Any]] = []

    async def source() -> Any:
        for prompt in prompts:
            yield prompt

    async with AsyncExitStack() as stack:
        requester = await build_requester(
            entries,
            resolve_endpoints(entries),
            limits,
            sampling or SamplingParams(max_new_tokens=16),
            retry_other_model=False,
            stats=stats,
            stack=stack,
            reuse=reuse,
        )
        await run_pipeline(
            source(), lambda batch: out.extend(map(to_json, batch)), requester, stats
        )
    out.sort(key=lambda r: r["line"])
    return out, stats


def memory() -> ResilientCache:
    return ResilientCache(MemoryCache())


async def test_identical_lines_send_one_request_each() -> None:
    prompts = lines([f"question {i % 10}" for i in range(1000)])
    records, stats = await run(prompts, Reuse(None))
    assert stats.requests == 10
    assert all(r["status"] == "ok" for r in records)
    shared = [r for r in records if r["deduplicated"]]
    assert len(shared) == stats.deduplicated == 990
    # Each line has its own id, line and metadata, and the one answer to its question.
    for record in records:
        i = record["id"]
        assert (record["line"], record["metadata"]) == (i + 1, {"i": i})
        assert record["completion"] == records[i % 10]["completion"]
    assert len({r["completion"] for r in records}) == 10
    ask = [{"role": "user", "content": "question 3"}]
    assert mock_completion(ask, "fast").startswith(records[3]["completion"])
    assert {r["cost_usd"] for r in shared} == {0.0}
    assert sum(r["cost_usd"] for r in records) == pytest.approx(stats.cost_usd)


async def test_without_reuse_every_line_sends_its_own_request() -> None:
    _, stats = await run(lines(["same"] * 20), None)
    assert (stats.requests, stats.deduplicated) == (20, 0)


async def test_a_rerun_is_answered_from_the_cache_at_no_cost() -> None:
    cache = memory()
    prompts = lines([f"q{i}" for i in range(50)])
    first, stats1 = await run(prompts, Reuse(cache))
    assert stats1.requests == 50 and stats1.cached == 0 and cache.writes == 50
    second, stats2 = await run(prompts, Reuse(cache))
    assert stats2.requests == 0 and stats2.cached == 50
    assert all(r["cached"] and r["cost_usd"] == 0.0 and r["attempts"] == 0 for r in second)
    assert [r["completion"] for r in second] == [r["completion"] for r in first]
    assert [r["usage"] for r in second] == [r["usage"] for r in first]
    assert stats2.cost_usd == 0.0


@pytest.mark.parametrize(
    ("models", "sampling"),
    [
        (("mock:standard",), SamplingParams(max_new_tokens=16)),
        (("mock:fast",), SamplingParams(max_new_tokens=16, temperature=0.7)),
        (("mock:fast",), SamplingParams(max_new_tokens=17)),
    ],
)
async def test_another_model_or_sampling_misses(
    models: tuple[str, ...], sampling: SamplingParams
) -> None:
    cache = memory()
    prompts = lines([f"q{i}" for i in range(10)])
    await run(prompts, Reuse(cache))
    _, stats = await run(prompts, Reuse(cache), models=models, sampling=sampling)
    assert (stats.requests, stats.cached) == (10, 0)


async def test_sprayed_lines_hit_on_a_rerun() -> None:
    cache = memory()
    prompts = lines([f"q{i}" for i in range(60)])
    first, _ = await run(prompts, Reuse(cache), models=("mock:fast", "mock:standard"))
    assert {r["model"] for r in first} == {"mock:fast", "mock:standard"}
    second, stats = await run(prompts, Reuse(cache), models=("mock:fast", "mock:standard"))
    assert stats.requests == 0
    assert [r["model"] for r in second] == [r["model"] for r in first]


async def test_only_successes_are_stored() -> None:
    cache = memory()
    prompts = lines(["fails"])
    once = Limits(max_requests_per_minute=None, max_tokens_per_minute=None, max_attempts=1)
    records, _ = await run(prompts, Reuse(cache), mock={"error_rate": 1.0}, limits=once)
    assert records[0]["status"] == "error"
    assert cache.writes == 0


@pytest.mark.parametrize(
    ("policy", "requests", "writes"),
    [
        (CachePolicy(read=False), 5, 5),  # --refresh-cache: ignore hits, overwrite
        (CachePolicy(write=False), 0, 0),  # --cache-read-only
    ],
)
async def test_refresh_and_read_only(policy: CachePolicy, requests: int, writes: int) -> None:
    cache = memory()
    prompts = lines([f"q{i}" for i in range(5)])
    await run(prompts, Reuse(cache))
    before = cache.writes
    _, stats = await run(prompts, Reuse(cache, policy))
    assert stats.requests == requests
    assert cache.writes - before == writes


async def test_a_corrupted_entry_is_a_miss_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = MemoryCache()
    cache = ResilientCache(inner)
    prompts = lines(["q0", "q1"])
    await run(prompts, Reuse(cache))
    for key in list(inner._entries):
        await inner.set(key, b"\x00not json")
    with caplog.at_level(logging.WARNING):
        records, stats = await run(prompts, Reuse(cache))
    assert stats.requests == 2 and all(r["status"] == "ok" for r in records)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_stored_answers_round_trip() -> None:
    answers = (
        Answer("hi", finish_reason="stop", logprobs=[{"t": 1}]),
        Answer(
            None,
            (ToolCall("c1", "f", {"x": 1}), ToolCall("c2", "g", None, "{bad")),
            Reasoning("thought", ({"format": "anthropic_messages", "block": {"signature": "s"}},)),
            finish_reason="tool_calls",
            provider_finish_reason="tool_use",
        ),
    )
    answer = StoredAnswer("m", Completion(answers, Usage(3, 4, 1, 2, 1, 1)), 0.5)
    assert StoredAnswer.decode(answer.encode()) == answer
    with pytest.raises(ValueError):
        StoredAnswer.decode(b'{"v": 99}')


RICH = Answer(
    'é \u2028 "quoted"',
    (ToolCall("c1", "f", {"x": [1, 2.5]}), ToolCall("c2", "g", None, "{bad")),
    Reasoning("thought", ({"format": "anthropic_messages", "block": {"signature": "s"}},)),
    "I would rather not",
    "tool_calls",
    "tool_use",
    [{"token": "hi", "logprob": -0.25}],
)


@pytest.mark.parametrize(
    "answers",
    [
        (Answer("hi", finish_reason="stop", provider_finish_reason="stop"),),
        (RICH,),
        (Answer("one", finish_reason="stop"), RICH, Answer("three", finish_reason="length")),
    ],
    ids=["plain", "rich", "samples"],
)
def test_a_hit_writes_the_record_its_answer_wrote_but_for_what_it_cost(
    answers: tuple[Answer, ...],
) -> None:
    prompt = Prompt(id="x\u00e9", line=3, messages=[], metadata={"k": [1, "é", None]})
    usage = Usage(3, 4, 1, 2)
    paid = ok_result(
        prompt, Completion(answers, usage), model="m", attempts=2, latency_s=1.5, cost_usd=0.25
    )
    # Stored as the requester stores samples: each its own entry, the usage with the first.
    stored = [
        StoredAnswer.decode(
            StoredAnswer("m", Completion((answer,), usage if i == 0 else Usage()), 0.25).encode()
        )
        for i, answer in enumerate(answers)
    ]
    hit = cached_record(prompt, "m", stored)
    free = {"cost_usd": 0.0, "attempts": 0, "latency_s": 0.0, "cached": True}
    assert hit == paid.replace(**free)
    expected = {**orjson.loads(encode(paid)), **free}
    assert encode(hit) == orjson.dumps(expected, option=orjson.OPT_APPEND_NEWLINE)


def test_answers_stored_by_the_first_version_still_read() -> None:
    old = (
        b'{"v":1,"model":"m","completion":"hi","finish_reason":"stop",'
        b'"usage":{"input_tokens":3,"output_tokens":4},"cost_usd":0.5}'
    )
    stored = StoredAnswer.decode(old)
    assert stored == StoredAnswer("m", Completion.of("hi", "stop", Usage(3, 4)), 0.5)
    assert not stored.empty
    empty = b'{"v":1,"model":"m","completion":null,"finish_reason":"tool_calls","usage":{}}'
    assert StoredAnswer.decode(empty).empty


async def test_an_empty_answer_stored_by_an_earlier_version_is_a_miss() -> None:
    inner = MemoryCache()
    cache = ResilientCache(inner)
    prompts = lines(["q0"])
    await run(prompts, Reuse(cache))
    (key,) = list(inner._entries)
    # What version 1 stored for a tool call it dropped: no text at all.
    await inner.set(key, b'{"v":1,"model":"mock:fast","completion":null,"usage":{}}')
    records, stats = await run(prompts, Reuse(cache))
    assert (stats.requests, stats.cached, records[0]["status"]) == (1, 0, "ok")


async def test_followers_of_a_halted_request_are_left_for_the_resume() -> None:
    prompts = lines(["same"] * 5)
    entries = [ModelEntry("mock:fast", mock={"latency_s": 5.0})]
    stats = RunStats()
    async with AsyncExitStack() as stack:
        requester = await build_requester(
            entries,
            resolve_endpoints(entries),
            UNLIMITED,
            SamplingParams(),
            retry_other_model=False,
            stats=stats,
            stack=stack,
            reuse=Reuse(None),
        )
        results: list[Any] = []

        async def one(prompt: Prompt) -> None:
            results.append(await requester.process(prompt))

        with anyio.move_on_after(0.3):
            async with anyio.create_task_group() as tg:
                for prompt in prompts:
                    tg.start_soon(one, prompt)
    # Cancelled mid-request: no record for anyone, nothing left registered.
    assert results == []
    assert requester.reuse is not None and requester.reuse.in_flight == {}


def test_the_run_remembers_a_bounded_number_of_answers() -> None:
    reuse = Reuse(None, recent_answers=2)
    ok = Result(id=None, line=1, status="ok", model="m", answers=(Answer("x"),))
    for key in "abc":
        reuse.remember(key, ok.replace(id=key))
    assert reuse.recent("a") is None  # the oldest went first
    assert reuse.recent("b") == ok.replace(id="b")
    reuse.remember("d", ok)  # "b" was just used, so "c" goes
    assert (reuse.recent("c"), reuse.recent("b") is not None) == (None, True)
    reuse.remember("e", ok.replace(status="error"))
    assert reuse.recent("e") is None  # failures are never shared with later lines


def test_remembered_answers_stay_within_their_memory_budget() -> None:
    from lm_deluge_cli.engine.reuse import RECENT_BYTES

    reuse = Reuse(None)
    big = "x" * 100_000  # 100 kB answers: the count alone would allow a gigabyte
    for i in range(500):
        prompt = lines([f"q{i}"])[0]
        completion = Completion((Answer(text=big + str(i), finish_reason="stop"),), Usage())
        reuse.remember(f"k{i}", ok_result(prompt, completion, model="m", attempts=1, latency_s=0))
    kept = [i for i in range(500) if reuse.recent(f"k{i}") is not None]
    assert kept and len(kept) * 100_000 <= RECENT_BYTES
    assert kept == list(range(500 - len(kept), 500))  # the most recent ones
    answer = Completion((Answer(text="hi"),), Usage())
    small = ok_result(lines(["s"])[0], answer, model="m", attempts=1, latency_s=0)
    reuse.remember("small", small)
    assert reuse.recent("small") is small
