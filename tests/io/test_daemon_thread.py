"""run_in_daemon_thread: a result or an exception comes back; a cancel does not wait for the
work, which runs on in a daemon thread the process does not wait for either."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from lm_deluge_cli.io.daemon_thread import run_in_daemon_thread

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_result_and_exceptions_come_back() -> None:
    assert await run_in_daemon_thread(lambda: 6 * 7) == 42

    def fail() -> None:
        raise ValueError("from the thread")

    with pytest.raises(ValueError, match="from the thread"):
        await run_in_daemon_thread(fail)


async def test_a_cancel_returns_at_once_and_abandons_a_daemon_thread() -> None:
    release = threading.Event()
    seen: list[threading.Thread] = []

    def blocked() -> str:
        seen.append(threading.current_thread())
        release.wait(30)
        return "late"

    started = time.monotonic()
    with anyio.move_on_after(0.2):
        await run_in_daemon_thread(blocked)
    assert time.monotonic() - started < 5
    (thread,) = seen
    assert thread.daemon and thread.is_alive()
    release.set()
    # It ends once the event loop takes its (dropped) result.
    with anyio.fail_after(5):
        while thread.is_alive():
            await anyio.sleep(0.01)
