"""Slots: the concurrency limit holds, waiters are served in order, cancellation passes on."""

from __future__ import annotations

import anyio
import pytest

from lm_deluge_cli.engine.slots import Slots

pytestmark = pytest.mark.anyio


async def test_no_more_than_the_limit_hold_a_slot_at_once() -> None:
    slots = Slots(3)
    holding = peak = 0

    async def one() -> None:
        nonlocal holding, peak
        async with slots:
            holding += 1
            peak = max(peak, holding)
            await anyio.sleep(0.01)
            holding -= 1

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(one)
    assert peak == 3
    assert slots.borrowed_tokens == 0 and slots.waiting == 0


async def test_waiters_get_slots_first_come_first_served() -> None:
    slots = Slots(1)
    order: list[int] = []
    release = anyio.Event()

    async def holder() -> None:
        async with slots:
            await release.wait()

    async def waiter(n: int) -> None:
        async with slots:
            order.append(n)

    async with anyio.create_task_group() as group:
        group.start_soon(holder)
        await anyio.wait_all_tasks_blocked()
        for n in range(5):
            group.start_soon(waiter, n)
            await anyio.wait_all_tasks_blocked()
        assert slots.waiting == 5 and slots.available_tokens == 0
        release.set()
    assert order == [0, 1, 2, 3, 4]


async def test_a_cancelled_waiter_gives_up_its_place_and_never_leaks_a_slot() -> None:
    slots = Slots(1)
    release = anyio.Event()
    got: list[str] = []

    async def holder() -> None:
        async with slots:
            await release.wait()

    async def waiter(name: str) -> None:
        async with slots:
            got.append(name)

    async with anyio.create_task_group() as group:
        group.start_soon(holder)
        await anyio.wait_all_tasks_blocked()
        async with anyio.create_task_group() as doomed:
            doomed.start_soon(waiter, "cancelled while waiting")
            await anyio.wait_all_tasks_blocked()
            group.start_soon(waiter, "behind it")
            await anyio.wait_all_tasks_blocked()
            assert slots.waiting == 2
            doomed.cancel_scope.cancel()
        assert slots.waiting == 1
        release.set()
    assert got == ["behind it"]
    assert slots.borrowed_tokens == 0 and slots.waiting == 0


def test_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Slots(0)
