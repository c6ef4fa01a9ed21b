"""The loopback server acting out faults on the wire: a reset mid-body, a dribbled body,
requests in flight, and going down and coming back on the same port."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
import pytest

from lm_deluge_cli.mock.server import MockServer, serve
from lm_deluge_cli.mock.simulator import MockSettings, mock_completion

pytestmark = pytest.mark.anyio

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Hello"}]
CHAT = {"model": MODEL, "messages": MESSAGES}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def started(**settings: Any) -> MockServer:
    return await serve(MockSettings(**settings))


def raw_request(body: bytes) -> bytes:
    head = f"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def test_reset_mid_body_sends_the_head_and_half_the_body_then_resets() -> None:
    async with await started(faults={"reset_mid_body": 1.0}) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(raw_request(orjson.dumps(CHAT)))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
        received = b""
        with pytest.raises(ConnectionResetError):
            while chunk := await reader.read(65536):
                received += chunk
        assert 0 < len(received) < length
        writer.close()
    assert server.simulator.statistics().malformed == 1


async def test_a_slow_body_is_dribbled_over_its_seconds() -> None:
    async with await started(faults={"slow_body": 1.0}, slow_body_s=0.6) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        sent = time.monotonic()
        writer.write(raw_request(orjson.dumps(CHAT)))
        head = await reader.readuntil(b"\r\n\r\n")
        assert time.monotonic() - sent < 0.2  # the head at once
        length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
        pieces: list[bytes] = []
        while sum(map(len, pieces)) < length:
            pieces.append(await reader.read(65536))
        took = time.monotonic() - sent
        writer.close()
    assert 0.5 < took < 1.5
    assert len(pieces) > 10  # in many small pieces, not one
    body = orjson.loads(b"".join(pieces))
    assert body["choices"][0]["message"]["content"] == mock_completion(MESSAGES, MODEL)


async def test_answers_pipelined_behind_a_slow_body_wait_for_it() -> None:
    async with await started(faults={"slow_body": 1.0}, slow_body_s=0.3, fault_first_n=1) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(raw_request(orjson.dumps(CHAT)) * 2)
        for _ in range(2):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
            body = orjson.loads(await reader.readexactly(length))
            assert body["object"] == "chat.completion"
        writer.close()


async def test_stats_count_requests_in_flight() -> None:
    async with (
        await started(latency_s=0.5) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        pending = [
            asyncio.create_task(client.post("/chat/completions", json=CHAT)) for _ in range(3)
        ]
        await asyncio.sleep(0.2)
        stats = (await client.get(server.root_url + "/stats")).json()
        assert (stats["requests_seen"], stats["in_flight"]) == (3, 3)
        assert server.in_flight == 3
        await asyncio.gather(*pending)
        assert (await client.get(server.root_url + "/stats")).json()["in_flight"] == 0


async def test_a_suspended_server_refuses_then_comes_back_on_the_same_port() -> None:
    server = await started(hang_rate=1.0, fault_first_n=1)
    port = server.port
    async with httpx.AsyncClient(base_url=server.url, timeout=2) as client:
        hung = asyncio.create_task(client.post("/chat/completions", json=CHAT))
        await asyncio.sleep(0.1)
        await server.suspend()
        assert not server.listening
        with pytest.raises(httpx.TransportError):
            await hung  # cut when the server went down
        with pytest.raises(httpx.ConnectError):
            await client.post("/chat/completions", json=CHAT)
        await server.resume()
        assert (server.listening, server.port) == (True, port)
        answered = await client.post("/chat/completions", json=CHAT)
        assert answered.status_code == 200
    # The simulator carried on: its counters span the outage.
    assert server.simulator.statistics().requests_seen == 2
    await server.close()
    with pytest.raises(RuntimeError, match="closed"):
        await server.resume()
