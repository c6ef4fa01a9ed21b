"""Each provider's adapter meets the mock's faults in that provider's own format, over a
socket, and turns each into the error record the fault matrix expects."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator

import pytest

from lm_deluge_cli.config import ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoint
from lm_deluge_cli.engine.limiter import RateLimiter
from lm_deluge_cli.engine.limiter_chain import LimiterChain
from lm_deluge_cli.engine.requester import ModelSlot, Requester
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.errors import status_error_class
from lm_deluge_cli.io.records import to_json
from lm_deluge_cli.mock.formats import base_url
from lm_deluge_cli.mock.server import serve
from lm_deluge_cli.mock.simulator import MockSettings
from lm_deluge_cli.providers import Adapter, Endpoint, adapter_for
from lm_deluge_cli.providers.bedrock import BedrockAnthropicAdapter
from lm_deluge_cli.providers.registry import load_registry
from lm_deluge_cli.transport.aiohttp_transport import AiohttpTransport
from lm_deluge_cli.types import Prompt, SamplingParams
from tests.faults.support import KEY

pytestmark = pytest.mark.anyio

AWS = {
    "AWS_ACCESS_KEY_ID": "AKIAMOCKFAULTS000000",
    "AWS_SECRET_ACCESS_KEY": "mock-secret-not-checked",
    "AWS_REGION": "us-east-1",
}
# provider (its base path on the mock server) → a registry model and its key variable
PROVIDERS = {
    "openai": ("openai:gpt-4.1-mini", "OPENAI_API_KEY"),
    "openai_responses": ("openai:gpt-4.1-mini", "OPENAI_API_KEY"),
    "anthropic": ("anthropic:claude-haiku-4-5-20251001", "ANTHROPIC_API_KEY"),
    "gemini": ("gemini:gemini-2.5-flash", "GEMINI_API_KEY"),
    "mistral": ("mistral:mistral-small-2506", "MISTRAL_API_KEY"),
    "cohere": ("cohere:command-a-03-2025", "CO_API_KEY"),
    "bedrock": ("bedrock:global.anthropic.claude-sonnet-4-6", ""),
}
STATUSES = ["408", "500", "502", "503", "504", "529"]
BROKEN_BODIES = ["truncated_json", "html", "missing_fields"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    network = AiohttpTransport(4)
    yield network
    await network.aclose()


def endpoint(provider: str, root: str) -> Endpoint:
    model, key_env = PROVIDERS[provider]
    path = "openai" if provider == "openai_responses" else provider
    entry = ModelEntry(name=model, base_url=base_url(root, path))
    resolved = resolve_endpoint(entry, env={key_env: KEY} if key_env else AWS)
    if provider == "openai_responses":
        info = dataclasses.replace(resolved.model, wire_format="openai_responses")
        resolved = dataclasses.replace(resolved, model=info)
    return resolved


def adapter(provider: str, target: Endpoint) -> Adapter:
    if provider == "bedrock":
        return BedrockAnthropicAdapter(env=AWS)
    return adapter_for(target.wire_format)


async def one_attempt(provider: str, fault: str, transport: AiohttpTransport) -> dict[str, object]:
    """The record of one prompt sent once to a server where `fault` is always on."""
    async with await serve(MockSettings(faults={fault: 1.0})) as server:
        target = endpoint(provider, server.root_url)
        slot = ModelSlot(
            endpoint=target,
            adapter=adapter(provider, target),
            transport=transport,
            weight=1.0,
            sampling=SamplingParams(),
            limits=LimiterChain(RateLimiter(None, None)),
            headers_describe=(True,),
        )
        requester = Requester(
            [slot],
            max_concurrent_requests=1,
            max_attempts=1,
            request_timeout=5,
            retry_other_model=False,
            stats=RunStats(),
            rng=random.Random(0),
        )
        messages = [{"role": "user", "content": "Say something."}]
        record = await requester.process(Prompt(id="p0", line=1, messages=messages))
        assert record is not None
        seen = server.simulator.statistics().requests_seen
        assert seen == 1
        return to_json(record)


def readable(message: object) -> bool:
    return isinstance(message, str) and 0 < len(message) <= 600 and "\n" not in message


@pytest.mark.parametrize("fault", STATUSES)
@pytest.mark.parametrize("provider", list(PROVIDERS))
async def test_an_error_status_in_the_providers_format(
    provider: str, fault: str, transport: AiohttpTransport
) -> None:
    record = await one_attempt(provider, fault, transport)
    error = record["error"]
    assert isinstance(error, dict)
    status = int(fault)
    assert record["status"] == "error"
    assert error["status_code"] == status
    assert error["type"] == status_error_class(status).type
    assert error["message"].startswith(f"{status}: ")
    assert readable(error["message"]) and "<" not in error["message"], error


@pytest.mark.parametrize("fault", BROKEN_BODIES)
@pytest.mark.parametrize("provider", list(PROVIDERS))
async def test_a_broken_200_body_in_the_providers_format(
    provider: str, fault: str, transport: AiohttpTransport
) -> None:
    record = await one_attempt(provider, fault, transport)
    error = record["error"]
    assert isinstance(error, dict)
    assert (record["status"], error["type"], error["status_code"]) == (
        "error",
        "invalid_response",
        200,
    )
    assert error["message"].startswith("unreadable "), error
    assert readable(error["message"]), error


def test_every_provider_of_the_registry_is_covered() -> None:
    served = {"openai", "anthropic", "gemini", "mistral", "cohere", "bedrock"}
    assert served <= {name.split(":")[0] for name, _ in PROVIDERS.values()}
    assert served <= set(load_registry().providers)
