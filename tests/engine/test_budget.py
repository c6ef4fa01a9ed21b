"""The spending cap: admits requests while spend + in-flight estimates + their own fit."""

from __future__ import annotations

import anyio
import pytest

from lm_deluge_cli.config import ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoints
from lm_deluge_cli.engine.budget import SpendCap, check_priced, estimate_cost
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.providers.registry import load_registry

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_requests_are_admitted_while_they_fit() -> None:
    cap = SpendCap(1.0)
    assert await cap.reserve(0.4)
    assert await cap.reserve(0.4)
    assert cap.reserved_usd == pytest.approx(0.8)
    assert cap.in_flight == 2
    cap.settle(0.4, 0.1)
    cap.settle(0.4, 0.1)
    assert cap.spent_usd == pytest.approx(0.2)
    assert cap.reserved_usd == pytest.approx(0.0)
    assert not cap.reached


async def test_a_request_that_does_not_fit_waits_for_those_in_flight() -> None:
    cap = SpendCap(1.0)
    assert await cap.reserve(0.6)
    admitted = anyio.Event()

    async def second() -> None:
        assert await cap.reserve(0.6)
        admitted.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await anyio.sleep(0.01)
        assert not admitted.is_set()
        # The first request cost far less than its estimate: now the second fits.
        cap.settle(0.6, 0.05)
        with anyio.fail_after(1):
            await admitted.wait()
    assert not cap.reached


async def test_the_cap_is_reached_when_nothing_in_flight_can_make_room() -> None:
    cap = SpendCap(1.0)
    assert await cap.reserve(0.6)
    results: list[bool] = []

    async def waiter() -> None:
        results.append(await cap.reserve(0.6))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        tg.start_soon(waiter)
        await anyio.sleep(0.01)
        cap.settle(0.6, 0.5)  # 0.5 spent: 0.6 more can never fit
    assert results == [False, False]
    assert cap.reached
    # Once reached, everything is refused, even what would fit.
    assert not await cap.reserve(0.01)


async def test_earlier_spend_counts() -> None:
    cap = SpendCap(1.0)
    cap.carry_over(0.95)
    assert not await cap.reserve(0.1)
    assert cap.reached
    assert await SpendCap(1.0, spent_usd=0.5).reserve(0.5)


async def test_a_cap_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SpendCap(0.0)


def test_estimate_is_the_most_a_request_may_cost() -> None:
    model = load_registry().lookup("mock:fast")
    assert model.input_per_mtok is not None and model.output_per_mtok is not None
    expected = (1000 * model.input_per_mtok + 500 * model.output_per_mtok) / 1e6
    assert estimate_cost(model, 1000, 500) == pytest.approx(expected)
    assert estimate_cost(load_registry().lookup("openai:no-such-model"), 1, 1) is None


def test_check_priced_names_every_unpriced_model() -> None:
    entries = (
        ModelEntry("mock:fast"),
        ModelEntry("openai:mystery-1", api_key_env=""),
        ModelEntry("openai:mystery-2", api_key_env=""),
    )
    endpoints = resolve_endpoints(entries)
    with pytest.raises(ConfigError) as info:
        check_priced(endpoints)
    message = str(info.value)
    assert "openai:mystery-1, openai:mystery-2" in message
    assert "mock:fast" not in message
    check_priced(endpoints[:1])


def test_a_providers_own_model_name_is_priced() -> None:
    # Anthropic's undated alias, sent as written, is priced as the dated model it names.
    (endpoint,) = resolve_endpoints((ModelEntry("anthropic:claude-sonnet-4-5", api_key_env=""),))
    assert endpoint.model.wire_id == "claude-sonnet-4-5"
    check_priced([endpoint])
    assert estimate_cost(endpoint.model, 1_000_000, 1_000_000) == pytest.approx(3.0 + 15.0)


def test_with_prompt_caching_the_estimate_prices_input_as_cache_writes() -> None:
    model = load_registry().lookup("anthropic:claude-sonnet-4-5-20250929")
    plain = estimate_cost(model, 1_000_000, 0)
    five = estimate_cost(model, 1_000_000, 0, "5m")
    hour = estimate_cost(model, 1_000_000, 0, "1h")
    assert (plain, five, hour) == (3.0, 3.75, 6.0)


async def test_waited_s_is_the_time_some_request_waited_for_room() -> None:
    t = [0.0]
    cap = SpendCap(1.0, clock=lambda: t[0])
    assert await cap.reserve(0.6)
    assert cap.waited_s == 0.0  # admitted at once: no wait, the clock not even read
    admitted = anyio.Event()

    async def waiter() -> None:
        assert await cap.reserve(0.5)
        if cap.in_flight == 2:
            admitted.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        tg.start_soon(waiter)
        await anyio.sleep(0.01)
        t[0] = 2.0
        # Two requests waited, side by side: the cap held the run back for 2 s, not 4.
        assert cap.waited_s == pytest.approx(2.0)
        t[0] = 3.0
        cap.settle(0.6, 0.0)
        with anyio.fail_after(1):
            await admitted.wait()
    t[0] = 10.0
    assert cap.waited_s == pytest.approx(3.0)
