"""Which event loop runs the network: uvloop where it is installed, else asyncio's own.

With a thousand connections open, the loop's own work (a socket's reads and writes, its
timers, a connection set up) is a good part of each request's cost; uvloop does it in C.
``LM_DELUGE_EVENT_LOOP=asyncio`` keeps the standard loop (for a debugger, or to compare).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Callable
from typing import Any

from lm_deluge_cli.errors import ConfigError

__all__ = ["EVENT_LOOPS", "backend_options", "event_loop", "loop_factory"]

EVENT_LOOPS = ("uvloop", "asyncio")


def event_loop(kind: str | None = None) -> str:
    """The loop to run: `kind`, else $LM_DELUGE_EVENT_LOOP, else uvloop if installed."""
    kind = kind or os.environ.get("LM_DELUGE_EVENT_LOOP") or None
    if kind is None:
        return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    if kind not in EVENT_LOOPS:
        raise ConfigError(
            f"LM_DELUGE_EVENT_LOOP={kind!r} is not a known event loop; use one of {EVENT_LOOPS}"
        )
    if kind == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise ConfigError("LM_DELUGE_EVENT_LOOP=uvloop, but uvloop is not installed")
    return kind


def backend_options(kind: str | None = None) -> dict[str, Any]:
    """`anyio.run`'s backend_options for the chosen loop."""
    return {"use_uvloop": event_loop(kind) == "uvloop"}


def loop_factory(kind: str | None = None) -> Callable[[], asyncio.AbstractEventLoop]:
    """A new-loop factory for `asyncio.Runner`, for code that runs asyncio directly."""
    if event_loop(kind) == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop
