"""The one sender on its own: a bare route and exchange, no chat or embeddings around it.
What a caller of it gets: retries, a move off a model that refuses its key, the spending
cap, a stop, and waiting for the requests in flight."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass

import anyio
import pytest

from lm_deluge_cli.engine.budget import SpendCap
from lm_deluge_cli.engine.halt import Halted
from lm_deluge_cli.engine.limiter import RateLimiter
from lm_deluge_cli.engine.limiter_chain import LimiterChain
from lm_deluge_cli.engine.sender import Outgoing, RequestFailedError, Route, Sender
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.engine.warmup import Admission
from lm_deluge_cli.errors import AuthenticationError, InternalServerError, status_error_class
from lm_deluge_cli.transport import Transport
from lm_deluge_cli.types import HttpRequest, HttpResponse, RateLimitInfo

pytestmark = pytest.mark.anyio


class Scripted(Transport):
    """Answers with the statuses given, in turn (the last repeats); holds each answer
    until `gate` is set, when there is one."""

    def __init__(self, *statuses: int, gate: anyio.Event | None = None) -> None:
        self.statuses = statuses
        self.sent = 0
        self.gate = gate

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.sent += 1
        if self.gate is not None:
            await self.gate.wait()
        return HttpResponse(self.statuses[min(self.sent, len(self.statuses)) - 1], {}, b"7")


@dataclass(slots=True, kw_only=True)
class Bare(Route):
    label: str

    @property
    def name(self) -> str:
        return self.label

    @property
    def key_variable(self) -> str:
        return f"{self.label.upper()}_KEY"

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        return RateLimitInfo()


class Number:
    """Asks for a number; a 2xx body is the answer, anything else its status's error."""

    def outgoing(self, route: Bare, attempt: int) -> Outgoing:
        return Outgoing(HttpRequest("POST", f"https://{route.name}/n", {}, b"", 5.0), 10)

    def worst_cost(self, route: Bare) -> float:
        return 0.5

    def admit(self, route: Bare) -> AbstractAsyncContextManager[Admission]:
        return nullcontext(Admission())

    def read(self, route: Bare, response: HttpResponse) -> int:
        if response.status >= 300:
            cls = status_error_class(response.status)
            raise cls(f"{response.status}: no", status_code=response.status)
        return int(response.body)

    def cost(self, route: Bare, answer: int) -> float | None:
        return 0.25

    def used_tokens(self, route: Bare, answer: int) -> int:
        return 0

    def check(self, route: Bare, answer: int, status: int) -> None:
        return None


def route(label: str, transport: Transport) -> Bare:
    limits = LimiterChain(RateLimiter(None, None, name="run"))
    return Bare(label=label, transport=transport, limits=limits, headers_describe=(False,))


def sender(*routes: Bare, budget: SpendCap | None = None, attempts: int = 3) -> Sender[Bare]:
    return Sender(
        routes, max_concurrent_requests=4, max_attempts=attempts, stats=RunStats(), budget=budget
    )


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries wait zero seconds here; the delays themselves are tested in test_retry."""
    import lm_deluge_cli.engine.sender as module
    from lm_deluge_cli.engine.retry import decide as real

    def instant(*args: object, **kwargs: object) -> object:
        decision = real(*args, **kwargs)  # type: ignore[arg-type]
        return type(decision)(decision.retry, 0.0, decision.reason)

    monkeypatch.setattr(module, "decide", instant)


async def test_an_answer_with_its_attempts_and_cost_after_a_retry() -> None:
    one = route("a", Scripted(500, 200))
    sent = await sender(one).send(Number(), one)
    assert (sent.value, sent.attempts, sent.route, sent.cost_usd) == (7, 2, one, 0.25)


async def test_attempts_run_out() -> None:
    one = route("a", Scripted(500))
    with pytest.raises(RequestFailedError) as failed:
        await sender(one, attempts=3).send(Number(), one)
    assert isinstance(failed.value.error, InternalServerError)
    assert failed.value.attempts == 3


async def test_a_refused_key_moves_the_request_and_stops_its_model() -> None:
    bad, good = route("bad", Scripted(401)), route("good", Scripted(200))
    run = sender(bad, good)
    moves: list[str] = []
    sent = await run.send(Number(), bad, moved=lambda r: moves.append(r.name))
    assert (sent.route, sent.attempts, moves) == (good, 2, ["good"])
    assert bad.dead_reason == "401: no" and run.stats.dead_models == ["bad"]
    assert run.fatal is None
    # Pinned to the dead model, a request is not sent at all.
    with pytest.raises(RequestFailedError) as failed:
        await run.send(Number(), bad, pinned=True)
    assert failed.value.error.type == "model_unavailable"
    assert bad.transport.sent == 1  # type: ignore[attr-defined]


async def test_every_model_refused_is_fatal_and_what_is_left_halts() -> None:
    only = route("a", Scripted(401))
    run = sender(only)
    with pytest.raises(RequestFailedError) as failed:
        await run.send(Number(), only)
    assert isinstance(failed.value.error, AuthenticationError)
    assert run.fatal is not None and "check A_KEY" in str(run.fatal)
    with pytest.raises(Halted):
        await run.send(Number(), only)


async def test_the_spending_cap_halts_what_does_not_fit() -> None:
    one = route("a", Scripted(200))
    run = sender(one, budget=SpendCap(0.6))
    await run.send(Number(), one)  # reserves 0.5, costs 0.25
    with pytest.raises(Halted):
        await run.send(Number(), one)  # 0.25 spent + 0.5 would pass 0.6
    assert run.cap_reached and run.should_stop and run.stats.cost_cap_reached
    assert one.transport.sent == 1  # type: ignore[attr-defined]


async def test_a_halted_sender_sends_nothing() -> None:
    one = route("a", Scripted(200))
    run = sender(one)
    run.halt()
    with pytest.raises(Halted):
        await run.send(Number(), one)
    assert one.transport.sent == 0  # type: ignore[attr-defined]


async def test_wait_idle_returns_when_the_last_request_is_answered() -> None:
    gate = anyio.Event()
    one = route("a", Scripted(200, gate=gate))
    run = sender(one)
    await run.wait_idle()  # nothing in flight: at once
    idle_at: list[int] = []
    async with anyio.create_task_group() as group:
        group.start_soon(run.send, Number(), one)
        group.start_soon(run.send, Number(), one)
        await anyio.wait_all_tasks_blocked()
        assert run.stats.in_flight == 2

        async def wait() -> None:
            await run.wait_idle()
            idle_at.append(run.stats.in_flight)

        group.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        assert idle_at == []
        gate.set()
    assert idle_at == [0]


async def test_a_request_waiting_for_a_slot_is_not_sent_to_a_model_that_died_meanwhile() -> None:
    gate = anyio.Event()
    refused = route("a", Scripted(401, gate=gate))
    healthy = route("b", Scripted(200))
    one_slot = Sender(
        [refused, healthy], max_concurrent_requests=1, max_attempts=3, stats=RunStats()
    )
    results: dict[str, object] = {}

    async def ask(name: str) -> None:
        sent = await one_slot.send(Number(), refused)
        results[name] = (sent.route.name, sent.attempts)

    async with anyio.create_task_group() as group:
        group.start_soon(ask, "first")
        await wait_until(lambda: refused.transport.sent == 1)  # type: ignore[attr-defined]
        group.start_soon(ask, "second")  # waits for the one slot, meant for "a"
        await wait_until(lambda: one_slot.stats.slot_waiters == 1)
        gate.set()  # "a" refuses the key: the first moves on, the second never goes to "a"
    assert refused.transport.sent == 1  # type: ignore[attr-defined]
    # The wait was not an attempt: only the first paid one on "a".
    assert results == {"first": ("b", 2), "second": ("b", 1)}


async def test_a_request_waiting_when_every_model_died_is_halted_unsent() -> None:
    gate = anyio.Event()
    refused = route("a", Scripted(401, gate=gate))
    one_slot = Sender([refused], max_concurrent_requests=1, max_attempts=3, stats=RunStats())
    outcomes: list[str] = []

    async def ask() -> None:
        try:
            await one_slot.send(Number(), refused)
        except RequestFailedError:
            outcomes.append("failed")
        except Halted:
            outcomes.append("halted")

    async with anyio.create_task_group() as group:
        group.start_soon(ask)
        await wait_until(lambda: refused.transport.sent == 1)  # type: ignore[attr-defined]
        group.start_soon(ask)
        await wait_until(lambda: one_slot.stats.slot_waiters == 1)
        gate.set()
    assert refused.transport.sent == 1  # type: ignore[attr-defined]
    assert sorted(outcomes) == ["failed", "halted"]
    assert one_slot.fatal is not None


async def wait_until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.sleep(0)
