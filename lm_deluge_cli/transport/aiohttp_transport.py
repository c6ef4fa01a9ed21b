"""The default transport: aiohttp's client, which stays fast with thousands of open requests."""

from __future__ import annotations

import asyncio
import re

import aiohttp

from lm_deluge_cli.errors import APIConnectionError, APITimeoutError
from lm_deluge_cli.transport.base import Transport, failure_message, refuse_redirect
from lm_deluge_cli.types import HttpRequest, HttpResponse

__all__ = ["AiohttpTransport"]

# What aiohttp says of a body shorter than its content-length.
_RECEIVED = re.compile(r"received (\d+) of (\d+) bytes")


class AiohttpTransport(Transport):
    """One aiohttp session (and connection pool) shared by every request of a run."""

    def __init__(self, max_connections: int) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily: aiohttp binds the session to the running event loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                ttl_dns_cache=300,
                enable_cleanup_closed=True,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # Our own header set only: no cookies carried between requests.
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def send(self, request: HttpRequest) -> HttpResponse:
        session = self._get_session()
        try:
            async with session.request(
                request.method,
                request.url,
                data=request.body,
                headers=dict(request.headers),
                timeout=aiohttp.ClientTimeout(total=request.timeout),
                allow_redirects=False,
            ) as response:
                body = await response.read()
                headers = {k.lower(): v for k, v in response.headers.items()}
                answer = HttpResponse(response.status, headers, body)
        except TimeoutError as exc:
            raise APITimeoutError(f"no response within {request.timeout:g}s") from exc
        except aiohttp.ClientPayloadError as exc:
            raise APIConnectionError(failure_message(exc, request, _cut_short(exc))) from exc
        # ValueError: aiohttp refuses a header value with control characters before sending.
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            raise APIConnectionError(failure_message(exc, request)) from exc

        return refuse_redirect(request, answer)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _cut_short(exc: aiohttp.ClientPayloadError) -> str:
    """A body that stopped early, said plainly: aiohttp's own text quotes its parser's
    exception, with a status (400) that the server never sent."""
    found = _RECEIVED.search(str(exc))
    detail = f" ({found[1]} of {found[2]} body bytes arrived)" if found else ""
    return f"the connection broke before the whole response arrived{detail}"
