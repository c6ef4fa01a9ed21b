"""Shared fixtures: every test runs with a clean, isolated environment and no real keys."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest

from lm_deluge_cli.mock.simulator import MockSettings
from tests.loopback import Loopback

# A real redis-server for the tests that need one (cache backends, the shared limiter), and
# the `lm-deluge` command in this process or as a real one (run_cli, run_cli_process).
pytest_plugins = ["tests.redis_server", "tests.cli_runner"]

# Property-based tests explore new examples on every local run; under CI they replay the
# same ones, so a red build always means a change, never a lucky draw.
hypothesis.settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis.settings.load_profile("ci")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The checks of the whole tree first (mypy alone takes a core for most of a minute):
    on two workers they then run beside the other tests instead of after them."""
    items.sort(key=lambda item: not item.nodeid.startswith("tests/test_code_quality.py"))


# A fake key used wherever a test needs one; test suites search outputs for it to
# prove that keys never leak.
CANARY_KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"


# Suites whose token estimates use the heuristic, not tiktoken (which would try the
# network for its encoding): what they check does not depend on the exact count.
HEURISTIC_TOKENIZER_SUITES = ("tests/faults/", "tests/input/", "tests/retrieval/")


@pytest.fixture(autouse=True)
def isolated_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Path]:
    """Run each test in its own working directory with provider variables cleared."""
    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_BASE_URL")) or name.startswith("LM_DELUGE_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    # Each test its own result cache: answers never leak from one test into another.
    monkeypatch.setenv("LM_DELUGE_CACHE_DIR", str(tmp_path / ".lm-deluge-cache"))
    if request.node.nodeid.startswith(HEURISTIC_TOKENIZER_SUITES):
        monkeypatch.setenv("LM_DELUGE_TOKENIZER", "heuristic")
    yield tmp_path


# start_mock_server(**MockSettings fields) -> (base_url, stop)
StartMockServer = Callable[..., tuple[str, Callable[[], None]]]


@pytest.fixture
def start_mock_server() -> Iterator[StartMockServer]:
    """Start mock providers on loopback ports, each in a thread with its own event loop.

    Call it with MockSettings fields: ``url, stop = start_mock_server(requests_per_minute=600)``.
    `url` is the base_url (``http://127.0.0.1:PORT/v1``), so a CLI run (in process or
    not) can use it. Servers still running when the test ends are stopped.
    """
    started: list[Loopback] = []

    def start(**fields: Any) -> tuple[str, Callable[[], None]]:
        server = Loopback(MockSettings(**fields))
        started.append(server)
        return server.url, server.close

    yield start
    for server in started:
        server.close()


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


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A named pipe; a writer still waiting in its open when the test ends is let go."""
    path = tmp_path / "fifo"
    os.mkfifo(path)
    yield path
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
