"""The shared vocabulary of what comes back: a model's answers, the usage a provider
reports, the Completion an adapter reads and a line's Result. Values only, no I/O; what goes
out (prompts, sampling, requests) is in types.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

__all__ = [
    "FINISH_REASONS",
    "Answer",
    "Completion",
    "ErrorInfo",
    "Reasoning",
    "Result",
    "ToolCall",
    "Usage",
    "decoded_arguments",
]

# Why a model stopped, in one vocabulary for every provider (its own value is kept beside):
# stop (a natural end or a stop sequence), length (max tokens or the context window),
# tool_calls (it called tools and waits for their results), content_filter (the provider's
# filter cut or blocked it), refusal (the model declined), other (anything else).
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "refusal", "other")


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


def decoded_arguments(raw: Any) -> dict[str, Any] | None:
    """The arguments of a tool call in a conversation (OpenAI's ``function.arguments``) as an
    object: JSON text decoded, an object as is, none at all as {}; None when they are not a
    JSON object."""
    raw = raw or "{}"
    try:
        parsed = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


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
