"""Agent loops: tool calls answered with Python functions round after round, every
conversation under one limiter, records with the rounds and the transcript."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
import pytest

from lm_deluge_cli.cache.memory import MemoryCache
from lm_deluge_cli.cache.resilient import ResilientCache
from lm_deluge_cli.config import ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoint
from lm_deluge_cli.engine.agent_loop import run_agent_loops
from lm_deluge_cli.engine.limiter import RateLimiter
from lm_deluge_cli.engine.limiter_chain import LimiterChain
from lm_deluge_cli.engine.requester import ModelSlot, Requester
from lm_deluge_cli.engine.reuse import Reuse
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.records import to_json
from lm_deluge_cli.providers import adapter_for
from lm_deluge_cli.results import Result
from lm_deluge_cli.tool_use.tool import Tool
from lm_deluge_cli.transport.base import Transport
from lm_deluge_cli.types import HttpRequest, HttpResponse, Prompt, RequestDefaults, SamplingParams

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def rounds_for(messages: list[dict[str, Any]]) -> int:
    """How many tool rounds a conversation takes before answering: 0 to 2, from its text."""
    first = str(messages[0]["content"]).encode()
    return hashlib.sha256(first).digest()[0] % 3


class ToolModel(Transport):
    """A Chat Completions model that calls `add` (and, when told to, a tool it was not
    given) until its conversation has had its rounds, then answers with the last result."""

    def __init__(self, stray_tool: bool = False) -> None:
        self.requests = 0
        self.stray_tool = stray_tool

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.requests += 1
        body = orjson.loads(request.body)
        messages = body["messages"]
        done = sum(1 for m in messages if m["role"] == "assistant")
        if "tools" in body and done < rounds_for(messages):
            calls = [
                {
                    "id": f"call_{done}_{index}",
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": orjson.dumps({"a": done, "b": 1}).decode(),
                    },
                }
                for index, name in enumerate(["add", "nope"] if self.stray_tool else ["add"])
            ]
            message = {"role": "assistant", "content": None, "tool_calls": calls}
            finish = "tool_calls"
        else:
            last = messages[-1]["content"] if messages[-1]["role"] == "tool" else "no tools"
            message = {"role": "assistant", "content": f"final: {last}"}
            finish = "stop"
        choice = {"index": 0, "message": message, "finish_reason": finish}
        usage = {"prompt_tokens": 10, "completion_tokens": 5}
        data = {"id": "c", "object": "chat.completion", "choices": [choice], "usage": usage}
        await anyio.sleep(0)
        return HttpResponse(200, {}, orjson.dumps(data))


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def requester(transport: Transport, reuse: Reuse | None = None) -> tuple[Requester, RunStats]:
    endpoint = resolve_endpoint(ModelEntry("openai:gpt-4.1-mini"), env={"OPENAI_API_KEY": "k"})
    slot = ModelSlot(
        endpoint=endpoint,
        adapter=adapter_for("openai_chat"),
        transport=transport,
        weight=1.0,
        sampling=SamplingParams(),
        limits=LimiterChain(RateLimiter(None, None)),
        headers_describe=(True,),
    )
    stats = RunStats()
    tools = (Tool.from_function(add).definition(),)
    built = Requester(
        [slot],
        max_concurrent_requests=4,
        max_attempts=2,
        request_timeout=5,
        retry_other_model=False,
        stats=stats,
        rng=random.Random(0),
        reuse=reuse or Reuse(None),
        defaults=RequestDefaults(tools),
    )
    return built, stats


def conversations(count: int) -> list[Prompt]:
    return [
        Prompt(id=i, line=i + 1, messages=[{"role": "user", "content": f"task {i}"}])
        for i in range(count)
    ]


async def run(
    prompts: list[Prompt | BadLine], transport: ToolModel, *, max_rounds: int = 10, **kw: Any
) -> tuple[list[dict[str, Any]], RunStats]:
    run_requester, stats = requester(transport, **kw)
    out: list[Result] = []

    async def items() -> AsyncIterator[Prompt | BadLine]:
        for item in prompts:
            yield item

    await run_agent_loops(
        items(), out.append, run_requester, stats, [Tool.from_function(add)], max_rounds=max_rounds
    )
    return sorted((to_json(r) for r in out), key=lambda r: r["line"]), stats


async def test_every_conversation_runs_its_rounds_to_a_final_answer() -> None:
    prompts = conversations(60)
    records, stats = await run(list(prompts), ToolModel())
    assert len(records) == 60 and stats.ok == 60 and stats.failed == 0
    for prompt, record in zip(prompts, records, strict=True):
        tool_rounds = rounds_for(prompt.messages)
        assert record["status"] == "ok"
        assert len(record["rounds"]) == tool_rounds + 1
        assert [r["tool_calls"] for r in record["rounds"]] == [1] * tool_rounds + [0]
        assert record["usage"] == {
            "input_tokens": 10 * (tool_rounds + 1),
            "output_tokens": 5 * (tool_rounds + 1),
        }
        transcript = record["transcript"]
        assert transcript[0] == {"role": "user", "content": prompt.messages[0]["content"]}
        assert transcript[-1]["role"] == "assistant"
        tools = [m for m in transcript if m["role"] == "tool"]
        # add(a=round, b=1) answered each round.
        assert [m["content"] for m in tools] == [str(n + 1) for n in range(tool_rounds)]
        expected = f"final: {tool_rounds}" if tool_rounds else "final: no tools"
        assert record["completion"] == expected
    assert stats.requests == sum(rounds_for(p.messages) + 1 for p in prompts)


async def test_max_rounds_ends_a_conversation_on_its_last_call() -> None:
    prompts = [p for p in conversations(40) if rounds_for(p.messages) == 2][:5]
    records, _ = await run(list(prompts), ToolModel(), max_rounds=2)
    for record in records:
        assert len(record["rounds"]) == 2
        assert record["finish_reason"] == "tool_calls"
        assert record["tool_calls"]  # the last round's unanswered calls are in the record


async def test_an_unknown_tool_is_answered_with_an_error_not_a_crash() -> None:
    prompts = [p for p in conversations(40) if rounds_for(p.messages) == 1][:3]
    records, _ = await run(list(prompts), ToolModel(stray_tool=True))
    for record in records:
        tool_messages = [m for m in record["transcript"] if m["role"] == "tool"]
        assert tool_messages[0]["content"] == "1"
        assert "there is no tool named 'nope'" in tool_messages[1]["content"]
        assert record["status"] == "ok"


async def test_bad_lines_pass_through_and_every_line_ends_once() -> None:
    items: list[Prompt | BadLine] = [*conversations(3), BadLine(4, "line 4: not JSON")]
    records, stats = await run(items, ToolModel())
    assert [r["line"] for r in records] == [1, 2, 3, 4]
    assert records[3]["error"]["type"] == "invalid_input"
    assert (stats.ok, stats.failed) == (3, 1)


async def test_a_rerun_from_the_cache_sends_nothing() -> None:
    cache = ResilientCache(MemoryCache())
    prompts = conversations(20)
    first_model = ToolModel()
    first, _ = await run(list(prompts), first_model, reuse=Reuse(cache))
    again_model = ToolModel()
    again, stats = await run(list(prompts), again_model, reuse=Reuse(cache))
    assert again_model.requests == 0 and stats.requests == 0
    assert [r["transcript"] for r in again] == [r["transcript"] for r in first]
    assert all(r["cached"] and r["cost_usd"] == 0.0 for r in again)
