"""The contract every provider adapter meets: pure functions over data, no I/O."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import orjson

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.providers.registry import ModelInfo, ProviderInfo
from lm_deluge_cli.redaction import redact_keys
from lm_deluge_cli.results import Completion
from lm_deluge_cli.types import (
    HttpRequest,
    HttpResponse,
    Prompt,
    PromptCache,
    RateLimitInfo,
    SamplingParams,
)

__all__ = [
    "Adapter",
    "Endpoint",
    "error_object",
    "error_text",
    "registered",
    "response_snippet",
]

MAX_ERROR_MESSAGE_CHARS = 500
# How much of a body that is not a JSON error object is quoted in a message.
MAX_SNIPPET_CHARS = 200

# How much of an HTML page (a proxy's or gateway's error page) is read for its text.
MAX_HTML_BYTES = 8192

# Key-shaped tokens that some providers echo back, partly masked, in error messages.
_HTML = re.compile(rb"\s*<(?:!doctype\s+html|html)[\s>]", re.IGNORECASE)
_HIDDEN = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")

_A = TypeVar("_A")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One model entry resolved: where requests go, and with which key.

    The key is excluded from repr so it cannot leak through logging or tracebacks.
    """

    name: str
    model: ModelInfo
    provider: ProviderInfo
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    # The variable the key came from ("" when none is sent), for messages that say what to fix.
    api_key_env: str = ""
    # True when base_url is not the provider's official one (an OpenAI-compatible
    # server): use the most widely supported parameter names.
    compatible: bool = False
    sampling_overrides: Mapping[str, Any] = field(default_factory=dict)
    # AWS region for Bedrock (None: from the base URL or the AWS environment variables).
    region: str | None = None
    # The job's prompt-cache breakpoints (None: only those the lines carry themselves).
    prompt_cache: PromptCache | None = None

    @property
    def wire_format(self) -> str:
        """The adapter this endpoint speaks: the model's own, else its provider's."""
        return self.model.wire_format or self.provider.wire_format


class Adapter(Protocol):
    """Speaks one wire format."""

    def build_request(
        self, endpoint: Endpoint, prompt: Prompt, sampling: SamplingParams, timeout: float
    ) -> HttpRequest:
        """The HTTP request for one prompt."""
        ...

    def parse_response(self, endpoint: Endpoint, response: HttpResponse) -> Completion:
        """The completion in a 2xx response; raises an `APIError` for anything else."""
        ...

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        """What the provider's rate-limit headers say."""
        ...


def registered(adapters: Mapping[str, _A], wire_format: str, kind: str) -> _A:
    """The adapter of `adapters` that speaks `wire_format`; the ConfigError for none names
    the `kind` of adapter asked for."""
    try:
        return adapters[wire_format]
    except KeyError:
        raise ConfigError(f"no {kind} for wire format {wire_format!r}") from None


def response_snippet(body: bytes, secret: str | None, limit: int = MAX_SNIPPET_CHARS) -> str:
    """The start of a raw body on one line, redacted *before* it is cut so no key is left
    half-shown. An HTML page (a gateway's 502, a bot check) is given as its text:
    ``HTML page: 502 Bad Gateway …``."""
    extra = len(secret or "")
    if _HTML.match(body):
        page = body[: MAX_HTML_BYTES + extra].decode("utf-8", "replace")
        window = "HTML page: " + html.unescape(_TAG.sub(" ", _HIDDEN.sub(" ", page)))
    else:
        window = body[: limit + extra + 64].decode("utf-8", "replace")
    return " ".join(redact_keys(window, secret).split())[:limit].strip()


def error_object(body: bytes) -> dict[str, Any]:
    """An error body's JSON object, for the fields a provider adds to it; {} for a body that is
    not one (a proxy's HTML page, plain text)."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def error_text(body: bytes, secret: str | None) -> tuple[str, str | None]:
    """(message, provider error code) of an error response body, redacted and short."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return response_snippet(body, secret) or "empty response body", None
    message: str | None = None
    code: str | None = None
    if isinstance(parsed, dict):
        err = parsed.get("error", parsed)
        if isinstance(err, dict):
            raw_message = err.get("message")
            message = raw_message if isinstance(raw_message, str) else None
            # The first string of code, then type: vLLM puts the HTTP status (an int) in code.
            code = next(
                (v for v in (err.get("code"), err.get("type")) if isinstance(v, str) and v), None
            )
        elif isinstance(err, str):
            message = err
    if message is None:
        message = response_snippet(body, secret)
    message = redact_keys(message, secret)
    if len(message) > MAX_ERROR_MESSAGE_CHARS:
        message = message[:MAX_ERROR_MESSAGE_CHARS] + "…"
    return message, code
