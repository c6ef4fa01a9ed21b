"""Mistral's chat completions (`POST /v1/chat/completions`, served under `/mistral`) as the
mock speaks it: OpenAI's request body, Mistral's own errors and rate-limit headers.

Tool calls carry 9-character ids and an ``index``, beside ``content: ""``; ``n`` asks for
several choices. Reasoning (``reasoning_effort`` other than "none", or ``prompt_mode``
"reasoning") answers with ``content`` as chunks, a ``thinking`` chunk (a list of text
chunks) then the ``text`` chunk, as Mistral's reasoning models do; its tokens are part of
``completion_tokens`` (Mistral's usage has no separate count).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

import orjson

from lm_deluge_cli.mock.formats.base import (
    INT_HOLE,
    JSON,
    JSON_HOLE,
    Answer,
    Call,
    ChatRequest,
    Choice,
    FailureKind,
    LimitState,
    PlainReply,
    Refusal,
    Reply,
    WireFormat,
    bearer_matches,
    json_answer,
    json_template,
    reason_phrase,
    short_id,
)
from lm_deluge_cli.mock.formats.openai import finish_reason
from lm_deluge_cli.mock.formats.openai_request import (
    chat_request,
    plain_body,
    plain_request,
    validate_request,
)

__all__ = ["MistralFormat"]

# limit kind → the per-minute headers Mistral reports it in.
_HEADERS = {"requests": "req-minute", "tokens": "tokens-minute"}


def _error(status: int, message: str, type_: str, code: str | None = None) -> Answer:
    """The ``{"object": "error", …}`` body Mistral sends for most errors."""
    payload = {"object": "error", "message": message, "type": type_, "param": None, "code": code}
    return json_answer(status, payload)


def _invalid(loc: list[Any], message: str, type_: str) -> Answer:
    """A 422 ``HTTPValidationError``, the body of Mistral's OpenAPI specification."""
    return json_answer(422, {"detail": [{"loc": loc, "msg": message, "type": type_}]})


def _location(param: str | None) -> list[Any]:
    """A pydantic error location from an OpenAI param name: ``messages[0]`` →
    ``["body", "messages", 0]``."""
    if param is None:
        return ["body"]
    name, _, index = param.partition("[")
    return ["body", name, int(index.rstrip("]"))] if index else ["body", name]


def _completion(
    response_id: Any,
    model: Any,
    prompt_tokens: Any,
    completion_tokens: Any,
    total_tokens: Any,
    created: Any,
    choices: list[Any],
) -> dict[str, Any]:
    """A ``chat.completion`` as Mistral writes it (its values may be `json_template` holes)."""
    return {
        "id": response_id,
        "object": "chat.completion",
        "model": model,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": total_tokens,
        },
        "created": created,
        "choices": choices,
    }


def _choice(index: int, message: Any, reason: Any) -> dict[str, Any]:
    return {"index": index, "message": message, "finish_reason": reason}


def _message(choice: Choice) -> dict[str, Any]:
    content: Any = choice.text
    if choice.reasoning is not None:
        thinking = {"type": "thinking", "thinking": [{"type": "text", "text": choice.reasoning}]}
        text = [{"type": "text", "text": choice.text}] if choice.text else []
        content = [thinking, *text]
    calls = [
        {
            "id": short_id(call.call_id, 9),
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
            "index": index,
        }
        for index, call in enumerate(choice.tool_calls)
    ]
    return {"content": content, "tool_calls": calls or None, "prefix": False, "role": "assistant"}


class MistralFormat(WireFormat):
    """Bearer keys; 422 validation errors; ``x-ratelimit-*-minute`` headers; the 429
    ``rate_limited`` body; overload as the 429 "Service tier capacity exceeded"."""

    name = "mistral"
    answer_fields = ("choices",)
    string_arguments = True
    gateway_statuses = (502, 504)

    def authenticate(self, call: Call, api_key: str | None) -> Answer | None:
        if api_key is None or bearer_matches(call.headers, api_key):
            return None
        return json_answer(401, {"message": "Unauthorized", "request_id": secrets.token_hex(16)})

    def parse(self, call: Call) -> ChatRequest | Answer:
        try:
            request = orjson.loads(call.body)
        except orjson.JSONDecodeError:
            return _invalid(["body", 0], "Expecting value", "value_error.jsondecode")
        plain = plain_request(request)
        if plain is not None:
            return plain
        problem = validate_request(request)
        if problem is not None:
            message, param = problem
            loc = _location(param)
            if len(loc) == 2 and isinstance(request, dict) and loc[1] not in request:
                return _invalid(loc, "field required", "value_error.missing")
            return _invalid(loc, message, "value_error")
        effort = request.get("reasoning_effort")
        thinks = effort not in (None, "none") or request.get("prompt_mode") == "reasoning"
        return chat_request(request, reasoning=thinks)

    def plain_chat(self, body: bytes) -> ChatRequest | None:
        return plain_body(body)

    def completion(self, request: ChatRequest, reply: Reply) -> Answer:
        prompt, output = reply.prompt_tokens, reply.completion_tokens
        choices = [
            _choice(index, _message(choice), finish_reason(choice))
            for index, choice in enumerate(reply.choices)
        ]
        payload = _completion(
            f"cmpl-{reply.response_id}",
            request.model,
            prompt,
            output,
            prompt + output,
            int(time.time()),
            choices,
        )
        return json_answer(200, payload)

    def plain_completion(self, request: ChatRequest, plain: PlainReply) -> Answer:
        prompt_tokens, completion_tokens = plain.prompt_tokens, plain.completion_tokens
        body = _TEXT_COMPLETION % (
            orjson.dumps(f"cmpl-{plain.response_id}"),
            orjson.dumps(request.model),
            prompt_tokens,
            completion_tokens,
            prompt_tokens + completion_tokens,
            int(time.time()),
            orjson.dumps(plain.text),
            _FINISH_REASONS[plain.truncated],
        )
        return Answer(200, {**JSON}, body)

    def rate_limited(self, refusal: Refusal) -> Answer:
        # Mistral documents no retry-after; its per-minute headers say what is left.
        return _error(429, "Rate limit exceeded", "rate_limited", "1300")

    def failure(self, kind: FailureKind) -> Answer:
        if kind == "overloaded":
            # How Mistral reports a model too busy to serve: a 429 that is not a rate limit.
            message = "Service tier capacity exceeded for this model."
            return _error(429, message, "invalid_request_error")
        return _error(500, "Internal server error", "internal_server_error")

    def status_error(self, status: int) -> Answer:
        kind = "internal_server_error" if status >= 500 else "invalid_request_error"
        return _error(status, reason_phrase(status), kind)

    def limit_headers(
        self, limits: Sequence[LimitState], now: float, refused: bool
    ) -> dict[str, str]:
        headers: dict[str, str] = {}
        for limit in limits:
            suffix = _HEADERS[limit.kind]
            headers[f"x-ratelimit-limit-{suffix}"] = str(int(limit.per_minute))
            headers[f"x-ratelimit-remaining-{suffix}"] = str(limit.remaining)
        return headers


# The body of a plain request's answer (`ChatRequest.plain`: one choice, text alone), with
# holes for its id, model, usage, time, text and finish reason: `completion` writes the
# same bytes (tests compare the two), the template without building the objects first.
_TEXT_COMPLETION = json_template(
    _completion(
        JSON_HOLE,
        JSON_HOLE,
        INT_HOLE,
        INT_HOLE,
        INT_HOLE,
        INT_HOLE,
        [_choice(0, {**_message(Choice("", 0)), "content": JSON_HOLE}, JSON_HOLE)],
    )
)
# finish_reason as written, by whether the text was cut short.
_FINISH_REASONS = (b'"stop"', b'"length"')
