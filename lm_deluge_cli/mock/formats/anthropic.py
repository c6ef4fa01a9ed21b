"""Anthropic's Messages API (`POST /v1/messages`) as the mock speaks it.

`read_messages_body` is shared with Bedrock, whose InvokeModel takes the same body.

Tools are ``{"name", "description", "input_schema"}`` (server tools, which have a ``type``,
are left out); ``tool_choice`` is ``{"type": "auto" | "any" | "tool" | "none"}`` with
``disable_parallel_tool_use``. Calls are ``tool_use`` blocks (``toolu_01…`` ids, ``input``
an object), after a short text block saying what the model will do on auto (none with
"any" or a named tool, which the API prefills), with ``stop_reason`` "tool_use".
``thinking`` (``enabled`` or ``adaptive``) puts a ``thinking`` block with an opaque
``signature`` first (its text empty when ``display`` is "omitted"); its tokens are part of
``output_tokens`` and ``output_tokens_details.thinking_tokens``. ``cache_control``
breakpoints are honoured by the simulator's prompt cache (`formats.anthropic_prompt`,
`prompt_cache`): ``input_tokens`` counts only what follows the last breakpoint.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from lm_deluge_cli.mock.formats.anthropic_prompt import client_tool, read_breakpoints
from lm_deluge_cli.mock.formats.base import (
    Answer,
    Breakpoint,
    Call,
    ChatRequest,
    Choice,
    FailureKind,
    LimitState,
    Refusal,
    Reply,
    ToolChoice,
    ToolSpec,
    WireFormat,
    json_answer,
    keys_match,
    load_json_object,
    opaque_signature,
    reason_phrase,
    rfc3339,
    short_id,
    whole_seconds,
)
from lm_deluge_cli.mock.formats.chat import neutral_request

__all__ = [
    "AnthropicFormat",
    "message_body",
    "read_messages_body",
    "structured_request",
    "tool_plan_before_calls",
]

_LIMITS_DOC = "For details, refer to: https://docs.claude.com/en/api/rate-limits."
_ROLES = ("user", "assistant")
# A document source's type → the media type it requires (None: it has none).
_DOCUMENT_SOURCES: Mapping[str, str | None] = {
    "base64": "application/pdf",
    "content": None,
    "file": None,
    "text": "text/plain",
    "url": None,
}
# The field each source type cannot do without.
_SOURCE_FIELDS: Mapping[str, str] = {
    "base64": "data",
    "content": "content",
    "file": "file_id",
    "text": "data",
    "url": "url",
}
# Sources Bedrock does not take: it reads no URLs and has no Files API.
_REMOTE_SOURCES = frozenset({"url", "file"})


def read_messages_body(
    request: Mapping[str, Any], *, remote_sources: bool = True
) -> tuple[str | None, int, list[Any]] | str:
    """(system prompt, max_tokens, messages) of a Messages body, or what is wrong with it,
    worded as the API words its validation errors (``max_tokens: Field required``).

    Document blocks are checked as the API checks them; `remote_sources=False` (Bedrock)
    also refuses their url and file sources."""
    max_tokens = request.get("max_tokens")
    if max_tokens is None:
        return "max_tokens: Field required"
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        return "max_tokens: Input should be a valid integer"
    if max_tokens < 1:
        return "max_tokens: Input should be greater than or equal to 1"
    messages = request.get("messages")
    if messages is None:
        return "messages: Field required"
    if not isinstance(messages, list):
        return "messages: Input should be a valid list"
    if not messages:
        return "messages: at least one message is required"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        content = message.get("content")
        if not isinstance(content, str | list):
            return f"messages.{i}.content: Input should be a valid string or list"
        for j, block in enumerate(content if isinstance(content, list) else ()):
            if isinstance(block, dict) and block.get("type") == "document":
                where = f"messages.{i}.content.{j}.document"
                if (problem := _document_problem(block, where, remote_sources)) is not None:
                    return problem
    system = request.get("system")
    if system is None or isinstance(system, str):
        return system, max_tokens, messages
    if isinstance(system, list) and all(
        isinstance(block, dict) and isinstance(block.get("text"), str) for block in system
    ):
        return "\n\n".join(block["text"] for block in system), max_tokens, messages
    return "system: Input should be a valid string or a list of text blocks"


def _document_problem(block: Mapping[str, Any], where: str, remote_sources: bool) -> str | None:
    """What is wrong with a document block at `where`, or None."""
    title = block.get("title")
    if title is not None and not isinstance(title, str):
        return f"{where}.title: Input should be a valid string"
    source = block.get("source")
    if not isinstance(source, dict):
        return f"{where}.source: Field required"
    kind = source.get("type")
    if not isinstance(kind, str) or kind not in _DOCUMENT_SOURCES:
        tags = ", ".join(f"'{tag}'" for tag in _DOCUMENT_SOURCES)
        return (
            f"{where}.source: Input tag {kind!r} found using 'type' does not match any of the "
            f"expected tags: {tags}"
        )
    at = f"{where}.source.{kind}"
    if kind in _REMOTE_SOURCES and not remote_sources:
        return f"{at}: {kind} sources are not supported"
    media_type = _DOCUMENT_SOURCES[kind]
    if media_type is not None and source.get("media_type") != media_type:
        return f"{at}.media_type: Input should be '{media_type}'"
    field = _SOURCE_FIELDS[kind]
    value = source.get(field)
    # A content source holds a string or a list of blocks; every other field is a string.
    if not (isinstance(value, str) or (kind == "content" and isinstance(value, list))):
        return f"{at}.{field}: Field required"
    if kind == "base64" and not _is_base64(source["data"]):
        return f"{at}.data: Input should be valid base64"
    return None


def _is_base64(data: str) -> bool:
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def chat_messages(system: str | None, messages: list[Any]) -> list[dict[str, Any]]:
    """OpenAI-shaped messages: the system prompt first, then each turn's role and content
    as sent (text blocks already read as OpenAI's text parts do)."""
    chat: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    chat.extend({"role": m["role"], "content": m["content"]} for m in messages)
    return chat


def structured_request(
    model: str,
    messages: list[dict[str, Any]],
    max_tokens: int,
    request: Mapping[str, Any],
    breakpoints: tuple[Breakpoint, ...] = (),
) -> ChatRequest:
    """A Messages body in neutral terms: its tools, thinking, cache breakpoints, and the
    schema it asks for: structured outputs' ``output_config.format`` (``{"type":
    "json_schema", "schema": …}``), or a tool forced by ``tool_choice`` ``{"type": "tool",
    "name": …}``, whose ``input_schema`` it is."""
    thinking = request.get("thinking")
    plain = neutral_request(
        model,
        messages,
        max_tokens,
        request,
        (None, False),
        _tools(request.get("tools")),
        _tool_choice(request.get("tool_choice")),
        reasoning=isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"),
        cache_breakpoints=breakpoints,
    )
    config = request.get("output_config")
    spec = config.get("format") if isinstance(config, dict) else None
    if isinstance(spec, dict) and spec.get("type") == "json_schema":
        schema = spec.get("schema")
        if isinstance(schema, dict):
            return plain._replace(schema=schema)
    choice = request.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool":
        for tool in plain.tools:
            if tool.name == choice.get("name") and tool.parameters:
                return plain._replace(schema=dict(tool.parameters), schema_tool=tool.name)
    return plain


def _tools(tools: Any) -> tuple[ToolSpec, ...]:
    """The client tools (`anthropic_prompt.client_tool`); server tools are left out."""
    listed = tools if isinstance(tools, list) else []
    return tuple(spec for tool in listed if (spec := client_tool(tool)) is not None)


def tool_plan_before_calls(request: ChatRequest) -> bool:
    """A short text block comes before tool_use blocks on auto only: with ``any`` or a named
    tool the API prefills the turn, so no text is generated before the calls."""
    return request.tool_choice.mode == "auto"


def _tool_choice(choice: Any) -> ToolChoice:
    """``{"type": "auto" | "any" | "tool" | "none", "name", "disable_parallel_tool_use"}``."""
    if not isinstance(choice, dict):
        return ToolChoice()
    parallel = choice.get("disable_parallel_tool_use") is not True
    kind = choice.get("type")
    if kind == "tool" and isinstance(choice.get("name"), str):
        return ToolChoice("required", (choice["name"],), parallel)
    if kind == "any":
        return ToolChoice("required", (), parallel)
    if kind == "none":
        return ToolChoice("none", (), parallel)
    return ToolChoice("auto", (), parallel)


def message_body(request: ChatRequest, reply: Reply, message_id: str) -> dict[str, Any]:
    """A Message object answering ``request``: thinking first when asked; a forced tool's
    answer is a tool_use block whose input is the JSON (empty when the answer was cut at
    max_tokens). ``input_tokens`` counts only the prompt after the last cache breakpoint."""
    choice = reply.choices[0]
    content: list[dict[str, Any]] = []
    if choice.reasoning is not None:
        content.append(_thinking_block(request, choice.reasoning))
    answer = _answer_blocks(request, choice, reply.response_id)
    content += answer
    stop_reason = "end_turn"
    if choice.truncated:
        stop_reason = "max_tokens"
    elif any(block["type"] == "tool_use" for block in answer):
        stop_reason = "tool_use"
    cache = reply.cache
    usage: dict[str, Any] = {
        "input_tokens": reply.prompt_tokens - cache.read - cache.written,
        "cache_creation_input_tokens": cache.written,
        "cache_read_input_tokens": cache.read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache.written_5m,
            "ephemeral_1h_input_tokens": cache.written_1h,
        },
        "output_tokens": reply.completion_tokens,
    }
    if choice.reasoning is not None:
        usage["output_tokens_details"] = {"thinking_tokens": choice.reasoning_tokens}
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def _thinking_block(request: ChatRequest, reasoning: str) -> dict[str, Any]:
    """A ``thinking`` block; with ``display: "omitted"`` only its signature is sent."""
    thinking = request.raw.get("thinking")
    omitted = isinstance(thinking, dict) and thinking.get("display") == "omitted"
    signature = opaque_signature(reasoning, 240)
    return {"type": "thinking", "thinking": "" if omitted else reasoning, "signature": signature}


def _answer_blocks(request: ChatRequest, choice: Choice, response_id: str) -> list[dict[str, Any]]:
    """The text block (none when the answer is empty) and the tool_use blocks."""
    if request.schema_tool is not None and (choice.text or choice.truncated):
        arguments = {} if choice.truncated else orjson.loads(choice.text)
        tool_id = f"toolu_01{short_id(response_id, 22)}"
        return [
            {"type": "tool_use", "id": tool_id, "name": request.schema_tool, "input": arguments}
        ]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": choice.text}] if choice.text else []
    for call in choice.tool_calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": f"toolu_01{short_id(call.call_id, 22)}",
                "name": call.name,
                "input": call.parsed(),
            }
        )
    return blocks


def _error(
    status: int, type_: str, message: str, headers: Mapping[str, str] | None = None
) -> Answer:
    return json_answer(
        status, {"type": "error", "error": {"type": type_, "message": message}}, headers
    )


# The error types Anthropic documents for a status (others: api_error or
# invalid_request_error); 502 comes from the Cloudflare proxy in front of the API.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class AnthropicFormat(WireFormat):
    """``x-api-key`` auth, a required ``anthropic-version`` header, ``anthropic-ratelimit-*``
    headers with RFC 3339 reset times, ``retry-after`` on 429s and 529 for overload."""

    name = "anthropic"
    answer_fields = ("content",)
    gateway_statuses = (502,)
    overload_status = 529

    def authenticate(self, call: Call, api_key: str | None) -> Answer | None:
        if api_key is None:
            return None
        presented = call.headers.get("x-api-key")
        if presented is None:
            return _error(401, "authentication_error", "x-api-key header is required")
        if not keys_match(presented, api_key):
            return _error(401, "authentication_error", "invalid x-api-key")
        return None

    def parse(self, call: Call) -> ChatRequest | Answer:
        if not call.headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        request = load_json_object(call.body)
        if request is None:
            return _error(400, "invalid_request_error", "The request body is not valid JSON.")
        model = request.get("model")
        if not isinstance(model, str) or not model:
            return _error(400, "invalid_request_error", "model: Field required")
        read = read_messages_body(request)
        if isinstance(read, str):
            return _error(400, "invalid_request_error", read)
        system, max_tokens, messages = read
        breakpoints = read_breakpoints(request, self.name, model)
        if isinstance(breakpoints, str):
            return _error(400, "invalid_request_error", breakpoints)
        chat = chat_messages(system, messages)
        return structured_request(model, chat, max_tokens, request, breakpoints)

    def completion(self, request: ChatRequest, reply: Reply) -> Answer:
        return json_answer(200, message_body(request, reply, f"msg_{reply.response_id}"))

    def states_tool_plan(self, request: ChatRequest) -> bool:
        return tool_plan_before_calls(request)

    def rate_limited(self, refusal: Refusal) -> Answer:
        if refusal.wait_s is None:
            # No wait would admit it, so no retry-after is offered.
            message = (
                f"This request asks for {refusal.requested:,} tokens, more than your "
                f"organization's rate limit of {refusal.limit:,.0f} tokens per minute; reduce "
                f"the prompt or max_tokens. {_LIMITS_DOC}"
            )
            return _error(429, "rate_limit_error", message)
        message = (
            f"This request would exceed the rate limit for your organization of "
            f"{refusal.limit:,.0f} {refusal.kind} per minute. {_LIMITS_DOC}"
        )
        headers = {"retry-after": str(whole_seconds(refusal.wait_s))} if refusal.advertise else {}
        return _error(429, "rate_limit_error", message, headers)

    def failure(self, kind: FailureKind) -> Answer:
        if kind == "overloaded":
            return _error(529, "overloaded_error", "Overloaded")
        return _error(500, "api_error", "Internal server error")

    def status_error(self, status: int) -> Answer:
        default = "api_error" if status >= 500 else "invalid_request_error"
        return _error(status, _ERROR_TYPES.get(status, default), reason_phrase(status))

    def limit_headers(
        self, limits: Sequence[LimitState], now: float, refused: bool
    ) -> dict[str, str]:
        headers: dict[str, str] = {}
        for limit in limits:
            prefix = f"anthropic-ratelimit-{limit.kind}-"
            headers[prefix + "limit"] = str(math.floor(limit.per_minute))
            headers[prefix + "remaining"] = str(limit.remaining)
            # When the bucket is full again, as Anthropic's reset headers say.
            headers[prefix + "reset"] = rfc3339(now + limit.reset_s)
        return headers

    def request_headers(self, request_id: str) -> dict[str, str]:
        return {"request-id": f"req_{request_id}"}
