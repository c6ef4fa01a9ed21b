"""build_requester: which limiters, learners and transport each model gets, and the spending
cap."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

import pytest

from lm_deluge_cli.config import AUTO, Limits, ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoints
from lm_deluge_cli.engine import setup
from lm_deluge_cli.engine.requester import Requester
from lm_deluge_cli.engine.setup import Transports, build_requester
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.mock.transport import InProcessTransport
from lm_deluge_cli.transport import Transport
from lm_deluge_cli.types import HttpRequest, HttpResponse, SamplingParams

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def build(
    entries: tuple[ModelEntry, ...], limits: Limits, sampling: SamplingParams | None = None
) -> Requester:
    async with AsyncExitStack() as stack:
        return await build_requester(
            entries,
            resolve_endpoints(entries),
            limits,
            sampling or SamplingParams(),
            retry_other_model=False,
            stats=RunStats(),
            stack=stack,
        )


async def test_a_run_wide_auto_limit_is_learned_per_model() -> None:
    entries = (
        ModelEntry("mock:a"),
        ModelEntry("mock:b", max_requests_per_minute=300.0),
    )
    requester = await build(entries, Limits(max_requests_per_minute=AUTO))
    a, b = requester.slots
    # mock:a learns requests/min; its own limiter starts unlimited there.
    assert a.learner is not None and len(a.limits.limiters) == 2
    own = a.limits.limiters[0].statistics()
    assert own.requests_per_minute is None and own.tokens_per_minute is None
    # mock:b set its own number: nothing to learn.
    assert b.learner is None
    assert b.limits.limiters[0].statistics().requests_per_minute == 300.0
    # The run no longer limits requests; its token limit stays.
    run = a.limits.limiters[-1].statistics()
    assert run.requests_per_minute is None and run.tokens_per_minute == 100_000.0
    assert requester.sender.budget is None


async def test_one_model_can_learn_while_the_run_keeps_numbers() -> None:
    entries = (ModelEntry("mock:a", max_tokens_per_minute=AUTO), ModelEntry("mock:b"))
    requester = await build(entries, Limits(max_requests_per_minute=500.0))
    a, b = requester.slots
    assert a.learner is not None and b.learner is None
    assert a.limits.limiters[-1].statistics().requests_per_minute == 500.0


async def test_max_cost_builds_a_cap_and_needs_prices() -> None:
    requester = await build((ModelEntry("mock:standard"),), Limits(max_cost=2.0))
    assert requester.sender.budget is not None and requester.sender.budget.max_usd == 2.0
    with pytest.raises(ConfigError, match="mock:unpriced"):
        await build((ModelEntry("mock:unpriced"),), Limits(max_cost=2.0))


async def test_answers_longer_than_every_context_window_are_refused_before_sending() -> None:
    # mock:fast's context window is 128,000 tokens, as gpt-4o's.
    huge = SamplingParams(max_new_tokens=100_000_000)
    with pytest.raises(ConfigError) as info:
        await build((ModelEntry("mock:fast"),), Limits(), huge)
    message = str(info.value)
    assert "100,000,000" in message and "context window" in message and "128,000" in message
    assert "lower max_new_tokens" in message
    # Asked of one model's entry alone, the same.
    entry = ModelEntry("mock:fast", sampling={"max_new_tokens": 200_000})
    with pytest.raises(ConfigError, match="200,000"):
        await build((entry,), Limits())
    assert await build((ModelEntry("mock:fast"),), Limits(), SamplingParams(max_new_tokens=8_000))


async def test_a_model_that_cannot_give_such_answers_is_named_and_the_others_serve(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0000000000")
    entries = (ModelEntry("mock:fast"), ModelEntry("openai:gpt-4.1-mini"))
    with caplog.at_level(logging.WARNING, logger="lm_deluge_cli"):
        requester = await build(entries, Limits(), SamplingParams(max_new_tokens=200_000))
    assert len(requester.slots) == 2
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "mock:fast" in warned[0] and "other models" in warned[0]


class FakeNetwork(Transport):
    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self.closed = False

    async def send(self, request: HttpRequest) -> HttpResponse:
        raise AssertionError("nothing is sent")

    async def aclose(self) -> None:
        self.closed = True


async def test_the_transport_follows_the_base_url_s_scheme_not_the_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[FakeNetwork] = []

    def make_transport(max_connections: int) -> FakeNetwork:
        made.append(FakeNetwork(max_connections))
        return made[-1]

    monkeypatch.setattr(setup, "make_transport", make_transport)
    fast, gpt = ModelEntry("mock:fast"), ModelEntry("gpt-4o", mock={"latency_s": 1.5})
    async with AsyncExitStack() as stack:
        transports = Transports(8, stack)
        on_mock = [
            transports.for_model(fast, "mock://in-process/v1", "fast"),
            transports.for_model(gpt, "mock://in-process/v1", "gpt-4o"),
        ]
        # Each model on the mock gets a simulator of its own, with its entry's settings.
        assert all(isinstance(t, InProcessTransport) for t in on_mock)
        simulators = [t.simulator for t in on_mock if isinstance(t, InProcessTransport)]
        assert [s.settings.latency_s for s in simulators] == [0.0, 1.5]
        assert made == []
        # Any other URL goes through the one network transport, whatever the provider.
        network = transports.for_model(fast, "http://127.0.0.1:8089/v1", "fast")
        assert transports.for_model(gpt, "https://api.openai.com/v1", "gpt-4o") is network
        assert made == [network] and made[0].max_connections == 8
        assert not made[0].closed
    assert made[0].closed
