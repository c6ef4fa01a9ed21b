"""A fast loopback HTTP/1.1 server that puts the mock provider's simulator on a socket.

Every wire format is served at once, each under its own path (see `formats`), so one
server stands in for OpenAI, Anthropic, Gemini, Mistral, Cohere and Bedrock together.

Built on `asyncio.Protocol` rather than streams: a stream pair per request costs more CPU
than the whole simulated answer, and the engine's tests need thousands of requests a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import socket
import struct
from collections import deque
from collections.abc import Callable
from typing import cast
from urllib.parse import parse_qsl

import orjson

from lm_deluge_cli.mock.batches import BatchSettings, MockBatches
from lm_deluge_cli.mock.formats import base_url, match_route
from lm_deluge_cli.mock.formats.openai import error_body
from lm_deluge_cli.mock.http import (
    MAX_BODY_BYTES,
    MAX_HEAD_BYTES,
    BadRequest,
    Head,
    dechunk,
    encode,
    parse_head,
)
from lm_deluge_cli.mock.simulator import MockSettings, MockStats, Simulator
from lm_deluge_cli.transport.event_loop import loop_factory

__all__ = ["MockServer", "run", "serve"]

_ROUTES = {"/health": "GET", "/stats": "GET", "/stats/reset": "POST"}
_JSON = {"content-type": "application/json"}
# A response cut mid-body is reset this long after its last bytes, so the client has read
# its headers by then.
_RESET_AFTER_S = 0.05
# A slow body goes out in this many pieces, evenly spread.
_DRIP_PIECES = 50


class _Slot:
    """One request's place in its connection's answer order (HTTP/1.1 answers in order)."""

    __slots__ = ("body_s", "close", "data", "head_size", "provider", "ready", "reset", "timer")

    def __init__(self, provider: bool = False) -> None:
        self.provider = provider  # a provider API request (not /health or /stats)
        self.ready = False
        self.data: bytes | None = None  # None: close without answering
        self.close = False
        self.reset = False  # `data` is a cut response: reset the connection after it
        self.body_s = 0.0  # send the bytes after `head_size` spread over this many seconds
        self.head_size = 0
        self.timer: asyncio.TimerHandle | None = None


class _Sockets:
    """The server's connections, and its own counts beside the simulator's: how many
    connections clients opened, and how long after the first the first answer went out
    (a client's ramp: its connection set-up plus the answer's latency)."""

    def __init__(self) -> None:
        self.open: set[_Connection] = set()
        self.opened = 0
        self.first_connection: float | None = None
        self.first_answer: float | None = None

    def reset(self) -> None:
        self.opened = len(self.open)
        self.first_connection = self.first_answer = None

    def statistics(self) -> dict[str, object]:
        first, answer = self.first_connection, self.first_answer
        ramp = None if first is None or answer is None else round(answer - first, 4)
        return {
            "in_flight": sum(connection.in_flight for connection in self.open),
            "connections_opened": self.opened,
            "first_answer_s": ramp,
        }


class _Connection(asyncio.Protocol):
    """One client connection: parses pipelined requests and answers them in order."""

    def __init__(self, simulator: Simulator, sockets: _Sockets, batches: MockBatches) -> None:
        self._simulator = simulator
        self._batches = batches
        self._sockets = sockets
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._head: Head | None = None
        self._slots: deque[_Slot] = deque()
        self._done = False  # read no more requests: closing, or the last one said so

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        sockets = self._sockets
        sockets.open.add(self)
        sockets.opened += 1
        if sockets.first_connection is None:
            sockets.first_connection = self._loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self._sockets.open.discard(self)
        self._done = True
        for slot in self._slots:
            if slot.timer is not None:
                slot.timer.cancel()
        self._slots.clear()

    # Stop reading while the client is not reading our answers, so pipelined floods cannot
    # grow the write buffer without bound.
    def pause_writing(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    @property
    def in_flight(self) -> int:
        """Provider requests read on this connection and not yet answered in full."""
        return sum(1 for slot in self._slots if slot.provider)

    def data_received(self, data: bytes) -> None:
        if self._done:
            return
        self._buffer += data
        try:
            self._parse()
        except BadRequest as exc:
            self._done = True
            slot = _Slot()
            self._slots.append(slot)
            body = error_body(exc.message, "invalid_request_error")
            slot.data, slot.close = encode(exc.status, dict(_JSON), body, False), True
            self._ready(slot)

    def _parse(self) -> None:
        buffer = self._buffer
        while not self._done:
            if self._head is None:
                while buffer.startswith(b"\r\n"):  # stray CRLFs between requests are allowed
                    del buffer[:2]
                end = buffer.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4)
                if end < 0:
                    if len(buffer) > MAX_HEAD_BYTES:
                        raise BadRequest(431, "Request headers too large.")
                    return
                self._head = parse_head(bytes(buffer[:end]))
                del buffer[: end + 4]
                if self._head.expect_continue and self._transport is not None:
                    self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            head = self._head
            if head.length >= 0:
                if len(buffer) < head.length:
                    return
                body = bytes(buffer[: head.length])
                del buffer[: head.length]
            else:
                chunked = dechunk(buffer)
                if chunked is None:
                    if len(buffer) > MAX_BODY_BYTES:
                        raise BadRequest(413, "Request body too large.")
                    return
                body, used = chunked
                del buffer[:used]
            self._head = None
            self._done = not head.keep_alive
            self._dispatch(head, body)

    def _dispatch(self, head: Head, body: bytes) -> None:
        keep_alive = head.keep_alive
        route = match_route(head.path)
        if route is not None and head.method == "POST":
            slot = _Slot(provider=True)
            self._slots.append(slot)
            query = dict(parse_qsl(head.query)) if head.query else None
            answer = self._simulator.handle(route, head.headers, body, query)
            if answer.action == "hang":
                return  # never ready: the client waits until it gives up and closes
            if answer.action != "drop":
                data = encode(answer.status, answer.headers, answer.body, keep_alive)
                head_size = len(data) - len(answer.body)
                if answer.action == "reset":
                    data = data[: head_size + len(answer.body) // 2]
                    slot.reset = True
                slot.data, slot.head_size, slot.body_s = data, head_size, answer.body_s
            slot.close = slot.data is None or not keep_alive
            if answer.delay_s > 0:
                slot.timer = self._loop.call_later(answer.delay_s, self._ready, slot)
            else:
                self._ready(slot)
            return
        slot = _Slot()
        self._slots.append(slot)
        query = dict(parse_qsl(head.query)) if head.query else None
        batch = self._batches.handle(head.method, head.path, head.headers, body, query)
        if batch is not None:
            status, headers, payload = batch.status, batch.headers, batch.body
        else:
            status, headers, payload = self._route(head.method, head.path)
        slot.data, slot.close = encode(status, headers, payload, keep_alive), not keep_alive
        self._ready(slot)

    def _route(self, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        """The small control endpoints; anything else is a 404 or 405 in OpenAI's format
        (the path alone does not say which provider a stray request meant)."""
        if _ROUTES.get(path) == method:
            if path == "/health":
                return 200, {"content-type": "text/plain"}, b"ok"
            if path == "/stats/reset":
                self._simulator.reset_statistics()
                self._batches.reset_statistics()
                self._sockets.reset()
            stats = dataclasses.asdict(self._simulator.statistics())
            stats.update(dataclasses.asdict(self._batches.statistics()))
            stats.update(self._sockets.statistics())
            return 200, dict(_JSON), orjson.dumps(stats)
        if path in _ROUTES or match_route(path) is not None:
            message = f"Method {method} not allowed on {path}."
            return 405, dict(_JSON), error_body(message, "invalid_request_error")
        return (
            404,
            dict(_JSON),
            error_body(f"Invalid URL ({method} {path})", "invalid_request_error"),
        )

    def _ready(self, slot: _Slot) -> None:
        slot.ready, slot.timer = True, None
        self._flush()

    def _flush(self) -> None:
        """Write the answers at the front of the queue that are ready, in order."""
        transport = self._transport
        slots = self._slots
        while slots and slots[0].ready and transport is not None:
            if slots[0].body_s > 0:
                self._drip(slots[0], transport)
                return
            done = slots.popleft()
            if done.data is not None:
                transport.write(done.data)
                if done.provider and self._sockets.first_answer is None:
                    self._sockets.first_answer = self._loop.time()
            if done.close or done.reset:
                self._done = True
                for rest in slots:
                    if rest.timer is not None:
                        rest.timer.cancel()
                slots.clear()
                if done.reset:
                    self._loop.call_later(_RESET_AFTER_S, _reset, transport)
                else:
                    transport.close()
                return

    def _drip(self, slot: _Slot, transport: asyncio.Transport) -> None:
        """Send the head now and the body in pieces over ``slot.body_s``; later answers on
        the connection wait until the last piece is out."""
        data = slot.data or b""
        body = data[slot.head_size :]
        size = -(-len(body) // _DRIP_PIECES) or 1
        pieces = [body[i : i + size] for i in range(0, len(body), size)]
        interval = slot.body_s / max(1, len(pieces))
        transport.write(data[: slot.head_size])
        slot.data, slot.body_s, slot.ready = b"", 0.0, False

        def send(index: int) -> None:
            if index < len(pieces):
                transport.write(pieces[index])
                slot.timer = self._loop.call_later(interval, send, index + 1)
            else:
                self._ready(slot)

        send(0)


def _reset(transport: asyncio.Transport) -> None:
    """Close with a TCP reset (SO_LINGER 0) rather than a clean FIN, as a crashed server does."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class MockServer(contextlib.AbstractAsyncContextManager["MockServer", None]):
    """A mock provider listening on a loopback port; `url` is the ``base_url`` clients use.
    Leaving ``async with`` closes it."""

    def __init__(
        self,
        simulator: Simulator,
        listener: asyncio.Server,
        sockets: _Sockets,
        host: str,
        batches: MockBatches,
    ) -> None:
        self.simulator = simulator
        self.batches = batches
        self.host = host
        self.port: int = listener.sockets[0].getsockname()[1]
        self._listener: asyncio.Server | None = listener
        self._sockets = sockets
        self._closed = False

    @property
    def root_url(self) -> str:
        """``http://HOST:PORT``, the address every provider's base URL starts with."""
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The OpenAI-style base URL, ``http://HOST:PORT/v1``."""
        return self.base_url("openai")

    def base_url(self, provider: str) -> str:
        """The base URL a model entry of ``provider`` (openai, anthropic, gemini, mistral,
        cohere, bedrock, voyage or jina) uses to reach this server."""
        return base_url(self.root_url, provider)

    @property
    def open_connections(self) -> int:
        """How many client connections are open right now (keep-alive shows as reuse)."""
        return len(self._sockets.open)

    @property
    def in_flight(self) -> int:
        """Provider requests received and not yet answered in full (hung ones included)."""
        return sum(connection.in_flight for connection in self._sockets.open)

    @property
    def listening(self) -> bool:
        """Whether the port accepts connections (false after `suspend` or `close`)."""
        return self._listener is not None

    async def suspend(self) -> None:
        """Go down: stop listening and cut every open connection, hung ones included, so
        clients see refused and dropped connections. The port and the simulator (its
        buckets and counters) are kept for `resume`."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        listener.close()
        for connection in list(self._sockets.open):
            connection.abort()
        await listener.wait_closed()
        # Let the aborted transports deliver connection_lost before the loop may close.
        await asyncio.sleep(0)

    async def resume(self) -> None:
        """Come back up on the same port after `suspend`; does nothing while listening."""
        if self._closed:
            raise RuntimeError("the mock server is closed; start a new one")
        if self._listener is not None:
            return
        simulator, sockets, batches = self.simulator, self._sockets, self.batches
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(
            lambda: _Connection(simulator, sockets, batches), self.host, self.port, backlog=4096
        )

    async def close(self) -> None:
        """Stop listening and cut every open connection, hung ones included, for good."""
        self._closed = True
        await self.suspend()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def serve(
    settings: MockSettings,
    host: str = "127.0.0.1",
    port: int = 0,
    batch: BatchSettings | None = None,
) -> MockServer:
    """Start a mock provider on ``host:port`` (port 0 picks a free one) in the running loop;
    ``batch`` says how its Files and Batches APIs behave."""
    simulator = Simulator(settings)
    batches = MockBatches(simulator, batch)
    sockets = _Sockets()
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(
        lambda: _Connection(simulator, sockets, batches), host, port, backlog=4096
    )
    return MockServer(simulator, listener, sockets, host, batches)


def run(
    settings: MockSettings,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[MockServer], None] | None = None,
) -> MockStats:
    """Serve until SIGINT or SIGTERM, then close cleanly and return the final statistics.

    ``on_ready`` is called once the port is bound (the CLI prints the URL from it).
    """
    started: list[MockServer] = []

    async def main() -> None:
        server = await serve(settings, host, port)
        started.append(server)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        handled: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Outside the main thread (or without signal support) Ctrl-C still arrives as
            # KeyboardInterrupt, which the caller below absorbs.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
        try:
            if on_ready is not None:
                on_ready(server)
            await stop.wait()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            await server.close()

    # The server is the benchmarks' instrument: on uvloop (where installed) its share of a
    # core per request is smaller, so it is less often what a client waits for.
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=loop_factory()) as runner,
    ):
        runner.run(main())
    return started[0].simulator.statistics() if started else MockStats()
