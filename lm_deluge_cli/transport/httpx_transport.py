"""An httpx transport, kept behind the same seam for comparison and for setups that need it."""

from __future__ import annotations

import anyio
import httpx

from lm_deluge_cli.errors import APIConnectionError, APITimeoutError
from lm_deluge_cli.transport.base import Transport, failure_message, refuse_redirect
from lm_deluge_cli.types import HttpRequest, HttpResponse

__all__ = ["POOL_CONNECTIONS", "HttpxTransport"]

# Connections per httpx client. httpcore's pool looks at every one of its connections on
# every request (and asks each idle one's socket whether it is readable): at 256
# connections in one pool that was 12 ms of CPU a request, 30-80 requests/s. The run's
# connections are shared out over clients of at most this many instead.
POOL_CONNECTIONS = 4


class HttpxTransport(Transport):
    """httpx.AsyncClients for the run, `POOL_CONNECTIONS` connections each at most; a
    request goes to the client with the fewest requests in flight."""

    def __init__(self, max_connections: int) -> None:
        pools = max(1, -(-max_connections // POOL_CONNECTIONS))
        # max_connections shared out as evenly as it goes: the total stays the run's.
        sizes = [max_connections // pools + (i < max_connections % pools) for i in range(pools)]
        # One TLS context for all (each costs a read of the certificate bundle).
        tls = httpx.create_ssl_context()
        self._clients = [
            httpx.AsyncClient(
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                verify=tls,
                follow_redirects=False,
                timeout=None,
            )
            for size in sizes
        ]
        self._in_flight = [0] * pools

    async def send(self, request: HttpRequest) -> HttpResponse:
        in_flight = self._in_flight
        pool = in_flight.index(min(in_flight))
        in_flight[pool] += 1
        try:
            return await self._send(self._clients[pool], request)
        finally:
            in_flight[pool] -= 1

    @staticmethod
    async def _send(client: httpx.AsyncClient, request: HttpRequest) -> HttpResponse:
        try:
            # httpx's own timeout bounds each phase (connect, each read…); fail_after bounds
            # the whole exchange, as the Transport contract promises.
            with anyio.fail_after(request.timeout):
                response = await client.request(
                    request.method,
                    request.url,
                    content=request.body,
                    headers=dict(request.headers),
                    timeout=request.timeout,
                )
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise APITimeoutError(f"no response within {request.timeout:g}s") from exc
        except httpx.ReadError as exc:
            # httpx gives a reset connection no message of its own.
            text = str(exc) or "the connection broke before the whole response arrived"
            raise APIConnectionError(failure_message(exc, request, text)) from exc
        # RequestError covers transport and decoding failures; InvalidURL and UnicodeError
        # (a non-ASCII header value) are raised before anything is sent.
        except (httpx.RequestError, httpx.InvalidURL, OSError, ValueError) as exc:
            raise APIConnectionError(failure_message(exc, request)) from exc
        headers = {k.lower(): v for k, v in response.headers.items()}
        return refuse_redirect(
            request, HttpResponse(response.status_code, headers, response.content)
        )

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
