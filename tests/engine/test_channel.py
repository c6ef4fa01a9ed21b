"""The queue between a run's stages: order, back-pressure, the end, and cancellation."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from lm_deluge_cli.engine.channel import Channel

pytestmark = pytest.mark.anyio


async def test_items_pass_in_order_and_none_marks_the_end() -> None:
    channel = Channel[int](4)
    for item in range(3):
        assert channel.send_nowait(item)
    channel.close_sender()
    assert [await channel.receive() for _ in range(4)] == [0, 1, 2, None]
    assert channel.ended


async def test_a_full_channel_refuses_at_once_and_makes_a_sender_wait() -> None:
    channel = Channel[int](2)
    assert channel.send_nowait(1) and channel.send_nowait(2)
    assert not channel.send_nowait(3)
    sent = []

    async def sender() -> None:
        await channel.send(3)
        sent.append(3)

    async with anyio.create_task_group() as group:
        group.start_soon(sender)
        await anyio.wait_all_tasks_blocked()
        assert sent == []  # no room yet
        assert channel.receive_nowait() == 1
    assert sent == [3]
    assert [channel.receive_nowait(), channel.receive_nowait()] == [2, 3]


async def test_receivers_wait_for_items_and_each_item_goes_to_one() -> None:
    channel = Channel[int](8, senders=2)
    got: list[int] = []

    async def receiver() -> None:
        while (item := await channel.receive()) is not None:
            got.append(item)
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(receiver)
        await anyio.wait_all_tasks_blocked()
        for item in range(100):
            await channel.send(item)
        channel.close_sender()
        await anyio.wait_all_tasks_blocked()
        assert len(got) == 100  # the receivers still wait: one sender is open
        channel.close_sender()
    assert sorted(got) == list(range(100))


async def test_a_receiver_cancelled_as_it_is_woken_passes_the_item_on() -> None:
    channel = Channel[str](4)
    first = asyncio.ensure_future(channel.receive())
    second = asyncio.ensure_future(channel.receive())
    await asyncio.sleep(0)  # both wait, the first in front
    channel.send_nowait("item")  # wakes the first in line ...
    first.cancel()  # ... which is cancelled before it runs
    with anyio.fail_after(1):
        assert await second == "item"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert len(channel) == 0


async def test_a_sender_cancelled_while_waiting_leaves_no_item_and_no_turn() -> None:
    channel = Channel[int](1)
    channel.send_nowait(0)
    with anyio.move_on_after(0.01):
        await channel.send(1)
    assert channel.receive_nowait() == 0
    assert channel.receive_nowait() is None
    assert channel.send_nowait(2)  # the room freed went to no one stale


async def test_closing_the_receiving_side_fails_senders_waiting_and_to_come() -> None:
    channel = Channel[int](1)
    channel.send_nowait(0)
    failed: list[type[BaseException]] = []

    async def sender() -> None:
        try:
            await channel.send(1)
        except anyio.ClosedResourceError as exc:
            failed.append(type(exc))

    async with anyio.create_task_group() as group:
        group.start_soon(sender)
        await anyio.wait_all_tasks_blocked()
        channel.close_receiver()
    assert failed == [anyio.ClosedResourceError]
    with pytest.raises(anyio.ClosedResourceError):
        channel.send_nowait(2)


def test_a_channel_needs_room_and_a_sender() -> None:
    with pytest.raises(ValueError, match="at least one item"):
        Channel[int](0)
    with pytest.raises(ValueError, match="at least one sender"):
        Channel[int](1, senders=0)
