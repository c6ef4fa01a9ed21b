"""The shared vocabulary: prompts in, answers and results out. Values only: no I/O, and no
logic beyond checking, merging and reading their own fields."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from lm_deluge_cli.errors import InvalidValueError
from lm_deluge_cli.sampling import check_sampling_value

__all__ = [
    "FINISH_REASONS",
    "SAMPLING_FIELDS",
    "Answer",
    "Completion",
    "ErrorInfo",
    "HttpRequest",
    "HttpResponse",
    "Prompt",
    "PromptCache",
    "RateLimitInfo",
    "Reasoning",
    "RequestDefaults",
    "Result",
    "SamplingParams",
    "ToolCall",
    "Usage",
]

# Why a model stopped, in one vocabulary for every provider (its own value is kept beside):
# stop (a natural end or a stop sequence), length (max tokens or the context window),
# tool_calls (it called tools and waits for their results), content_filter (the provider's
# filter cut or blocked it), refusal (the model declined), other (anything else).
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "refusal", "other")

# Messages are OpenAI chat messages: {"role": ..., "content": str | list[part]}.
Message = dict[str, Any]


def _unfrozen(cls: type[Any]) -> type[Any]:
    """A class with the slots of the frozen dataclass `cls` and nothing else, for its `build`.

    A frozen dataclass's __init__ sets each field through ``object.__setattr__``, which on
    Python 3.11 is most of what making one costs (a Result's 14 fields: several times the
    rest). The values made for every line are built instead as an object of this class,
    whose fields take plain assignments, that is then given the class `cls`: the layout is
    the same, so it is a `cls` like any other, frozen from then on.
    """
    return type(f"_Unfrozen{cls.__name__}", (), {"__slots__": cls.__slots__})


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
    """Tokens a request consumed, as the provider reported them.

    `cached_input_tokens` (read from the provider's prompt cache) and `cache_write_tokens`
    (written to it; `cache_write_1h_tokens` of them kept for an hour rather than the
    default five minutes) are parts of `input_tokens`; `reasoning_tokens` are part of
    `output_tokens`.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0

    def to_record(self) -> dict[str, int]:
        """Input and output tokens, and each of the other counts the provider reported."""
        record = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        # Written out, not looped over: this runs for every record.
        if self.cached_input_tokens:
            record["cached_input_tokens"] = self.cached_input_tokens
        if self.reasoning_tokens:
            record["reasoning_tokens"] = self.reasoning_tokens
        if self.cache_write_tokens:
            record["cache_write_tokens"] = self.cache_write_tokens
        if self.cache_write_1h_tokens:
            record["cache_write_1h_tokens"] = self.cache_write_1h_tokens
        return record

    @staticmethod
    def build(
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int,
        reasoning_tokens: int,
        cache_write_tokens: int,
        cache_write_1h_tokens: int,
    ) -> Usage:
        """A Usage of every count, in order, made quickly (see `_unfrozen`)."""
        usage = _UnfrozenUsage()
        usage.input_tokens = input_tokens
        usage.output_tokens = output_tokens
        usage.cached_input_tokens = cached_input_tokens
        usage.reasoning_tokens = reasoning_tokens
        usage.cache_write_tokens = cache_write_tokens
        usage.cache_write_1h_tokens = cache_write_1h_tokens
        usage.__class__ = Usage
        return usage  # type: ignore[no-any-return]

    @staticmethod
    def from_record(record: Mapping[str, Any]) -> Usage:
        """The inverse of `to_record` (missing counts are 0)."""
        get = record.get
        input_tokens, output_tokens = get("input_tokens"), get("output_tokens")
        # The usual record, of these two counts only, read without converting each count.
        if len(record) == 2 and type(input_tokens) is int and type(output_tokens) is int:
            return Usage.build(input_tokens, output_tokens, 0, 0, 0, 0)
        return Usage.build(
            int(input_tokens or 0),
            int(output_tokens or 0),
            int(get("cached_input_tokens") or 0),
            int(get("reasoning_tokens") or 0),
            int(get("cache_write_tokens") or 0),
            int(get("cache_write_1h_tokens") or 0),
        )

    def __add__(self, other: Usage) -> Usage:
        return Usage.build(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
        )


_UnfrozenUsage = _unfrozen(Usage)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model made to a tool.

    `arguments` is the decoded JSON object. When a provider sends arguments that are not a
    JSON object, `arguments` is None and `arguments_raw` keeps them exactly as sent.
    """

    id: str
    name: str
    arguments: dict[str, Any] | None
    arguments_raw: str | None = None

    @property
    def valid(self) -> bool:
        """Whether the arguments were a JSON object."""
        return self.arguments is not None

    def openai_call(self) -> dict[str, Any]:
        """The entry of an OpenAI assistant message's ``tool_calls``."""
        if self.arguments is None:
            arguments = self.arguments_raw or ""
        else:
            arguments = orjson.dumps(self.arguments).decode()
        function = {"name": self.name, "arguments": arguments}
        return {"id": self.id, "type": "function", "function": function}


@dataclass(frozen=True, slots=True)
class Reasoning:
    """What a model said while thinking.

    `text` is the reasoning (or its summary) as the provider returns it, None when it
    returns none to read. `parts` are what the provider needs back to continue the
    conversation, opaque and in its own shape (Anthropic's signed and redacted thinking
    blocks, the Responses API's encrypted reasoning items, Gemini's thought signatures),
    each tagged with the wire format it came from (``{"format": "anthropic_messages",
    ...}``): only that format is sent them again.
    """

    text: str | None = None
    parts: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Answer:
    """One sample of what a model said: text, tool calls, a refusal, or several of these.

    `finish_reason` is one of FINISH_REASONS; `provider_finish_reason` is the provider's own.
    """

    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: Reasoning | None = None
    refusal: str | None = None
    finish_reason: str | None = None
    provider_finish_reason: str | None = None
    logprobs: Any = None

    @property
    def empty(self) -> bool:
        """Whether it says nothing: no text, no tool call and no refusal."""
        return not self.text and not self.tool_calls and not self.refusal

    @staticmethod
    def build(
        text: str | None,
        tool_calls: tuple[ToolCall, ...],
        reasoning: Reasoning | None,
        refusal: str | None,
        finish_reason: str | None,
        provider_finish_reason: str | None,
        logprobs: Any,
    ) -> Answer:
        """An Answer of every field, in order, made quickly (see `_unfrozen`)."""
        answer = _UnfrozenAnswer()
        answer.text = text
        answer.tool_calls = tool_calls
        answer.reasoning = reasoning
        answer.refusal = refusal
        answer.finish_reason = finish_reason
        answer.provider_finish_reason = provider_finish_reason
        answer.logprobs = logprobs
        answer.__class__ = Answer
        return answer  # type: ignore[no-any-return]


_UnfrozenAnswer = _unfrozen(Answer)


@dataclass(frozen=True, slots=True)
class Completion:
    """What an adapter reads out of a successful response: one answer per sample it holds
    (at least one), and the usage of the whole response."""

    answers: tuple[Answer, ...]
    usage: Usage

    @staticmethod
    def build(answers: tuple[Answer, ...], usage: Usage) -> Completion:
        """A Completion made quickly (see `_unfrozen`)."""
        completion = _UnfrozenCompletion()
        completion.answers = answers
        completion.usage = usage
        completion.__class__ = Completion
        return completion  # type: ignore[no-any-return]

    @classmethod
    def of(
        cls, text: str | None, finish_reason: str | None, usage: Usage, logprobs: Any = None
    ) -> Completion:
        """A completion of one text answer."""
        return cls((Answer(text, finish_reason=finish_reason, logprobs=logprobs),), usage)

    @property
    def answer(self) -> Answer:
        """The first answer."""
        return self.answers[0]

    @property
    def text(self) -> str | None:
        """The first answer's text."""
        return self.answers[0].text

    @property
    def finish_reason(self) -> str | None:
        """The first answer's finish reason."""
        return self.answers[0].finish_reason

    @property
    def logprobs(self) -> Any:
        """The first answer's logprobs."""
        return self.answers[0].logprobs


_UnfrozenCompletion = _unfrozen(Completion)


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


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why a line ended in an error: a short stable `type` (``rate_limit``, ``bad_request``,
    ``empty_answer``, ``invalid_input`` …), a message for people, and the HTTP status."""

    type: str
    message: str
    status_code: int | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """One line's outcome, as the engine hands it to the writer and to Python callers.

    An ok result holds at least one answer (one per sample), and none of them is empty.
    `fields` are a tool's own (extract's ``data``, score's ``p_yes`` …), written after
    the others. `io.records` turns a Result into the output's JSON and back.
    """

    id: str | int | None
    line: int
    status: Literal["ok", "error"]
    model: str | None
    answers: tuple[Answer, ...] = ()
    usage: Usage | None = None
    cost_usd: float | None = None
    attempts: int = 0
    latency_s: float = 0.0
    cached: bool = False
    deduplicated: bool = False
    error: ErrorInfo | None = None
    metadata: Any = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def is_error(self) -> bool:
        return self.status != "ok"

    @property
    def answer(self) -> Answer | None:
        """The first answer (None for an error)."""
        return self.answers[0] if self.answers else None

    @property
    def completion(self) -> str | None:
        """The first answer's text."""
        return self.answers[0].text if self.answers else None

    @property
    def completions(self) -> list[str | None]:
        """Every sample's text, in order."""
        return [answer.text for answer in self.answers]

    @property
    def finish_reason(self) -> str | None:
        return self.answers[0].finish_reason if self.answers else None

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The first answer's tool calls."""
        return self.answers[0].tool_calls if self.answers else ()

    @property
    def reasoning(self) -> Reasoning | None:
        return self.answers[0].reasoning if self.answers else None

    @property
    def refusal(self) -> str | None:
        return self.answers[0].refusal if self.answers else None

    @property
    def logprobs(self) -> Any:
        return self.answers[0].logprobs if self.answers else None

    def replace(self, **changes: Any) -> Result:
        """A copy with the given fields changed."""
        return dataclasses.replace(self, **changes)

    @staticmethod
    def build(
        id: str | int | None,
        line: int,
        status: Literal["ok", "error"],
        model: str | None,
        answers: tuple[Answer, ...],
        usage: Usage | None,
        cost_usd: float | None,
        attempts: int,
        latency_s: float,
        cached: bool,
        deduplicated: bool,
        error: ErrorInfo | None,
        metadata: Any,
        fields: Mapping[str, Any],
    ) -> Result:
        """A Result of every field, in order, made quickly (see `_unfrozen`): one is made
        for every line."""
        result = _UnfrozenResult()
        result.id = id
        result.line = line
        result.status = status
        result.model = model
        result.answers = answers
        result.usage = usage
        result.cost_usd = cost_usd
        result.attempts = attempts
        result.latency_s = latency_s
        result.cached = cached
        result.deduplicated = deduplicated
        result.error = error
        result.metadata = metadata
        result.fields = fields
        result.__class__ = Result
        return result  # type: ignore[no-any-return]


_UnfrozenResult = _unfrozen(Result)
