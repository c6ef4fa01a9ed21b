"""What a chat request asks and what the simulator answers, in neutral terms: the vocabulary
between the simulator and the chat wire formats (re-exported by `formats.base`), and what
every format reads the same way once its request is in these terms: the prompt tokens of
tool definitions, and what a conversation has done with tools so far.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import orjson

from lm_deluge_cli.mock.wire import content_text, count_text_tokens

__all__ = [
    "Breakpoint",
    "CacheUsage",
    "ChatRequest",
    "Choice",
    "PlainReply",
    "Reply",
    "ToolChoice",
    "ToolMode",
    "ToolSpec",
    "ToolUse",
    "conversation_state",
    "neutral_request",
    "tool_spec",
    "tool_tokens",
]

ToolMode = Literal["auto", "none", "required"]
# The default of a mapping field shared by every value: read-only.
_NOTHING: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function a request offers the model: its name, and the JSON Schema of its arguments
    as the format carries it (Gemini's may use its upper-case OpenAPI types)."""

    name: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


def tool_spec(name: Any, parameters: Any, description: Any) -> ToolSpec | None:
    """The function a request declares with these fields, as it gives them; None without a
    name. A schema that is not an object, or a description that is not a string, is none."""
    if not isinstance(name, str) or not name:
        return None
    return ToolSpec(
        name,
        parameters if isinstance(parameters, dict) else {},
        description if isinstance(description, str) else "",
    )


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """Whether the model may, must or must not call a tool: ``mode`` "auto", "required" or
    "none"; ``names`` the functions it may pick from (empty: any the request offers; one
    name is a forced function); ``parallel`` whether one answer may hold several calls."""

    mode: ToolMode = "auto"
    names: tuple[str, ...] = ()
    parallel: bool = True


@dataclass(frozen=True, slots=True)
class Breakpoint:
    """A prompt-cache breakpoint (Anthropic's ``cache_control``): a digest of the prompt up to
    and including the marked block, that prefix's prompt tokens, and how long it is kept."""

    key: bytes
    tokens: int
    ttl_s: float


class ChatRequest(NamedTuple):
    """What a valid request asks for, in the simulator's neutral terms. (A named tuple, as
    the other values made for every request are: it is made several times faster than a
    frozen class of this many fields.)

    ``messages`` are OpenAI-shaped chat messages (a system prompt becomes a system message),
    so the reply text and the token count are the same whichever format carried them; tool
    calls and results keep their own parts (``tool_calls``, ``tool_use`` and ``tool_result``
    blocks), which the token count reads too.
    ``raw`` is the parsed body, for what only one format has (OpenAI's logprobs).
    ``schema`` is the JSON Schema the answer must match, as the format's structured-output
    field carries it; ``json_object`` asks for some JSON object (JSON mode, no schema);
    ``schema_tool`` names the tool a request forces to get its schema's answer (Anthropic's):
    the answer is that tool's input, not text.
    ``tools`` and ``tool_choice`` are the functions offered and how they may be called;
    ``tool_turns`` counts the earlier assistant turns that called tools, and ``tool_result``
    is the text of the tool results the conversation ends with (None: it ends otherwise).
    ``reasoning`` asks the model to think first; ``choices`` asks for that many answers
    (OpenAI's ``n``, Gemini's ``candidateCount``); ``cache_breakpoints`` are the prompt-cache
    breakpoints in prompt order (tools, system, messages).
    """

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int | None
    raw: Mapping[str, Any] = _NOTHING
    schema: dict[str, Any] | None = None
    json_object: bool = False
    schema_tool: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = ToolChoice()
    tool_turns: int = 0
    tool_result: str | None = None
    reasoning: bool = False
    choices: int = 1
    cache_breakpoints: tuple[Breakpoint, ...] = ()

    @property
    def plain(self) -> bool:
        """Whether it asks for one text answer and nothing else: every field after ``raw``
        at its default (no schema, tools, tool results, reasoning or cache breakpoints; one
        choice). Most requests do."""
        return self[4:] == _PLAIN_TAIL


# The fields after ``raw`` of a request that asks for one text answer and nothing else.
_PLAIN_TAIL = ChatRequest("", [], None)[4:]


@dataclass(frozen=True, slots=True)
class ToolUse:
    """A function call an answer makes: ``call_id`` is unique hex for the format's own id
    scheme; ``arguments`` the JSON object's text (not JSON at all under the
    ``invalid_tool_arguments`` fault)."""

    call_id: str
    name: str
    arguments: str

    def parsed(self) -> Any:
        """The arguments as a value, for formats that send an object ({} if they are not
        JSON, which never happens in those formats)."""
        try:
            return orjson.loads(self.arguments)
        except orjson.JSONDecodeError:
            return {}


class Choice(NamedTuple):
    """One answer: its text ("" when it holds only tool calls, or nothing at all), its tool
    calls, and its reasoning (None when none was asked). ``completion_tokens`` counts all of
    it, ``reasoning_tokens`` the reasoning's share; ``truncated`` when cut at max tokens."""

    text: str
    completion_tokens: int
    truncated: bool = False
    tool_calls: tuple[ToolUse, ...] = ()
    reasoning: str | None = None
    reasoning_tokens: int = 0


# Read for every answer: summed without a Python-level loop, which costs more than the sum.
_COMPLETION_TOKENS = attrgetter("completion_tokens")
_REASONING_TOKENS = attrgetter("reasoning_tokens")


@dataclass(frozen=True, slots=True)
class CacheUsage:
    """What the prompt cache did for a request: prompt tokens read from it, and written to it
    for five minutes and for an hour."""

    read: int = 0
    written_5m: int = 0
    written_1h: int = 0

    @property
    def written(self) -> int:
        return self.written_5m + self.written_1h


class Reply(NamedTuple):
    """The simulator's answer to an admitted request, before a format writes it down: one
    `Choice` per answer asked for, the prompt's tokens (cached ones included) and what the
    prompt cache did. (It and `Choice` are named tuples, as `ChatRequest` is: all three are
    made for every request.)"""

    choices: tuple[Choice, ...]
    prompt_tokens: int
    response_id: str  # unique hex, for the format's own id scheme
    cache: CacheUsage = CacheUsage()

    @property
    def text(self) -> str:
        """The first answer's text, for formats that answer once."""
        return self.choices[0].text

    @property
    def truncated(self) -> bool:
        """Whether the first answer was cut at the request's maximum output tokens."""
        return self.choices[0].truncated

    @property
    def completion_tokens(self) -> int:
        """Every answer's tokens, as the providers bill several answers."""
        return _total(self.choices, _COMPLETION_TOKENS)

    @property
    def reasoning_tokens(self) -> int:
        """Every answer's reasoning tokens."""
        return _total(self.choices, _REASONING_TOKENS)


class PlainReply(NamedTuple):
    """The simulator's one text answer to a plain request (`ChatRequest.plain`), which
    `WireFormat.plain_completion` writes: its text, whether it was cut at the request's
    maximum output tokens, the tokens it cost and unique hex for the format's id scheme."""

    text: str
    truncated: bool
    prompt_tokens: int
    completion_tokens: int
    response_id: str


def _total(choices: tuple[Choice, ...], tokens: attrgetter[int]) -> int:
    # Most replies hold one answer: read, not summed (this is read for every reply).
    if len(choices) == 1:
        return tokens(choices[0])
    return sum(map(tokens, choices))


def tool_tokens(tools: Iterable[ToolSpec]) -> int:
    """The prompt tokens of tool definitions: each one's name, description and schema."""
    total = 0
    for tool in tools:
        definition = {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        }
        total += count_text_tokens(orjson.dumps(definition, option=orjson.OPT_SORT_KEYS).decode())
    return total


def neutral_request(
    model: str,
    messages: list[dict[str, Any]],
    max_tokens: int | None,
    raw: Mapping[str, Any],
    output: tuple[dict[str, Any] | None, bool],
    tools: tuple[ToolSpec, ...],
    tool_choice: ToolChoice,
    *,
    reasoning: bool = False,
    choices: int = 1,
    cache_breakpoints: tuple[Breakpoint, ...] = (),
) -> ChatRequest:
    """The `ChatRequest` of what a format read from its body: ``output`` is (the schema,
    whether it asks for a JSON object); what the conversation has done with tools is read
    from its messages (`conversation_state`), as every format reads it."""
    schema, json_object = output
    tool_turns, tool_result = conversation_state(messages)
    return ChatRequest(
        model,
        messages,
        max_tokens,
        raw,
        schema=schema,
        json_object=json_object,
        tools=tools,
        tool_choice=tool_choice,
        tool_turns=tool_turns,
        tool_result=tool_result,
        reasoning=reasoning,
        choices=choices,
        cache_breakpoints=cache_breakpoints,
    )


def conversation_state(messages: list[dict[str, Any]]) -> tuple[int, str | None]:
    """(assistant turns that called tools, the text of the tool results the conversation
    ends with or None) of OpenAI-shaped messages: an assistant turn calls tools with
    ``tool_calls`` or ``tool_use`` blocks (a run of such messages is one turn, as the
    Responses API's function_call items are); results are ``tool`` messages or user
    messages holding ``tool_result`` blocks."""
    turns = 0
    calling = False
    for message in messages:
        called = message.get("role") == "assistant" and _calls_tools(message)
        if called and not calling:
            turns += 1
        calling = called
    results: list[str] = []
    for message in reversed(messages):
        content = message.get("content")
        if message.get("role") == "tool":
            results.append(content_text(content))
        elif message.get("role") == "user" and _has_part(content, "tool_result"):
            parts = [p for p in content if isinstance(p, dict) and p.get("type") == "tool_result"]
            results.append(content_text(parts))
        else:
            break
    return turns, "\n".join(reversed(results)) if results else None


def _calls_tools(message: dict[str, Any]) -> bool:
    return bool(message.get("tool_calls")) or _has_part(message.get("content"), "tool_use")


def _has_part(content: Any, kind: str) -> bool:
    return isinstance(content, list) and any(
        isinstance(part, dict) and part.get("type") == kind for part in content
    )
