"""The one seam between the engine and the network: send an HttpRequest, get an HttpResponse."""

from __future__ import annotations

import urllib.parse
from abc import ABC, abstractmethod

from lm_deluge_cli.errors import APIStatusError
from lm_deluge_cli.types import HttpRequest, HttpResponse

__all__ = ["Transport", "failure_message", "refuse_redirect"]

# Request headers that carry credentials; HTTP libraries quote header values in some errors.
_SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "x-goog-api-key", "x-amz-security-token"}
)


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
    forms: set[str] = set()
    for name, value in request.headers.items():
        if name.lower() not in _SECRET_HEADERS:
            continue
        # The whole value and the credential after the scheme, raw and as Python would quote them.
        for part in (value, *value.split(None, 1)[1:]):
            for candidate in (part, part.strip()):
                forms.add(candidate)
                forms.add(repr(candidate)[1:-1])
                forms.add(repr(candidate.encode("utf-8", "backslashreplace"))[2:-1])
    # A base URL can carry credentials too (user:password@host, ?api-key=…).
    try:
        url = urllib.parse.urlsplit(request.url)
        password = url.password
    except ValueError:  # a malformed URL is what failed: nothing to parse credentials from
        url, password = None, None
    if password:
        forms.add(password)
    if url is not None:
        for _, value in urllib.parse.parse_qsl(url.query):
            forms.add(value)
    for form in sorted(forms, key=len, reverse=True):
        if len(form) >= 4:
            text = text.replace(form, "[redacted]")
    return text
