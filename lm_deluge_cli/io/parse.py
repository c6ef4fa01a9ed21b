"""Turn one input line into a Prompt, or a BadLine whose reason names the line and the field.

Three line shapes are accepted (any other top-level keys are ignored, so data files
with extra columns work):

* ``{"prompt": "..."}`` — one user message;
* ``{"messages": [...]}`` — OpenAI chat messages;
* ``{"custom_id": ..., "method": "POST", "url": "/v1/chat/completions", "body": {...}}``
  — an OpenAI Batch API request line; ``body.model`` pins the model, sampling fields map
  onto SamplingParams and any other body keys pass through as ``extra_body``.

Optional on every shape: ``id`` (a string or integer; else ``custom_id``, else the line
number), ``system`` (a string, prepended as a system message), ``model`` (a pin),
``metadata`` (any JSON, copied to the result untouched) and sampling overrides named
like the fields of SamplingParams (``temperature``, ``max_new_tokens``, ``stop``,
``json_schema``, ``samples`` or its OpenAI name ``n``, …). A Batch body's ``stop``,
``n`` and ``response_format`` (json_object or json_schema) map onto the same fields.

``prompt`` and ``messages`` lines may also carry ``tools`` (in OpenAI's function-tool shape
or the short ``{"name", "description", "parameters"}``; they replace the job's),
``tool_choice`` and ``prompt_cache_key`` (see `lm_deluge_cli.tool_use.definitions`); they
travel with the line's request fields (``extra_body``), as a Batch body's own do.

Messages may also be Anthropic Messages API messages (content blocks such as ``image`` with a
``source``, ``document``, ``tool_use``, ``tool_result``); one such block marks the line as
Anthropic's and it is converted to OpenAI chat messages. Image and file parts may point at
local files, read relative to the input file's folder (`base_dir`) when the line is parsed:
``{"type": "image", "path": "imgs/cat.png"}``, ``{"type": "file", "path": "doc.pdf"}`` or
``{"type": "image_url", "image_url": {"url": "file:imgs/cat.png"}}`` (see
`lm_deluge_cli.conversation.convert`). Images read or converted this way are scaled down to
`lm_deluge_cli.images.WIRE_LIMITS`; a missing or unreadable file makes the line a BadLine, and
so does one outside the files root when there is one (`--files-root`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from lm_deluge_cli.conversation import Conversation, ConversionError
from lm_deluge_cli.conversation.convert import (
    is_anthropic_style,
    is_local_part,
    resolve_local_media,
)
from lm_deluge_cli.conversation.local_files import BaseDir, LocalFiles
from lm_deluge_cli.sampling import REASONING_EFFORTS, check_sampling_value, describe_value
from lm_deluge_cli.tool_use.definitions import (
    ToolDefinitionError,
    check_tool_choice,
    check_tools,
    tool_names,
)
from lm_deluge_cli.types import SAMPLING_FIELDS, Message, Prompt

__all__ = [
    "REASONING_EFFORTS",
    "ROLES",
    "BadLine",
    "json_object",
    "line_id",
    "not_json",
    "parse_line",
]

ROLES = ("system", "developer", "user", "assistant", "tool")

# Batch API body keys that map onto SamplingParams fields of another name.
_BODY_RENAMED = {"n": "samples"}
# Batch API body keys that map onto SamplingParams fields of the same name.
_BODY_SAMPLING = ("temperature", "top_p", "logprobs", "top_logprobs", "reasoning_effort", "stop")
# Batch API body keys we never forward: this tool always makes plain, non-streamed requests.
_BODY_DROPPED = ("stream", "stream_options")
# Sampling fields whose default is None, so a line may set them to null explicitly.
_NULLABLE = ("reasoning_effort", "top_logprobs", "stop", "json_schema")


@dataclass(frozen=True, slots=True)
class BadLine:
    """An input line that cannot be run; `reason` starts with ``line N:``.

    `id` is the line's own id when one could be read, else None (also for a duplicate
    id, so its error record never shadows the result of the first line with that id).
    """

    line: int
    reason: str
    id: str | int | None = None


class _Invalid(Exception):
    """A problem with one field; parse_line turns it into a BadLine."""


def parse_line(
    line_no: int,
    raw: bytes | bytearray,
    *,
    base_dir: str | Path | None = None,
    files_root: str | Path | None = None,
) -> Prompt | BadLine:
    """Parse one JSONL line (without its newline). Never raises: problems become a BadLine.

    Relative paths of local media parts are read from `base_dir` (the input file's folder),
    else from the working directory. With `files_root`, a local file outside it (symlinks
    resolved) makes the line a BadLine instead of being read.
    """
    obj = json_object(line_no, raw, _json_problem)
    if isinstance(obj, BadLine):
        return obj
    try:
        explicit_id = _read_id(obj)
    except _Invalid as exc:
        return BadLine(line_no, f"line {line_no}: {exc}")
    try:
        files: BaseDir = base_dir
        if files_root is not None:
            files = LocalFiles(None if base_dir is None else Path(base_dir), Path(files_root))
        return _build(obj, line_no, line_no if explicit_id is None else explicit_id, files)
    except _Invalid as exc:
        return BadLine(line_no, f"line {line_no}: {exc}", explicit_id)


def json_object(
    line_no: int,
    raw: bytes | bytearray,
    problem: Callable[[bytes | bytearray, orjson.JSONDecodeError], str],
) -> dict[str, Any] | BadLine:
    """The line's JSON object, or a BadLine: of the `problem` with text that is not JSON, or
    naming the value that is not an object."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return BadLine(line_no, f"line {line_no}: {problem(raw, exc)}")
    if not isinstance(obj, dict):
        return BadLine(
            line_no, f"line {line_no}: expected a JSON object, got {describe_value(obj)}"
        )
    return obj


def not_json(raw: bytes | bytearray, exc: orjson.JSONDecodeError) -> str:
    """What is wrong with text that is not JSON, by the parser's error."""
    return f"not valid JSON ({exc.msg} at column {exc.colno})"


def _json_problem(raw: bytes | bytearray, exc: orjson.JSONDecodeError) -> str:
    # A prompt line names bytes that are not UTF-8 before the JSON error they cause.
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not valid UTF-8 (byte 0x{raw[bad.start]:02x} at byte offset {bad.start})"
    return not_json(raw, exc)


def line_id(obj: dict[str, Any], line_no: int) -> str | int | None:
    """The id a line's object runs under (``id``, else ``custom_id``, else the line number),
    or None when the one it gives is not a string or an integer."""
    try:
        explicit = _read_id(obj)
    except _Invalid:
        return None
    return line_no if explicit is None else explicit


def _read_id(obj: dict[str, Any]) -> str | int | None:
    for name in ("id", "custom_id"):
        if name in obj:
            value = obj[name]
            if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
                return value
            raise _Invalid(f"'{name}' must be a string or an integer, got {describe_value(value)}")
    return None


def _build(obj: dict[str, Any], line_no: int, id_: str | int, base_dir: BaseDir) -> Prompt:
    model: str | None = None
    sampling: dict[str, Any] = {}
    extra_body: dict[str, Any] = {}
    if "prompt" in obj and "messages" in obj:
        raise _Invalid("has both 'prompt' and 'messages'; use one of them")
    if "messages" in obj:
        messages = _media(_messages(obj["messages"], "messages"), "messages", base_dir)
    elif "prompt" in obj:
        text = obj["prompt"]
        if not isinstance(text, str) or not text:
            raise _Invalid(f"'prompt' must be a non-empty string, got {describe_value(text)}")
        messages = [{"role": "user", "content": text}]
    elif "body" in obj:
        messages, model, sampling, extra_body = _batch_request(obj)
        messages = _media(messages, "body.messages", base_dir)
    else:
        raise _Invalid(
            "needs 'prompt' (a string), 'messages' (a list of chat messages) "
            "or 'body' (an OpenAI Batch API request)"
        )

    system = obj.get("system")
    if system is not None:
        if not isinstance(system, str):
            raise _Invalid(f"'system' must be a string, got {describe_value(system)}")
        messages.insert(0, {"role": "system", "content": system})

    pin = obj.get("model")
    if pin is not None:
        if not isinstance(pin, str) or not pin:
            raise _Invalid(f"'model' must be a non-empty string, got {describe_value(pin)}")
        model = pin

    for name in SAMPLING_FIELDS:
        if name in obj:
            value = obj[name]
            if value is None and name not in _NULLABLE:
                raise _Invalid(f"'{name}' must not be null (leave it out to use the default)")
            sampling[name] = _sampling_value(name, value, name)
    if "n" in obj and "samples" not in obj:
        sampling["samples"] = _sampling_value("samples", obj["n"], "n")
    if "body" not in obj:
        extra_body = _request_fields(obj)

    return Prompt(
        id=id_,
        line=line_no,
        messages=messages,
        model=model,
        metadata=obj.get("metadata"),
        sampling=sampling,
        extra_body=extra_body,
    )


def _request_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """The tools, tool choice and prompt cache key a prompt or messages line carries."""
    fields: dict[str, Any] = {}
    try:
        if obj.get("tools") is not None:
            fields["tools"] = check_tools(obj["tools"], "'tools'")
        if obj.get("tool_choice") is not None:
            names = tool_names(fields["tools"]) if "tools" in fields else None
            fields["tool_choice"] = check_tool_choice(obj["tool_choice"], names, "'tool_choice'")
    except ToolDefinitionError as exc:
        raise _Invalid(str(exc)) from None
    key = obj.get("prompt_cache_key")
    if key is not None:
        if not isinstance(key, str) or not key:
            raise _Invalid(
                f"'prompt_cache_key' must be a non-empty string, got {describe_value(key)}"
            )
        fields["prompt_cache_key"] = key
    return fields


def _messages(value: Any, where: str) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise _Invalid(f"'{where}' must be a non-empty list, got {describe_value(value)}")
    for i, message in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(message, dict):
            raise _Invalid(f"'{at}' must be an object, got {describe_value(message)}")
        role = message.get("role")
        if role not in ROLES:
            raise _Invalid(
                f"'{at}.role' must be one of {', '.join(ROLES)}, got {describe_value(role)}"
            )
        content = message.get("content")
        if content is None:
            tool_calls = message.get("tool_calls")
            if role != "assistant" or not isinstance(tool_calls, list) or not tool_calls:
                raise _Invalid(
                    f"'{at}.content' must be a string or a list of parts "
                    "(null only for an assistant message with tool_calls)"
                )
        elif isinstance(content, list):
            if not content:
                raise _Invalid(f"'{at}.content' must not be an empty list")
            for j, part in enumerate(content):
                if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                    raise _Invalid(f"'{at}.content[{j}]' must be an object with a string 'type'")
        elif not isinstance(content, str):
            raise _Invalid(
                f"'{at}.content' must be a string or a list of parts, got {describe_value(content)}"
            )
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise _Invalid(f"'{at}.tool_call_id' must be a string (required for role 'tool')")
    return value


def _media(messages: list[Message], where: str, base_dir: BaseDir) -> list[Message]:
    """Anthropic-style messages converted and local media parts read; others as they are."""
    try:
        if is_anthropic_style(messages):
            return Conversation.from_anthropic(messages, base_dir=base_dir).to_openai()
        if any(is_local_part(part) for m in messages for part in _parts(m)):
            return resolve_local_media(messages, base_dir)
    except ConversionError as exc:
        raise _Invalid(f"'{where}{exc.path}': {exc.reason}") from None
    except ValueError as exc:  # a turn OpenAI's format cannot hold, an undecodable image
        raise _Invalid(f"'{where}': {exc}") from None
    return messages


def _parts(message: Message) -> list[Any]:
    content = message.get("content")
    return content if isinstance(content, list) else []


def _batch_request(
    obj: dict[str, Any],
) -> tuple[list[Message], str | None, dict[str, Any], dict[str, Any]]:
    body = obj["body"]
    if not isinstance(body, dict):
        raise _Invalid(
            "'body' must be an object (an OpenAI Batch API request body), "
            f"got {describe_value(body)}"
        )
    method = obj.get("method")
    if method is not None and method != "POST":
        raise _Invalid(f"'method' must be \"POST\", got {describe_value(method)}")
    url = obj.get("url")
    if url is not None and (not isinstance(url, str) or not url.endswith("/chat/completions")):
        raise _Invalid(
            "'url' must be \"/v1/chat/completions\" (the only endpoint supported), "
            f"got {describe_value(url)}"
        )
    messages = _messages(body.get("messages"), "body.messages")
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise _Invalid(f"'body.model' must be a non-empty string, got {describe_value(model)}")

    sampling: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in body.items():
        # null in a request body means "the default", as it does for the OpenAI API.
        if key in ("model", "messages") or key in _BODY_DROPPED:
            continue
        if key in _BODY_SAMPLING:
            if value is not None:
                sampling[key] = _sampling_value(key, value, f"body.{key}")
        elif key in _BODY_RENAMED:
            if value is not None:
                sampling[_BODY_RENAMED[key]] = _sampling_value(
                    _BODY_RENAMED[key], value, f"body.{key}"
                )
        elif key in ("max_tokens", "max_completion_tokens"):
            continue
        elif key == "response_format":
            if not isinstance(value, dict):
                raise _Invalid(
                    f"'body.response_format' must be an object, got {describe_value(value)}"
                )
            kind = value.get("type")
            if kind == "json_object":
                sampling["json_mode"] = True
            elif kind == "json_schema":
                spec = value.get("json_schema")
                schema = spec.get("schema") if isinstance(spec, dict) else None
                if not isinstance(schema, dict):
                    raise _Invalid(
                        "'body.response_format.json_schema.schema' must be a JSON Schema "
                        f"object, got {describe_value(schema)}"
                    )
                sampling["json_schema"] = schema
            elif kind != "text":
                raise _Invalid(
                    "'body.response_format.type' must be text, json_object or json_schema, "
                    f"got {describe_value(kind)}"
                )
        else:
            extra[key] = value

    for key in ("max_completion_tokens", "max_tokens"):
        if body.get(key) is not None:
            sampling["max_new_tokens"] = _sampling_value("max_new_tokens", body[key], f"body.{key}")
            break
    return messages, model, sampling, extra


def _sampling_value(name: str, value: Any, where: str) -> Any:
    """Validate one sampling override; `where` is how the line spells the field."""
    try:
        return check_sampling_value(name, value)
    except ValueError as exc:
        raise _Invalid(f"'{where}' {exc}") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
