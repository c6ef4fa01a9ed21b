"""OpenAI Chat Completions (`POST {base_url}/chat/completions`), also used by compatible servers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lm_deluge_cli.errors import (
    APIStatusError,
    AuthenticationError,
    PermissionDeniedError,
    QuotaExhaustedError,
    status_error_class,
)
from lm_deluge_cli.headers import parse_duration, parse_retry_after
from lm_deluge_cli.providers.base import Endpoint, error_text
from lm_deluge_cli.providers.extensions import wire_messages, wire_tools
from lm_deluge_cli.providers.parts import (
    bearer_json_request,
    finish_reason,
    function_calls,
    header_int,
    ordered_choices,
    read_body,
    schema_response_format,
)
from lm_deluge_cli.results import Answer, Completion, Reasoning, Usage
from lm_deluge_cli.types import HttpRequest, HttpResponse, Prompt, RateLimitInfo, SamplingParams

__all__ = [
    "OpenAIChatAdapter",
    "chat_answer",
    "max_output_tokens",
    "rate_limit_info",
    "status_error",
]

# finish_reason → ours (stop, length, tool_calls and content_filter are already ours).
_FINISH_REASONS = {"function_call": "tool_calls", "eos": "stop", "model_length": "length"}
# Error codes that no retry or wait will fix: stop using the model.
_FATAL_CODES: dict[str, type[APIStatusError]] = {
    "insufficient_quota": QuotaExhaustedError,
    "invalid_api_key": AuthenticationError,
    "account_deactivated": PermissionDeniedError,
}


def max_output_tokens(endpoint: Endpoint, sampling: SamplingParams) -> int:
    """The most tokens a request may generate, for the token estimate: max_new_tokens."""
    return sampling.max_new_tokens


class OpenAIChatAdapter:
    """Builds Chat Completions requests and reads their responses."""

    def build_request(
        self, endpoint: Endpoint, prompt: Prompt, sampling: SamplingParams, timeout: float
    ) -> HttpRequest:
        body: dict[str, Any] = dict(prompt.extra_body)
        body["model"] = endpoint.model.wire_id
        # OpenAI refuses cache_control; OpenRouter and LiteLLM proxies read it. The reasoning
        # a record's assistant message brings back is ours alone: no server takes it.
        keep = endpoint.compatible
        body["messages"] = wire_messages(prompt.messages, keep_cache_control=keep)
        if "tools" in body:
            body["tools"] = wire_tools(body["tools"], keep_cache_control=keep)
        # OpenAI itself wants max_completion_tokens (reasoning models reject max_tokens);
        # compatible servers (vLLM, llama.cpp, Ollama, …) all understand max_tokens.
        if endpoint.compatible:
            body["max_tokens"] = sampling.max_new_tokens
        else:
            body["max_completion_tokens"] = sampling.max_new_tokens
        if endpoint.model.reasoning:
            # Reasoning models reject temperature/top_p other than their defaults.
            if sampling.reasoning_effort is not None:
                body["reasoning_effort"] = sampling.reasoning_effort
        else:
            body["temperature"] = sampling.temperature
            body["top_p"] = sampling.top_p
        # A json_schema is more specific than json_mode.
        if sampling.json_schema is not None:
            body["response_format"] = schema_response_format(sampling.json_schema)
        elif sampling.json_mode:
            body["response_format"] = {"type": "json_object"}
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.samples > 1:
            body["n"] = sampling.samples
        if sampling.logprobs:
            body["logprobs"] = True
            if sampling.top_logprobs is not None:
                body["top_logprobs"] = sampling.top_logprobs
        return bearer_json_request(endpoint, "/chat/completions", body, timeout)

    def parse_response(self, endpoint: Endpoint, response: HttpResponse) -> Completion:
        return read_body(endpoint, response, "chat completion", status_error, _completion)

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        return rate_limit_info(headers)

    def status_error(self, endpoint: Endpoint, response: HttpResponse) -> APIStatusError:
        return status_error(endpoint, response)


def _completion(data: Any) -> Completion:
    answers = tuple(chat_answer(choice) for choice in ordered_choices(data))
    return Completion(answers, _usage(data.get("usage")))


def chat_answer(choice: Mapping[str, Any]) -> Answer:
    """One choice of a Chat Completions response (Mistral's and compatible servers' too):
    its text, tool calls, refusal, and the reasoning compatible servers return as
    ``reasoning_content`` (vLLM, DeepSeek, SGLang) or ``reasoning`` (OpenRouter, Ollama)."""
    message = choice["message"]
    text = message.get("content")
    if text is not None and not isinstance(text, str):
        raise TypeError("message.content is not a string")
    calls = function_calls(message.get("tool_calls"))
    refusal = message.get("refusal")
    if refusal is not None and not isinstance(refusal, str):
        raise TypeError("message.refusal is not a string")
    thought = message.get("reasoning_content") or message.get("reasoning")
    reasoning = Reasoning(thought) if isinstance(thought, str) and thought else None
    logprobs = choice.get("logprobs")
    ours, own = finish_reason(
        choice.get("finish_reason"),
        _FINISH_REASONS,
        refused=bool(refusal) and not text and not calls,
    )
    return Answer(
        text=text,
        tool_calls=calls,
        reasoning=reasoning,
        refusal=refusal or None,
        finish_reason=ours,
        provider_finish_reason=own,
        logprobs=logprobs.get("content") if isinstance(logprobs, dict) else None,
    )


def rate_limit_info(headers: Mapping[str, str]) -> RateLimitInfo:
    """What OpenAI's ``x-ratelimit-*`` headers say (Chat Completions and Responses alike)."""
    return RateLimitInfo(
        limit_requests=header_int(headers.get("x-ratelimit-limit-requests")),
        limit_tokens=header_int(headers.get("x-ratelimit-limit-tokens")),
        remaining_requests=header_int(headers.get("x-ratelimit-remaining-requests")),
        remaining_tokens=header_int(headers.get("x-ratelimit-remaining-tokens")),
        reset_requests_s=_duration(headers.get("x-ratelimit-reset-requests")),
        reset_tokens_s=_duration(headers.get("x-ratelimit-reset-tokens")),
    )


def status_error(endpoint: Endpoint, response: HttpResponse) -> APIStatusError:
    """The error for an OpenAI error response: its class by status, its wait, and whether
    it is fatal (a bad key, a deactivated account, no quota left)."""
    message, code = error_text(response.body, endpoint.api_key)
    retry_after = parse_retry_after(response.headers)
    if retry_after is None and response.status == 429:
        info = rate_limit_info(response.headers)
        waits = [
            w
            for w, remaining in (
                (info.reset_requests_s, info.remaining_requests),
                (info.reset_tokens_s, info.remaining_tokens),
            )
            if w is not None and remaining == 0
        ]
        retry_after = max(waits) if waits else None
    cls = _FATAL_CODES.get(code or "") or status_error_class(response.status)
    return cls(
        f"{response.status}: {message}",
        status_code=response.status,
        retry_after=retry_after,
        code=code,
    )


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=int(raw.get("prompt_tokens") or 0),
        output_tokens=int(raw.get("completion_tokens") or 0),
        cached_input_tokens=int(prompt_details.get("cached_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
        cache_write_tokens=int(prompt_details.get("cache_write_tokens") or 0),
    )


def _duration(value: str | None) -> float | None:
    return None if value is None else parse_duration(value)
