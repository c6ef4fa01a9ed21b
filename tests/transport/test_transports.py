"""The network transports over real loopback sockets.

Every network transport must behave the same: statuses come back as responses, failures
become APIConnectionError / APITimeoutError, redirects are not followed.
"""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import orjson
import pytest

from lm_deluge_cli.config import ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoint
from lm_deluge_cli.errors import APIConnectionError, APIStatusError, APITimeoutError, ConfigError
from lm_deluge_cli.providers.openai_chat import OpenAIChatAdapter
from lm_deluge_cli.transport import (
    DEFAULT_HTTP_CLIENT,
    HTTP_CLIENTS,
    Transport,
    make_transport,
    transport_class,
)
from lm_deluge_cli.transport.aiohttp_transport import AiohttpTransport
from lm_deluge_cli.transport.httpx_transport import POOL_CONNECTIONS, HttpxTransport
from lm_deluge_cli.types import HttpRequest, Prompt, SamplingParams

pytestmark = pytest.mark.anyio

KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
CHAT = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]})
JSON = {"content-type": "application/json"}

StartMockServer = Callable[..., tuple[str, Callable[[], None]]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=HTTP_CLIENTS)
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    made = make_transport(8, request.param)
    try:
        yield made
    finally:
        await made.aclose()


def chat(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> HttpRequest:
    return HttpRequest("POST", f"{url}/chat/completions", headers or JSON, CHAT, timeout)


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- A tiny loopback HTTP server for what the mock provider does not do -------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        self.rfile.read(length)
        self.server.seen.append((self.path, self.headers.get("authorization")))
        self.server.behaviour(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, behaviour: Callable[[BaseHTTPRequestHandler], None]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.behaviour = behaviour
        self.seen: list[tuple[str, str | None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def http_server() -> Iterator[Callable[[Callable[[BaseHTTPRequestHandler], None]], _Server]]:
    servers: list[_Server] = []

    def start(behaviour: Callable[[BaseHTTPRequestHandler], None]) -> _Server:
        server = _Server(behaviour)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _answer(
    handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


# --- Network transports ----------------------------------------------------------------


async def test_round_trip(transport: Transport, start_mock_server: StartMockServer) -> None:
    url, _ = start_mock_server()
    response = await transport.send(chat(url))
    assert response.status == 200
    assert all(name == name.lower() for name in response.headers)
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    body = orjson.loads(response.body)
    assert body["object"] == "chat.completion"
    assert isinstance(body["choices"][0]["message"]["content"], str)
    assert body["usage"]["prompt_tokens"] > 0


async def test_request_headers_reach_the_server(
    transport: Transport, start_mock_server: StartMockServer
) -> None:
    url, _ = start_mock_server(api_key=KEY)
    authorized = await transport.send(chat(url, headers={**JSON, "authorization": f"Bearer {KEY}"}))
    assert authorized.status == 200
    anonymous = await transport.send(chat(url))
    assert anonymous.status == 401
    assert orjson.loads(anonymous.body)["error"]["code"] == "invalid_api_key"


async def test_adapter_request_round_trip(
    transport: Transport, start_mock_server: StartMockServer
) -> None:
    url, _ = start_mock_server()
    endpoint = resolve_endpoint(
        ModelEntry("openai:gpt-4o-mini", base_url=url), env={"OPENAI_API_KEY": KEY}
    )
    adapter = OpenAIChatAdapter()
    prompt = Prompt(id=1, line=1, messages=[{"role": "user", "content": "Say hi"}])
    response = await transport.send(adapter.build_request(endpoint, prompt, SamplingParams(), 5.0))
    completion = adapter.parse_response(endpoint, response)
    assert completion.text
    assert completion.usage.input_tokens > 0
    assert completion.finish_reason in ("stop", "length")


async def test_a_429_is_a_normal_response(
    transport: Transport, start_mock_server: StartMockServer
) -> None:
    # One request per second with a one-second bucket: the second request is refused.
    url, _ = start_mock_server(requests_per_minute=60, burst_s=1.0)
    first = await transport.send(chat(url))
    second = await transport.send(chat(url))
    assert first.status == 200
    assert second.status == 429
    assert int(second.headers["retry-after-ms"]) > 0
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    assert orjson.loads(second.body)["error"]["code"] == "rate_limit_exceeded"


async def test_connection_refused(transport: Transport) -> None:
    started = time.monotonic()
    with pytest.raises(APIConnectionError) as info:
        await transport.send(chat(f"http://127.0.0.1:{free_port()}/v1", timeout=5.0))
    assert not isinstance(info.value, APITimeoutError)
    assert str(info.value).startswith("connection failed")
    assert info.value.retryable
    assert time.monotonic() - started < 3.0


async def test_a_hang_times_out(transport: Transport, start_mock_server: StartMockServer) -> None:
    url, _ = start_mock_server(hang_rate=1.0)
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as info:
        await transport.send(chat(url, timeout=0.3))
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 3.0
    assert info.value.type == "timeout"
    assert "0.3s" in str(info.value)


async def test_a_drop_is_a_connection_error(
    transport: Transport, start_mock_server: StartMockServer
) -> None:
    url, _ = start_mock_server(drop_rate=1.0)
    with pytest.raises(APIConnectionError) as info:
        await transport.send(chat(url, timeout=5.0))
    assert not isinstance(info.value, APITimeoutError)
    assert info.value.type == "connection_error"


async def test_a_body_cut_mid_way_is_a_connection_error_said_plainly(
    transport: Transport, start_mock_server: StartMockServer
) -> None:
    url, _ = start_mock_server(faults={"reset_mid_body": 1.0})
    with pytest.raises(APIConnectionError) as info:
        await transport.send(chat(url, timeout=5.0))
    assert not isinstance(info.value, APITimeoutError)
    text = str(info.value)
    assert text.startswith("connection failed: the connection broke before the whole response")
    # Not aiohttp's own wording, which quotes its parser with a status the server never sent.
    assert "ContentLengthError" not in text and "400" not in text


async def test_redirects_are_not_followed(transport: Transport, http_server: Any) -> None:
    elsewhere = http_server(lambda h: _answer(h, 200, JSON, b'{"stolen": true}'))
    target = f"{elsewhere.url}/v1/chat/completions?token={KEY}"
    redirect = http_server(lambda h: _answer(h, 302, {"location": target}, b"moved"))
    headers = {**JSON, "authorization": f"Bearer {KEY}"}
    with pytest.raises(APIStatusError) as caught:
        await transport.send(chat(f"{redirect.url}/v1", headers=headers))
    assert caught.value.status_code == 302
    # The message names where the server pointed, never the key (even when it echoes it).
    assert f"redirect to {elsewhere.url}/v1/chat/completions?token=[redacted]" in str(caught.value)
    assert KEY not in str(caught.value)
    assert redirect.seen == [("/v1/chat/completions", f"Bearer {KEY}")]
    # The key never went to the other host.
    assert elsewhere.seen == []


async def test_a_3xx_without_a_location_is_an_ordinary_response(
    transport: Transport, http_server: Any
) -> None:
    server = http_server(lambda h: _answer(h, 304, {}, b""))
    response = await transport.send(chat(f"{server.url}/v1"))
    assert response.status == 304
    # http.server writes "Server:" and "Date:"; the transport hands them on lower-cased.
    assert "server" in response.headers
    assert "date" in response.headers
    assert all(name == name.lower() for name in response.headers)


async def test_the_timeout_bounds_the_whole_response(
    transport: Transport, http_server: Any
) -> None:
    # Headers at once, then one body byte every 0.1 s for 3 s: every read is quick, the
    # whole response is not.
    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("content-length", "30")
        handler.end_headers()
        try:
            for _ in range(30):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    server = http_server(drip)
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        await transport.send(chat(f"{server.url}/v1", timeout=0.5))
    assert time.monotonic() - started < 2.0


async def test_a_key_in_a_refused_header_is_not_in_the_error(
    transport: Transport, start_mock_server: StartMockServer
) -> None:
    url, _ = start_mock_server()
    for bad in (f"Bearer {KEY}\r\nx-injected: 1", f"Bearer {KEY[:10]}\n{KEY[10:]}"):
        with pytest.raises(APIConnectionError) as info:
            await transport.send(chat(url, headers={**JSON, "authorization": bad}))
        assert KEY[:10] not in str(info.value)
        assert KEY[10:] not in str(info.value)


async def test_a_malformed_url_is_a_connection_error(transport: Transport) -> None:
    for url in ("http://[::1/v1", "ftp://127.0.0.1/v1", "mock://in-process/v1"):
        with pytest.raises(APIConnectionError):
            await transport.send(chat(url, timeout=2.0))


async def test_aclose_twice_is_harmless(
    transport: Transport, start_mock_server: StartMockServer
) -> None:
    url, _ = start_mock_server()
    assert (await transport.send(chat(url))).status == 200
    await transport.aclose()
    await transport.aclose()


# --- make_transport --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "env", "cls"),
    [
        ("aiohttp", None, AiohttpTransport),
        ("httpx", None, HttpxTransport),
        (None, None, AiohttpTransport),
        (None, "httpx", HttpxTransport),
        (None, "aiohttp", AiohttpTransport),
        (None, "", AiohttpTransport),
        # An explicit kind beats the environment.
        ("aiohttp", "httpx", AiohttpTransport),
    ],
)
async def test_make_transport(
    monkeypatch: pytest.MonkeyPatch, kind: str | None, env: str | None, cls: type[Transport]
) -> None:
    if env is not None:
        monkeypatch.setenv("LM_DELUGE_HTTP_CLIENT", env)
    made = make_transport(4, kind)
    try:
        assert type(made) is cls
    finally:
        await made.aclose()
    assert DEFAULT_HTTP_CLIENT == "aiohttp"


@pytest.mark.parametrize(
    ("kind", "cls"), [("aiohttp", AiohttpTransport), ("httpx", HttpxTransport)]
)
async def test_transport_class_is_what_make_transport_makes(
    kind: str, cls: type[Transport]
) -> None:
    assert transport_class(kind) is cls


@pytest.mark.parametrize(("kind", "env"), [("requests", None), (None, "curl"), ("HTTPX", None)])
async def test_make_transport_rejects_unknown_clients(
    monkeypatch: pytest.MonkeyPatch, kind: str | None, env: str | None
) -> None:
    if env is not None:
        monkeypatch.setenv("LM_DELUGE_HTTP_CLIENT", env)
    with pytest.raises(ConfigError) as info:
        make_transport(4, kind)
    assert repr(kind or env) in str(info.value)
    assert "aiohttp" in str(info.value) and "httpx" in str(info.value)


async def test_httpx_holds_the_runs_connections_open_at_once_over_small_pools(
    http_server: Callable[[Callable[[BaseHTTPRequestHandler], None]], _Server],
) -> None:
    # Every request waits for the other nine: ten connections open at once, or none
    # answers before the barrier gives up.
    together = threading.Barrier(10, timeout=5)

    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        together.wait()
        _answer(handler, 200, JSON, b"{}")

    server = http_server(behaviour)
    made = HttpxTransport(10)
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await made.send(chat(server.url))).status)

    try:
        # httpcore looks at every connection of a pool on every request: pools stay small.
        assert len(made._clients) == -(-10 // POOL_CONNECTIONS)
        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(one)
    finally:
        await made.aclose()
    assert statuses == [200] * 10
    assert made._in_flight == [0] * len(made._clients)


def test_httpcore_finds_sniffio() -> None:
    # httpcore imports sniffio on every request; an absent one is a failed import, and a
    # search of the whole path, every time.
    assert importlib.util.find_spec("sniffio") is not None
