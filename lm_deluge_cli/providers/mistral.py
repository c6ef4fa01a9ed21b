"""Mistral chat completions (`POST {base_url}/v1/chat/completions`), OpenAI-like with own names.

Every choice is an answer; reasoning models' ``thinking`` chunks are its reasoning, never its
text, and a signed one is kept whole (a ``mistral`` reasoning part) to be sent back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from lm_deluge_cli.errors import (
    APIStatusError,
    InternalServerError,
    QuotaExhaustedError,
    status_error_class,
)
from lm_deluge_cli.headers import parse_retry_after
from lm_deluge_cli.providers.base import Endpoint, error_object, error_text
from lm_deluge_cli.providers.capabilities import takes_reasoning_effort
from lm_deluge_cli.providers.extensions import reasoning_parts, wire_message, wire_tools
from lm_deluge_cli.providers.parts import (
    bearer_json_request,
    count,
    finish_reason,
    function_calls,
    header_int,
    named_function,
    openai_usage,
    ordered_choices,
    read_body,
    schema_response_format,
    unsupported,
)
from lm_deluge_cli.results import Answer, Completion, Reasoning, Usage
from lm_deluge_cli.types import (
    HttpRequest,
    HttpResponse,
    Message,
    Prompt,
    RateLimitInfo,
    SamplingParams,
)

__all__ = ["FORMAT", "MistralAdapter", "mistral_tool_call_id"]

# The tag of the reasoning parts this format reads and is sent back.
FORMAT = "mistral"

# Request fields of Mistral's chat completion that an OpenAI Batch API line may carry
# under the same name. Anything else is left out: Mistral rejects unknown fields with a
# 422, and OpenAI-only ones (user, store, logit_bias, …) mean nothing to it.
_PASSTHROUGH = (
    "tools",
    "tool_choice",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "parallel_tool_calls",
    "prediction",
    "safe_prompt",
    "prompt_mode",
    "prompt_cache_key",
)
# Mistral documents two reasoning_effort values: "high" (think, and show it) and "none"
# (think minimally). The lower two of ours round down, the upper two up.
_REASONING_EFFORT: Mapping[str, str] = {
    "minimal": "none",
    "low": "none",
    "medium": "high",
    "high": "high",
}
# Mistral accepts only tool call ids of exactly 9 letters and digits.
_VALID_CALL_ID = re.compile(r"[A-Za-z0-9]{9}")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# finish_reason → ours (stop, length and tool_calls are already ours; error is retried).
_FINISH_REASONS: Mapping[str, str] = {"model_length": "length"}
# tool_choice as Mistral takes it: any and required both force some tool call.
_TOOL_CHOICES = frozenset({"auto", "none", "any", "required"})
# Thinking chunks are paragraphs of their own.
_THINKING_SEPARATOR = "\n\n"

# Rate-limit headers as Mistral sends them (not in its API reference): the current
# per-minute names first, then the older "ratelimitbysize" family.
_LIMIT_TOKENS = (
    "x-ratelimit-limit-tokens-minute",
    "x-ratelimitbysize-limit-minute",
    "ratelimitbysize-limit",
)
_REMAINING_TOKENS = (
    "x-ratelimit-remaining-tokens-minute",
    "x-ratelimitbysize-remaining-minute",
    "ratelimitbysize-remaining",
)
_MONTH_REMAINING = ("x-ratelimit-remaining-tokens-month", "x-ratelimitbysize-remaining-month")


class MistralAdapter:
    """Builds Mistral chat completion requests and reads their responses."""

    def build_request(
        self, endpoint: Endpoint, prompt: Prompt, sampling: SamplingParams, timeout: float
    ) -> HttpRequest:
        """The chat completion request for one prompt.

        Fields of an OpenAI Batch API line that Mistral has pass through (``seed`` as
        ``random_seed``); OpenAI-only ones (user, store, logit_bias, …) are left out.
        """
        extra = prompt.extra_body
        body: dict[str, Any] = {key: extra[key] for key in _PASSTHROUGH if key in extra}
        if "tools" in body:
            body["tools"] = wire_tools(body["tools"], keep_cache_control=False)
        if "tool_choice" in body:
            body["tool_choice"] = _tool_choice(body["tool_choice"])
        if extra.get("seed") is not None:
            body["random_seed"] = extra["seed"]  # Mistral's name for OpenAI's seed
        body["model"] = endpoint.model.wire_id
        body["messages"] = [_message(message) for message in prompt.messages]
        body["max_tokens"] = sampling.max_new_tokens
        body["temperature"] = sampling.temperature
        body["top_p"] = sampling.top_p
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.samples > 1:
            body["n"] = sampling.samples  # input tokens are billed once for all of them
        # A json_schema is more specific than json_mode.
        if sampling.json_schema is not None:
            body["response_format"] = schema_response_format(sampling.json_schema)
        elif sampling.json_mode:
            body["response_format"] = {"type": "json_object"}
        # Only models with adjustable reasoning take the parameter; others reject it.
        effort = sampling.reasoning_effort
        if takes_reasoning_effort(endpoint) and effort is not None and effort in _REASONING_EFFORT:
            body["reasoning_effort"] = _REASONING_EFFORT[effort]
        # logprobs / top_logprobs are left out: Mistral's chat API has no such fields.
        return bearer_json_request(endpoint, "/v1/chat/completions", body, timeout)

    def parse_response(self, endpoint: Endpoint, response: HttpResponse) -> Completion:
        """The completion in a 2xx response; raises an `APIError` for anything else."""
        what = "Mistral chat completion"
        completion = read_body(endpoint, response, what, self.status_error, _completion)
        if any(answer.provider_finish_reason == "error" for answer in completion.answers):
            # The generation failed on Mistral's side; what text there is may be cut short.
            raise InternalServerError(
                f"{response.status}: Mistral reported finish_reason 'error'",
                status_code=response.status,
                code="error",
            )
        return completion

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        """Mistral's per-minute token and request budget."""
        return RateLimitInfo(
            limit_requests=header_int(headers.get("x-ratelimit-limit-req-minute")),
            limit_tokens=_first(headers, _LIMIT_TOKENS),
            remaining_requests=header_int(headers.get("x-ratelimit-remaining-req-minute")),
            remaining_tokens=_first(headers, _REMAINING_TOKENS),
            # Only the older headers say when the window resets (seconds from now).
            reset_tokens_s=_seconds(headers.get("ratelimitbysize-reset")),
        )

    def status_error(self, endpoint: Endpoint, response: HttpResponse) -> APIStatusError:
        message, _ = error_text(response.body, endpoint.api_key)
        retry_after = parse_retry_after(response.headers)
        info = self.rate_limit_info(response.headers)
        if retry_after is None and response.status == 429 and info.remaining_tokens == 0:
            retry_after = info.reset_tokens_s
        cls = status_error_class(response.status)
        # 402: the workspace has no credit left. A 429 with the month's tokens at 0 will
        # keep failing until next month, however long we wait.
        month_left = _first(response.headers, _MONTH_REMAINING)
        if response.status == 402 or (response.status == 429 and month_left == 0):
            cls = QuotaExhaustedError
        return cls(
            f"{response.status}: {message}",
            status_code=response.status,
            retry_after=retry_after,
            code=_error_code(response.body),
        )


def mistral_tool_call_id(call_id: str) -> str:
    """A tool call id Mistral accepts (9 letters or digits), the same for the same input.

    Ids from other providers ("call_abc123…") are rejected by Mistral; the assistant's call
    and the tool's answer map to the same id, so the pair still matches.
    """
    if _VALID_CALL_ID.fullmatch(call_id):
        return call_id
    number = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    digits = []
    for _ in range(9):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "".join(digits)


def _message(message: Message) -> Message:
    """The message as Mistral takes it (itself when nothing changes): cache_control and our
    reasoning stripped (Mistral refuses unknown fields), a record's signed thinking chunks
    back before the assistant's content, tool call ids in Mistral's form."""
    role = message.get("role")
    if role not in ("system", "developer", "user", "assistant", "tool"):
        raise unsupported(f"Mistral has no equivalent of the {role!r} role")
    thinking = _thinking_chunks(message) if role == "assistant" else []
    out = wire_message(message, keep_cache_control=False)
    changes: dict[str, Any] = {}
    if role == "developer":
        # Mistral has no developer role; OpenAI treats developer messages as system ones.
        changes["role"] = "system"
    if role == "assistant" and message.get("tool_calls"):
        changes["tool_calls"] = [_tool_call(call) for call in message["tool_calls"]]
    if role == "tool" and isinstance(message.get("tool_call_id"), str):
        changes["tool_call_id"] = mistral_tool_call_id(message["tool_call_id"])
    if thinking:
        changes["content"] = thinking + _content_chunks(out.get("content"))
    return {**out, **changes} if changes else out


def _thinking_chunks(message: Message) -> list[dict[str, Any]]:
    """The thinking chunks a record's assistant message carries as ``mistral`` parts."""
    chunks: list[dict[str, Any]] = []
    for part in reasoning_parts(message, FORMAT):
        chunk = part.get("chunk")
        if not isinstance(chunk, dict) or chunk.get("type") != "thinking":
            raise unsupported(f"a reasoning part of format {FORMAT!r} needs its thinking chunk")
        chunks.append(chunk)
    return chunks


def _content_chunks(content: Any) -> list[Any]:
    """An assistant message's content as chunks, to follow its thinking chunks."""
    if isinstance(content, list):
        return content
    if isinstance(content, str) and content:
        return [{"type": "text", "text": content}]
    return []


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        return choice
    function = named_function(choice)
    if function is not None and choice.get("type", "function") == "function":
        return {"type": "function", "function": {"name": function["name"]}}
    raise unsupported(
        f"Mistral cannot express tool_choice {choice!r}: it takes 'auto', 'none', 'any', "
        "'required' or one function as {'type': 'function', 'function': {'name': ...}}"
    )


def _tool_call(call: Any) -> Any:
    if isinstance(call, dict) and isinstance(call.get("id"), str):
        return {**call, "id": mistral_tool_call_id(call["id"])}
    return call


def _completion(data: Any) -> Completion:
    answers = tuple(_answer(choice) for choice in ordered_choices(data))
    return Completion(answers, _usage(data.get("usage")))


def _answer(choice: Mapping[str, Any]) -> Answer:
    """One choice: its text, its tool calls, and its thinking as reasoning."""
    message = choice["message"]
    text, thoughts, signed = _content(message.get("content"))
    calls = function_calls(message.get("tool_calls"))
    reasoning = None
    if thoughts or signed:
        reasoning = Reasoning(_THINKING_SEPARATOR.join(thoughts) or None, tuple(signed))
    ours, own = finish_reason(choice.get("finish_reason"), _FINISH_REASONS)
    return Answer(
        text=text,
        tool_calls=calls,
        reasoning=reasoning,
        finish_reason=ours,
        provider_finish_reason=own,
    )


def _content(content: Any) -> tuple[str | None, list[str], list[Mapping[str, Any]]]:
    """(text, thinking texts, signed thinking chunks as parts) of a message's content.

    Reasoning models answer with chunks: "thinking" ones, then the "text" answer. Only a
    signed thinking chunk is kept whole: the signature lets Mistral replay it in a later
    turn, and without one the chunk says nothing its text does not.
    """
    if content is None or isinstance(content, str):
        return content, [], []
    if not isinstance(content, list):
        raise TypeError("message.content is neither a string nor a list of chunks")
    texts: list[str] = []
    thoughts: list[str] = []
    signed: list[Mapping[str, Any]] = []
    for chunk in content:
        kind = chunk.get("type") if isinstance(chunk, dict) else None
        if kind == "text":
            if not isinstance(chunk["text"], str):
                raise TypeError("a text chunk's text is not a string")
            texts.append(chunk["text"])
        elif kind == "thinking":
            thought = _thinking_text(chunk["thinking"])
            if thought:
                thoughts.append(thought)
            if chunk.get("signature"):
                signed.append({"format": FORMAT, "chunk": chunk})
        # reference chunks (sources of a connector's answer) are not text.
    return ("".join(texts) if texts else None), thoughts, signed


def _thinking_text(thinking: Any) -> str:
    """The text of a thinking chunk's ``thinking``: text chunks (references are ids)."""
    if isinstance(thinking, str):
        return thinking
    if not isinstance(thinking, list):
        raise TypeError("a thinking chunk's thinking is not a list")
    texts: list[str] = []
    for inner in thinking:
        if isinstance(inner, dict) and inner.get("type") == "text":
            if not isinstance(inner["text"], str):
                raise TypeError("a thinking text chunk's text is not a string")
            texts.append(inner["text"])
    return "".join(texts)


def _usage(raw: Any) -> Usage:
    """prompt_tokens counts the cached ones (billed at a tenth), completion_tokens the
    reasoning ones; the cached ones are num_cached_tokens where the details do not say."""
    usage = openai_usage(raw, "prompt_tokens", "completion_tokens")
    if raw is None or (raw.get("prompt_tokens_details") or {}).get("cached_tokens") is not None:
        return usage
    return dataclasses.replace(usage, cached_input_tokens=count(raw.get("num_cached_tokens")))


def _first(headers: Mapping[str, str], names: tuple[str, ...]) -> int | None:
    """The first of `names` present as a number."""
    for name in names:
        value = header_int(headers.get(name))
        if value is not None:
            return value
    return None


def _seconds(value: str | None) -> float | None:
    number = header_int(value)
    return float(number) if number is not None and number >= 0 else None


def _error_code(body: bytes) -> str | None:
    """Mistral's error ``type`` ("rate_limited"), else its numeric ``code`` ("1300")."""
    parsed = error_object(body)
    return next((v for v in (parsed.get("type"), parsed.get("code")) if isinstance(v, str)), None)
