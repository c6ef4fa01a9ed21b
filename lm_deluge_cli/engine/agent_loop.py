"""Agent loops over a batch: each line is a conversation whose tool calls are run with Python
functions and answered, round after round, until the model stops calling tools or the rounds
run out. Every round is an ordinary request through the run's one pipeline (limits, retries,
cache, identical-line sharing), so conversations advance concurrently, and a killed run
replays the rounds it had answered from the cache without paying for them again.

A line's record is its last round's answer with the usage and cost of every round summed, and
two fields of its own: ``rounds`` (each round's model, finish reason, usage, cost, whether it
came from the cache, how many tools it called) and ``transcript`` (the whole conversation as
OpenAI chat messages, tool results and the final answer included).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import anyio

from lm_deluge_cli.config import DEFAULT_MAX_ROUNDS
from lm_deluge_cli.conversation import Conversation
from lm_deluge_cli.engine.chat_stages import count_record, run_pipeline
from lm_deluge_cli.engine.pipeline import RunOutcome
from lm_deluge_cli.engine.requester import Requester
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.engine.task import Answered
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.results import Result, ToolCall, Usage
from lm_deluge_cli.tool_use.tool import Tool
from lm_deluge_cli.types import Message, Prompt

__all__ = ["Loop", "loop_result", "run_agent_loops"]

# Conversations under way at once, per request the run may have in flight: bounds memory
# on any input while keeping every request slot busy.
CONVERSATIONS_PER_SLOT = 2
# How long a stopped run waits for the rounds already answered to be taken in.
STOP_GRACE_S = 1.0


@dataclass(slots=True)
class Loop:
    """One conversation under way: its prompt as it now stands and each round's result."""

    prompt: Prompt
    rounds: list[Result] = field(default_factory=list)


async def run_agent_loops(
    items: AsyncIterable[Prompt | BadLine | Answered],
    sink: Callable[[Result], None],
    requester: Requester,
    stats: RunStats,
    tools: Sequence[Tool],
    *,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    stop: anyio.Event | None = None,
) -> RunOutcome:
    """Run every conversation of `items` to its end, handing each line's final record to
    `sink` (bad lines' records as they come). Conversations not finished when the run
    stops get no record: a rerun starts them again, and the cache answers the rounds
    already paid for."""
    by_name: Mapping[str, Tool] = {tool.name: tool for tool in tools}
    stop = stop or anyio.Event()
    prompts_send, prompts_recv = anyio.create_memory_object_stream[Prompt | BadLine](math.inf)
    rounds_send, rounds_recv = anyio.create_memory_object_stream[Result](math.inf)
    room = anyio.Semaphore(
        max(1, int(requester.sender.concurrency.total_tokens) * CONVERSATIONS_PER_SLOT)
    )
    loops: dict[int, Loop] = {}
    reading = True

    async def source() -> AsyncIterator[Prompt | BadLine]:
        async with prompts_recv:
            async for item in prompts_recv:
                yield item

    async def read() -> None:
        nonlocal reading
        async for item in items:
            if isinstance(item, BadLine):
                await prompts_send.send(item)
                continue
            if isinstance(item, Answered):
                stats.passed_through += 1
                finished(None, item.record)
                continue
            await room.acquire()
            loops[item.line] = Loop(item)
            await prompts_send.send(item)
        reading = False
        if not loops:
            prompts_send.close()

    def finished(loop: Loop | None, record: Result) -> None:
        final = record if loop is None else loop_result(loop)
        sink(final)
        count_record(stats, final)
        if loop is not None:
            del loops[loop.prompt.line]
            room.release()
        if not reading and not loops:
            prompts_send.close()

    async def answer(loop: Loop, result: Result) -> None:
        calls = result.tool_calls
        outputs: list[str] = [""] * len(calls)

        async def one(index: int, call: ToolCall) -> None:
            tool = by_name.get(call.name)
            if tool is None:
                known = ", ".join(by_name) or "none"
                outputs[index] = f"Error: there is no tool named {call.name!r} (tools: {known})"
            else:
                outputs[index] = await tool.call(call)

        async with anyio.create_task_group() as group:
            for index, call in enumerate(calls):
                group.start_soon(one, index, call)
        messages = [*loop.prompt.messages, *_assistant_turn(result)]
        messages += [
            {"role": "tool", "tool_call_id": call.id, "content": output}
            for call, output in zip(calls, outputs, strict=True)
        ]
        # The same line (id, model, sampling, tools), the longer conversation.
        loop.prompt = dataclasses.replace(loop.prompt, messages=messages)
        if requester.reuse is not None:
            # This round lives only in the cache: stored before the next is asked, so a
            # killed run pays for no round twice.
            await requester.reuse.synced()
        if stop.is_set():
            return  # the run is stopping: this conversation is left for the rerun
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await prompts_send.send(loop.prompt)

    async def advance() -> None:
        async with anyio.create_task_group() as group, rounds_recv:
            async for result in rounds_recv:
                loop = loops.get(result.line)
                if loop is None:
                    finished(None, result)  # a bad line
                    continue
                loop.rounds.append(result)
                if result.ok and result.tool_calls and len(loop.rounds) < max_rounds:
                    if not stop.is_set():
                        group.start_soon(answer, loop, result)
                else:
                    finished(loop, result)

    async with anyio.create_task_group() as group:
        group.start_soon(read)
        async with anyio.create_task_group() as advancing:
            advancing.start_soon(advance)

            def take(rounds: list[Result]) -> None:
                for result in rounds:
                    rounds_send.send_nowait(result)

            outcome = await run_pipeline(source(), take, requester, stats, stop=stop, counted=False)
            # Every round the pipeline answered is taken in (a conversation it ends gets
            # its record); tools still running for a stopped run are left for the rerun.
            rounds_send.close()
            if stop.is_set():
                advancing.cancel_scope.deadline = anyio.current_time() + STOP_GRACE_S
        group.cancel_scope.cancel()
    return outcome


def loop_result(loop: Loop) -> Result:
    """A finished conversation's record: its last round's answer, every round's usage and
    cost summed, and its rounds (their Results; `io.records` writes what each one says)
    and transcript."""
    last = loop.rounds[-1]
    usage = sum((r.usage or Usage() for r in loop.rounds), Usage())
    costs = [r.cost_usd for r in loop.rounds]
    transcript = list(loop.prompt.messages)
    if last.ok:
        transcript += _assistant_turn(last)
    return last.replace(
        id=loop.prompt.id,
        line=loop.prompt.line,
        usage=usage,
        cost_usd=None if None in costs else round(sum(c or 0.0 for c in costs), 10),
        attempts=sum(r.attempts for r in loop.rounds),
        latency_s=round(sum(r.latency_s for r in loop.rounds), 3),
        cached=all(r.cached for r in loop.rounds),
        deduplicated=False,
        metadata=loop.prompt.metadata,
        fields={**last.fields, "rounds": tuple(loop.rounds), "transcript": transcript},
    )


def _assistant_turn(result: Result) -> list[Message]:
    answer = result.answer
    if answer is None:
        return []
    return Conversation().with_response(answer).to_openai()
