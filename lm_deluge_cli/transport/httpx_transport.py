"""An httpx transport, kept behind the same seam for comparison and for setups that need it."""

from __future__ import annotations

import anyio
import httpx

from lm_deluge_cli.errors import APIConnectionError, APITimeoutError
from lm_deluge_cli.transport.base import Transport, failure_message, refuse_redirect
from lm_deluge_cli.types import HttpRequest, HttpResponse

__all__ = ["HttpxTransport"]


class HttpxTransport(Transport):
    """One httpx.AsyncClient for the run."""

    def __init__(self, max_connections: int) -> None:
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._client = httpx.AsyncClient(limits=limits, follow_redirects=False, timeout=None)

    async def send(self, request: HttpRequest) -> HttpResponse:
        try:
            # httpx's own timeout bounds each phase (connect, each read…); fail_after bounds
            # the whole exchange, as the Transport contract promises.
            with anyio.fail_after(request.timeout):
                response = await self._client.request(
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
        await self._client.aclose()
