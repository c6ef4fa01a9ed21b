"""Whole answers in all seven chat formats, over a real socket: a tool-call answer becomes a
record with its calls parsed, and an empty answer is retried and never cached."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

import pytest

from lm_deluge_cli.cache.memory import MemoryCache
from lm_deluge_cli.cache.resilient import ResilientCache
from lm_deluge_cli.config import ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoint
from lm_deluge_cli.engine.limiter import RateLimiter
from lm_deluge_cli.engine.limiter_chain import LimiterChain
from lm_deluge_cli.engine.requester import ModelSlot, Requester
from lm_deluge_cli.engine.reuse import Reuse
from lm_deluge_cli.engine.stats import RunStats
from lm_deluge_cli.io.records import to_json
from lm_deluge_cli.mock.formats import base_url
from lm_deluge_cli.providers import adapter_for
from lm_deluge_cli.providers.base import Adapter, Endpoint
from lm_deluge_cli.providers.bedrock import BedrockAnthropicAdapter
from lm_deluge_cli.transport.base import Transport
from lm_deluge_cli.types import Prompt, SamplingParams

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_waiting")]

KEY = "sk-mock-right-key-0123456789"
AWS_KEY_ID = "AKIAMOCKRIGHT0000000"
AWS = {
    "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": "mock-secret-not-checked",
    "AWS_REGION": "us-east-1",
}
# (format, model, the provider's key variable, the mock's base-URL provider)
FORMATS = [
    ("openai_chat", "openai:gpt-4.1-mini", "OPENAI_API_KEY", "openai"),
    ("openai_responses", "openai:gpt-4.1-mini", "OPENAI_API_KEY", "openai"),
    ("anthropic_messages", "anthropic:claude-haiku-4-5-20251001", "ANTHROPIC_API_KEY", "anthropic"),
    ("gemini", "gemini:gemini-2.5-flash", "GEMINI_API_KEY", "gemini"),
    ("mistral", "mistral:mistral-small-2506", "MISTRAL_API_KEY", "mistral"),
    ("cohere", "cohere:command-a-03-2025", "CO_API_KEY", "cohere"),
    ("bedrock_anthropic", "bedrock:global.anthropic.claude-sonnet-4-6", "", "bedrock"),
]
IDS = [name for name, *_ in FORMATS]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def target(
    name: str, model: str, key_env: str, provider: str, root: str
) -> tuple[Endpoint, Adapter]:
    env = {key_env: KEY} if key_env else AWS
    entry = ModelEntry(name=model, base_url=base_url(root, provider))
    endpoint = resolve_endpoint(entry, env=env)
    if name == "openai_responses":
        info = dataclasses.replace(endpoint.model, wire_format="openai_responses")
        endpoint = dataclasses.replace(endpoint, model=info)
    if name == "bedrock_anthropic":
        return endpoint, BedrockAnthropicAdapter(env=AWS)
    return endpoint, adapter_for(endpoint.wire_format)


def requester(
    endpoint: Endpoint, adapter: Adapter, transport: Transport, *, attempts: int, reuse: Reuse
) -> Requester:
    slot = ModelSlot(
        endpoint=endpoint,
        adapter=adapter,
        transport=transport,
        weight=1.0,
        sampling=SamplingParams(),
        limits=LimiterChain(RateLimiter(None, None)),
        headers_describe=(True,),
    )
    return Requester(
        [slot],
        max_concurrent_requests=4,
        max_attempts=attempts,
        request_timeout=5,
        retry_other_model=False,
        stats=RunStats(),
        rng=random.Random(1),
        reuse=reuse,
    )


async def record(run: Requester, prompt: Prompt) -> dict[str, Any]:
    result = await run.process(prompt)
    assert result is not None
    return to_json(result)


@pytest.mark.parametrize(("name", "model", "key_env", "provider"), FORMATS, ids=IDS)
async def test_a_tool_call_answer_is_a_record_with_its_calls(
    name: str,
    model: str,
    key_env: str,
    provider: str,
    mock_root: Callable[..., str],
    transport: Transport,
) -> None:
    root = mock_root(api_key=AWS_KEY_ID if provider == "bedrock" else KEY)
    endpoint, adapter = target(name, model, key_env, provider, root)
    run = requester(endpoint, adapter, transport, attempts=2, reuse=Reuse(None))
    messages = [{"role": "user", "content": "What is the weather in Lisbon today?"}]
    prompt = Prompt(
        id="w",
        line=1,
        messages=messages,
        extra_body={"tools": [WEATHER], "tool_choice": "required"},
    )
    got = await record(run, prompt)
    assert got["status"] == "ok", got["error"]
    assert got["finish_reason"] == "tool_calls"
    assert got["provider_finish_reason"]
    calls = got["tool_calls"]
    assert calls and all(call["name"] == "get_weather" for call in calls)
    for call in calls:
        assert isinstance(call["id"], str) and call["id"]
        assert isinstance(call["arguments"], dict) and isinstance(call["arguments"]["city"], str)


@pytest.mark.parametrize(("name", "model", "key_env", "provider"), FORMATS, ids=IDS)
async def test_an_empty_answer_is_retried_and_never_cached(
    name: str,
    model: str,
    key_env: str,
    provider: str,
    mock_root: Callable[..., str],
    transport: Transport,
) -> None:
    key = AWS_KEY_ID if provider == "bedrock" else KEY
    messages = [{"role": "user", "content": "Say something."}]
    # The first answer says nothing; the retry is answered.
    root = mock_root(api_key=key, faults={"empty_answer": 1.0}, fault_first_n=1)
    endpoint, adapter = target(name, model, key_env, provider, root)
    cache = ResilientCache(MemoryCache())
    run = requester(endpoint, adapter, transport, attempts=3, reuse=Reuse(cache))
    got = await record(run, Prompt(id="e", line=1, messages=messages))
    assert (got["status"], got["attempts"]) == ("ok", 2)
    assert got["completion"] and cache.writes == 1
    # Every answer empty: an empty_answer error, nothing stored.
    root = mock_root(api_key=key, faults={"empty_answer": 1.0})
    endpoint, adapter = target(name, model, key_env, provider, root)
    cache = ResilientCache(MemoryCache())
    run = requester(endpoint, adapter, transport, attempts=2, reuse=Reuse(cache))
    got = await record(run, Prompt(id="e", line=1, messages=messages))
    assert (got["status"], got["attempts"]) == ("error", 2)
    assert got["error"]["type"] == "empty_answer"
    assert cache.writes == 0
