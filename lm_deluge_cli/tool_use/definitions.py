"""Tool definitions and tool choices as jobs and lines give them, checked and put in one shape.

Two shapes are accepted for a tool: OpenAI's function tool,
``{"type": "function", "function": {"name", "description", "parameters", "strict"}}``, and
the short ``{"name", "description", "parameters"}``. Both become OpenAI's, the shape the
engine carries (each adapter translates it for its provider). ``parameters`` is a JSON
Schema object (absent: no parameters); a ``cache_control`` marker (Anthropic's prompt
caching) is kept beside the definition.

A tool choice is ``auto``, ``none``, ``required``, the name of one of the tools, or
OpenAI's ``{"type": "function", "function": {"name": ...}}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from lm_deluge_cli.sampling import describe_value

__all__ = [
    "TOOL_CHOICES",
    "ToolDefinitionError",
    "check_tool_choice",
    "check_tools",
    "tool_names",
]

TOOL_CHOICES = ("auto", "none", "required")
# The names OpenAI and Anthropic both accept (Gemini also takes dots).
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SHORT_KEYS = frozenset({"name", "description", "parameters", "cache_control", "strict"})
_FUNCTION_KEYS = frozenset({"name", "description", "parameters", "strict"})
EMPTY_PARAMETERS: Mapping[str, Any] = {"type": "object", "properties": {}}


class ToolDefinitionError(ValueError):
    """A tool definition or tool choice that cannot be used; the message names the field."""


def check_tools(value: Any, where: str) -> list[dict[str, Any]]:
    """A list of tool definitions in OpenAI's shape; `where` names the list in errors
    (``'tools'``, ``job.toml: tools``). Raises ToolDefinitionError."""
    if not isinstance(value, list):
        raise ToolDefinitionError(f"{where} must be a list of tools, got {describe_value(value)}")
    tools = [_tool(item, f"{where}[{index}]") for index, item in enumerate(value)]
    seen: set[str] = set()
    for index, tool in enumerate(tools):
        name = tool["function"]["name"]
        if name in seen:
            raise ToolDefinitionError(f"{where}[{index}]: the name {name!r} is used twice")
        seen.add(name)
    return tools


def tool_names(tools: Sequence[Mapping[str, Any]]) -> list[str]:
    """The names of tools in OpenAI's shape."""
    return [tool["function"]["name"] for tool in tools]


def check_tool_choice(value: Any, names: Sequence[str] | None, where: str) -> str | dict[str, Any]:
    """A tool choice as OpenAI takes it: one of TOOL_CHOICES, or a named function. With
    `names` (the tools it goes with) a named tool must be one of them."""
    if isinstance(value, str) and value in TOOL_CHOICES:
        return value
    if isinstance(value, dict):
        function = value.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if value.get("type") != "function" or not isinstance(name, str):
            raise ToolDefinitionError(
                f'{where} must be {{"type": "function", "function": {{"name": ...}}}} '
                f"or a string, got {describe_value(value)}"
            )
    elif isinstance(value, str):
        name = value
    else:
        raise ToolDefinitionError(
            f"{where} must be one of {', '.join(TOOL_CHOICES)} or a tool's name, "
            f"got {describe_value(value)}"
        )
    if names is not None and name not in names:
        known = ", ".join(names) if names else "no tools are defined"
        raise ToolDefinitionError(
            f"{where} names {name!r}, which is not one of the tools ({known}); "
            f"use one of {', '.join(TOOL_CHOICES)} or a tool's name"
        )
    return {"type": "function", "function": {"name": name}}


def _tool(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ToolDefinitionError(f"{where} must be an object, got {describe_value(value)}")
    if value.get("type") == "function" or "function" in value:
        function = value.get("function")
        if value.get("type") != "function" or not isinstance(function, dict):
            raise ToolDefinitionError(
                f'{where}: a tool in OpenAI\'s shape needs "type": "function" and a '
                '"function" object'
            )
        extra = set(value) - {"type", "function", "cache_control"}
        if extra:
            raise ToolDefinitionError(f"{where}: unknown key {sorted(extra)[0]!r}")
        spec, inner = function, f"{where}.function"
        unknown = set(spec) - _FUNCTION_KEYS
    else:
        spec, inner = value, where
        unknown = set(spec) - _SHORT_KEYS
    if unknown:
        known = ", ".join(sorted(_FUNCTION_KEYS))
        raise ToolDefinitionError(
            f"{inner}: unknown key {sorted(unknown)[0]!r} (a tool has {known})"
        )
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ToolDefinitionError(
            f"{inner}.name must be 1 to 64 letters, digits, '_' or '-', got {describe_value(name)}"
        )
    function_out: dict[str, Any] = {"name": name}
    description = spec.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise ToolDefinitionError(
                f"{inner}.description must be a string, got {describe_value(description)}"
            )
        function_out["description"] = description
    parameters = spec.get("parameters")
    if parameters is None:
        parameters = dict(EMPTY_PARAMETERS)
    elif not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
        raise ToolDefinitionError(
            f"{inner}.parameters must be a JSON Schema of type object, "
            f"got {describe_value(parameters)}"
        )
    function_out["parameters"] = parameters
    strict = spec.get("strict")
    if strict is not None:
        if not isinstance(strict, bool):
            raise ToolDefinitionError(f"{inner}.strict must be true or false")
        function_out["strict"] = strict
    tool: dict[str, Any] = {"type": "function", "function": function_out}
    marker = value.get("cache_control")
    if marker is not None:
        if not isinstance(marker, dict):
            raise ToolDefinitionError(f"{where}.cache_control must be an object")
        tool["cache_control"] = marker
    return tool
