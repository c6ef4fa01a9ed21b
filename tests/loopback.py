"""A mock provider on a loopback port for tests that cross a real socket: served from its
own thread and event loop, able to go down and come back on the same port."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Coroutine
from typing import Any, TypeVar

from lm_deluge_cli.mock.batches import BatchSettings
from lm_deluge_cli.mock.server import MockServer, serve
from lm_deluge_cli.mock.simulator import MockSettings

__all__ = ["Loopback"]

T = TypeVar("T")


class Loopback:
    """A mock provider on a loopback port, served from its own thread and event loop."""

    def __init__(self, settings: MockSettings, batch: BatchSettings | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mock", daemon=True)
        self._thread.start()
        self._server: MockServer | None = None
        try:
            self._server = self._call(serve(settings, batch=batch))
        except BaseException:
            self.close()
            raise
        self.root = self._server.root_url
        self.url = self._server.url  # the OpenAI base URL, http://127.0.0.1:PORT/v1
        self.port = self._server.port

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def stats(self) -> dict[str, Any]:
        """``GET /stats``: the simulator's counters and ``in_flight``."""
        with urllib.request.urlopen(self.root + "/stats", timeout=5) as response:
            return dict(json.load(response))

    def suspend(self) -> None:
        """The provider goes down: connections are refused, open ones are cut."""
        assert self._server is not None
        self._call(self._server.suspend())

    def resume(self) -> None:
        """The provider comes back on the same port, with the same counters."""
        assert self._server is not None
        self._call(self._server.resume())

    def close(self) -> None:
        if not self._loop.is_closed():
            if self._server is not None:
                self._call(self._server.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
