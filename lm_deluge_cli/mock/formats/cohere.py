"""Cohere's Chat API v2 (`POST /v2/chat`) as the mock speaks it: `{"id", "message"}` error
bodies and a trial key's per-minute call headers.

Tools are OpenAI's function tools; ``tool_choice`` is "REQUIRED" or "NONE" (absent: the
model decides). Calls come as ``message.tool_calls`` (``<name>_<12 characters>`` ids,
JSON-string arguments) with the model's ``tool_plan``, and ``finish_reason`` "TOOL_CALL".
``thinking: {"type": "enabled"}`` puts a ``thinking`` content item before the text.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from lm_deluge_cli.mock.formats.base import (
    Answer,
    Call,
    ChatRequest,
    Choice,
    FailureKind,
    LimitState,
    Refusal,
    Reply,
    ToolChoice,
    WireFormat,
    as_uuid,
    bearer_matches,
    json_answer,
    load_json_object,
    number_text,
    reason_phrase,
    short_id,
)
from lm_deluge_cli.mock.formats.chat import neutral_request
from lm_deluge_cli.mock.formats.openai_request import function_tools
from lm_deluge_cli.mock.wire import token_logprobs

__all__ = ["CohereFormat"]

_ROLES = ("system", "user", "assistant", "tool")


def _error(status: int, message: str) -> Answer:
    """Cohere's error body: an id for support, and the message."""
    return json_answer(status, {"id": str(uuid.uuid4()), "message": message})


def _read(request: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]], int | None] | str:
    """(model, OpenAI-shaped messages, max_tokens) of a v2 chat body, or what is wrong."""
    model = request.get("model")
    if not isinstance(model, str) or not model:
        return "invalid request: model must be specified"
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        return "invalid request: messages must be a non-empty list"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            return f"invalid request: messages[{i}].role must be one of {', '.join(_ROLES)}"
    if request.get("stream"):
        return "invalid request: this mock does not stream; set stream to false"
    max_tokens = request.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        return "invalid request: max_tokens must be a positive integer"
    # Cohere's messages are OpenAI's already; role and content make the reply, and tool
    # calls are counted.
    chat: list[dict[str, Any]] = []
    for message in messages:
        kept = {"role": message["role"], "content": message.get("content")}
        if message.get("tool_calls"):
            kept["tool_calls"] = message["tool_calls"]
        chat.append(kept)
    return model, chat, max_tokens


def _response_format(spec: Any) -> tuple[dict[str, Any] | None, bool]:
    """(schema, JSON mode) of a ``response_format``: ``{"type": "json_object"}``, with the
    schema under ``json_schema`` when there is one."""
    if not isinstance(spec, dict) or spec.get("type") != "json_object":
        return None, False
    schema = spec.get("json_schema")
    return (schema, False) if isinstance(schema, dict) else (None, True)


def _tool_choice(choice: Any) -> ToolChoice:
    """ "REQUIRED" always calls a tool, "NONE" never; absent, the model decides."""
    if choice == "REQUIRED":
        return ToolChoice("required")
    if choice == "NONE":
        return ToolChoice("none")
    return ToolChoice()


def _message(choice: Choice) -> dict[str, Any]:
    """The assistant message: thinking and text content items, or the tool plan and calls."""
    content: list[dict[str, Any]] = []
    if choice.reasoning is not None:
        content.append({"type": "thinking", "thinking": choice.reasoning})
    message: dict[str, Any] = {"role": "assistant"}
    if choice.tool_calls:
        message["tool_plan"] = choice.text
        message["tool_calls"] = [
            {
                "id": f"{call.name}_{short_id(call.call_id, 12).lower()}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in choice.tool_calls
        ]
    elif choice.text:
        content.append({"type": "text", "text": choice.text})
    if content or not choice.tool_calls:
        message["content"] = content
    return message


class CohereFormat(WireFormat):
    """Bearer keys; ``x-trial-endpoint-call-*`` headers for a requests limit (not on 429s,
    as a trial key's); 429 with the trial-key message; 503 for overload."""

    name = "cohere"
    answer_fields = ("message",)
    string_arguments = True
    overload_status = 503

    def authenticate(self, call: Call, api_key: str | None) -> Answer | None:
        if api_key is None or bearer_matches(call.headers, api_key):
            return None
        if not call.headers.get("authorization"):
            return _error(401, "no api key supplied")
        return _error(401, "invalid api token")

    def parse(self, call: Call) -> ChatRequest | Answer:
        request = load_json_object(call.body)
        if request is None:
            return _error(400, "invalid request: the body is not a JSON object")
        read = _read(request)
        if isinstance(read, str):
            return _error(400, read)
        model, messages, max_tokens = read
        thinking = request.get("thinking")
        return neutral_request(
            model,
            messages,
            max_tokens,
            request,
            _response_format(request.get("response_format")),
            function_tools(request.get("tools")),
            _tool_choice(request.get("tool_choice")),
            reasoning=isinstance(thinking, dict) and thinking.get("type") == "enabled",
        )

    def completion(self, request: ChatRequest, reply: Reply) -> Answer:
        # Billed units and processed tokens are the same here: the mock adds no preamble.
        tokens = {"input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens}
        choice = reply.choices[0]
        finish = "COMPLETE"
        if choice.truncated:
            finish = "MAX_TOKENS"
        elif choice.tool_calls:
            finish = "TOOL_CALL"
        payload: dict[str, Any] = {
            "id": as_uuid(reply.response_id),
            "finish_reason": finish,
            "message": _message(choice),
            "usage": {"billed_units": dict(tokens), "tokens": tokens},
        }
        if request.raw.get("logprobs"):
            # The chosen tokens only: Cohere sends no alternatives.
            payload["logprobs"] = [
                {
                    "text": step.token,
                    "token_ids": [zlib.crc32(step.token.encode()) % 256_000],
                    "logprobs": [step.logprob],
                }
                for step in token_logprobs(request.messages, reply.text)
            ]
        return json_answer(200, payload)

    def states_tool_plan(self, request: ChatRequest) -> bool:
        return True

    def rate_limited(self, refusal: Refusal) -> Answer:
        # Cohere sends no retry-after; the message is all a client gets.
        if refusal.kind == "requests":
            message = "You are past the per minute request limit, please wait and try again later."
        else:
            message = (
                f"trial token rate limit exceeded, limit is {number_text(refusal.limit)} tokens "
                "per minute"
            )
        return _error(429, message)

    def failure(self, kind: FailureKind) -> Answer:
        if kind == "overloaded":
            return _error(503, "service unavailable, please try again later")
        return _error(500, "internal server error, this has been reported to our developers")

    def status_error(self, status: int) -> Answer:
        return _error(status, reason_phrase(status).lower())

    def limit_headers(
        self, limits: Sequence[LimitState], now: float, refused: bool
    ) -> dict[str, str]:
        headers: dict[str, str] = {}
        for limit in limits:
            if limit.kind == "requests" and not refused:
                headers["x-trial-endpoint-call-limit"] = str(int(limit.per_minute))
                headers["x-trial-endpoint-call-remaining"] = str(limit.remaining)
        return headers
