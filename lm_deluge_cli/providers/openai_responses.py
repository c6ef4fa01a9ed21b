"""OpenAI Responses API (`POST {base_url}/responses`), for the OpenAI models that Chat
Completions does not serve (o1-pro, o3-pro, gpt-5-pro, the codex models, …).

Prompts arrive as Chat Completions messages: leading system and developer messages become
`instructions`, everything else an `input` item (tool calls and their results as
``function_call`` / ``function_call_output`` items, and the reasoning items a record's
assistant message brings back before its own). Answers are read by
`openai_responses_output`. Errors and rate-limit headers are the same as Chat Completions',
so they are read by `openai_chat`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from lm_deluge_cli.errors import (
    APIError,
    APIResponseValidationError,
    APIStatusError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
)
from lm_deluge_cli.providers.base import Endpoint, error_text
from lm_deluge_cli.providers.extensions import reasoning_parts
from lm_deluge_cli.providers.openai_chat import rate_limit_info, status_error
from lm_deluge_cli.providers.openai_responses_output import (
    FORMAT,
    responses_answer,
    responses_usage,
)
from lm_deluge_cli.providers.parts import (
    PARSE_ERRORS,
    bearer_json_request,
    image_url,
    named_function,
    parse_arguments,
    parse_data_url,
    schema_response_format,
    text_of,
    tool_functions,
    unreadable,
    unsupported,
)
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
    "ENCRYPTED_REASONING_INCLUDE",
    "LOGPROBS_INCLUDE",
    "MIN_OUTPUT_TOKENS",
    "OpenAIResponsesAdapter",
    "max_output_tokens",
    "responses_input",
]

# What `include` must name for output_text parts to carry their tokens' logprobs.
LOGPROBS_INCLUDE = "message.output_text.logprobs"
# What `include` must name for reasoning items to carry their encrypted_content: requests are
# never stored, so a later turn can only continue a model's reasoning from it.
ENCRYPTED_REASONING_INCLUDE = "reasoning.encrypted_content"
# The API refuses a smaller max_output_tokens (400 integer_below_min_value): a smaller
# max_new_tokens is raised to it rather than failing every request.
MIN_OUTPUT_TOKENS = 16

# Request fields of an OpenAI Batch API line that the Responses API takes under the same
# name and meaning. Chat-only ones (seed, n, logit_bias, penalties, …) would be refused.
_PASSTHROUGH = (
    "metadata",
    "parallel_tool_calls",
    "service_tier",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "truncation",
    "max_tool_calls",
)
_TOOL_CHOICES = frozenset({"auto", "none", "required"})
_SYSTEM_ROLES = ("system", "developer")
# The fields of a reasoning input item (the API's ResponseReasoningItemParam): `status`, which
# only output items carry, is left out.
_REASONING_INPUT = ("type", "id", "summary", "content", "encrypted_content")
# error.code of a failed response → its error class. Codes not listed (invalid_prompt, the
# image_* family) say the input itself is refused: sent again, it fails again.
_FAILED_CLASSES: Mapping[str, type[APIStatusError]] = {
    "server_error": InternalServerError,
    "rate_limit_exceeded": RateLimitError,
    "vector_store_timeout": InternalServerError,
}


def max_output_tokens(endpoint: Endpoint, sampling: SamplingParams) -> int:
    """The body's max_output_tokens: max_new_tokens (reasoning tokens come out of it, as out
    of Chat Completions' max_completion_tokens), at least the API's minimum."""
    return max(sampling.max_new_tokens, MIN_OUTPUT_TOKENS)


class OpenAIResponsesAdapter:
    """Builds Responses API requests and reads their responses."""

    def build_request(
        self, endpoint: Endpoint, prompt: Prompt, sampling: SamplingParams, timeout: float
    ) -> HttpRequest:
        """The create-response request for one prompt.

        The API has no stop sequences: `stop` is left out (with a warning) before this.
        """
        extra = prompt.extra_body
        body: dict[str, Any] = {key: extra[key] for key in _PASSTHROUGH if key in extra}
        body.update(_tool_fields(extra))
        # Only reasoning models take reasoning items (others refuse them with a 400).
        reasons = endpoint.model.reasoning
        instructions, items = responses_input(prompt.messages, reasoning_items=reasons)
        body["model"] = endpoint.model.wire_id
        if instructions:
            body["instructions"] = instructions
        body["input"] = items
        body["max_output_tokens"] = max_output_tokens(endpoint, sampling)
        # Stored responses are kept server-side for later retrieval; a batch never asks.
        body["store"] = False
        if reasons:
            # Reasoning models reject temperature/top_p other than their defaults. Without a
            # summary the API returns no reasoning text at all.
            if sampling.reasoning_effort is not None:
                body["reasoning"] = {"effort": sampling.reasoning_effort, "summary": "auto"}
        else:
            body["temperature"] = sampling.temperature
            body["top_p"] = sampling.top_p
        text_format = _text_format(sampling)
        if text_format is not None:
            body["text"] = {"format": text_format}
        include: list[str] = []
        if sampling.logprobs:
            include.append(LOGPROBS_INCLUDE)
            if sampling.top_logprobs is not None:
                body["top_logprobs"] = sampling.top_logprobs
        # A tool call's answer comes in a later request, which needs the reasoning behind the
        # call. Models without reasoning refuse the include with a 400.
        if reasons and body.get("tools"):
            include.append(ENCRYPTED_REASONING_INCLUDE)
        if include:
            body["include"] = include
        return bearer_json_request(endpoint, "/responses", body, timeout)

    def parse_response(self, endpoint: Endpoint, response: HttpResponse) -> Completion:
        """The completion in a 2xx response; raises an `APIError` for anything else,
        a response whose ``status`` is ``failed`` included."""
        if response.status >= 300:
            raise status_error(endpoint, response)
        try:
            data = orjson.loads(response.body)
            status, error = data.get("status"), data.get("error")
            failed = status == "failed" or error is not None
            answer = None if failed else responses_answer(data)
            usage = None if failed else responses_usage(data.get("usage"))
        except PARSE_ERRORS as exc:
            raise unreadable(endpoint, response, "Responses API response", exc) from exc
        if answer is None or usage is None:
            raise _failure(endpoint, response, error)
        if status not in (None, "completed", "incomplete"):
            # queued / in_progress / cancelled: only background requests are left so.
            raise APIResponseValidationError(
                f"{response.status}: the response is {status!r}, not finished",
                status_code=response.status,
            )
        return Completion((answer,), usage)

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        return rate_limit_info(headers)


def responses_input(
    messages: list[Message], *, reasoning_items: bool = True
) -> tuple[str | None, list[dict[str, Any]]]:
    """(instructions, input items) for Chat Completions messages.

    The system and developer messages before the first other one make the instructions;
    later ones stay where they are, as input messages of their own role. An assistant
    message's reasoning parts of this format go before its own items when `reasoning_items`
    (other formats' parts are left out). Raises (via `unsupported`) for a message the API
    cannot take.
    """
    leading = 0
    while leading < len(messages) and messages[leading].get("role") in _SYSTEM_ROLES:
        leading += 1
    system = [text_of(m.get("content"), str(m["role"])) for m in messages[:leading]]
    items: list[dict[str, Any]] = []
    for message in messages[leading:]:
        if reasoning_items and message.get("role") == "assistant":
            items.extend(_reasoning_items(message))
        items.extend(_items(message))
    return "\n\n".join(system) or None, items


def _items(message: Message) -> list[dict[str, Any]]:
    role = message.get("role")
    if role in _SYSTEM_ROLES:
        return [{"role": role, "content": text_of(message.get("content"), str(role))}]
    if role == "user":
        return [{"role": "user", "content": _user_content(message.get("content"))}]
    if role == "assistant":
        return _assistant_items(message)
    if role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise unsupported("a tool message needs the tool_call_id it answers")
        output = text_of(message.get("content"), "tool")
        return [{"type": "function_call_output", "call_id": call_id, "output": output}]
    raise unsupported(f"the Responses API has no equivalent of the {role!r} role")


def _user_content(content: Any) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise unsupported("user message content must be a string or a list of parts")
    return [_input_part(part) for part in content]


def _input_part(part: Any) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return {"type": "input_text", "text": part["text"]}
    if kind == "image_url":
        url, detail = image_url(part)
        # parse_data_url refuses a data URL that is not valid base64 before it is sent.
        if parse_data_url(url) is None and not url.startswith(("https://", "http://")):
            raise unsupported("an image URL must be http(s) or a base64 data URL")
        return {"type": "input_image", "image_url": url, "detail": detail or "auto"}
    if kind == "file":
        return _input_file(part.get("file"))
    raise unsupported(f"the Responses API cannot take a {kind!r} content part")


def _input_file(file: Any) -> dict[str, Any]:
    if isinstance(file, dict) and isinstance(file.get("file_id"), str):
        return {"type": "input_file", "file_id": file["file_id"]}
    data = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data, str) or parse_data_url(data) is None:
        raise unsupported("a file part needs file.file_id or a base64 data URL in file_data")
    part = {"type": "input_file", "file_data": data}
    if isinstance(file.get("filename"), str):
        part["filename"] = file["filename"]
    return part


def _assistant_items(message: Message) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    text = text_of(message.get("content"), "assistant")
    if text:
        # annotations is required of output_text; OpenAI forgives its absence, others don't.
        part = {"type": "output_text", "text": text, "annotations": []}
        items.append({"role": "assistant", "content": [part]})
    for call in message.get("tool_calls") or []:
        function = named_function(call)
        if function is None:
            raise unsupported("an assistant tool call needs function.name")
        if not isinstance(call.get("id"), str) or not call["id"]:
            raise unsupported("an assistant tool call needs an id")
        name, raw = function["name"], function.get("arguments")
        arguments = parse_arguments(raw, name)
        # The API wants the arguments as JSON text; the text the model wrote is kept.
        kept = raw if isinstance(raw, str) and raw.strip() else orjson.dumps(arguments).decode()
        items.append(
            {"type": "function_call", "call_id": call["id"], "name": name, "arguments": kept}
        )
    return items


def _reasoning_items(message: Message) -> list[dict[str, Any]]:
    """The reasoning items a record's assistant message carries, as input items.

    An item without encrypted_content is left out: requests are not stored, so the API would
    look it up by id, find nothing, and refuse the request.
    """
    items: list[dict[str, Any]] = []
    for part in reasoning_parts(message, FORMAT):
        item = part.get("item")
        if not isinstance(item, dict) or item.get("type") != "reasoning":
            raise unsupported(f"a reasoning part of format {FORMAT!r} needs its reasoning item")
        if not isinstance(item.get("id"), str) or not item.get("encrypted_content"):
            continue
        sent = {key: item[key] for key in _REASONING_INPUT if item.get(key) is not None}
        sent.setdefault("summary", [])
        items.append(sent)
    return items


def _tool_fields(extra: Mapping[str, Any]) -> dict[str, Any]:
    """tools and tool_choice of a Batch API line, in the Responses API's flat shape."""
    fields: dict[str, Any] = {}
    if extra.get("tools") is not None:
        fields["tools"] = _tools(extra["tools"])
    choice = extra.get("tool_choice")
    if choice is None:
        return fields
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        fields["tool_choice"] = choice
        return fields
    function = named_function(choice)
    if function is None:
        raise unsupported(f"the Responses API cannot express tool_choice {choice!r}")
    fields["tool_choice"] = {"type": "function", "name": function["name"]}
    return fields


def _tools(tools: Any) -> list[dict[str, Any]]:
    flat: list[dict[str, Any]] = []
    for function in tool_functions(tools, "only function tools can be sent"):
        definition: dict[str, Any] = {"type": "function", "name": function["name"]}
        if function.get("description"):
            definition["description"] = function["description"]
        definition["parameters"] = function.get("parameters") or {
            "type": "object",
            "properties": {},
        }
        # An absent strict means true here (the schema is made strict), false on Chat
        # Completions: say it, so a tool behaves as its author wrote it.
        strict = function.get("strict")
        definition["strict"] = strict if isinstance(strict, bool) else False
        flat.append(definition)
    return flat


def _text_format(sampling: SamplingParams) -> dict[str, Any] | None:
    # A json_schema is more specific than json_mode.
    if sampling.json_schema is not None:
        # The name, schema and strictness Chat Completions gets, one level up.
        spec = schema_response_format(sampling.json_schema)["json_schema"]
        return {"type": "json_schema", **spec}
    if sampling.json_mode:
        return {"type": "json_object"}
    return None


def _failure(endpoint: Endpoint, response: HttpResponse, error: Any) -> APIError:
    """The error a 2xx response with ``status: "failed"`` stands for, by its error.code."""
    message, code = "no error details", None
    if isinstance(error, dict):
        message, code = error_text(response.body, endpoint.api_key)
    cls = _FAILED_CLASSES.get(code or "server_error", BadRequestError)
    return cls(
        f"{response.status}: the response failed: {message}",
        status_code=response.status,
        code=code,
    )
