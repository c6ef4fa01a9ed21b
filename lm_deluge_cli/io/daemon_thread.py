"""Blocking work a stop must not wait for: reading and preparing input lines (local files,
decoding and scaling images, base64) can take many seconds on one line.

anyio's worker threads are waited for twice: a cancelled ``to_thread.run_sync`` waits for
its call to return, and the interpreter joins them before the process exits. A daemon thread
is waited for by neither: a cancel abandons it, and the process exits without it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

__all__ = ["run_in_daemon_thread"]

T = TypeVar("T")


async def run_in_daemon_thread(func: Callable[[], T], *, name: str = "lm-deluge worker") -> T:
    """``func()`` in a new daemon thread; its result, or its exception re-raised.

    A cancel returns at once and abandons the thread: it runs on to its end and its result
    is dropped, so `func` must leave nothing half-done that the caller relies on.
    """
    token = anyio.lowlevel.current_token()
    done = anyio.Event()
    outcome: list[tuple[bool, object]] = []

    def target() -> None:
        try:
            outcome.append((True, func()))
        except BaseException as exc:  # handed to the caller, who re-raises it
            outcome.append((False, exc))
        # Once the event loop has ended no one is waiting any more.
        with contextlib.suppress(Exception):
            anyio.from_thread.run_sync(done.set, token=token)

    threading.Thread(target=target, name=name, daemon=True).start()
    await done.wait()
    ok, value = outcome[0]
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]
