"""The mock's in-process transport: the simulator's answers, latency and faults with no socket."""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import APIConnectionError, APITimeoutError
from lm_deluge_cli.mock.formats import match_route
from lm_deluge_cli.mock.simulator import MockSettings, Simulator
from lm_deluge_cli.mock.transport import InProcessTransport
from lm_deluge_cli.types import HttpRequest, HttpResponse

pytestmark = pytest.mark.anyio

KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
CHAT = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]})
JSON = {"content-type": "application/json"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def chat(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> HttpRequest:
    return HttpRequest("POST", f"{url}/chat/completions", headers or JSON, CHAT, timeout)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def in_process(**settings: Any) -> InProcessTransport:
    return InProcessTransport(Simulator(MockSettings(**settings), clock=FakeClock()))


MOCK_URL = "mock://in-process/v1"


async def test_in_process_round_trip() -> None:
    transport = in_process()
    response = await transport.send(chat(MOCK_URL))
    assert isinstance(response, HttpResponse)
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    body = orjson.loads(response.body)
    assert body["choices"][0]["message"]["content"]
    assert transport.simulator.statistics().ok == 1


async def test_in_process_latency_is_waited() -> None:
    transport = in_process(latency_s=0.1)
    started = time.monotonic()
    assert (await transport.send(chat(MOCK_URL))).status == 200
    assert time.monotonic() - started >= 0.09


@pytest.mark.parametrize("settings", [{"hang_rate": 1.0}, {"latency_s": 5.0}])
async def test_in_process_timeout(settings: dict[str, Any]) -> None:
    transport = in_process(**settings)
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        await transport.send(chat(MOCK_URL, timeout=0.1))
    assert 0.09 <= time.monotonic() - started < 1.0


async def test_in_process_drop() -> None:
    with pytest.raises(APIConnectionError) as info:
        await in_process(drop_rate=1.0).send(chat(MOCK_URL))
    assert not isinstance(info.value, APITimeoutError)


async def test_in_process_reset_mid_body() -> None:
    with pytest.raises(APIConnectionError) as info:
        await in_process(faults={"reset_mid_body": 1.0}).send(chat(MOCK_URL))
    assert "reset before the whole body arrived" in str(info.value)


async def test_in_process_slow_body_takes_its_time_or_times_out() -> None:
    transport = in_process(faults={"slow_body": 1.0}, slow_body_s=0.1)
    started = time.monotonic()
    assert (await transport.send(chat(MOCK_URL))).status == 200
    assert time.monotonic() - started >= 0.09
    with pytest.raises(APITimeoutError):
        await in_process(faults={"slow_body": 1.0}, slow_body_s=5).send(chat(MOCK_URL, 0.1))


async def test_in_process_statuses_are_responses() -> None:
    transport = in_process(requests_per_minute=60, burst_s=1.0, error_rate=0.0)
    assert (await transport.send(chat(MOCK_URL))).status == 200
    refused = await transport.send(chat(MOCK_URL))
    assert refused.status == 429
    assert refused.headers["retry-after"] == "1"
    assert (await in_process(error_rate=1.0).send(chat(MOCK_URL))).status == 500
    assert (await in_process(api_key=KEY).send(chat(MOCK_URL))).status == 401


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", CHAT),
        (
            "/anthropic/v1/messages",
            orjson.dumps(
                {
                    "model": "claude-sonnet-4-20250514",
                    "max_tokens": 64,
                    "messages": [{"role": "user", "content": "Hello"}],
                }
            ),
        ),
    ],
)
async def test_in_process_answers_what_the_simulator_answers_on_the_wire(
    path: str, body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transport hands the simulator the request's bytes, headers lower-cased, and hands
    back its answer untouched: the same bytes a server would send."""
    monkeypatch.setattr(secrets, "token_hex", lambda _n=None: "0123456789abcdef")
    monkeypatch.setattr(time, "time", lambda: 1_750_000_000.0)
    headers = {"Content-Type": "application/json", "Anthropic-Version": "2023-06-01"}
    transport, simulator = in_process(), Simulator(MockSettings(), clock=FakeClock())
    route = match_route(path)
    assert route is not None
    # Twice: the second request reaches the route the first one looked up.
    for _ in range(2):
        response = await transport.send(
            HttpRequest("POST", f"mock://in-process{path}", headers, body)
        )
        expected = simulator.handle(route, {name.lower(): v for name, v in headers.items()}, body)
        assert response.status == expected.status == 200
        assert (response.headers, response.body) == (expected.headers, expected.body)
