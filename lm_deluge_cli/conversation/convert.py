"""Messages in other shapes → `Message` lists: OpenAI chat messages, Anthropic Messages API
messages, and the local-file media parts an input line may carry.

Local media parts (read relative to `base_dir`, else the working directory; a
`LocalFiles` as `base_dir` also confines them to its files root):

* ``{"type": "image", "path": "imgs/cat.png"}`` (optional ``"detail"``)
* ``{"type": "image_url", "image_url": {"url": "file:imgs/cat.png"}}`` (``file:///abs/cat.png``
  for an absolute path; ``file:`` URLs are percent-decoded)
* ``{"type": "file", "path": "docs/report.pdf"}`` (optional ``"filename"``)
* in Anthropic-style messages also ``{"type": "document", "path": …}`` and image or document
  ``source`` URLs that are ``file:`` URLs.

A ``cache_control`` (a prompt-cache breakpoint) on a part, a block, a tool message or a system
block stays on the part it marks, and `Message.to_openai` writes it back where it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from lm_deluge_cli.conversation.local_files import BaseDir, base_folder, local_source
from lm_deluge_cli.conversation.message import Message
from lm_deluge_cli.conversation.parts import (
    ConversionError,
    File,
    MarkablePart,
    Part,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
)
from lm_deluge_cli.images import WIRE_LIMITS, Image, ImageLimits
from lm_deluge_cli.results import decoded_arguments

__all__ = [
    "anthropic_messages",
    "is_anthropic_style",
    "is_local_part",
    "openai_messages",
    "resolve_local_media",
]

# Block types only the Anthropic format has; one of them in a line marks it as Anthropic's.
_ANTHROPIC_BLOCKS = frozenset(
    {"document", "tool_use", "tool_result", "thinking", "redacted_thinking"}
)
_URL_SCHEMES = ("https://", "http://", "data:", "file:")

PartReader = Callable[[dict[str, Any], BaseDir], MarkablePart | None]


def is_anthropic_style(messages: Iterable[Any]) -> bool:
    """Whether any content block is one only the Anthropic format has (an ``image`` with a
    ``source``, a ``document``, ``tool_use``, ``tool_result`` or thinking block)."""
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else ():
            kind = block.get("type") if isinstance(block, dict) else None
            if kind in _ANTHROPIC_BLOCKS or (kind == "image" and "source" in block):
                return True
    return False


def is_local_part(part: Any) -> bool:
    """Whether an OpenAI-style content part points at a local file (see the module docstring)."""
    if not isinstance(part, dict):
        return False
    kind = part.get("type")
    if kind in ("image", "file"):
        return "path" in part
    if kind == "image_url":
        value = part.get("image_url")
        url = value.get("url") if isinstance(value, dict) else value
        return isinstance(url, str) and url.startswith("file:")
    return False


def resolve_local_media(
    messages: list[dict[str, Any]],
    base_dir: BaseDir = None,
    image_limits: ImageLimits = WIRE_LIMITS,
) -> list[dict[str, Any]]:
    """OpenAI chat messages with each local media part read and replaced by its OpenAI part
    (images fitted to `image_limits`); every other part and message is left as it is."""
    resolved: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list) or not any(map(is_local_part, content)):
            resolved.append(message)
            continue
        parts: list[Any] = []
        for j, part in enumerate(content):
            try:
                parts.append(
                    _resolved(part, base_dir, image_limits) if is_local_part(part) else part
                )
            except ValueError as exc:  # MediaError included: it names the file
                raise ConversionError(f"[{i}].content[{j}]", str(exc)) from None
        resolved.append({**message, "content": parts})
    return resolved


def _resolved(part: dict[str, Any], base_dir: BaseDir, limits: ImageLimits) -> Any:
    media = openai_part(part, base_dir)
    control = _cache_control(part)
    if control is not None:
        media = replace(media, cache_control=control)
    if isinstance(media, Image):
        return media.openai_part(limits)
    assert isinstance(media, File)  # what openai_part makes of a local part
    return media.openai_part()


def openai_messages(messages: Iterable[Any], base_dir: BaseDir = None) -> list[Message]:
    """Messages from OpenAI chat messages; ``developer`` turns become system messages."""
    out: list[Message] = []
    for i, raw in enumerate(messages):
        at = f"[{i}]"
        if not isinstance(raw, dict):
            raise ConversionError(at, "a message must be an object")
        role = raw.get("role")
        if role == "tool":
            call_id = raw.get("tool_call_id")
            if not isinstance(call_id, str):
                raise ConversionError(at, "a tool message needs a string 'tool_call_id'")
            text = _text_content(raw.get("content"), at)
            try:
                control = _cache_control(raw)
            except ValueError as exc:
                raise ConversionError(at, str(exc)) from None
            out.append(Message("tool", [ToolResult(call_id, text, control)]))
            continue
        if role not in ("system", "developer", "user", "assistant"):
            raise ConversionError(at, f"unknown role {role!r}")
        parts = _parts(raw.get("content"), at, base_dir, openai_part)
        calls = raw.get("tool_calls") or []
        if not isinstance(calls, list):
            raise ConversionError(f"{at}.tool_calls", "must be a list")
        for j, call in enumerate(calls):
            parts.append(_openai_call(call, f"{at}.tool_calls[{j}]"))
        reasoning = raw.get("reasoning")
        if role == "assistant" and reasoning is not None:
            parts.append(_thinking(reasoning, f"{at}.reasoning"))
        out.append(Message("system" if role == "developer" else role, parts))
    return out


def openai_part(part: dict[str, Any], base_dir: BaseDir) -> MarkablePart:
    """One OpenAI content part (text, image_url, file, or a local media part) as a Part."""
    kind = part.get("type")
    if kind == "text":
        return Text(_string(part, "text"))
    if kind == "image_url":
        value = part.get("image_url")
        url = value.get("url") if isinstance(value, dict) else value
        if not isinstance(url, str) or not url.startswith(_URL_SCHEMES):
            raise ValueError("image_url.url must be an http(s), data: or file: URL")
        source = local_source(url, base_dir) if url.startswith("file:") else url
        return Image.load(source, detail=_detail(value), base_dir=base_folder(base_dir))
    if kind == "image" and "path" in part:
        source = local_source(_path(part), base_dir)
        detail = _optional(part, "detail")
        return Image.load(source, detail=detail, base_dir=base_folder(base_dir))
    if kind == "file" and "path" in part:
        source = local_source(_path(part), base_dir)
        filename = _optional(part, "filename")
        return File.load(source, filename=filename, base_dir=base_folder(base_dir))
    if kind == "file" and isinstance(part.get("file"), dict):
        spec = part["file"]
        if isinstance(spec.get("file_id"), str):
            return File(data=None, file_id=spec["file_id"])
        data = spec.get("file_data")
        if not isinstance(data, str) or not data.startswith("data:"):
            raise ValueError("file.file_data must be a base64 data: URL")
        return File.load(data, filename=_optional(spec, "filename"))
    raise ValueError(f"a {kind!r} part is not supported")


def anthropic_messages(
    messages: Iterable[Any],
    system: str | list[Any] | None = None,
    base_dir: BaseDir = None,
) -> list[Message]:
    """Messages from Anthropic Messages API ``messages`` and ``system``."""
    out: list[Message] = []
    if system is not None:
        try:
            out.append(Message("system", _system_parts(system)))
        except ValueError:
            raise ValueError("an Anthropic system prompt can only hold text blocks") from None
    for i, raw in enumerate(messages):
        at = f"[{i}]"
        role = raw.get("role") if isinstance(raw, dict) else None
        if role not in ("user", "assistant"):
            raise ConversionError(
                at, f"an Anthropic message's role is user or assistant, not {role!r}"
            )
        out.append(Message(role, _parts(raw.get("content"), at, base_dir, anthropic_part)))
    return out


def anthropic_part(block: dict[str, Any], base_dir: BaseDir) -> MarkablePart | None:
    """One Anthropic content block as a Part; None for a thinking block, which is dropped
    (OpenAI's format has no place for it, and it only matters to continue a Claude turn)."""
    kind = block.get("type")
    if kind == "text":
        return Text(_string(block, "text"))
    if kind in ("thinking", "redacted_thinking"):
        return None
    if kind == "tool_use":
        arguments = block.get("input", {})
        if not isinstance(arguments, dict):
            raise ValueError("tool_use.input must be an object")
        return ToolCall(_string(block, "id"), _string(block, "name"), arguments)
    if kind == "tool_result":
        # is_error has no OpenAI equivalent; the result's own text says what went wrong.
        content = _joined_text(block.get("content", ""))
        return ToolResult(_string(block, "tool_use_id"), content)
    if kind not in ("image", "document"):
        raise ValueError(f"a {kind!r} block is not supported")
    folder = base_folder(base_dir)
    if "path" in block:
        local = local_source(_path(block), base_dir)
        if kind == "image":
            return Image.load(local, base_dir=folder)
        return File.load(local, filename=_optional(block, "title"), base_dir=folder)
    source = block.get("source")
    if not isinstance(source, dict):
        raise ValueError(f"the {kind} block needs a 'source' (or a 'path')")
    source_type = source.get("type")
    if source_type == "base64":
        data_url = f"data:{_string(source, 'media_type')};base64,{_string(source, 'data')}"
        if kind == "image":
            return Image.load(data_url)
        return File.load(data_url, filename=_optional(block, "title"))
    if source_type == "text" and kind == "document":
        return Text(_string(source, "data"))
    if source_type == "url":
        url = _string(source, "url")
        local = local_source(url, base_dir) if url.startswith("file:") else url
        if kind == "image" and url.startswith(("https://", "http://", "file:")):
            return Image.load(local, base_dir=folder)
        if kind == "document" and url.startswith("file:"):
            return File.load(local, filename=_optional(block, "title"), base_dir=folder)
        raise ValueError(f"{kind} URLs are not fetched: give the file as base64 or a local path")
    raise ValueError(f"{kind}.source.type {source_type!r} is not supported")


def _system_parts(system: str | list[Any]) -> list[Part]:
    """An Anthropic system prompt as text: one part, or one per block when a block is a
    prompt-cache breakpoint (which must stay where it is)."""
    cached = isinstance(system, list) and any(
        isinstance(block, dict) and "cache_control" in block for block in system
    )
    if not cached:
        return [Text(_joined_text(system))]
    parts: list[Part] = []
    for block in system:
        if not isinstance(block, dict) or block.get("type") != "text":
            raise ValueError("not a text block")
        parts.append(Text(_string(block, "text"), _cache_control(block)))
    return parts


def _parts(content: Any, at: str, base_dir: BaseDir, read: PartReader) -> list[Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [Text(content)]
    if not isinstance(content, list):
        raise ConversionError(at, "content must be a string or a list of parts")
    parts = [_read(read, block, base_dir, f"{at}.content[{j}]") for j, block in enumerate(content)]
    return [part for part in parts if part is not None]


def _read(read: PartReader, block: Any, base_dir: BaseDir, at: str) -> MarkablePart | None:
    if not isinstance(block, dict):
        raise ConversionError(at, "a content part must be an object")
    try:
        part = read(block, base_dir)
        control = _cache_control(block)
    except ValueError as exc:  # MediaError included: it names the file
        raise ConversionError(at, str(exc)) from None
    # A prompt-cache breakpoint stays on the part it marks, to reach the Anthropic block.
    return part if part is None or control is None else replace(part, cache_control=control)


def _cache_control(obj: dict[str, Any]) -> dict[str, Any] | None:
    control = obj.get("cache_control")
    if control is not None and not isinstance(control, dict):
        raise ValueError('\'cache_control\' must be an object, e.g. {"type": "ephemeral"}')
    return control


def _thinking(value: Any, at: str) -> Thinking:
    """An assistant message's ``reasoning`` (as records hold it) as a Thinking part."""
    text = value.get("text") if isinstance(value, dict) else None
    parts = value.get("parts", []) if isinstance(value, dict) else None
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise ConversionError(at, 'must be {"text": ..., "parts": [...]}, as records hold it')
    if text is not None and not isinstance(text, str):
        raise ConversionError(at, "text must be a string or null")
    return Thinking(text, tuple(parts))


def _openai_call(call: Any, at: str) -> ToolCall:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(call.get("id"), str):
        raise ConversionError(at, "a tool call needs an 'id' and a 'function'")
    arguments = decoded_arguments(function.get("arguments"))
    if arguments is None or not isinstance(function.get("name"), str):
        raise ConversionError(at, "a tool call needs function.name and JSON object arguments")
    try:
        control = _cache_control(call)
    except ValueError as exc:
        raise ConversionError(at, str(exc)) from None
    return ToolCall(call["id"], function["name"], arguments, control)


def _joined_text(content: Any) -> str:
    """Text-only content (a string, or a list of text parts or blocks) as one string."""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for block in content if isinstance(content, list) else [content]:
        is_text = isinstance(block, dict) and block.get("type") == "text"
        text = block.get("text") if is_text else None
        if not isinstance(text, str):
            raise ValueError("this content can only hold text")
        texts.append(text)
    return "\n".join(texts)


def _text_content(content: Any, at: str) -> str:
    try:
        return "" if content is None else _joined_text(content)
    except ValueError as exc:
        raise ConversionError(at, str(exc)) from None


def _string(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ValueError(f"'{key}' must be a string")
    return value


def _optional(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"'{key}' must be a string")
    return value


def _detail(image_url: Any) -> str | None:
    return _optional(image_url, "detail") if isinstance(image_url, dict) else None


def _path(part: dict[str, Any]) -> str:
    path = part.get("path")
    if not isinstance(path, str) or not path:
        raise ValueError("'path' must be a non-empty string")
    return path
