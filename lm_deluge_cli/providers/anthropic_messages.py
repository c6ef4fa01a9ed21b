"""Anthropic Messages API (`POST {base_url}/v1/messages`): OpenAI-shaped prompts in, Claude out.

The body builder and response reader are public because Bedrock's InvokeModel speaks the
same body (see `lm_deluge_cli.providers.bedrock`).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from lm_deluge_cli.errors import (
    APIStatusError,
    AuthenticationError,
    PermissionDeniedError,
    QuotaExhaustedError,
    status_error_class,
)
from lm_deluge_cli.headers import parse_retry_after
from lm_deluge_cli.providers.anthropic_answer import SCHEMA_TOOL, parse_message
from lm_deluge_cli.providers.anthropic_cache import add_breakpoints
from lm_deluge_cli.providers.anthropic_turns import (
    translate_messages,
    unsendable,
    with_cache_control,
)
from lm_deluge_cli.providers.base import Endpoint, error_text
from lm_deluge_cli.providers.parts import header_int, named_function
from lm_deluge_cli.results import Completion
from lm_deluge_cli.types import (
    HttpRequest,
    HttpResponse,
    Message,
    Prompt,
    RateLimitInfo,
    SamplingParams,
)

__all__ = [
    "ANTHROPIC_VERSION",
    "JSON_MODE_INSTRUCTION",
    "SCHEMA_TOOL",
    "THINKING_BUDGETS",
    "WIRE_FORMAT",
    "AnthropicMessagesAdapter",
    "adaptive_thinking",
    "max_output_tokens",
    "messages_body",
    "parse_message",
    "parse_reset",
    "rate_limit_info_at",
    "translate_messages",
]

ANTHROPIC_VERSION = "2023-06-01"
# The wire format this adapter speaks: the tag of the thinking blocks it keeps and sends back.
WIRE_FORMAT = "anthropic_messages"
# reasoning_effort → extended thinking budget_tokens (1024 is the API's minimum), also the
# room added to max_tokens for adaptive thinking. "minimal" sends no thinking at all.
THINKING_BUDGETS = {"minimal": None, "low": 1024, "medium": 4096, "high": 16384}
# The Messages API has no json_object switch (its structured outputs need a schema), so
# json_mode is asked for in the system prompt instead.
JSON_MODE_INSTRUCTION = "Answer with one valid JSON object and nothing else, without code fences."
# A json_schema goes natively (output_config.format) to models with structured outputs when
# the schema keeps to what they enforce; otherwise as the one tool SCHEMA_TOOL, forced: its
# input is the answer. Models that refuse a forced tool (adaptive thinking) get it in the
# system prompt. Whichever way it went, every answer is validated against the schema.
SCHEMA_INSTRUCTION = (
    "Answer with one JSON value, and nothing else, that matches this JSON schema:\n{schema}"
)
# Constraints structured outputs do not enforce (the API refuses schemas that use them).
_UNENFORCED_KEYWORDS = frozenset(
    {
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "pattern",
        "maxItems",
        "uniqueItems",
    }
)
# Keywords whose value maps names to schemas, and keywords whose value is not a schema.
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})
_NOT_SCHEMAS = frozenset(
    {"enum", "const", "required", "default", "examples", "title", "description", "format"}
)
# OpenAI tool_choice strings → Anthropic tool_choice types.
_TOOL_CHOICES = {"auto": "auto", "none": "none", "required": "any"}
# error.type values that no retry or wait will fix: the key, its rights, or the bill.
_FATAL_TYPES: dict[str, type[APIStatusError]] = {
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "billing_error": QuotaExhaustedError,
}
# error.details.error_code of a 429 that is the tier's monthly spend cap, not a rate limit:
# it has no retry-after and every request fails until the month ends.
_FATAL_CODES: dict[str, type[APIStatusError]] = {
    "enforced_spend_limit_reached": QuotaExhaustedError
}


class AnthropicMessagesAdapter:
    """Builds Messages API requests and reads their responses; `clock` (seconds since the
    epoch) turns the RFC 3339 reset headers into waits."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def build_request(
        self, endpoint: Endpoint, prompt: Prompt, sampling: SamplingParams, timeout: float
    ) -> HttpRequest:
        body = {"model": endpoint.model.wire_id, **messages_body(endpoint, prompt, sampling)}
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if endpoint.api_key:
            headers["x-api-key"] = endpoint.api_key
        url = f"{endpoint.base_url}/v1/messages"
        return HttpRequest("POST", url, headers, orjson.dumps(body), timeout)

    def parse_response(self, endpoint: Endpoint, response: HttpResponse) -> Completion:
        if response.status >= 300:
            raise self._status_error(endpoint, response)
        return parse_message(
            response, endpoint.api_key, "Anthropic message", wire_format=WIRE_FORMAT
        )

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        return rate_limit_info_at(headers, self._clock())

    def _status_error(self, endpoint: Endpoint, response: HttpResponse) -> APIStatusError:
        message, error_type = error_text(response.body, endpoint.api_key)
        detail = _detail_code(response.body)
        cls = _FATAL_CODES.get(detail or "") or _FATAL_TYPES.get(error_type or "")
        return (cls or status_error_class(response.status))(
            f"{response.status}: {message}",
            status_code=response.status,
            # Every rate-limit 429 carries retry-after; the spend-cap 429 has none.
            retry_after=parse_retry_after(response.headers),
            code=detail or error_type,
        )


def messages_body(
    endpoint: Endpoint,
    prompt: Prompt,
    sampling: SamplingParams,
    *,
    url_images: bool = True,
    wire_format: str = WIRE_FORMAT,
) -> dict[str, Any]:
    """The Messages body for a prompt, without `model` (which Bedrock puts in the URL).

    `wire_format` says which thinking blocks an assistant message's reasoning gives back
    (those read from that format); the endpoint's prompt_cache adds the job's cache
    breakpoints. Raises an `APIError` (not retryable) for a prompt the API cannot take.
    """
    system, messages = translate_messages(
        prompt.messages, url_images=url_images, wire_format=wire_format
    )
    schema_via = _schema_via(endpoint, sampling)
    instruction: str | None = None
    if schema_via == "prompt":
        schema_text = orjson.dumps(sampling.json_schema).decode()
        instruction = SCHEMA_INSTRUCTION.format(schema=schema_text)
    elif sampling.json_mode and sampling.json_schema is None:
        instruction = JSON_MODE_INSTRUCTION
    if isinstance(system, list) and instruction is not None:
        system = [*system, {"type": "text", "text": instruction}]
    elif instruction is not None:
        system = f"{system}\n\n{instruction}" if system else instruction
    body: dict[str, Any] = {"max_tokens": sampling.max_new_tokens, "messages": messages}
    if system:
        body["system"] = system
    if sampling.stop:
        body["stop_sequences"] = list(sampling.stop)
    adaptive = adaptive_thinking(endpoint)
    budget = _thinking_budget(endpoint, sampling)
    if budget is not None:
        # Thinking tokens count against max_tokens, which must exceed the budget: adding the
        # budget leaves the answer its whole max_new_tokens.
        body["max_tokens"] = max_output_tokens(endpoint, sampling)
        if adaptive:
            body["thinking"] = {"type": "adaptive"}
            body["output_config"] = {"effort": sampling.reasoning_effort}
        else:
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    # Thinking rejects temperature (and most top_p values); adaptive-only models take neither.
    # Newer models refuse the two together: a top_p other than 1 is the deliberate one.
    if budget is None and not adaptive:
        if sampling.top_p != 1.0:
            body["top_p"] = sampling.top_p
        else:
            body["temperature"] = sampling.temperature
    body.update(_tool_fields(prompt.extra_body))
    if "thinking" in body and body.get("tool_choice", {}).get("type") in ("any", "tool"):
        raise unsendable(
            f"tool_choice {prompt.extra_body.get('tool_choice')!r} forces a tool call, which "
            f"extended thinking (reasoning_effort {sampling.reasoning_effort!r}) does not allow; "
            'use "auto" or "none", or no reasoning_effort'
        )
    if schema_via == "native":
        output_format = {"type": "json_schema", "schema": sampling.json_schema}
        body["output_config"] = {**body.get("output_config", {}), "format": output_format}
    elif schema_via == "tool":
        tool = {
            "name": SCHEMA_TOOL,
            "description": "Give the answer, in the shape the input schema describes.",
            "input_schema": sampling.json_schema,
        }
        body["tools"] = [*body.get("tools", []), tool]
        body["tool_choice"] = {"type": "tool", "name": SCHEMA_TOOL}
    add_breakpoints(body, endpoint.prompt_cache)
    return body


def _schema_via(endpoint: Endpoint, sampling: SamplingParams) -> str | None:
    """How the json_schema is asked for: "native", "tool", "prompt", or None (no schema)."""
    schema = sampling.json_schema
    if schema is None:
        return None
    if endpoint.model.supports_json_schema and native_schema_compatible(schema):
        return "native"
    return "prompt" if adaptive_thinking(endpoint) else "tool"


def native_schema_compatible(schema: Any) -> bool:
    """Whether structured outputs can enforce `schema`: every object closed with
    additionalProperties false, and no length, range, pattern or item-count constraints
    (minItems of 0 or 1 is allowed)."""
    if isinstance(schema, list):
        return all(native_schema_compatible(item) for item in schema)
    if not isinstance(schema, Mapping):
        return True
    if _UNENFORCED_KEYWORDS & schema.keys() or schema.get("minItems", 0) not in (0, 1):
        return False
    is_object = schema.get("type") == "object" or isinstance(schema.get("properties"), Mapping)
    if is_object and schema.get("additionalProperties") is not False:
        return False
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            # Property and definition names are not keywords: only their schemas are checked.
            if not all(native_schema_compatible(sub) for sub in value.values()):
                return False
        elif key not in _NOT_SCHEMAS and not native_schema_compatible(value):
            return False
    return True


def max_output_tokens(endpoint: Endpoint, sampling: SamplingParams) -> int:
    """The body's max_tokens: max_new_tokens, plus the thinking budget when there is one."""
    budget = _thinking_budget(endpoint, sampling)
    return sampling.max_new_tokens + (budget or 0)


def adaptive_thinking(endpoint: Endpoint) -> bool:
    """Whether the model thinks only adaptively and refuses temperature and top_p (Claude
    Opus 4.7 and later answer 400 to either); the registry's `adaptive_thinking` model flag."""
    return endpoint.model.adaptive_thinking


def _thinking_budget(endpoint: Endpoint, sampling: SamplingParams) -> int | None:
    # As for OpenAI, reasoning_effort only reaches models the registry marks as reasoning:
    # models without extended thinking reject the field. Thinking cannot be combined with a
    # forced tool, one way a json_schema is asked for.
    if (
        not endpoint.model.reasoning
        or sampling.reasoning_effort is None
        or _schema_via(endpoint, sampling) == "tool"
    ):
        return None
    return THINKING_BUDGETS.get(sampling.reasoning_effort)


def _tool_fields(extra: Mapping[str, Any]) -> dict[str, Any]:
    """tools, tool_choice and parallel_tool_calls of a Batch API line; its other keys are
    OpenAI's alone, and dropped.

    The API refuses tool_use and tool_result blocks in a request that defines no tools.
    """
    fields: dict[str, Any] = {}
    if isinstance(extra.get("tools"), list):
        fields["tools"] = [
            _tool_definition(tool, f"tools[{index}]") for index, tool in enumerate(extra["tools"])
        ]
    choice = _tool_choice(extra.get("tool_choice"))
    # OpenAI's parallel_tool_calls false is a flag on the choice ("none" takes none).
    serial = extra.get("parallel_tool_calls") is False and choice.get("type") != "none"
    if serial and fields.get("tools"):
        choice = {"type": "auto", **choice, "disable_parallel_tool_use": True}
    if choice:
        fields["tool_choice"] = choice
    return fields


def _tool_choice(choice: Any) -> dict[str, Any]:
    """The Anthropic tool_choice for OpenAI's (empty for none given)."""
    if choice is None:
        return {}
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        return {"type": _TOOL_CHOICES[choice]}
    function = named_function(choice)
    if function is not None and function["name"] and choice.get("type", "function") == "function":
        return {"type": "tool", "name": function["name"]}
    raise unsendable(
        f'tool_choice {choice!r} is not supported; it takes "auto", "none", "required" '
        'or one function: {"type": "function", "function": {"name": …}}'
    )


def _tool_definition(tool: Any, where: str) -> Message:
    function = named_function(tool)
    if function is None:
        raise unsendable("tools: only function tools with a name can be sent")
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    described = {"description": function["description"]} if function.get("description") else {}
    # A cache_control beside the tool's type and function is a breakpoint on its definition.
    return with_cache_control(
        {"name": function["name"], **described, "input_schema": schema}, tool, where
    )


def _detail_code(body: bytes) -> str | None:
    try:
        parsed: Any = orjson.loads(body)
        code = parsed["error"]["details"]["error_code"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None


def rate_limit_info_at(headers: Mapping[str, str], now: float) -> RateLimitInfo:
    """RateLimitInfo from `anthropic-ratelimit-*` headers, resets measured from `now`.

    The tokens-* headers give the most restrictive token limit in effect (input or output),
    so the separate input-tokens-* and output-tokens-* headers add nothing here.
    """
    prefix = "anthropic-ratelimit-"
    return RateLimitInfo(
        limit_requests=header_int(headers.get(prefix + "requests-limit")),
        limit_tokens=header_int(headers.get(prefix + "tokens-limit")),
        remaining_requests=header_int(headers.get(prefix + "requests-remaining")),
        remaining_tokens=header_int(headers.get(prefix + "tokens-remaining")),
        reset_requests_s=parse_reset(headers.get(prefix + "requests-reset"), now),
        reset_tokens_s=parse_reset(headers.get(prefix + "tokens-reset"), now),
    )


def parse_reset(value: str | None, now: float) -> float | None:
    """Seconds from `now` until an RFC 3339 reset time (0 when past; None if unreadable)."""
    if value is None:
        return None
    try:
        # RFC 3339 allows a lower-case "t" and "z"; fromisoformat does not.
        when = datetime.datetime.fromisoformat(value.strip().upper())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - now)
