"""The shared vocabulary: prompts in, completions and results out. No logic beyond merging."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SAMPLING_FIELDS",
    "Completion",
    "HttpRequest",
    "HttpResponse",
    "Prompt",
    "RateLimitInfo",
    "SamplingParams",
    "Usage",
]

# Messages are OpenAI chat messages: {"role": ..., "content": str | list[part]}.
Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How to sample. Defaults match the original lm-deluge library."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    json_mode: bool = False
    reasoning_effort: str | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    # Up to MAX_STOP_SEQUENCES strings that end the completion when generated.
    stop: tuple[str, ...] | None = None
    # A JSON Schema the completion must match (sent in each provider's structured-output form).
    json_schema: dict[str, Any] | None = None

    def merged(self, overrides: Mapping[str, Any] | None) -> SamplingParams:
        """A copy with the given fields replaced (already validated by the caller)."""
        if not overrides:
            return self
        return dataclasses.replace(self, **overrides)


SAMPLING_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SamplingParams))


@dataclass(slots=True)
class Prompt:
    """One input line, parsed.

    `key` is the id's identity for resume and duplicate detection: the JSON text of
    the id, so that ``5`` and ``"5"`` stay different ids.
    """

    id: str | int
    line: int
    messages: list[Message]
    model: str | None = None
    metadata: Any = None
    sampling: dict[str, Any] = field(default_factory=dict)
    # Request body fields we pass through untouched (from OpenAI Batch API lines).
    extra_body: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return id_key(self.id)


def id_key(value: str | int) -> str:
    """The identity of an id: ``"abc"`` → ``'"abc"'``, ``5`` → ``'5'``."""
    if isinstance(value, int):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens a request consumed, as the provider reported them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0

    def to_record(self) -> dict[str, int]:
        """Input and output tokens, and the cached-input and reasoning tokens among them
        when the provider reported any."""
        record = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        if self.cached_input_tokens:
            record["cached_input_tokens"] = self.cached_input_tokens
        if self.reasoning_tokens:
            record["reasoning_tokens"] = self.reasoning_tokens
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Usage:
        """The inverse of `to_record` (missing counts are 0)."""
        return cls(
            int(record.get("input_tokens") or 0),
            int(record.get("output_tokens") or 0),
            int(record.get("cached_input_tokens") or 0),
            int(record.get("reasoning_tokens") or 0),
        )


@dataclass(frozen=True, slots=True)
class Completion:
    """What an adapter reads out of a successful response."""

    text: str | None
    finish_reason: str | None
    usage: Usage
    logprobs: Any = None


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What a provider's rate-limit headers say about its budget right now.

    `None` means the header was absent. Reset values are seconds from now.
    """

    limit_requests: int | None = None
    limit_tokens: int | None = None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests_s: float | None = None
    reset_tokens_s: float | None = None

    @property
    def empty(self) -> bool:
        return self.remaining_requests is None and self.remaining_tokens is None


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request as the transport sends it: adapters build these, no I/O involved."""

    method: str
    url: str
    # Out of repr: the headers carry the API key.
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A full response; header names are lower-case."""

    status: int
    headers: Mapping[str, str]
    body: bytes
