"""Pieces of the OpenAI chat format that several adapters translate the same way.

Data URLs, image parts, text-only content, tool-call arguments (sent and answered), finish
reasons, json_schema response formats, usage counts, rate-limit header numbers, a JSON POST
with a Bearer key, and a response read: its status checked, its JSON body read, and the
validation error for a 2xx body that cannot be read.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from lm_deluge_cli.errors import APIError, APIResponseValidationError, APIStatusError
from lm_deluge_cli.providers.base import Endpoint, response_snippet
from lm_deluge_cli.redaction import redact_keys
from lm_deluge_cli.results import FINISH_REASONS, ToolCall, Usage
from lm_deluge_cli.types import HttpRequest, HttpResponse

__all__ = [
    "PARSE_ERRORS",
    "SCHEMA_NAME",
    "DataUrl",
    "bearer_json_request",
    "count",
    "finish_reason",
    "function_calls",
    "function_tools",
    "header_int",
    "image_url",
    "media_type_of_url",
    "named_function",
    "openai_usage",
    "ordered_choices",
    "parse_arguments",
    "parse_data_url",
    "read_body",
    "schema_response_format",
    "text_of",
    "tool_call",
    "tool_functions",
    "unreadable",
    "unsupported",
]

# The name a json_schema is sent under (the providers want one; the user gives none).
SCHEMA_NAME = "response"
# What reading a malformed body can raise: bad JSON, a missing key or index, a value of the
# wrong type, and int() of a count that is not a finite number ("abc", 1e400).
PARSE_ERRORS: tuple[type[Exception], ...] = (
    orjson.JSONDecodeError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    ValueError,
    OverflowError,
)

_T = TypeVar("_T")

# RFC 2397: data:[<media type>][;param=value]*[;base64],<data>
_DATA_URL = re.compile(r"data:(?P<meta>[^,]*),(?P<data>.*)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class DataUrl:
    """A base64 data URL split into its media type and payload."""

    media_type: str
    data: str


def unsupported(message: str) -> APIError:
    """The error for a prompt this provider's wire format cannot express.

    Not retryable and not fatal: the same prompt would fail again, other prompts may not.
    """
    return APIError(message)


def parse_data_url(url: str) -> DataUrl | None:
    """``data:image/png;base64,AAA…`` → DataUrl("image/png", "AAA…"); None for other URLs.

    Raises (via `unsupported`) for a data URL that is not base64 or whose payload is not
    valid base64, so a broken image is reported instead of sent.
    """
    match = _DATA_URL.fullmatch(url.strip())
    if match is None:
        return None
    params = [p.strip() for p in match["meta"].split(";")]
    media_type = params[0].lower() or "text/plain"
    if "base64" not in (p.lower() for p in params[1:]):
        raise unsupported(f"data URL for {media_type} is not base64-encoded")
    data = match["data"].strip()
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise unsupported(f"data URL for {media_type} has an invalid base64 payload") from None
    return DataUrl(media_type, data)


def image_url(part: dict[str, Any]) -> tuple[str, str | None]:
    """(url, detail) of an OpenAI ``image_url`` part; the url may be a plain string."""
    value = part.get("image_url")
    if isinstance(value, str) and value:
        return value, None
    if isinstance(value, dict):
        url = value.get("url")
        detail = value.get("detail")
        if isinstance(url, str) and url:
            return url, detail if isinstance(detail, str) else None
    raise unsupported("an image_url part needs image_url.url (an https or data URL)")


def media_type_of_url(url: str) -> str | None:
    """The media type an https URL's file extension implies, or None when it says nothing."""
    path = urllib.parse.urlsplit(url).path
    guessed, _ = mimetypes.guess_type(path, strict=False)
    return guessed


def text_of(content: Any, role: str) -> str:
    """The text of content that may only hold text: a string or a list of text parts."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise unsupported(f"a {role} message can only hold text parts, not {kind!r}")
            text = part.get("text")
            if not isinstance(text, str):
                raise unsupported(f"a text part in a {role} message needs a string 'text'")
            texts.append(text)
        return "\n".join(texts)
    raise unsupported(f"{role} message content must be a string or a list of parts")


def parse_arguments(raw: Any, name: str) -> dict[str, Any]:
    """Tool-call arguments as an object: OpenAI sends them as a JSON string."""
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise unsupported(f"arguments of tool call {name!r} are not valid JSON") from None
        if isinstance(parsed, dict):
            return parsed
    raise unsupported(f"arguments of tool call {name!r} must be a JSON object")


def tool_call(call_id: Any, name: Any, raw: Any) -> ToolCall:
    """A tool call from an answer. Arguments arrive as a JSON string (OpenAI and most others)
    or as an object (Anthropic, Gemini); a string that is not a JSON object is kept as sent
    in `arguments_raw`, never refused: the call is the model's answer all the same."""
    if not isinstance(name, str):
        raise TypeError("a tool call's name is not a string")
    if not isinstance(call_id, str):
        raise TypeError("a tool call's id is not a string")
    if isinstance(raw, dict):
        return ToolCall(call_id, name, raw)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return ToolCall(call_id, name, {})
    text = raw if isinstance(raw, str) else orjson.dumps(raw).decode()
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        return ToolCall(call_id, name, parsed)
    return ToolCall(call_id, name, None, text)


def function_calls(calls: Any) -> tuple[ToolCall, ...]:
    """The function calls of an OpenAI-shaped message's ``tool_calls`` (Chat Completions,
    Mistral and compatible servers): an id (``call_N`` when a server sends none), a name and
    JSON-string arguments. Entries of other types (a custom tool's) are not functions."""
    return tuple(
        tool_call(
            call.get("id") or f"call_{index}",
            call["function"]["name"],
            call["function"].get("arguments"),
        )
        for index, call in enumerate(calls or ())
        if call.get("type", "function") == "function"
    )


def finish_reason(
    value: Any, table: Mapping[str, str], *, refused: bool = False
) -> tuple[str | None, str | None]:
    """(our finish reason, the provider's own) for a provider's value.

    `table` maps the provider's values onto FINISH_REASONS; an unknown value is "other".
    `refused` (the answer is a refusal and nothing else) makes it "refusal".
    """
    own = value if isinstance(value, str) else None
    if refused:
        return "refusal", own
    if own is None:
        return None, None
    ours = table.get(own, own if own in FINISH_REASONS else "other")
    return ours, own


def schema_response_format(schema: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI's (and Mistral's) json_schema response_format for a schema.

    Strict mode only when the schema meets its rules (every object closed with
    additionalProperties false and every property required): a schema that does not
    would be refused with a 400 on every request, so it is sent non-strict and our
    own validation of each answer does the checking.
    """
    spec = {"name": SCHEMA_NAME, "schema": schema, "strict": strict_compatible(schema)}
    return {"type": "json_schema", "json_schema": spec}


def strict_compatible(schema: Any) -> bool:
    """Whether every object in `schema` is closed and requires all of its properties."""
    if isinstance(schema, list):
        return all(strict_compatible(item) for item in schema)
    if not isinstance(schema, Mapping):
        return True
    properties = schema.get("properties")
    if schema.get("type") == "object" or isinstance(properties, Mapping):
        if schema.get("additionalProperties") is not False:
            return False
        if isinstance(properties, Mapping) and set(schema.get("required") or ()) != set(properties):
            return False
    return all(strict_compatible(value) for value in schema.values())


def named_function(value: Any) -> dict[str, Any] | None:
    """The ``function`` of an OpenAI tool, tool call or tool_choice when it is an object with
    a string name, else None."""
    function = value.get("function") if isinstance(value, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return function
    return None


def tool_functions(tools: Any, not_function: str) -> list[dict[str, Any]]:
    """The ``function`` objects of an OpenAI ``tools`` list, each with a string name;
    `not_function` is the error for an entry that is not a function tool."""
    if not isinstance(tools, list):
        raise unsupported("tools must be a list of function tools")
    functions: list[dict[str, Any]] = []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise unsupported(not_function)
        function = named_function(tool)
        if function is None:
            raise unsupported("a function tool needs function.name")
        functions.append(function)
    return functions


def function_tools(tools: Any, provider: str) -> list[dict[str, Any]]:
    """OpenAI function tools as ``{"name", "description"?, "parameters"?}`` dicts.

    Only the fields every provider understands are kept (OpenAI's ``strict`` is not).
    """
    functions: list[dict[str, Any]] = []
    for function in tool_functions(tools, f"{provider} takes only function tools"):
        kept = {"name": function["name"]}
        kept.update({k: function[k] for k in ("description", "parameters") if function.get(k)})
        functions.append(kept)
    return functions


def count(value: Any) -> int:
    """A token count from a usage block: absent or null is 0; junk raises (a bad body)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"token count is {type(value).__name__}, not a number")
    # int() of a float: some providers (Cohere) send counts as doubles.
    return int(float(value)) if isinstance(value, float | str) else value


def openai_usage(raw: Any, input: str, output: str) -> Usage:
    """An OpenAI-shaped usage block: `input` and `output` name its two counts (Chat
    Completions' prompt_tokens and completion_tokens, the Responses API's input_tokens and
    output_tokens), and their ``_details`` the cached, cache-write and reasoning tokens."""
    if raw is None:
        return Usage()
    input_details = raw.get(f"{input}_details") or {}
    output_details = raw.get(f"{output}_details") or {}
    return Usage(
        input_tokens=count(raw.get(input)),
        output_tokens=count(raw.get(output)),
        cached_input_tokens=count(input_details.get("cached_tokens")),
        reasoning_tokens=count(output_details.get("reasoning_tokens")),
        cache_write_tokens=count(input_details.get("cache_write_tokens")),
    )


def header_int(value: str | None) -> int | None:
    """An integer rate-limit header, or None when absent or not a finite number."""
    if value is None:
        return None
    try:
        return int(float(value))
    except (ValueError, OverflowError):  # "abc", "nan" / "inf"
        return None


def unreadable(
    endpoint: Endpoint, response: HttpResponse, what: str, exc: Exception
) -> APIResponseValidationError:
    """The error for a 2xx body that is not `what` (e.g. "Gemini response"), key redacted."""
    snippet = response_snippet(response.body, endpoint.api_key, 120)
    message = f"unreadable {what} ({type(exc).__name__}: {exc}); body starts"
    return APIResponseValidationError(
        f"{redact_keys(message, endpoint.api_key)} {snippet!r}", status_code=response.status
    )


def ordered_choices(data: Mapping[str, Any]) -> list[Any]:
    """A Chat Completions body's choices in index order; TypeError unless there is one."""
    choices = data["choices"]
    if not isinstance(choices, list) or not choices:
        raise TypeError("choices is not a list of at least one choice")
    return sorted(choices, key=lambda c: c.get("index") or 0)


def read_body(
    endpoint: Endpoint,
    response: HttpResponse,
    what: str,
    status_error: Callable[[Endpoint, HttpResponse], APIStatusError],
    read: Callable[[Any], _T],
) -> _T:
    """What `read` makes of a 2xx response's JSON body. Any other status raises the
    provider's `status_error`; a body `read` cannot take (one of PARSE_ERRORS) raises the
    validation error that says it is not `what`."""
    if response.status >= 300:
        raise status_error(endpoint, response)
    try:
        return read(orjson.loads(response.body))
    except PARSE_ERRORS as exc:
        raise unreadable(endpoint, response, what, exc) from exc


def bearer_json_request(
    endpoint: Endpoint, path: str, body: Mapping[str, Any], timeout: float
) -> HttpRequest:
    """A JSON POST to `endpoint.base_url + path` with the key as a Bearer token (if any).

    The shape OpenAI, Mistral, Cohere and every OpenAI-compatible host share.
    """
    headers = {"content-type": "application/json", "accept": "application/json"}
    if endpoint.api_key:
        headers["authorization"] = f"Bearer {endpoint.api_key}"
    return HttpRequest(
        method="POST",
        url=f"{endpoint.base_url}{path}",
        headers=headers,
        body=orjson.dumps(body),
        timeout=timeout,
    )
