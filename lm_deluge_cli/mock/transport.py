"""A transport that answers from the built-in mock simulator, with no socket at all: the one
a model whose base URL is ``mock://`` sends through."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio

from lm_deluge_cli.errors import APIConnectionError, APITimeoutError
from lm_deluge_cli.mock.batches import BatchSettings, MockBatches
from lm_deluge_cli.mock.formats import Route, match_route
from lm_deluge_cli.mock.formats.openai import error_body
from lm_deluge_cli.mock.settings import mock_settings
from lm_deluge_cli.mock.simulator import Simulator
from lm_deluge_cli.transport.base import Transport
from lm_deluge_cli.types import HttpRequest, HttpResponse

__all__ = ["InProcessTransport", "mock_transport"]

_JSON = {"content-type": "application/json"}


@functools.lru_cache(maxsize=256)
def _target(url: str) -> tuple[str, Route | None, dict[str, str] | None]:
    """The URL's path, its route and its query: a run sends to a few URLs over and over,
    and a Route is immutable, so one can be shared (the query is copied for each use)."""
    parts = urlsplit(url)
    return parts.path, match_route(parts.path), dict(parse_qsl(parts.query)) or None


class InProcessTransport(Transport):
    """Hands each request to a `Simulator`, honouring its latency and fault decisions.

    The URL's path picks the wire format as the loopback server's does, so a request built
    for ``mock://in-process/anthropic`` is answered in Anthropic's format. OpenAI's Files
    and Batches APIs are answered by `batches` (the server's own, when one is given).
    """

    def __init__(self, simulator: Simulator, batches: MockBatches | None = None) -> None:
        self.simulator = simulator
        self.batches = batches if batches is not None else MockBatches(simulator)

    async def send(self, request: HttpRequest) -> HttpResponse:
        path, route, query = _target(request.url)
        # Header names are lower-case on the wire side of every transport; adapters may not be.
        headers = {name.lower(): value for name, value in request.headers.items()}
        if route is None or request.method != "POST":
            await asyncio.sleep(0)
            batch = self.batches.handle(request.method, path, headers, request.body, query)
            if batch is not None:
                return HttpResponse(batch.status, batch.headers, batch.body)
            message = f"Invalid URL ({request.method} {path})"
            return HttpResponse(404, dict(_JSON), error_body(message, "invalid_request_error"))
        sim = self.simulator.handle(route, headers, request.body, query and dict(query))
        took = sim.delay_s + sim.body_s
        if sim.action == "hang" or took > request.timeout:
            await anyio.sleep(request.timeout)
            raise APITimeoutError(f"no response within {request.timeout:g}s")
        if took > 0:
            await anyio.sleep(took)
        else:
            # Let other tasks run even when the mock answers at once (the loop is always
            # asyncio's: without anyio's look-up of the running library per request).
            await asyncio.sleep(0)
        if sim.action == "drop":
            raise APIConnectionError("connection failed: server closed the connection")
        if sim.action == "reset":
            raise APIConnectionError(
                "connection failed: the connection was reset before the whole body arrived"
            )
        return HttpResponse(sim.status, sim.headers, sim.body)


def mock_transport(overrides: Mapping[str, Any], wire_id: str) -> InProcessTransport:
    """A model's own simulator behind an in-process transport: its entry's ``mock`` table
    (`overrides`) over the defaults for `wire_id` (see `mock_settings`); its ``batch``
    table, if any, says how the Files and Batches APIs behave (`BatchSettings`)."""
    table = dict(overrides)
    batch = table.pop("batch", None)
    simulator = Simulator(mock_settings(table, wire_id))
    batch_settings = None if batch is None else BatchSettings.from_mapping(batch)
    return InProcessTransport(simulator, MockBatches(simulator, batch_settings))
