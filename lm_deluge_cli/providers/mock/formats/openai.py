"""OpenAI Chat Completions (`POST /v1/chat/completions`) as the mock speaks it.

Mistral's API is this one with other error bodies and headers (`formats/mistral.py`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import orjson

from lm_deluge_cli.providers.mock.formats.base import (
    JSON,
    Answer,
    Call,
    ChatRequest,
    FailureKind,
    LimitState,
    Refusal,
    Reply,
    WireFormat,
    bearer_matches,
    gateway_page,
    json_answer,
    number_text,
    reason_phrase,
)
from lm_deluge_cli.providers.mock.wire import format_duration, token_logprobs

__all__ = [
    "OpenAIFormat",
    "chat_request",
    "error_body",
    "logprobs_content",
    "max_output_tokens",
    "response_format",
    "validate_request",
]

_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means "
    "you aren't using your HTTP library correctly.)"
)


def error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> bytes:
    """OpenAI's error envelope: ``{"error": {"message", "type", "param", "code"}}``."""
    return orjson.dumps(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    )


def validate_request(request: Any) -> tuple[str, str | None] | None:
    """What is wrong with a chat completions body, worded like OpenAI, and which field."""
    if not isinstance(request, dict):
        return "Invalid request body: expected a JSON object.", None
    if "model" not in request:
        return "you must provide a model parameter", "model"
    if not isinstance(request["model"], str) or not request["model"]:
        return "Invalid type for 'model': expected a non-empty string.", "model"
    messages = request.get("messages")
    if messages is None:
        return "Missing required parameter: 'messages'.", "messages"
    if not isinstance(messages, list) or not messages:
        return "Invalid 'messages': expected a non-empty array of messages.", "messages"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return f"Invalid 'messages[{i}]': expected an object with a 'role'.", f"messages[{i}]"
    for name, low, high in (
        ("max_completion_tokens", 1, None),
        ("max_tokens", 1, None),
        ("top_logprobs", 0, 20),
    ):
        value = request.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            return f"Invalid '{name}': expected an integer of at least {low}.", name
        if high is not None and value > high:
            return f"Invalid '{name}': expected an integer of at most {high}.", name
    return None


def max_output_tokens(request: dict[str, Any]) -> int | None:
    """The output cap of a validated body: the newer ``max_completion_tokens`` wins."""
    value = request.get("max_completion_tokens") or request.get("max_tokens")
    return value if isinstance(value, int) else None


def response_format(spec: Any) -> tuple[dict[str, Any] | None, bool]:
    """(schema, JSON mode) of a ``response_format``: ``{"type": "json_schema", "json_schema":
    {"name", "schema", "strict"}}`` or ``{"type": "json_object"}``; (None, False) for text."""
    if not isinstance(spec, dict):
        return None, False
    if spec.get("type") == "json_object":
        return None, True
    inner = spec.get("json_schema")
    schema = inner.get("schema") if isinstance(inner, dict) else None
    if spec.get("type") == "json_schema" and isinstance(schema, dict):
        return schema, False
    return None, False


def chat_request(request: dict[str, Any]) -> ChatRequest:
    """A validated chat completions body in neutral terms; its messages are already OpenAI's."""
    schema, json_object = response_format(request.get("response_format"))
    return ChatRequest(
        request["model"],
        request["messages"],
        max_output_tokens(request),
        request,
        schema=schema,
        json_object=json_object,
    )


class OpenAIFormat(WireFormat):
    """Bearer keys, ``x-ratelimit-*`` headers, ``retry-after`` and ``retry-after-ms`` on 429s."""

    name = "openai"
    answer_fields = ("choices",)

    def authenticate(self, call: Call, api_key: str | None) -> Answer | None:
        if api_key is None or bearer_matches(call.headers, api_key):
            return None
        # Unlike OpenAI we never echo the presented key, not even masked: logs must stay clean.
        if call.headers.get("authorization"):
            message = "Incorrect API key provided. You can find your API key at "
            message += "https://platform.openai.com/account/api-keys."
        else:
            message = "You didn't provide an API key. You need to provide your API key in an "
            message += (
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        body = error_body(message, "invalid_request_error", "invalid_api_key")
        return Answer(401, dict(JSON), body)

    def parse(self, call: Call) -> ChatRequest | Answer:
        try:
            request = orjson.loads(call.body)
        except orjson.JSONDecodeError:
            problem: tuple[str, str | None] | None = (_BAD_JSON, None)
        else:
            problem = validate_request(request)
        if problem is not None:
            message, param = problem
            return Answer(
                400, dict(JSON), error_body(message, "invalid_request_error", None, param)
            )
        return chat_request(request)

    def completion(self, request: ChatRequest, reply: Reply) -> Answer:
        logprobs = None
        if request.raw.get("logprobs"):
            content = logprobs_content(request, reply.text, request.raw.get("top_logprobs") or 0)
            logprobs = {"content": content, "refusal": None}
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text,
            "refusal": None,
            "annotations": [],
        }
        finish = "length" if reply.truncated else "stop"
        payload = {
            "id": f"chatcmpl-{reply.response_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [
                {"index": 0, "message": message, "logprobs": logprobs, "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_mock",
        }
        return json_answer(200, payload)

    def rate_limited(self, refusal: Refusal) -> Answer:
        headers: dict[str, str] = {}
        if refusal.wait_s is None:
            message = (
                f"Request too large for {refusal.model} in organization org-mock on tokens per "
                f"min (TPM): Limit {number_text(refusal.limit)}, Requested {refusal.requested}. "
                "The input or output tokens must be reduced in order to run successfully."
            )
        else:
            label = (
                "requests per min (RPM)" if refusal.kind == "requests" else "tokens per min (TPM)"
            )
            used = round(min(refusal.limit, max(0.0, refusal.used)))
            message = (
                f"Rate limit reached for {refusal.model} in organization org-mock on {label}: "
                f"Limit {number_text(refusal.limit)}, Used {number_text(used)}, Requested "
                f"{refusal.requested}. Please try again in {format_duration(refusal.wait_s)}. "
                "Visit https://platform.openai.com/account/rate-limits to learn more."
            )
            if refusal.advertise:
                headers["retry-after"] = str(max(1, math.ceil(refusal.wait_s)))
                headers["retry-after-ms"] = str(max(1, math.ceil(refusal.wait_s * 1000)))
        headers.update(JSON)
        return Answer(429, headers, error_body(message, refusal.kind, "rate_limit_exceeded"))

    def failure(self, kind: FailureKind) -> Answer:
        if kind == "overloaded":
            # What OpenAI-compatible gateways in front of Anthropic send; the SDKs retry it.
            return json_answer(
                529, {"error": {"type": "overloaded_error", "message": "Overloaded"}}
            )
        message = "The server had an error while processing your request. Sorry about that!"
        return Answer(500, dict(JSON), error_body(message, "server_error"))

    def status_failure(self, status: int) -> Answer:
        if status in (502, 504):
            # Answered by the Cloudflare proxy in front of the API, as an HTML page.
            return gateway_page(status)
        if status == 500:
            return self.failure("server_error")
        if status == 529:
            return self.failure("overloaded")
        if status == 503:
            message = "The engine is currently overloaded, please try again later."
        else:
            message = f"{reason_phrase(status)}."
        kind = "server_error" if status >= 500 else "invalid_request_error"
        return Answer(status, dict(JSON), error_body(message, kind))

    def limit_headers(
        self, limits: Sequence[LimitState], now: float, refused: bool
    ) -> dict[str, str]:
        headers: dict[str, str] = {}
        for limit in limits:
            headers[f"x-ratelimit-limit-{limit.kind}"] = number_text(limit.per_minute)
            headers[f"x-ratelimit-remaining-{limit.kind}"] = str(limit.remaining)
            headers[f"x-ratelimit-reset-{limit.kind}"] = format_duration(limit.reset_s)
        return headers

    def request_headers(self, request_id: str) -> dict[str, str]:
        return {"x-request-id": f"req_{request_id}"}


def logprobs_content(request: ChatRequest, text: str, top: int) -> list[dict[str, Any]]:
    """``logprobs.content`` for a reply (`wire.token_logprobs`), with `top` alternatives a
    token; the Responses API's output_text parts carry the same list."""
    return [
        {
            "token": step.token,
            "logprob": step.logprob,
            "bytes": list(step.token.encode()),
            "top_logprobs": [
                {"token": token, "logprob": logprob, "bytes": list(token.encode())}
                for token, logprob in step.top[:top]
            ],
        }
        for step in token_logprobs(request.messages, text)
    ]
