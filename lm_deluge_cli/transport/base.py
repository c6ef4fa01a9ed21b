"""The one seam between the engine and the network: send an HttpRequest, get an HttpResponse."""

from __future__ import annotations

from abc import ABC, abstractmethod

from lm_deluge_cli.errors import APIStatusError
from lm_deluge_cli.redaction import REDACTED, credential_forms, scrub
from lm_deluge_cli.types import HttpRequest, HttpResponse

__all__ = ["Transport", "failure_message", "refuse_redirect"]


class Transport(ABC):
    """Sends one request and returns the whole response.

    Implementations raise only `APIConnectionError` / `APITimeoutError` (translated
    from their library's exceptions with ``raise ... from exc``); an HTTP error
    status is a normal response here, classified later by the provider adapter.
    Redirects are never followed, so a key is only ever sent to the host the
    model entry names: `refuse_redirect` turns one into an APIStatusError.
    """

    @abstractmethod
    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send `request` and read the full body, within `request.timeout` seconds."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most transports hold nothing
        """Release connections."""


def failure_message(exc: BaseException, request: HttpRequest, text: str | None = None) -> str:
    """``connection failed: …`` from a library exception (or `text` describing it), with
    credential header values removed.

    httpx, for one, quotes an illegal header value (``Illegal header value b'Bearer …'``).
    """
    return f"connection failed: {redact(text or str(exc) or type(exc).__name__, request)}"


def refuse_redirect(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """`response`, unless it is a redirect: that raises an APIStatusError naming the location.

    Following it would send the request, key included, wherever the server points.
    """
    location = response.headers.get("location")
    if not 300 <= response.status < 400 or location is None:
        return response
    where = redact(location, request)
    raise APIStatusError(
        f"{response.status}: the provider answered with a redirect to {where}; redirects are "
        "not followed so that the key only goes to the host the model names (if that is "
        "the right endpoint, set the model's base_url to it)",
        status_code=response.status,
    )


def redact(text: str, request: HttpRequest) -> str:
    """`text` with every credential of `request` (header values, URL password and query
    values) replaced by ``[redacted]``."""
    return scrub(text, credential_forms(request.headers, request.url), REDACTED)
