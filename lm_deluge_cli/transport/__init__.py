"""The HTTP layer behind one seam.

`make_transport` picks the implementation. The default is aiohttp: at thousands of
open requests httpx 0.28's connection pool is CPU-bound (encode/httpx#3215), while
aiohttp keeps up; `bench/bench_overhead.py` measures both on this machine. Set
``LM_DELUGE_HTTP_CLIENT=httpx`` to use httpx instead.

A library is imported when its transport is first asked for (`transport_class`): aiohttp
takes a good part of a second to load (it builds its TLS contexts as it does), which a
command that sends nothing should not pay.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.transport.base import Transport

__all__ = ["DEFAULT_HTTP_CLIENT", "HTTP_CLIENTS", "Transport", "make_transport", "transport_class"]

DEFAULT_HTTP_CLIENT = "aiohttp"
HTTP_CLIENTS = ("aiohttp", "httpx")


def make_transport(max_connections: int, kind: str | None = None) -> Transport:
    """A network transport; `kind` defaults to $LM_DELUGE_HTTP_CLIENT, else aiohttp."""
    return transport_class(kind)(max_connections)


def transport_class(kind: str | None = None) -> Callable[[int], Transport]:
    """The class `make_transport` makes for `kind` (called with the most connections), its
    library imported."""
    kind = kind or os.environ.get("LM_DELUGE_HTTP_CLIENT") or DEFAULT_HTTP_CLIENT
    if kind == "aiohttp":
        from lm_deluge_cli.transport.aiohttp_transport import AiohttpTransport

        return AiohttpTransport
    if kind == "httpx":
        from lm_deluge_cli.transport.httpx_transport import HttpxTransport

        return HttpxTransport
    raise ConfigError(
        f"LM_DELUGE_HTTP_CLIENT={kind!r} is not a known HTTP client; use one of {HTTP_CLIENTS}"
    )
