"""Fixtures of the embed and rerank suites (helpers live in `support.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lm_deluge_cli.engine import pipeline
from lm_deluge_cli.mock.simulator import MockSettings
from tests.faults.support import Loopback


@pytest.fixture(autouse=True)
def offline_tokenizer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Token estimates without tiktoken, which would try the network for its encoding."""
    monkeypatch.setenv("LM_DELUGE_TOKENIZER", "heuristic")


@pytest.fixture(autouse=True)
def no_idle_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches fill up as they would on a quiet machine: the tests count requests, and a
    pause of a quarter second (a full garbage collection late in a long test run) would
    otherwise send a part batch and one request more."""
    monkeypatch.setattr(pipeline, "IDLE_FLUSH_S", 30.0)


@pytest.fixture
def loopback() -> Iterator[Callable[..., Loopback]]:
    """``loopback(**MockSettings fields)`` starts a mock provider on 127.0.0.1 in a thread;
    every one started is closed when the test ends."""
    started: list[Loopback] = []

    def start(**fields: Any) -> Loopback:
        server = Loopback(MockSettings(**fields))
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
