"""The loopback server: HTTP/1.1 over a real socket, with httpx and raw-socket clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest

from lm_deluge_cli.mock.server import MockServer, serve
from lm_deluge_cli.mock.simulator import MockSettings, mock_completion

pytestmark = pytest.mark.anyio

MODEL = "gpt-4o-mini"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def messages(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def chat(text: str = "Hello", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": messages(text), **extra}


async def started(**settings: Any) -> MockServer:
    return await serve(MockSettings(**settings))


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with await started() as running:
        yield running


def root(server: MockServer) -> str:
    return server.url.removesuffix("/v1")


def raw_request(body: bytes, path: str = "/v1/chat/completions", extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return status, headers, body


async def test_a_chat_completion_round_trip(server: MockServer) -> None:
    assert server.url == f"http://127.0.0.1:{server.port}/v1"
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post("/chat/completions", json=chat("Round trip"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    expected = mock_completion(messages("Round trip"), MODEL)
    assert body["choices"][0]["message"]["content"] == expected
    assert body["usage"]["prompt_tokens"] == 3 + 4
    assert server.simulator.statistics().ok == 1


async def test_the_path_without_v1_is_accepted_too(server: MockServer) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{root(server)}/chat/completions", json=chat())
    assert response.status_code == 200


async def test_keep_alive_reuses_one_connection(server: MockServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        for i in range(20):
            response = await client.post("/chat/completions", json=chat(f"n{i}"))
            assert response.status_code == 200
        assert server.open_connections == 1


async def test_many_concurrent_requests(server: MockServer) -> None:
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=server.url, limits=limits) as client:

        async def ask(i: int) -> str:
            response = await client.post("/chat/completions", json=chat(f"question {i}"))
            assert response.status_code == 200
            content: str = response.json()["choices"][0]["message"]["content"]
            return content

        answers = await asyncio.gather(*(ask(i) for i in range(200)))
    assert answers == [mock_completion(messages(f"question {i}"), MODEL) for i in range(200)]
    assert server.simulator.statistics().ok == 200


async def test_pipelined_requests_are_answered_in_order() -> None:
    # Random latency finishes them out of order; HTTP/1.1 must still answer in order.
    async with await started(latency_s=0.001, latency_jitter_s=0.05, seed=3) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        texts = [f"pipelined {i}" for i in range(10)]
        writer.write(b"".join(raw_request(orjson.dumps(chat(text))) for text in texts))
        for text in texts:
            status, _, body = await read_response(reader)
            assert status == 200
            content = orjson.loads(body)["choices"][0]["message"]["content"]
            assert content == mock_completion(messages(text), MODEL)
        writer.close()
        await writer.wait_closed()


async def test_a_request_split_across_packets_and_a_chunked_body(server: MockServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    payload = orjson.dumps(chat("chunky"))
    whole = raw_request(payload)
    for i in range(0, len(whole), 7):
        writer.write(whole[i : i + 7])
        await writer.drain()
    assert (await read_response(reader))[0] == 200
    half = len(payload) // 2
    chunked = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
        + f"{half:x}\r\n".encode()
        + payload[:half]
        + f"\r\n{len(payload) - half:x};ext=1\r\n".encode()
        + payload[half:]
        + b"\r\n0\r\n\r\n"
    )
    writer.write(chunked[:40])
    await writer.drain()
    writer.write(chunked[40:])
    status, _, body = await read_response(reader)
    assert status == 200
    content = orjson.loads(body)["choices"][0]["message"]["content"]
    assert content == mock_completion(messages("chunky"), MODEL)
    writer.close()
    await writer.wait_closed()


async def test_connection_close_is_honoured(server: MockServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(raw_request(orjson.dumps(chat()), extra="connection: close\r\n"))
    status, headers, _ = await read_response(reader)
    assert (status, headers["connection"]) == (200, "close")
    assert await reader.read() == b""  # the server closed its side
    writer.close()


async def test_malformed_http_gets_400_and_a_close(server: MockServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"NONSENSE\r\n\r\n")
    status, _, body = await read_response(reader)
    assert status == 400
    assert orjson.loads(body)["error"]["type"] == "invalid_request_error"
    assert await reader.read() == b""
    writer.close()


async def test_429_with_retry_after() -> None:
    async with (
        await started(requests_per_minute=60) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        assert (await client.post("/chat/completions", json=chat())).status_code == 200
        response = await client.post("/chat/completions", json=chat())
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert int(response.headers["retry-after-ms"]) <= 1000
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


async def test_latency_does_not_block_the_server() -> None:
    async with (
        await started(latency_s=0.3) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        begin = time.monotonic()
        responses = await asyncio.gather(
            *(client.post("/chat/completions", json=chat(str(i))) for i in range(20))
        )
        elapsed = time.monotonic() - begin
    assert all(response.status_code == 200 for response in responses)
    assert 0.3 <= elapsed < 1.5


async def test_drop_closes_the_connection_without_an_answer() -> None:
    async with (
        await started(drop_rate=1.0) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        with pytest.raises(httpx.TransportError):
            await client.post("/chat/completions", json=chat())
    assert server.simulator.statistics().dropped == 1


async def test_hang_never_answers_until_the_client_gives_up() -> None:
    server = await started(hang_rate=1.0)
    async with httpx.AsyncClient(base_url=server.url, timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/chat/completions", json=chat())
    assert server.simulator.statistics().hung == 1
    # Closing must not wait for hung requests.
    await asyncio.wait_for(server.close(), timeout=2)


async def test_close_cuts_open_hung_connections() -> None:
    server = await started(hang_rate=1.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(raw_request(orjson.dumps(chat())))
    await writer.drain()
    await asyncio.sleep(0.05)
    assert server.open_connections == 1
    await asyncio.wait_for(server.close(), timeout=2)
    assert await asyncio.wait_for(reader.read(), timeout=2) == b""
    writer.close()


async def test_api_key_is_checked() -> None:
    async with (
        await started(api_key="sk-mock-right") as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        wrong = await client.post(
            "/chat/completions", json=chat(), headers={"authorization": "Bearer sk-mock-wrong"}
        )
        right = await client.post(
            "/chat/completions", json=chat(), headers={"authorization": "Bearer sk-mock-right"}
        )
    assert wrong.status_code == 401
    assert b"sk-mock-wrong" not in wrong.content
    assert right.status_code == 200


async def test_health_stats_and_reset(server: MockServer) -> None:
    async with httpx.AsyncClient(base_url=root(server)) as client:
        health = await client.get("/health")
        assert (health.status_code, health.text) == (200, "ok")
        await client.post("/v1/chat/completions", json=chat())
        await client.post("/v1/chat/completions", content=b"not json")
        stats = (await client.get("/stats")).json()
        assert stats["requests_seen"] == 2
        assert stats["ok"] == 1
        assert set(stats) == {
            "requests_seen",
            "ok",
            "rate_limited",
            "errors",
            "dropped",
            "hung",
            "malformed",
            "tokens_in",
            "tokens_out",
            "inputs_embedded",
            "documents_ranked",
            "cache_read_tokens",
            "cache_write_tokens",
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "files_uploaded",
            "batches_created",
            "batch_lines_submitted",
            "in_flight",
            "connections_opened",
            "first_answer_s",
        }
        assert stats["in_flight"] == 0
        # One keep-alive connection carried everything; its first answer came at once.
        assert stats["connections_opened"] == 1
        assert 0 <= stats["first_answer_s"] < 1
        reset = await client.post("/stats/reset")
        assert reset.status_code == 200
        fresh = (await client.get("/stats?fresh=1")).json()
        assert fresh["requests_seen"] == 0
        # The connection still open counts; no answer has gone out since the reset.
        assert (fresh["connections_opened"], fresh["first_answer_s"]) == (1, None)


async def test_the_ramp_is_first_connection_to_first_answer() -> None:
    # Connections opened a while before the first request count toward the ramp: a client
    # that sets up all its connections before it sends anything shows it here.
    server = await started(latency_s=0.2)
    async with server, httpx.AsyncClient(base_url=root(server)) as client:
        assert (await client.get("/stats")).json()["first_answer_s"] is None
        await asyncio.sleep(0.1)
        await asyncio.gather(*(client.post("/v1/chat/completions", json=chat()) for _ in range(3)))
        stats = (await client.get("/stats")).json()
    assert 0.3 <= stats["first_answer_s"] < 1.5
    assert 1 <= stats["connections_opened"] <= 4


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/models", 404),
        ("POST", "/v1/completions", 404),
        ("GET", "/v1/chat/completions", 405),
        ("GET", "/anthropic/v1/messages", 405),
        ("GET", "/model/anthropic.claude-x/invoke", 405),
        ("POST", "/mistral/v1/messages", 404),
        ("POST", "/health", 405),
    ],
)
async def test_unknown_routes_get_openai_style_errors(
    server: MockServer, method: str, path: str, status: int
) -> None:
    async with httpx.AsyncClient(base_url=root(server)) as client:
        response = await client.request(method, path)
    assert response.status_code == status
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_the_start_mock_server_fixture(
    start_mock_server: Callable[..., tuple[str, Callable[[], None]]],
) -> None:
    url, stop = start_mock_server(requests_per_minute=60)
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
    with httpx.Client(base_url=url) as client:
        first = client.post("/chat/completions", json=chat())
        second = client.post("/chat/completions", json=chat())
    assert (first.status_code, second.status_code) == (200, 429)
    stop()
    stop()  # stopping twice is harmless
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{url}/chat/completions", json=chat())


async def test_one_server_speaks_every_format(server: MockServer) -> None:
    assert server.root_url == f"http://127.0.0.1:{server.port}"
    assert server.base_url("anthropic") == f"{server.root_url}/anthropic"
    asks = [
        ("/mistral/v1/chat/completions", {}, chat(), ("choices", 0, "message", "content")),
        ("/cohere/v2/chat", {}, chat(), ("message", "content", 0, "text")),
        (
            "/anthropic/v1/messages",
            {"anthropic-version": "2023-06-01"},
            {**chat(), "max_tokens": 100},
            ("content", 0, "text"),
        ),
        (
            f"/gemini/v1beta/models/{MODEL}:generateContent",
            {},
            {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]},
            ("candidates", 0, "content", "parts", 0, "text"),
        ),
        (
            f"/bedrock/model/{MODEL}/invoke",
            {"authorization": "AWS4-HMAC-SHA256 Credential=AKIAX/d, SignedHeaders=h, Signature=s"},
            {
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 100,
                "messages": messages("Hello"),
            },
            ("content", 0, "text"),
        ),
    ]
    async with httpx.AsyncClient(base_url=server.root_url) as client:
        for path, headers, payload, where in asks:
            response = await client.post(path, json=payload, headers=headers)
            assert response.status_code == 200, (path, response.text)
            value: Any = response.json()
            for step in where:
                value = value[step]
            assert value == mock_completion(messages("Hello"), MODEL), path
    assert server.simulator.statistics().ok == len(asks)


async def test_the_query_string_reaches_the_format() -> None:
    async with await started(api_key="gm-key-0123") as server:
        path = f"{server.base_url('gemini')}/v1beta/models/{MODEL}:generateContent"
        payload = {"contents": [{"parts": [{"text": "Hi"}]}]}
        async with httpx.AsyncClient() as client:
            refused = await client.post(path, json=payload)
            accepted = await client.post(path, params={"key": "gm-key-0123"}, json=payload)
    assert refused.status_code == 403
    assert refused.json()["error"]["status"] == "PERMISSION_DENIED"
    assert accepted.status_code == 200
