"""Keys a line may carry that a wire format does not take as they are: the ``reasoning`` an
assistant message brings back from a record (ours), and Anthropic's ``cache_control``
prompt-cache markers on messages, content parts and tools.

Adapters read what they can send back and strip the rest here before a request goes out.
This runs for every request, so what has nothing to strip is returned as it is, not copied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lm_deluge_cli.providers.parts import unsupported
from lm_deluge_cli.types import Message

__all__ = [
    "CACHE_CONTROL",
    "REASONING",
    "reasoning_parts",
    "wire_message",
    "wire_messages",
    "wire_tools",
]

# An assistant message's reasoning as a record holds it: {"text": ..., "parts": [...]}.
REASONING = "reasoning"
CACHE_CONTROL = "cache_control"


def wire_messages(messages: list[Message], *, keep_cache_control: bool) -> list[Message]:
    """`messages` without the ``reasoning`` key, and without ``cache_control`` unless kept
    (OpenAI-compatible proxies such as OpenRouter and LiteLLM read it). The same list when
    no message carries either."""
    if not any(_needs_cleaning(message, keep_cache_control) for message in messages):
        return messages
    return [wire_message(message, keep_cache_control=keep_cache_control) for message in messages]


def wire_message(message: Message, *, keep_cache_control: bool) -> Message:
    """One message as `wire_messages` sends it (the same dict when there is nothing to strip)."""
    if not _needs_cleaning(message, keep_cache_control):
        return message
    dropped = (REASONING,) if keep_cache_control else (REASONING, CACHE_CONTROL)
    out = {key: value for key, value in message.items() if key not in dropped}
    content = out.get("content")
    if not keep_cache_control and isinstance(content, list):
        out["content"] = [_without_cache_control(part) for part in content]
    return out


def wire_tools(tools: Any, *, keep_cache_control: bool) -> Any:
    """`tools` without ``cache_control`` (on a tool or its function) unless kept; the same
    list when none carries it. Anything but a list is returned for the adapter to judge."""
    if keep_cache_control or not isinstance(tools, list):
        return tools
    if not any(_tool_has_cache_control(tool) for tool in tools):
        return tools
    cleaned: list[Any] = []
    for tool in tools:
        if not _tool_has_cache_control(tool):
            cleaned.append(tool)
            continue
        out = {key: value for key, value in tool.items() if key != CACHE_CONTROL}
        if isinstance(out.get("function"), dict):
            out["function"] = _without_cache_control(out["function"])
        cleaned.append(out)
    return cleaned


def reasoning_parts(message: Message, wire_format: str) -> list[Mapping[str, Any]]:
    """The reasoning parts of `wire_format` an assistant message carries (a record's
    ``reasoning.parts``); parts of other formats are not for this provider and are left out.

    Raises (via `unsupported`) for a ``reasoning`` that is not what a record holds.
    """
    reasoning = message.get(REASONING)
    if reasoning is None:
        return []
    parts = reasoning.get("parts") if isinstance(reasoning, dict) else None
    if not isinstance(reasoning, dict) or not isinstance(parts, list | None):
        raise unsupported(
            "an assistant message's reasoning must be an object with a list of parts, "
            'as a record holds it: {"text": ..., "parts": [...]}'
        )
    return [p for p in parts or () if isinstance(p, dict) and p.get("format") == wire_format]


def _needs_cleaning(message: Message, keep_cache_control: bool) -> bool:
    if REASONING in message:
        return True
    if keep_cache_control:
        return False
    if CACHE_CONTROL in message:
        return True
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(part, dict) and CACHE_CONTROL in part for part in content
    )


def _without_cache_control(value: Any) -> Any:
    if not isinstance(value, dict) or CACHE_CONTROL not in value:
        return value
    return {key: item for key, item in value.items() if key != CACHE_CONTROL}


def _tool_has_cache_control(tool: Any) -> bool:
    if not isinstance(tool, dict):
        return False
    function = tool.get("function")
    return CACHE_CONTROL in tool or (isinstance(function, dict) and CACHE_CONTROL in function)
