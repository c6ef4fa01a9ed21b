"""The shared vocabulary of what comes back: a model's answers, the usage a provider
reports, the Completion an adapter reads and a line's Result. Values only, no I/O; what goes
out (prompts, sampling, requests) is in types.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

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


_P = ParamSpec("_P")
_T = TypeVar("_T")


class _Built:
    """A base that gives a frozen dataclass `build`: the class's constructor, made quick
    (see `_fast_build`, which the class is decorated with)."""

    __slots__ = ()

    if TYPE_CHECKING:

        @classmethod
        def build(cls: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T: ...


def _fast_build(cls: type[_T]) -> type[_T]:
    """Give the frozen dataclass `cls` a `build` that makes one as its constructor does.

    A frozen dataclass's __init__ sets each field through ``object.__setattr__``, which on
    Python 3.11 is most of what making one costs (a Result's 14 fields: several times the
    rest). The values made for every line are built instead as an object of a class with
    the same slots and bases and nothing else, whose fields take plain assignments, then given
    the class `cls`: the layout is the same, so it is a `cls` like any other, frozen from
    then on. `build` is written out for the class's fields, as dataclasses writes __init__:
    a loop over the fields would cost as much as the __setattr__ calls it avoids.
    """
    slots = cls.__slots__  # type: ignore[attr-defined]
    unfrozen = type(f"_Unfrozen{cls.__name__}", cls.__bases__, {"__slots__": slots})
    scope: dict[str, Any] = {"_Unfrozen": unfrozen, "_cls": cls, "_MISSING": dataclasses.MISSING}
    params, body = [], []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.default is not dataclasses.MISSING:
            scope[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            scope[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            body.append(f"if {f.name} is _MISSING: {f.name} = _factory_{f.name}()")
        else:
            params.append(f.name)
        body.append(f"made.{f.name} = {f.name}")
    lines = ["made = _Unfrozen()", *body, "made.__class__ = _cls", "return made"]
    source = f"def build({', '.join(params)}):\n    " + "\n    ".join(lines)
    exec(source, scope)
    build = scope["build"]
    build.__qualname__ = f"{cls.__name__}.build"
    build.__doc__ = f"A {cls.__name__} of these fields, made quickly (see `_fast_build`)."
    cls.build = staticmethod(build)  # type: ignore[attr-defined]
    return cls


@_fast_build
@dataclass(frozen=True, slots=True)
class Usage(_Built):
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


@_fast_build
@dataclass(frozen=True, slots=True)
class Answer(_Built):
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


@_fast_build
@dataclass(frozen=True, slots=True)
class Completion(_Built):
    """What an adapter reads out of a successful response: one answer per sample it holds
    (at least one), and the usage of the whole response."""

    answers: tuple[Answer, ...]
    usage: Usage

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


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why a line ended in an error: a short stable `type` (``rate_limit``, ``bad_request``,
    ``empty_answer``, ``invalid_input`` …), a message for people, and the HTTP status."""

    type: str
    message: str
    status_code: int | None = None


@_fast_build
@dataclass(frozen=True, slots=True)
class Result(_Built):
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
