"""OpenAI's Responses API (`POST /v1/responses`) as the mock speaks it: Chat Completions'
keys, errors and rate-limit headers (`formats/openai.py`), its own request and response.

`instructions` becomes a system message and every `input` item an OpenAI chat message, so a
prompt gets the same reply and usage here as over Chat Completions.

Function tools are flat (``{"type": "function", "name", "parameters"}``) and a named
``tool_choice`` is ``{"type": "function", "name"}``; calls are ``function_call`` output
items (``fc_…`` ids, ``call_…`` call ids, JSON-string arguments). A ``reasoning`` object
with an effort other than "none" (or a summary) puts a ``reasoning`` item first: its
``summary`` holds a ``summary_text`` part when one is asked, and it carries
``encrypted_content`` when ``include`` names ``reasoning.encrypted_content``; its tokens are
``output_tokens_details.reasoning_tokens``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from lm_deluge_cli.mock.formats.base import (
    JSON,
    Answer,
    Call,
    ChatRequest,
    Choice,
    Reply,
    ToolChoice,
    ToolSpec,
    WireFormat,
    json_answer,
    opaque_signature,
    short_id,
)
from lm_deluge_cli.mock.formats.chat import neutral_request, tool_spec
from lm_deluge_cli.mock.formats.openai import OpenAIFormat, error_body, logprobs_content
from lm_deluge_cli.mock.formats.openai_request import response_format

__all__ = ["ENCRYPTED_REASONING", "MIN_OUTPUT_TOKENS", "OpenAIResponsesFormat"]

# The API refuses a smaller max_output_tokens (integer_below_min_value).
MIN_OUTPUT_TOKENS = 16
_ROLES = ("user", "assistant", "system", "developer")
_PART_TYPES = ("input_text", "input_image", "output_text", "refusal", "input_file")
# Chat Completions fields that the Responses API refuses; response_format has moved.
_CHAT_ONLY = (
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "reasoning_effort",
    "logprobs",
)
_MOVED = {"response_format": "text.format"}
# What ``include`` names to get a reasoning item's encrypted_content.
ENCRYPTED_REASONING = "reasoning.encrypted_content"
_SUMMARIES = ("auto", "concise", "detailed")
_REFERENCE = "https://platform.openai.com/docs/api-reference/responses/create"


class _Invalid(Exception):
    """A request the API refuses with a 400: OpenAI's message, and the field it names."""

    def __init__(self, message: str, param: str | None, code: str | None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def _values(names: tuple[str, ...]) -> str:
    """``'a', 'b', and 'c'``, as OpenAI lists the values a field takes."""
    quoted = [f"'{name}'" for name in names]
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def _read_request(request: Any) -> ChatRequest:
    """A create-response body in neutral terms; raises `_Invalid`, worded like OpenAI, for
    a body the API refuses."""
    if not isinstance(request, dict):
        raise _Invalid("Invalid request body: expected a JSON object.", None, None)
    for name in _CHAT_ONLY:
        if name in request:
            raise _Invalid(f"Unsupported parameter: '{name}'.", name, "unsupported_parameter")
    for name, moved in _MOVED.items():
        if name in request:
            message = (
                f"Unsupported parameter: '{name}'. In the Responses API, this parameter has "
                f"moved to '{moved}'. Try again with the new parameter. See the API "
                f"documentation for more information: {_REFERENCE}."
            )
            raise _Invalid(message, name, "unsupported_parameter")
    model = request.get("model")
    if model is None:
        raise _Invalid(
            "Missing required parameter: 'model'.", "model", "missing_required_parameter"
        )
    if not isinstance(model, str) or not model:
        raise _Invalid("Invalid type for 'model': expected a string.", "model", "invalid_type")
    if request.get("stream"):
        raise _Invalid("This mock does not stream: set 'stream' to false.", "stream", None)
    max_tokens = _bounded(request, "max_output_tokens", MIN_OUTPUT_TOKENS, None)
    _bounded(request, "top_logprobs", 0, 20)
    messages: list[dict[str, Any]] = []
    instructions = request.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    elif instructions is not None and not isinstance(instructions, str):
        raise _Invalid(
            "Invalid type for 'instructions': expected a string.", "instructions", "invalid_type"
        )
    messages.extend(_input_messages(request.get("input")))
    return neutral_request(
        model,
        messages,
        max_tokens,
        request,
        _text_format(request.get("text")),
        _tools(request.get("tools")),
        _tool_choice(request.get("tool_choice"), request.get("parallel_tool_calls")),
        reasoning=_asks_reasoning(request.get("reasoning")),
    )


def _tools(tools: Any) -> tuple[ToolSpec, ...]:
    """The function tools, in the Responses API's flat shape; built-in tools are left out."""
    specs: list[ToolSpec] = []
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue
        spec = tool_spec(tool.get("name"), tool.get("parameters"), tool.get("description"))
        if spec is not None:
            specs.append(spec)
    return tuple(specs)


def _tool_choice(choice: Any, parallel: Any) -> ToolChoice:
    """ "none", "auto", "required", or ``{"type": "function", "name"}``."""
    allowed = parallel is not False
    if isinstance(choice, dict) and isinstance(choice.get("name"), str):
        return ToolChoice("required", (choice["name"],), allowed)
    if choice in ("none", "required"):
        return ToolChoice(choice, (), allowed)
    return ToolChoice("auto", (), allowed)


def _asks_reasoning(reasoning: Any) -> bool:
    """Whether a ``reasoning`` object asks to reason: an effort other than "none", or a
    summary with no effort (the model's default effort)."""
    if not isinstance(reasoning, dict) or reasoning.get("effort") == "none":
        return False
    return reasoning.get("effort") is not None or reasoning.get("summary") is not None


def _text_format(text: Any) -> tuple[dict[str, Any] | None, bool]:
    """(schema, JSON mode) of ``text.format``: Chat Completions' response_format with the
    json_schema's name, schema and strict one level up."""
    spec = text.get("format") if isinstance(text, dict) else None
    if isinstance(spec, dict) and spec.get("type") == "json_schema":
        return response_format({"type": "json_schema", "json_schema": spec})
    return response_format(spec)


def _bounded(request: Mapping[str, Any], name: str, low: int, high: int | None) -> int | None:
    value = request.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"Invalid type for '{name}': expected an integer.", name, "invalid_type")
    if value < low:
        message = (
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, "
            f"but got {value} instead."
        )
        raise _Invalid(message, name, "integer_below_min_value")
    if high is not None and value > high:
        message = (
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, "
            f"but got {value} instead."
        )
        raise _Invalid(message, name, "integer_above_max_value")
    return value


def _input_messages(items: Any) -> list[dict[str, Any]]:
    """The input as OpenAI chat messages: a string is one user message."""
    if items is None:
        raise _Invalid(
            "Missing required parameter: 'input'.", "input", "missing_required_parameter"
        )
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise _Invalid(
            "Invalid 'input': expected a string or a non-empty array of input items.",
            "input",
            "invalid_value",
        )
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _Invalid(f"Invalid '{where}': expected an object.", where, "invalid_type")
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, where))
        elif kind == "function_call":
            messages.append(_function_call(item, where))
        elif kind == "function_call_output":
            call_id, output = item.get("call_id"), item.get("output")
            if not isinstance(call_id, str) or not isinstance(output, str | list):
                raise _Invalid(
                    f"Missing required parameter: '{where}.call_id'.",
                    f"{where}.call_id",
                    "missing_required_parameter",
                )
            messages.append({"role": "tool", "tool_call_id": call_id, "content": output})
        elif kind != "reasoning":  # reasoning items are context, not a message
            raise _Invalid(f"Invalid value: '{kind}'.", f"{where}.type", "invalid_value")
    return messages


def _message(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in _ROLES:
        message = f"Invalid value: '{role}'. Supported values are: {_values(_ROLES)}."
        raise _Invalid(message, f"{where}.role", "invalid_value")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise _Invalid(
            f"Invalid type for '{where}.content': expected a string or an array.",
            f"{where}.content",
            "invalid_type",
        )
    parts = [_part(p, f"{where}.content[{j}]") for j, p in enumerate(content)]
    if role == "assistant" and len(parts) == 1 and parts[0]["type"] == "text":
        # An earlier answer is one output_text part here, a plain string over Chat
        # Completions: read alike, a conversation gets the same reply in both.
        return {"role": role, "content": parts[0]["text"]}
    return {"role": role, "content": parts}


def _part(part: Any, where: str) -> dict[str, Any]:
    """A content part as OpenAI's chat parts: texts keep their text, an image stays an image
    (so it is counted as one), a file stays a file."""
    if not isinstance(part, dict) or part.get("type") not in _PART_TYPES:
        kind = part.get("type") if isinstance(part, dict) else None
        message = f"Invalid value: '{kind}'. Supported values are: {_values(_PART_TYPES)}."
        raise _Invalid(message, f"{where}.type", "invalid_value")
    kind = part["type"]
    if kind in ("input_text", "output_text"):
        if not isinstance(part.get("text"), str):
            raise _Invalid(
                f"Missing required parameter: '{where}.text'.",
                f"{where}.text",
                "missing_required_parameter",
            )
        return {"type": "text", "text": part["text"]}
    if kind == "input_image":
        return {"type": "image_url", "image_url": {"url": part.get("image_url") or ""}}
    if kind == "input_file":
        fields = ("file_id", "file_data", "filename", "file_url")
        return {"type": "file", "file": {k: part[k] for k in fields if k in part}}
    return {"type": "refusal", "refusal": part.get("refusal")}


def _function_call(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    for name in ("call_id", "name", "arguments"):
        if not isinstance(item.get(name), str):
            raise _Invalid(
                f"Missing required parameter: '{where}.{name}'.",
                f"{where}.{name}",
                "missing_required_parameter",
            )
    function = {"name": item["name"], "arguments": item["arguments"]}
    call = {"id": item["call_id"], "type": "function", "function": function}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


class OpenAIResponsesFormat(OpenAIFormat):
    """OpenAI's keys, errors, ``x-ratelimit-*`` headers and 429s; Response objects."""

    name = "openai_responses"
    answer_fields = ("output",)
    # Its bodies and completions are its own, not Chat Completions': it reads every body
    # with `parse` and writes a plain request's completion with `completion`.
    plain_chat = WireFormat.plain_chat
    plain_completion = WireFormat.plain_completion

    def parse(self, call: Call) -> ChatRequest | Answer:
        try:
            request = orjson.loads(call.body)
        except orjson.JSONDecodeError:
            message = "We could not parse the JSON body of your request."
            return Answer(400, dict(JSON), error_body(message, "invalid_request_error"))
        try:
            return _read_request(request)
        except _Invalid as invalid:
            body = error_body(invalid.message, "invalid_request_error", invalid.code, invalid.param)
            return Answer(400, dict(JSON), body)

    def completion(self, request: ChatRequest, reply: Reply) -> Answer:
        raw = request.raw
        choice = reply.choices[0]
        status = "incomplete" if choice.truncated else "completed"
        reasoning = raw.get("reasoning")
        effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
        summary = reasoning.get("summary") if isinstance(reasoning, dict) else None
        output = _output(request, choice, reply.response_id, status)
        payload = {
            "id": f"resp_{reply.response_id}",
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if choice.truncated else None,
            "instructions": raw.get("instructions"),
            "max_output_tokens": raw.get("max_output_tokens"),
            "model": request.model,
            "output": output,
            "parallel_tool_calls": raw.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "reasoning": {"effort": effort, "summary": summary},
            "store": raw.get("store", True),
            "temperature": raw.get("temperature", 1.0),
            "text": raw.get("text") or {"format": {"type": "text"}},
            "tool_choice": raw.get("tool_choice", "auto"),
            "tools": raw.get("tools") or [],
            "top_p": raw.get("top_p", 1.0),
            "truncation": raw.get("truncation") or "disabled",
            "usage": {
                "input_tokens": reply.prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": reply.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            },
            "user": raw.get("user"),
            "metadata": raw.get("metadata") or {},
        }
        return json_answer(200, payload)


def _output(request: ChatRequest, choice: Choice, response_id: str, status: str) -> list[Any]:
    """The output items: the reasoning item, then function calls or the message (none when
    the answer is empty)."""
    raw = request.raw
    output: list[Any] = []
    if choice.reasoning is not None:
        output.append(_reasoning_item(raw, choice.reasoning, response_id))
    for call in choice.tool_calls:
        output.append(
            {
                "type": "function_call",
                "id": f"fc_{call.call_id}",
                "call_id": f"call_{short_id(call.call_id, 24)}",
                "name": call.name,
                "arguments": call.arguments,
                "status": "completed",
            }
        )
    if choice.tool_calls or not choice.text:
        return output
    part: dict[str, Any] = {"type": "output_text", "text": choice.text, "annotations": []}
    include = raw.get("include")
    if isinstance(include, list) and "message.output_text.logprobs" in include:
        part["logprobs"] = logprobs_content(request, choice.text, raw.get("top_logprobs") or 0)
    message = {
        "type": "message",
        "id": f"msg_{response_id}",
        "status": status,
        "role": "assistant",
        "content": [part],
    }
    return [*output, message]


def _reasoning_item(raw: Mapping[str, Any], text: str, response_id: str) -> dict[str, Any]:
    """A ``reasoning`` item: a summary when one is asked, the encrypted reasoning when
    ``include`` names it."""
    reasoning = raw.get("reasoning")
    summary = reasoning.get("summary") if isinstance(reasoning, dict) else None
    parts = [{"type": "summary_text", "text": f"**Thinking it through**\n\n{text}"}]
    item: dict[str, Any] = {
        "id": f"rs_{response_id}",
        "type": "reasoning",
        "summary": parts if summary in _SUMMARIES else [],
    }
    include = raw.get("include")
    if isinstance(include, list) and ENCRYPTED_REASONING in include:
        item["encrypted_content"] = "gAAAAAB" + opaque_signature(text, 180)
    return item
