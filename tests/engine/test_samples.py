"""Several samples per line: the provider's own n where it has one, a request each where it
has not, each sample cached under its own key, and identical lines (or not) sharing them."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from lm_deluge_cli.cache.memory import MemoryCache
from lm_deluge_cli.cache.resilient import ResilientCache
from lm_deluge_cli.config import ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoint
from lm_deluge_cli.engine.limiter import RateLimiter
from lm_deluge_cli.engine.limiter_chain import LimiterChain
from lm_deluge_cli.engine.requester import ModelSlot, Requester
from lm_deluge_cli.engine.reuse import Reuse
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.io.records import to_json
from lm_deluge_cli.providers import adapter_for
from lm_deluge_cli.transport.base import Transport
from lm_deluge_cli.types import HttpRequest, HttpResponse, Prompt, SamplingParams

pytestmark = pytest.mark.anyio

ENV = {"OPENAI_API_KEY": "sk-test-0000000000", "ANTHROPIC_API_KEY": "sk-ant-test-000000"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class CountingTransport(Transport):
    """Answers every request with as many answers as it asks for (Chat Completions' n, or
    one Anthropic message), each text numbered across the whole run."""

    def __init__(self, anthropic: bool = False) -> None:
        self.anthropic = anthropic
        self.bodies: list[dict[str, Any]] = []
        self.answered = 0

    async def send(self, request: HttpRequest) -> HttpResponse:
        body = orjson.loads(request.body)
        self.bodies.append(body)
        usage = {"prompt_tokens": 10, "completion_tokens": 2}
        if self.anthropic:
            self.answered += 1
            message = {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "content": [{"type": "text", "text": f"answer {self.answered}"}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": 10, "output_tokens": 2},
            }
            return HttpResponse(200, {}, orjson.dumps(message))
        choices = []
        for index in range(body.get("n", 1)):
            self.answered += 1
            text = f"answer {self.answered}"
            choices.append(
                {
                    "index": index,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            )
        data = {"id": "c", "object": "chat.completion", "choices": choices, "usage": usage}
        return HttpResponse(200, {}, orjson.dumps(data))


def requester(
    transport: Transport,
    *,
    model: str = "openai:gpt-4.1-mini",
    reuse: Reuse | None = None,
    dedupe: bool = True,
) -> tuple[Requester, RunStats]:
    endpoint = resolve_endpoint(ModelEntry(name=model), env=ENV)
    slot = ModelSlot(
        endpoint=endpoint,
        adapter=adapter_for(endpoint.wire_format),
        transport=transport,
        weight=1.0,
        sampling=SamplingParams(),
        limits=LimiterChain(RateLimiter(None, None)),
        headers_describe=(True,),
    )
    stats = RunStats()
    built = Requester(
        [slot],
        max_concurrent_requests=8,
        max_attempts=2,
        request_timeout=5,
        retry_other_model=False,
        stats=stats,
        rng=random.Random(0),
        reuse=reuse,
        dedupe=dedupe,
    )
    return built, stats


def line(samples: int, i: int = 0, text: str = "Name a colour.") -> Prompt:
    return Prompt(
        id=i,
        line=i + 1,
        messages=[{"role": "user", "content": text}],
        sampling={"samples": samples},
    )


async def record(run: Requester, prompt: Prompt) -> dict[str, Any]:
    result = await run.process(prompt)
    assert result is not None
    return to_json(result)


async def test_the_providers_own_n_asks_once_for_every_sample() -> None:
    transport = CountingTransport()
    run, stats = requester(transport)
    got = await record(run, line(3))
    assert got["completions"] == ["answer 1", "answer 2", "answer 3"]
    assert got["completion"] == "answer 1"
    assert [s["completion"] for s in got["samples"]] == got["completions"]
    assert stats.requests == 1 and transport.bodies[0]["n"] == 3


async def test_a_request_each_where_the_api_has_no_n() -> None:
    transport = CountingTransport(anthropic=True)
    run, stats = requester(transport, model="anthropic:claude-sonnet-4-5-20250929")
    got = await record(run, line(3))
    assert sorted(got["completions"]) == ["answer 1", "answer 2", "answer 3"]
    assert stats.requests == 3
    assert got["usage"] == {"input_tokens": 30, "output_tokens": 6}
    assert all("n" not in body for body in transport.bodies)


async def test_one_sample_is_the_plain_record() -> None:
    transport = CountingTransport()
    run, _ = requester(transport)
    got = await record(run, line(1))
    assert "completions" not in got and "samples" not in got
    assert "n" not in transport.bodies[0]


@pytest.mark.parametrize("anthropic", [False, True])
async def test_raising_the_samples_later_sends_only_the_new_ones(anthropic: bool) -> None:
    model = "anthropic:claude-sonnet-4-5-20250929" if anthropic else "openai:gpt-4.1-mini"
    cache = ResilientCache(MemoryCache())
    first_transport = CountingTransport(anthropic=anthropic)
    run, _ = requester(first_transport, model=model, reuse=Reuse(cache))
    first = await record(run, line(3))
    again_transport = CountingTransport(anthropic=anthropic)
    run, stats = requester(again_transport, model=model, reuse=Reuse(cache))
    again = await record(run, line(5))
    # Three samples from the cache, two asked for (one request with n, else two).
    assert again["completions"][:3] == first["completions"]
    assert len(again["completions"]) == 5
    assert again_transport.answered == 2
    assert stats.requests == (2 if anthropic else 1)
    assert not again["cached"]
    # All five now stored: a third run sends nothing and costs nothing.
    third_transport = CountingTransport(anthropic=anthropic)
    run, stats = requester(third_transport, model=model, reuse=Reuse(cache))
    third = await record(run, line(5))
    assert third["completions"] == again["completions"]
    assert (stats.requests, stats.cached, third["cached"], third["cost_usd"]) == (0, 1, True, 0.0)


async def test_identical_lines_share_their_samples_unless_dedupe_is_off() -> None:
    cache = ResilientCache(MemoryCache())
    transport = CountingTransport()
    run, stats = requester(transport, reuse=Reuse(cache))
    a = await record(run, line(2, 0, "same"))
    b = await record(run, line(2, 1, "same"))
    assert b["completions"] == a["completions"] and b["deduplicated"]
    assert stats.requests == 1

    transport = CountingTransport()
    run, stats = requester(transport, reuse=Reuse(cache), dedupe=False)
    own = [await record(run, line(2, i, "same")) for i in range(3)]
    assert stats.requests == 3
    assert len({tuple(r["completions"]) for r in own}) == 3
    # Each line's own answers are cached under its id: a rerun asks for nothing.
    transport = CountingTransport()
    run, stats = requester(transport, reuse=Reuse(cache), dedupe=False)
    again = [await record(run, line(2, i, "same")) for i in range(3)]
    assert [r["completions"] for r in again] == [r["completions"] for r in own]
    assert stats.requests == 0
