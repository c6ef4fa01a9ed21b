"""What the mock answers, over a real loopback socket: a tool-calling conversation, and the
prompt cache's writes becoming readable only once the answer that wrote them is sent."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from lm_deluge_cli.mock.server import serve
from lm_deluge_cli.mock.simulator import MockSettings
from tests.mock.chats import TOOLS, calls_of, continued, request, text_of

pytestmark = pytest.mark.anyio

MANUAL = " ".join(f"Rule {i}: answer plainly and cite the section you used." for i in range(110))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_tool_conversation_over_the_socket() -> None:
    server = await serve(MockSettings())
    async with server, httpx.AsyncClient(base_url=server.url) as client:
        body = request("openai", "What is the weather in Paris?", tools=TOOLS)
        first = (await client.post("/chat/completions", json=body)).json()
        assert first["choices"][0]["finish_reason"] == "tool_calls"
        assert calls_of("openai", first)
        later = continued("openai", body, first, "Sunny")
        final = (await client.post("/chat/completions", json=later)).json()
    assert final["choices"][0]["finish_reason"] == "stop"
    assert "Sunny" in text_of("openai", final)


def cached(question: str) -> dict[str, Any]:
    system = [{"type": "text", "text": MANUAL, "cache_control": {"type": "ephemeral"}}]
    return {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 64,
        "system": system,
        "messages": [{"role": "user", "content": question}],
    }


async def test_requests_in_flight_together_all_write_then_later_ones_read() -> None:
    headers = {"anthropic-version": "2023-06-01"}
    server = await serve(MockSettings(latency_s=0.3))
    base = server.base_url("anthropic")
    async with server, httpx.AsyncClient(base_url=base, headers=headers) as client:
        together = await asyncio.gather(
            *(client.post("/v1/messages", json=cached(f"Question {i}?")) for i in range(3))
        )
        usages = [response.json()["usage"] for response in together]
        later = (await client.post("/v1/messages", json=cached("Later?"))).json()["usage"]
        stats = (await client.get(server.root_url + "/stats")).json()
    written = usages[0]["cache_creation_input_tokens"]
    assert written > 1024
    assert all(u["cache_read_input_tokens"] == 0 for u in usages)
    assert all(u["cache_creation_input_tokens"] == written for u in usages)
    assert (later["cache_read_input_tokens"], later["cache_creation_input_tokens"]) == (written, 0)
    assert (stats["cache_write_tokens"], stats["cache_read_tokens"]) == (3 * written, written)
