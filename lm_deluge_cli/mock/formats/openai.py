"""OpenAI Chat Completions (`POST /v1/chat/completions`) as the mock speaks it: keys,
answers, errors and rate-limit headers (its bodies are read in `formats/openai_request.py`).

Mistral's API is this one with other error bodies and headers (`formats/mistral.py`).
``n`` asks for several choices; ``reasoning_effort`` (other than "none") is answered with
``reasoning_content`` on the message, as compatible servers (vLLM, DeepSeek) send it, and
counted in ``completion_tokens_details.reasoning_tokens``.
"""

from __future__ import annotations

import math
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
    ToolUse,
    WireFormat,
    bearer_matches,
    json_answer,
    json_template,
    number_text,
    reason_phrase,
    short_id,
    whole_seconds,
)
from lm_deluge_cli.mock.formats.openai_request import (
    chat_request,
    plain_body,
    plain_request,
    validate_request,
)
from lm_deluge_cli.mock.wire import format_duration, token_logprobs

__all__ = ["OpenAIFormat", "error_body", "logprobs_content"]

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


class OpenAIFormat(WireFormat):
    """Bearer keys, ``x-ratelimit-*`` headers, ``retry-after`` and ``retry-after-ms`` on 429s."""

    name = "openai"
    answer_fields = ("choices",)
    string_arguments = True
    # Answered by the Cloudflare proxy in front of the API, as an HTML page.
    gateway_statuses = (502, 504)
    overload_status = 529

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
            plain = plain_request(request)
            if plain is not None:
                return plain
            problem = validate_request(request)
        if problem is not None:
            message, param = problem
            return Answer(
                400, dict(JSON), error_body(message, "invalid_request_error", None, param)
            )
        return chat_request(request)

    def plain_chat(self, body: bytes) -> ChatRequest | None:
        return plain_body(body)

    def completion(self, request: ChatRequest, reply: Reply) -> Answer:
        prompt_tokens, completion_tokens = reply.prompt_tokens, reply.completion_tokens
        if len(reply.choices) == 1 and _text_only(request, reply.choices[0]):
            choice = reply.choices[0]
            answer = PlainReply(
                choice.text, choice.truncated, prompt_tokens, completion_tokens, reply.response_id
            )
            return _text_answer(request.model, answer, reply.reasoning_tokens)
        choices = [
            _choice(index, _message(choice), _logprobs(request, choice), finish_reason(choice))
            for index, choice in enumerate(reply.choices)
        ]
        payload = _completion(
            f"chatcmpl-{reply.response_id}",
            int(time.time()),
            request.model,
            choices,
            prompt_tokens,
            completion_tokens,
            prompt_tokens + completion_tokens,
            reply.reasoning_tokens,
        )
        return json_answer(200, payload)

    def plain_completion(self, request: ChatRequest, plain: PlainReply) -> Answer:
        if request.raw.get("logprobs") and plain.text:
            # Not text alone (`_text_only`): written the long way.
            return super().plain_completion(request, plain)
        return _text_answer(request.model, plain, 0)

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
                headers["retry-after"] = str(whole_seconds(refusal.wait_s))
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

    def status_error(self, status: int) -> Answer:
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


def _completion(
    response_id: Any,
    created: Any,
    model: Any,
    choices: list[Any],
    prompt_tokens: Any,
    completion_tokens: Any,
    total_tokens: Any,
    reasoning_tokens: Any,
) -> dict[str, Any]:
    """A ``chat.completion`` object (its values may be `json_template` holes)."""
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": total_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_mock",
    }


def _choice(index: int, message: Any, logprobs: Any, reason: Any) -> dict[str, Any]:
    """One of a completion's ``choices`` (its values may be `json_template` holes)."""
    return {"index": index, "message": message, "logprobs": logprobs, "finish_reason": reason}


def _text_answer(model: str, answer: PlainReply, reasoning_tokens: int) -> Answer:
    """The completion of one choice that is text alone (`_text_only`), from the template."""
    prompt_tokens, completion_tokens = answer.prompt_tokens, answer.completion_tokens
    body = _TEXT_COMPLETION % (
        orjson.dumps(f"chatcmpl-{answer.response_id}"),
        int(time.time()),
        orjson.dumps(model),
        orjson.dumps(answer.text),
        _FINISH_REASONS[answer.truncated],
        prompt_tokens,
        completion_tokens,
        prompt_tokens + completion_tokens,
        reasoning_tokens,
    )
    return Answer(200, {**JSON}, body)


def _text_only(request: ChatRequest, choice: Choice) -> bool:
    """Whether a choice is text alone: no tool calls, no reasoning, no logprobs."""
    if choice.tool_calls or choice.reasoning is not None:
        return False
    return _logprobs(request, choice) is None


def _message(choice: Choice) -> dict[str, Any]:
    """A choice's message: ``content`` null beside tool calls (whose arguments are a JSON
    string), ``reasoning_content`` when reasoning was asked."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": choice.text or (None if choice.tool_calls else ""),
        "refusal": None,
        "annotations": [],
    }
    if choice.tool_calls:
        message["tool_calls"] = tool_calls(choice.tool_calls, "call_{}")
    if choice.reasoning is not None:
        message["reasoning_content"] = choice.reasoning
    return message


def tool_calls(calls: tuple[ToolUse, ...], id_format: str) -> list[dict[str, Any]]:
    """``tool_calls`` of a Chat Completions message: ids are `id_format` around 24 letters
    and digits (``call_…``)."""
    return [
        {
            "id": id_format.format(short_id(call.call_id, 24)),
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        for call in calls
    ]


def finish_reason(choice: Choice) -> str:
    """``length`` when cut short, ``tool_calls`` when it calls tools, else ``stop``."""
    if choice.truncated:
        return "length"
    return "tool_calls" if choice.tool_calls else "stop"


def _logprobs(request: ChatRequest, choice: Choice) -> dict[str, Any] | None:
    if not request.raw.get("logprobs") or not choice.text:
        return None
    content = logprobs_content(request, choice.text, request.raw.get("top_logprobs") or 0)
    return {"content": content, "refusal": None}


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


# The body of an answer of one choice that is text alone (`_text_only`), with holes for its
# id, time, model, text, finish reason and usage: `completion` writes the same bytes either
# way (tests compare the two), the template without building the objects first.
_TEXT_COMPLETION = json_template(
    _completion(
        JSON_HOLE,
        INT_HOLE,
        JSON_HOLE,
        [_choice(0, {**_message(Choice("", 0)), "content": JSON_HOLE}, None, JSON_HOLE)],
        INT_HOLE,
        INT_HOLE,
        INT_HOLE,
        INT_HOLE,
    )
)
# finish_reason as written, by whether the text was cut short.
_FINISH_REASONS = (b'"stop"', b'"length"')
