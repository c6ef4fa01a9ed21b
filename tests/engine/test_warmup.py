"""Prompt-cache warm-up: one request per cached prefix goes first, the rest wait for it."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from lm_deluge_cli.engine.warmup import PrefixGate, cache_prefix
from lm_deluge_cli.types import Prompt, PromptCache

pytestmark = pytest.mark.anyio

SYSTEM: dict[str, Any] = {"role": "system", "content": "You are a careful assistant. " * 100}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def prompt(question: str, *, system: dict[str, Any] = SYSTEM) -> Prompt:
    return Prompt(id=question, line=1, messages=[system, {"role": "user", "content": question}])


def test_lines_sharing_a_system_prompt_share_its_prefix() -> None:
    cache = PromptCache("system")
    a = cache_prefix("anthropic", "claude", prompt("a"), cache)
    b = cache_prefix("anthropic", "claude", prompt("b"), cache)
    assert a is not None and a == b and a[1] == 300.0
    other = cache_prefix(
        "anthropic", "claude", prompt("a", system={"role": "system", "content": "x"}), cache
    )
    assert other is not None and other[0] != a[0]
    assert cache_prefix("anthropic", "other-model", prompt("a"), cache) != a
    hour = cache_prefix("anthropic", "claude", prompt("a"), PromptCache("system", "1h"))
    assert hour is not None and hour[1] == 3600.0


def test_no_breakpoint_no_prefix() -> None:
    assert cache_prefix("anthropic", "claude", prompt("a"), None) is None
    assert cache_prefix("anthropic", "claude", prompt("a"), PromptCache("last_user")) is None
    # "tools" needs tools; a line's own marker is a prefix whatever the job says.
    assert cache_prefix("anthropic", "claude", prompt("a"), PromptCache("tools")) is None
    marked = Prompt(
        id=1,
        line=1,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "doc",
                        "cache_control": {"type": "ephemeral", "ttl": "1h"},
                    }
                ],
            },
            {"role": "user", "content": "q1"},
        ],
    )
    found = cache_prefix("anthropic", "claude", marked, None)
    assert found is not None and found[1] == 3600.0
    other_question = Prompt(
        id=2, line=2, messages=[marked.messages[0], {"role": "user", "content": "q2"}]
    )
    assert cache_prefix("anthropic", "claude", other_question, None) == found


async def test_the_first_goes_alone_and_the_others_follow_its_answer() -> None:
    gate = PrefixGate(wait_s=5)
    order: list[str] = []
    in_flight = 0
    most = 0

    async def request(name: str) -> None:
        nonlocal in_flight, most
        async with gate.admit("p", 300):
            in_flight += 1
            most = max(most, in_flight)
            order.append(name)
            await anyio.sleep(0.05)
            in_flight -= 1

    async with anyio.create_task_group() as group:
        for i in range(20):
            group.start_soon(request, f"r{i}")
            await anyio.sleep(0)
    assert order[0] == "r0"
    # While the leader was out, nobody else was.
    assert gate.waited == 19 and gate.timed_out == 0
    assert most == 19  # the followers then went together


async def test_a_failed_leader_hands_the_lead_on() -> None:
    gate = PrefixGate(wait_s=5)
    leaders: list[int] = []

    async def request(i: int, fail: bool) -> None:
        async with gate.admit("p", 300) as admission:
            leaders.append(i)
            await anyio.sleep(0.02)
            if fail:
                admission.warmed = False

    async with anyio.create_task_group() as group:
        group.start_soon(request, 0, True)
        await anyio.sleep(0.001)
        for i in range(1, 6):
            group.start_soon(request, i, False)
    # 0 led and failed; one of the others led next, alone; then the rest went.
    assert leaders[0] == 0 and len(leaders) == 6


async def test_a_wait_is_bounded() -> None:
    gate = PrefixGate(wait_s=0.05)

    async def slow_leader() -> None:
        async with gate.admit("p", 300):
            await anyio.sleep(1)

    async with anyio.create_task_group() as group:
        group.start_soon(slow_leader)
        await anyio.sleep(0.001)
        with anyio.fail_after(0.5):
            async with gate.admit("p", 300):
                pass
        group.cancel_scope.cancel()
    assert gate.timed_out == 1


async def test_a_prefix_idle_past_its_ttl_is_warmed_again() -> None:
    now = [0.0]
    gate = PrefixGate(wait_s=5, clock=lambda: now[0])
    async with gate.admit("p", 300):
        pass
    now[0] = 100.0
    async with gate.admit("p", 300):
        pass  # warm: goes at once, and keeps it warm
    now[0] = 500.0
    async with anyio.create_task_group() as group:

        async def leader() -> None:
            async with gate.admit("p", 300):
                await anyio.sleep(0.02)

        group.start_soon(leader)
        await anyio.sleep(0.001)
        async with gate.admit("p", 300):
            pass
    assert gate.waited == 1  # 400 s idle: warmed again, the second waited
