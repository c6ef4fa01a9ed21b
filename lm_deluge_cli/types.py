"""The shared vocabulary of what goes out: a prompt, how to sample it, what every request
carries, and the HTTP exchange an adapter builds and reads. Values only: no I/O, and no logic
beyond checking, merging and reading their own fields. What comes back (answers, usage, a
line's Result) is in results.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lm_deluge_cli.errors import InvalidValueError
from lm_deluge_cli.sampling import check_sampling_value

__all__ = [
    "SAMPLING_FIELDS",
    "HttpRequest",
    "HttpResponse",
    "Prompt",
    "PromptCache",
    "RateLimitInfo",
    "RequestDefaults",
    "SamplingParams",
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
    # Independent answers per line. The engine asks a request for as many as it still needs
    # (the provider's own n where it has one: see providers.capabilities.NATIVE_SAMPLES); an
    # adapter that cannot return several sends one request per sample and ignores it.
    samples: int = 1

    def __post_init__(self) -> None:
        # Checked as a job file's [sampling] is, whoever made the value; each field kept as
        # the check leaves it (numbers as floats, stop as a tuple).
        for name in SAMPLING_FIELDS:
            value = getattr(self, name)
            try:
                checked = check_sampling_value(name, value)
            except ValueError as exc:
                raise InvalidValueError(name, str(exc)) from None
            if checked is not value:
                object.__setattr__(self, name, checked)

    def merged(self, overrides: Mapping[str, Any] | None) -> SamplingParams:
        """A copy with the given fields replaced (and checked, as any SamplingParams is)."""
        if not overrides:
            return self
        return dataclasses.replace(self, **overrides)


SAMPLING_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SamplingParams))


class Keyed:
    """A value made from one input line: its `key` is the line's id's identity for resume,
    duplicate detection, shards and export (`id_key`)."""

    __slots__ = ()
    id: str | int

    @property
    def key(self) -> str:
        return id_key(self.id)


@dataclass(slots=True)
class Prompt(Keyed):
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


def id_key(value: str | int) -> str:
    """The identity of an id: ``"abc"`` → ``'"abc"'``, ``5`` → ``'5'``."""
    if isinstance(value, int):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Where prompt-cache breakpoints go (Anthropic and Bedrock), and for how long they last.
PROMPT_CACHE_PLACEMENTS = ("system", "tools", "system_and_tools", "last_user")
PROMPT_CACHE_TTLS = ("5m", "1h")


@dataclass(frozen=True, slots=True)
class PromptCache:
    """The job's prompt caching: a ``cache_control`` breakpoint at the end of the system
    prompt, of the tool definitions, of both, or of the last user message, kept for `ttl`
    (one of PROMPT_CACHE_TTLS). Breakpoints a line carries itself are sent as they are."""

    placement: str
    ttl: str = "5m"

    def __post_init__(self) -> None:
        if self.placement not in PROMPT_CACHE_PLACEMENTS:
            raise ValueError(
                f"must be one of {', '.join(PROMPT_CACHE_PLACEMENTS)} or none, "
                f"got {self.placement!r}"
            )
        if self.ttl not in PROMPT_CACHE_TTLS:
            raise ValueError(f"TTL must be one of {', '.join(PROMPT_CACHE_TTLS)}, got {self.ttl!r}")


@dataclass(frozen=True, slots=True)
class RequestDefaults:
    """What every request of a job carries unless its line gives its own: tool definitions
    (OpenAI's function-tool shape; a line's tools replace them), a tool choice, and OpenAI's
    ``prompt_cache_key``."""

    tools: tuple[Mapping[str, Any], ...] = ()
    tool_choice: str | Mapping[str, Any] | None = None
    prompt_cache_key: str | None = None

    @property
    def empty(self) -> bool:
        return not self.tools and self.tool_choice is None and self.prompt_cache_key is None

    def apply(self, extra_body: Mapping[str, Any]) -> dict[str, Any]:
        """A line's request fields with these defaults under them. The job's tool choice
        goes with the job's tools: a line with tools of its own gets it only when it names
        no tool (auto, none, required)."""
        merged = dict(extra_body)
        own_tools = "tools" in extra_body
        if self.tools and not own_tools:
            merged["tools"] = list(self.tools)
        choice = self.tool_choice
        # A named tool belongs to the job's tools; "auto", "none", "required" go anywhere.
        fits = not own_tools or isinstance(choice, str)
        if choice is not None and "tool_choice" not in extra_body and fits:
            merged["tool_choice"] = choice
        if self.prompt_cache_key is not None and "prompt_cache_key" not in extra_body:
            merged["prompt_cache_key"] = self.prompt_cache_key
        return merged


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
