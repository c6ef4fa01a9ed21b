"""Endpoint builders shared by the split adapter test modules, one fixture per adapter.

A test module picks its adapter's builder with a small `endpoint` fixture that returns it.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from lm_deluge_cli.engine import retry
from lm_deluge_cli.engine.limiter import RateLimiter
from lm_deluge_cli.engine.limiter_chain import LimiterChain
from lm_deluge_cli.engine.requester import ModelSlot, Requester
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.io.records import to_json
from lm_deluge_cli.providers.anthropic_messages import AnthropicMessagesAdapter
from lm_deluge_cli.providers.base import Adapter, Endpoint
from lm_deluge_cli.providers.registry import ModelInfo, ProviderInfo, load_registry
from lm_deluge_cli.transport.aiohttp_transport import AiohttpTransport
from lm_deluge_cli.transport.base import Transport
from lm_deluge_cli.types import Prompt, SamplingParams

from ..conftest import StartMockServer

OPENAI_KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
OPENAI_OFFICIAL = "https://api.openai.com/v1"

GEMINI_KEY = "AIzaSyCanary-7f3a9c1e5b2d4f6a8c0e1234"
GEMINI_OFFICIAL = "https://generativelanguage.googleapis.com"
GEMINI_PROVIDER = ProviderInfo(
    "gemini", "gemini", GEMINI_OFFICIAL, "GOOGLE_GEMINI_BASE_URL", "GEMINI_API_KEY"
)


def _openai_endpoint(
    model: str = "openai:gpt-4.1",
    *,
    key: str | None = OPENAI_KEY,
    base_url: str = OPENAI_OFFICIAL,
    compatible: bool = False,
) -> Endpoint:
    registry = load_registry()
    info = registry.lookup(model)
    return Endpoint(
        name=model,
        model=info,
        provider=registry.provider(info.provider),
        base_url=base_url,
        api_key=key,
        compatible=compatible,
    )


@pytest.fixture
def openai_endpoint() -> Callable[..., Endpoint]:
    """An OpenAI Chat Completions endpoint from the registry (the canary key by default)."""
    return _openai_endpoint


def _gemini_endpoint(
    wire_id: str = "gemini-2.5-flash",
    *,
    reasoning: bool = False,
    key: str | None = GEMINI_KEY,
    base_url: str = GEMINI_OFFICIAL,
) -> Endpoint:
    model = ModelInfo(
        id=f"gemini:{wire_id}", provider="gemini", wire_id=wire_id, reasoning=reasoning
    )
    return Endpoint(
        name=model.id, model=model, provider=GEMINI_PROVIDER, base_url=base_url, api_key=key
    )


@pytest.fixture
def gemini_endpoint() -> Callable[..., Endpoint]:
    """A Gemini endpoint for `wire_id` (the canary key and the official URL by default)."""
    return _gemini_endpoint


ANTHROPIC_KEY = "sk-ant-api03-canary7f3a9c1e5b2d4f6a8c0e"
ANTHROPIC_OFFICIAL = "https://api.anthropic.com"
ANTHROPIC_PROVIDER = ProviderInfo(
    name="anthropic",
    wire_format="anthropic_messages",
    base_url=ANTHROPIC_OFFICIAL,
    base_url_env="ANTHROPIC_BASE_URL",
    api_key_env="ANTHROPIC_API_KEY",
)
# 2025-08-21T12:40:41Z: 18 s before the documented requests reset.
ANTHROPIC_NOW = datetime.datetime(2025, 8, 21, 12, 40, 41, tzinfo=datetime.UTC).timestamp()
ANTHROPIC_ADAPTER = AnthropicMessagesAdapter(clock=lambda: ANTHROPIC_NOW)
ANTHROPIC_HELLO = [{"role": "user", "content": "Hello, world"}]


def _anthropic_endpoint(
    wire_id: str = "claude-sonnet-4-20250514",
    *,
    reasoning: bool = False,
    key: str | None = ANTHROPIC_KEY,
    base_url: str = ANTHROPIC_OFFICIAL,
) -> Endpoint:
    model = ModelInfo(f"anthropic:{wire_id}", "anthropic", wire_id, reasoning=reasoning)
    return Endpoint(model.id, model, ANTHROPIC_PROVIDER, base_url, api_key=key)


@dataclass(frozen=True, slots=True)
class AdaptiveModel(ModelInfo):
    """A registry entry carrying the adaptive_thinking flag the adapter reads."""

    adaptive_thinking: bool = True


def _anthropic_adaptive_endpoint() -> Endpoint:
    model = AdaptiveModel(
        "anthropic:claude-opus-4-7", "anthropic", "claude-opus-4-7", reasoning=True
    )
    return Endpoint(model.id, model, ANTHROPIC_PROVIDER, ANTHROPIC_OFFICIAL, api_key=ANTHROPIC_KEY)


def _anthropic_prompt(
    messages: list[dict[str, Any]], extra_body: dict[str, Any] | None = None
) -> Prompt:
    return Prompt(id=1, line=1, messages=messages, extra_body=dict(extra_body or {}))


def _anthropic_body(
    messages: list[dict[str, Any]] = ANTHROPIC_HELLO,
    sampling: SamplingParams | None = None,
    target: Endpoint | None = None,
    extra_body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    request = ANTHROPIC_ADAPTER.build_request(
        target or _anthropic_endpoint(),
        _anthropic_prompt(messages, extra_body),
        sampling or SamplingParams(),
        5.0,
    )
    parsed: dict[str, Any] = orjson.loads(request.body)
    return parsed


@pytest.fixture
def anthropic_endpoint() -> Callable[..., Endpoint]:
    """An Anthropic Messages endpoint for `wire_id` (the canary key and official URL by default)."""
    return _anthropic_endpoint


@pytest.fixture
def anthropic_adaptive_endpoint() -> Callable[[], Endpoint]:
    """An endpoint whose model only takes adaptive thinking."""
    return _anthropic_adaptive_endpoint


@pytest.fixture
def anthropic_body() -> Callable[..., dict[str, Any]]:
    """The JSON body the adapter builds for `messages` (on the default endpoint by default)."""
    return _anthropic_body


# --- end-to-end tests against the mock server ------------------------------------------------


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries and rate-limit pauses take no time; their lengths are tested elsewhere."""

    def instant(*args: Any, **kwargs: Any) -> Any:
        decision = retry.decide(*args, **kwargs)
        return type(decision)(decision.retry, 0.0, decision.reason)

    monkeypatch.setattr("lm_deluge_cli.engine.sender.decide", instant)
    monkeypatch.setattr("lm_deluge_cli.engine.sender.pause_for_rate_limit", lambda e: 0.0)


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    """The default network transport, closed after the test."""
    network = AiohttpTransport(8)
    yield network
    await network.aclose()


@pytest.fixture
def mock_root(start_mock_server: StartMockServer) -> Callable[..., str]:
    """Start a mock server with these settings; returns its root URL (no provider prefix)."""

    def start(**settings: Any) -> str:
        url, _ = start_mock_server(**settings)
        return url.removesuffix("/v1")

    return start


class RecordRequester:
    """A Requester whose `process` gives the record as written, for assertions on its JSON."""

    def __init__(self, requester: Requester) -> None:
        self.requester = requester

    @property
    def fatal(self) -> Exception | None:
        return self.requester.sender.fatal

    async def process(self, prompt: Prompt) -> dict[str, Any] | None:
        result = await self.requester.process(prompt)
        return None if result is None else to_json(result)


def one_model_requester(
    target: Endpoint,
    adapter: Adapter,
    transport: Transport,
    *,
    sampling: SamplingParams | None = None,
    attempts: int = 3,
) -> tuple[RecordRequester, RunStats]:
    """A Requester sending to `target` alone, without rate limits."""
    slot = ModelSlot(
        endpoint=target,
        adapter=adapter,
        transport=transport,
        weight=1.0,
        sampling=sampling or SamplingParams(),
        limits=LimiterChain(RateLimiter(None, None)),
        headers_describe=(True,),
    )
    stats = RunStats()
    built = Requester(
        [slot],
        max_concurrent_requests=4,
        max_attempts=attempts,
        request_timeout=5,
        retry_other_model=False,
        stats=stats,
        rng=random.Random(1),
    )
    return RecordRequester(built), stats
