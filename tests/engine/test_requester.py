"""Requester: model choice, retries, shared pauses and dead models, over a scripted transport."""

from __future__ import annotations

import random
from typing import Any

import anyio
import orjson
import pytest

from lm_deluge_cli.cache.key import cache_key, content_digest
from lm_deluge_cli.cache.memory import MemoryCache
from lm_deluge_cli.cache.resilient import ResilientCache
from lm_deluge_cli.config import AUTO, ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoint
from lm_deluge_cli.engine.budget import SpendCap, estimate_cost
from lm_deluge_cli.engine.learning import LimitLearner
from lm_deluge_cli.engine.limiter import RateLimiter
from lm_deluge_cli.engine.limiter_chain import LimiterChain
from lm_deluge_cli.engine.requester import ModelSlot, Requester
from lm_deluge_cli.engine.reuse import Reuse
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.errors import APIConnectionError
from lm_deluge_cli.io.records import to_json
from lm_deluge_cli.providers import adapter_for
from lm_deluge_cli.providers.capabilities import supported_sampling
from lm_deluge_cli.results import Result
from lm_deluge_cli.transport.base import Transport
from lm_deluge_cli.types import HttpRequest, HttpResponse, Prompt, SamplingParams

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def ok_body(text: str = "hi") -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }
    )


def error_response(
    status: int, code: str = "x", headers: dict[str, str] | None = None
) -> HttpResponse:
    body = orjson.dumps({"error": {"message": f"failure {status}", "type": "t", "code": code}})
    return HttpResponse(status, headers or {}, body)


Step = HttpResponse | Exception


class ScriptedTransport(Transport):
    """Answers each request with the next scripted step (the last one repeats)."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps
        self.requests: list[HttpRequest] = []

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        step = self.steps[min(len(self.requests) - 1, len(self.steps) - 1)]
        if isinstance(step, Exception):
            raise step
        return step


async def process(requester: Requester, prompt: Prompt) -> dict[str, Any]:
    """The prompt's record as written ({} when the run halted before sending it)."""
    result = await requester.process(prompt)
    return {} if result is None else to_json(result)


def make_requester(
    transports: dict[str, Transport],
    *,
    weights: dict[str, float] | None = None,
    max_attempts: int = 4,
    retry_other_model: bool = False,
    limiter: RateLimiter | None = None,
    budget: SpendCap | None = None,
    auto: bool = False,
    max_concurrent_requests: int = 4,
    seed: int = 1,
    reuse: Reuse | None = None,
) -> tuple[Requester, RunStats]:
    env = {"OPENAI_API_KEY": "sk-test-0000000000"}
    stats = RunStats()
    limiter = limiter or RateLimiter(None, None)
    chain = LimiterChain(limiter)
    learner = None
    if auto:
        learner = LimitLearner(
            limiter, model="m", requests=AUTO, tokens=AUTO, learned=stats.learned_limits
        )
    slots = []
    for name, transport in transports.items():
        endpoint = resolve_endpoint(ModelEntry(name=name), env=env)
        slots.append(
            ModelSlot(
                endpoint=endpoint,
                adapter=adapter_for("openai_chat"),
                transport=transport,
                weight=(weights or {}).get(name, 1.0),
                sampling=SamplingParams(),
                limits=chain,
                headers_describe=(True,),
                learner=learner,
            )
        )
    requester = Requester(
        slots,
        max_concurrent_requests=max_concurrent_requests,
        max_attempts=max_attempts,
        request_timeout=5,
        retry_other_model=retry_other_model,
        stats=stats,
        rng=random.Random(seed),
        budget=budget,
        reuse=reuse,
    )
    return requester, stats


def prompt(i: int = 0, model: str | None = None) -> Prompt:
    return Prompt(id=i, line=i + 1, messages=[{"role": "user", "content": "q"}], model=model)


async def record_of(requester: Requester, p: Prompt) -> dict[str, Any]:
    """The prompt's record from a run that has not halted (process returns None once it has)."""
    record = await process(requester, p)
    assert record is not None, "the run halted"
    return record


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries wait zero seconds here; the delays themselves are tested in test_retry."""
    import lm_deluge_cli.engine.sender as module
    from lm_deluge_cli.engine.retry import decide as real

    def instant(*args: Any, **kwargs: Any) -> Any:
        decision = real(*args, **kwargs)
        return type(decision)(decision.retry, 0.0, decision.reason)

    monkeypatch.setattr(module, "decide", instant)


async def test_success_record() -> None:
    transport = ScriptedTransport([HttpResponse(200, {}, ok_body("hello"))])
    requester, stats = make_requester({"openai:gpt-4.1-mini": transport})
    record = await record_of(requester, prompt())
    assert record["status"] == "ok"
    assert record["completion"] == "hello"
    assert record["attempts"] == 1
    assert record["model"] == "openai:gpt-4.1-mini"
    assert record["cost_usd"] == pytest.approx((5 * 0.40 + 2 * 1.60) / 1e6)
    assert stats.requests == 1 and stats.input_tokens == 5


@pytest.mark.parametrize(
    ("steps", "status", "attempts", "error_type"),
    [
        (
            [error_response(500), error_response(502), HttpResponse(200, {}, ok_body())],
            "ok",
            3,
            None,
        ),
        ([APIConnectionError("reset"), HttpResponse(200, {}, ok_body())], "ok", 2, None),
        (
            [HttpResponse(200, {}, b"<html>oops</html>"), HttpResponse(200, {}, ok_body())],
            "ok",
            2,
            None,
        ),
        ([error_response(529)], "error", 4, "overloaded"),
        ([error_response(400)], "error", 1, "bad_request"),
        ([error_response(404)], "error", 1, "not_found"),
    ],
)
async def test_retry_table(
    steps: list[Step], status: str, attempts: int, error_type: str | None
) -> None:
    transport = ScriptedTransport(steps)
    requester, _ = make_requester({"openai:gpt-4.1-mini": transport}, max_attempts=4)
    record = await record_of(requester, prompt())
    assert record["status"] == status
    assert record["attempts"] == attempts
    assert len(transport.requests) == attempts
    if error_type:
        assert record["error"]["type"] == error_type
        assert record["error"]["message"]


async def test_rate_limit_pauses_the_shared_limiter() -> None:
    limiter = RateLimiter(6000, None)
    transport = ScriptedTransport(
        [
            error_response(429, "rate_limit_exceeded", {"retry-after-ms": "300"}),
            HttpResponse(200, {}, ok_body()),
        ]
    )
    requester, stats = make_requester({"openai:gpt-4.1-mini": transport}, limiter=limiter)
    record = await record_of(requester, prompt())
    assert record["status"] == "ok"
    assert stats.rate_limited == 1
    assert limiter.statistics().pauses == 1


async def test_insufficient_quota_is_fatal_and_not_retried() -> None:
    transport = ScriptedTransport([error_response(429, "insufficient_quota")])
    requester, stats = make_requester({"openai:gpt-4.1-mini": transport})
    record = await record_of(requester, prompt())
    assert record["status"] == "error"
    assert len(transport.requests) == 1
    assert requester.sender.fatal is not None
    assert stats.dead_models == ["openai:gpt-4.1-mini"]


async def test_auth_failure_moves_to_the_other_model() -> None:
    bad = ScriptedTransport([error_response(401, "invalid_api_key")])
    good = ScriptedTransport([HttpResponse(200, {}, ok_body())])
    requester, stats = make_requester({"openai:bad": bad, "openai:good": good})
    records = [await record_of(requester, prompt(i)) for i in range(20)]
    assert all(r["status"] == "ok" and r["model"] == "openai:good" for r in records)
    assert len(bad.requests) == 1, "a dead model gets no more requests"
    assert requester.sender.fatal is None
    assert stats.dead_models == ["openai:bad"]


async def test_pinned_prompt_on_dead_model_is_an_error_record() -> None:
    bad = ScriptedTransport([error_response(403)])
    good = ScriptedTransport([HttpResponse(200, {}, ok_body())])
    requester, _ = make_requester({"openai:bad": bad, "openai:good": good})
    first = await record_of(requester, prompt(0, model="openai:bad"))
    second = await record_of(requester, prompt(1, model="openai:bad"))
    assert first["error"]["type"] == "permission_denied"
    assert second["error"]["type"] == "model_unavailable"
    assert len(bad.requests) == 1


async def test_pin_to_a_model_outside_the_job_is_an_error_record() -> None:
    requester, _ = make_requester(
        {"openai:a": ScriptedTransport([HttpResponse(200, {}, ok_body())])}
    )
    record = await record_of(requester, prompt(0, model="openai:elsewhere"))
    assert record["status"] == "error"
    assert "openai:elsewhere" in record["error"]["message"]


async def test_weights_spray_requests() -> None:
    a = ScriptedTransport([HttpResponse(200, {}, ok_body())])
    b = ScriptedTransport([HttpResponse(200, {}, ok_body())])
    requester, _ = make_requester({"openai:a": a, "openai:b": b}, weights={"openai:a": 3})
    for i in range(400):
        await process(requester, asking(i, f"question {i}"))
    assert 260 <= len(a.requests) <= 340
    assert len(a.requests) + len(b.requests) == 400


async def test_a_line_goes_to_the_model_its_content_picks_run_after_run() -> None:
    first: list[str] = []
    for seed in (1, 2):
        a = ScriptedTransport([HttpResponse(200, {}, ok_body())])
        b = ScriptedTransport([HttpResponse(200, {}, ok_body())])
        requester, _ = make_requester({"openai:a": a, "openai:b": b}, seed=seed)
        models = []
        for i in range(100):
            record = await record_of(requester, asking(i, f"question {i % 50}"))
            models.append(record["model"])
        # Identical lines (i and i + 50) went to one model, whatever the random seed.
        assert models[:50] == models[50:]
        assert set(models) == {"openai:a", "openai:b"}
        first = first or models
        assert models == first


def asking(i: int, text: str) -> Prompt:
    return Prompt(id=i, line=i + 1, messages=[{"role": "user", "content": text}])


async def test_retry_other_model_draws_another() -> None:
    flaky = ScriptedTransport([error_response(500)])
    steady = ScriptedTransport([HttpResponse(200, {}, ok_body())])
    requester, _ = make_requester(
        {"openai:flaky": flaky, "openai:steady": steady},
        weights={"openai:flaky": 1000},
        retry_other_model=True,
    )
    record = await record_of(requester, prompt())
    assert record["status"] == "ok"
    assert record["model"] == "openai:steady"
    assert record["attempts"] == 2


async def test_every_request_carries_the_sampling_and_key() -> None:
    transport = ScriptedTransport([HttpResponse(200, {}, ok_body())])
    requester, _ = make_requester({"openai:gpt-4.1-mini": transport})
    p = prompt()
    p.sampling = {"temperature": 0.5, "max_new_tokens": 7}
    await process(requester, p)
    body = orjson.loads(transport.requests[0].body)
    assert body["temperature"] == 0.5
    assert body["max_completion_tokens"] == 7
    assert transport.requests[0].headers["authorization"] == "Bearer sk-test-0000000000"


class SlowTransport(Transport):
    """Answers after a short wait, recording how many requests overlapped."""

    def __init__(
        self, headers: dict[str, str] | None = None, latency_s: float = 0.02, output_tokens: int = 2
    ) -> None:
        self.headers = headers or {}
        self.latency_s = latency_s
        body = orjson.loads(ok_body())
        body["usage"]["completion_tokens"] = output_tokens
        self.body = orjson.dumps(body)
        self.in_flight = 0
        self.overlap: list[int] = []

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.in_flight += 1
        self.overlap.append(self.in_flight)
        try:
            await anyio.sleep(self.latency_s)
        finally:
            self.in_flight -= 1
        return HttpResponse(200, self.headers, self.body)


async def process_all(requester: Requester, count: int) -> list[dict[str, Any] | None]:
    records: list[dict[str, Any] | None] = [None] * count

    async def one(i: int) -> None:
        records[i] = (await process(requester, prompt(i))) or None

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(one, i)
    return records


async def test_auto_limits_send_one_request_until_the_first_answer() -> None:
    headers = {
        "x-ratelimit-limit-requests": "60000",
        "x-ratelimit-remaining-requests": "59999",
        "x-ratelimit-limit-tokens": "90000000",
        "x-ratelimit-remaining-tokens": "89999000",
    }
    transport = SlowTransport(headers)
    requester, stats = make_requester(
        {"openai:gpt-4.1-mini": transport}, auto=True, max_concurrent_requests=8
    )
    records = await process_all(requester, 20)
    assert all(r is not None and r["status"] == "ok" for r in records)
    # The first request went alone; once it answered, the learned limits allowed more.
    assert transport.overlap[0] == 1 and transport.overlap[1] == 1
    assert max(transport.overlap) == 8
    learned = stats.snapshot().learned_limits["m"]
    assert (learned.requests_per_minute, learned.tokens_per_minute) == (60000.0, 90000000.0)


async def test_spend_cap_stops_sending_and_is_never_exceeded() -> None:
    model = resolve_endpoint(ModelEntry(name="openai:gpt-4.1-mini"), env={"OPENAI_API_KEY": "k"})
    estimate = estimate_cost(model.model, 8, SamplingParams().max_new_tokens)
    assert estimate is not None
    # Room for three and a half requests at their estimate (every max_new_tokens used).
    budget = SpendCap(estimate * 3.5)
    transport = SlowTransport(output_tokens=400)
    requester, stats = make_requester({"openai:gpt-4.1-mini": transport}, budget=budget)
    records = await process_all(requester, 50)
    sent = [r for r in records if r is not None]
    assert requester.sender.cap_reached and stats.cost_cap_reached
    assert requester.sender.should_stop
    # Each request cost less than its estimate, so a fourth fitted once three had finished.
    assert len(sent) == 4
    assert len(transport.overlap) == len(sent)
    assert max(transport.overlap) <= 3
    assert budget.spent_usd == pytest.approx(sum(r["cost_usd"] for r in sent))
    assert budget.spent_usd <= budget.max_usd
    assert budget.in_flight == 0 and budget.reserved_usd == pytest.approx(0.0)


async def test_a_failed_request_gives_its_reservation_back() -> None:
    budget = SpendCap(1.0)
    transport = ScriptedTransport([error_response(400)])
    requester, _ = make_requester({"openai:gpt-4.1-mini": transport}, budget=budget)
    record = await process(requester, prompt())
    assert record is not None and record["status"] == "error"
    assert (budget.spent_usd, budget.in_flight) == (0.0, 0)
    assert budget.reserved_usd == pytest.approx(0.0)


async def test_an_unsupported_parameter_is_left_out_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = ScriptedTransport([HttpResponse(200, {}, ok_body())])
    requester, _ = make_requester(
        {"openai:gpt-4.1-mini": transport, "openai:unknown-model": transport}
    )
    for i in range(3):
        p = prompt(i, model="openai:gpt-4.1-mini")
        p.sampling = {"reasoning_effort": "high", "logprobs": True}
        assert (await process(requester, p) or {})["status"] == "ok"
    unknown = prompt(9, model="openai:unknown-model")
    unknown.sampling = {"logprobs": True}
    await process(requester, unknown)
    bodies = [orjson.loads(r.body) for r in transport.requests]
    assert all("reasoning_effort" not in body for body in bodies[:3])
    assert all(body["logprobs"] is True for body in bodies[:3])  # the model takes logprobs
    # A model the registry does not know gets everything it was asked for.
    assert bodies[3]["logprobs"] is True
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["openai:gpt-4.1-mini does not support reasoning_effort; leaving it out"]


class SpyChain(LimiterChain):
    """Records the tokens each request asks the limiters for."""

    def __init__(self) -> None:
        super().__init__(RateLimiter(None, None))
        self.asked: list[int] = []

    async def acquire(self, tokens: int = 0) -> tuple[Any, ...]:
        self.asked.append(tokens)
        return await super().acquire(tokens)


async def test_the_token_estimate_counts_the_thinking_budget() -> None:
    endpoint = resolve_endpoint(
        ModelEntry(name="anthropic:claude-sonnet-4-6"), env={"ANTHROPIC_API_KEY": "sk-ant-0000"}
    )
    answer = {
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 5, "output_tokens": 2},
    }
    transport = ScriptedTransport([HttpResponse(200, {}, orjson.dumps(answer))])
    chain = SpyChain()
    slot = ModelSlot(
        endpoint=endpoint,
        adapter=adapter_for("anthropic_messages"),
        transport=transport,
        weight=1.0,
        sampling=SamplingParams(max_new_tokens=100),
        limits=chain,
        headers_describe=(True,),
    )
    requester = Requester(
        [slot],
        max_concurrent_requests=1,
        max_attempts=1,
        request_timeout=5,
        retry_other_model=False,
        stats=RunStats(),
    )
    plain, thinking = prompt(0), prompt(1)
    thinking.sampling = {"reasoning_effort": "low"}
    await process(requester, plain)
    await process(requester, thinking)
    assert chain.asked[1] - chain.asked[0] == 1024
    assert orjson.loads(transport.requests[1].body)["max_tokens"] == 100 + 1024


async def test_an_answer_that_breaks_the_schema_is_retried() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    transport = ScriptedTransport(
        [HttpResponse(200, {}, ok_body('{"m": 1}')), HttpResponse(200, {}, ok_body('{"n": 1}'))]
    )
    requester, stats = make_requester({"openai:gpt-4.1-mini": transport})
    p = prompt()
    p.sampling = {"json_schema": schema}
    record = await process(requester, p)
    assert record is not None
    assert (record["status"], record["completion"], record["attempts"]) == ("ok", '{"n": 1}', 2)
    assert stats.retries == 1


async def test_the_final_error_names_the_broken_rule() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 5}}}
    transport = ScriptedTransport([HttpResponse(200, {}, ok_body('{"n": 9}'))])
    requester, _ = make_requester({"openai:gpt-4.1-mini": transport}, max_attempts=2)
    p = prompt()
    p.sampling = {"json_schema": schema}
    record = await process(requester, p)
    assert record is not None
    assert record["status"] == "error"
    assert record["attempts"] == 2
    assert record["error"]["type"] == "schema_mismatch"
    assert "$.n: 9 is more than 5 (maximum)" in record["error"]["message"]


def answer_body(message: dict[str, Any], finish_reason: str = "stop") -> bytes:
    choice = {"index": 0, "message": {"role": "assistant", **message}}
    choice["finish_reason"] = finish_reason
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    return orjson.dumps(
        {"id": "c", "object": "chat.completion", "choices": [choice]} | {"usage": usage}
    )


TOOL_CALL = {
    "content": None,
    "tool_calls": [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ],
}


async def test_a_tool_call_answer_is_an_ok_record_with_its_calls() -> None:
    transport = ScriptedTransport([HttpResponse(200, {}, answer_body(TOOL_CALL, "tool_calls"))])
    requester, _ = make_requester({"openai:gpt-4.1-mini": transport})
    record = await record_of(requester, prompt())
    assert (record["status"], record["completion"], record["finish_reason"]) == (
        "ok",
        None,
        "tool_calls",
    )
    assert record["tool_calls"] == [
        {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    ]


async def test_an_empty_answer_is_retried_and_never_cached() -> None:
    empty = HttpResponse(200, {}, answer_body({"content": None}))
    cache = ResilientCache(MemoryCache())
    transport = ScriptedTransport([empty, HttpResponse(200, {}, ok_body("at last"))])
    requester, stats = make_requester({"openai:gpt-4.1-mini": transport}, reuse=Reuse(cache))
    record = await record_of(requester, prompt())
    assert (record["status"], record["completion"], record["attempts"]) == ("ok", "at last", 2)
    assert stats.retries == 1 and cache.writes == 1

    always = ScriptedTransport([empty])
    cache = ResilientCache(MemoryCache())
    requester, _ = make_requester(
        {"openai:gpt-4.1-mini": always}, reuse=Reuse(cache), max_attempts=3
    )
    record = await record_of(requester, prompt())
    assert (record["status"], record["attempts"]) == ("error", 3)
    assert record["error"]["type"] == "empty_answer"
    assert "no text, tool call or refusal" in record["error"]["message"]
    assert cache.writes == 0


async def test_a_plan_is_keyed_by_what_is_sent_to_its_model(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = ScriptedTransport([HttpResponse(200, {}, ok_body())])
    requester, _ = make_requester(
        {"openai:gpt-4.1-mini": transport, "openai:o3": transport},
        reuse=Reuse(ResilientCache(MemoryCache())),
    )
    for slot in requester.slots:
        slot.sampling = SamplingParams(temperature=0.7, max_new_tokens=64)
    keys = set()
    for i in range(8):
        p = asking(i, f"question {i % 2}")
        p.model = ("openai:gpt-4.1-mini", "openai:o3")[i % 4 // 2]
        if i >= 4:
            p.sampling = {"max_new_tokens": 32}
        plan = requester.plan(p)
        assert not isinstance(plan, Result)
        endpoint = plan.slot.endpoint
        sent, _ = supported_sampling(endpoint, plan.slot.sampling.merged(p.sampling))
        content = content_digest(p.messages, p.extra_body)
        assert plan.key == cache_key(endpoint.provider.name, endpoint.model.wire_id, content, sent)
        keys.add(plan.key)
    # Two questions, two models, the job's sampling or the line's own: all different.
    assert len(keys) == 8
    # o3 takes no temperature: said once, however many lines are planned for it.
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings.count("openai:o3 does not support temperature; leaving it out") == 1
