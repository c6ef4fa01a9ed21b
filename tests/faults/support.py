"""Helpers for the crash and fault suites: a loopback mock provider that can go down and
come back on the same port, the prompts the suites write, and the answers to expect."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lm_deluge_cli.mock.server import MockServer, serve
from lm_deluge_cli.mock.simulator import MockSettings
from lm_deluge_cli.mock.wire import reply_text
from lm_deluge_cli.runner import JobReport

KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
MODEL = "openai:gpt-4.1-mini"
WIRE_ID = "gpt-4.1-mini"
# The job's default max_new_tokens, which the mock cuts its answers at.
MAX_NEW_TOKENS = 512

T = TypeVar("T")


class Loopback:
    """A mock provider on a loopback port, served from its own thread and event loop."""

    def __init__(self, settings: MockSettings) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mock", daemon=True)
        self._thread.start()
        self._server: MockServer | None = None
        try:
            self._server = self._call(serve(settings))
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


def prompt_text(i: int) -> str:
    return f"question number {i}"


def expected_completion(i: int, max_tokens: int = MAX_NEW_TOKENS) -> str:
    """What the mock answers prompt `i` (as `write_prompts` writes it) from the job's model."""
    text, _, _ = reply_text([{"role": "user", "content": prompt_text(i)}], WIRE_ID, max_tokens)
    return text


def write_prompts(path: Path, count: int) -> list[str]:
    """`count` prompts with ids p0, p1, …; returns the ids."""
    rows = [{"id": f"p{i}", "prompt": prompt_text(i)} for i in range(count)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return [row["id"] for row in rows]


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every line of an output, each of which must be valid JSON."""
    return [json.loads(line) for line in path.read_bytes().splitlines()]


@dataclass(frozen=True)
class Finished:
    """A job run to its end in this process."""

    report: JobReport
    records: list[dict[str, Any]]
    seconds: float

    @property
    def summary(self) -> dict[str, Any]:
        """The --json summary, read like the records: as JSON."""
        return self.report.to_dict()
