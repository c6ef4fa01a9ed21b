"""What every request of a job carries and how it runs: tools and tool choice, prompt
caching and its warm-up, identical lines shared or not, and agent loops."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lm_deluge_cli.config.checks import read_schema
from lm_deluge_cli.config.fields import (
    DEFAULT_MAX_ROUNDS,
    DEFAULT_PROMPT_CACHE_WARMUP_S,
    JobOverrides,
)
from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.tool_use.definitions import (
    ToolDefinitionError,
    check_tool_choice,
    check_tools,
    tool_names,
)
from lm_deluge_cli.types import PROMPT_CACHE_TTLS, PromptCache, RequestDefaults

__all__ = [
    "agent_fields",
    "prompt_cache_of",
    "prompt_cache_warmup",
    "request_defaults",
]


def request_defaults(
    data: Mapping[str, Any], where: str, flag_choice: str | None, base_dir: Path
) -> RequestDefaults:
    """The job's tools (``[[tools]]``, whose parameters may name a JSON file beside the job),
    tool choice and prompt cache key."""
    raw_tools = data.get("tools", [])
    if isinstance(raw_tools, list):
        raw_tools = [
            _tool_parameters_file(tool, base_dir, f"{where}: tools[{i}]")
            for i, tool in enumerate(raw_tools)
        ]
    try:
        tools = check_tools(raw_tools, f"{where}: tools")
        choice_label = "--tool-choice" if flag_choice is not None else f"{where}: tool_choice"
        raw_choice = flag_choice if flag_choice is not None else data.get("tool_choice")
        choice = None
        if raw_choice is not None:
            choice = check_tool_choice(raw_choice, tool_names(tools), choice_label)
    except ToolDefinitionError as exc:
        raise ConfigError(str(exc)) from None
    key = data.get("prompt_cache_key")
    if key is not None and (not isinstance(key, str) or not key):
        raise ConfigError(f"{where}: prompt_cache_key must be a non-empty string")
    return RequestDefaults(tuple(tools), choice, key)


def _tool_parameters_file(tool: Any, base_dir: Path, where: str) -> Any:
    """A [[tools]] table whose parameters name a .json file, with the file's schema in."""
    if not isinstance(tool, dict) or not isinstance(tool.get("parameters"), str):
        return tool
    return {
        **tool,
        "parameters": read_schema(base_dir / tool["parameters"], f"{where}.parameters"),
    }


def agent_fields(
    data: Mapping[str, Any], where: str, overrides: JobOverrides, base_dir: Path
) -> dict[str, Any]:
    """tools_module (a Python file: from the cwd as a flag, beside the job in the file) and
    max_rounds; max_rounds alone has nothing to run its rounds with."""
    module = overrides.tools_module
    label = "--tools-module"
    if module is None and data.get("tools_module") is not None:
        module, label = data["tools_module"], f"{where}: tools_module"
        if not isinstance(module, str) or not module:
            raise ConfigError(f"{label} must be the path of a Python file")
        module = str(base_dir / module)
    rounds = overrides.max_rounds
    rounds_label = "--max-rounds"
    if rounds is None and "max_rounds" in data:
        rounds, rounds_label = data["max_rounds"], f"{where}: max_rounds"
    if rounds is not None and module is None:
        raise ConfigError(
            f"{rounds_label} needs tools to run: give tools_module (a Python file whose "
            "functions answer the tool calls)"
        )
    if module is not None:
        path = Path(module).expanduser().absolute()
        if path.suffix != ".py" or not path.is_file():
            raise ConfigError(f"{label} {path} is not a Python file")
        module = str(path)
    return {"tools_module": module, "max_rounds": DEFAULT_MAX_ROUNDS if rounds is None else rounds}


def prompt_cache_warmup(
    data: Mapping[str, Any], overrides: JobOverrides, prompt_cache: PromptCache | None
) -> Any:
    """Seconds of prompt-cache warm-up: the flag's, else the job's, else the default (none
    without prompt caching)."""
    if overrides.prompt_cache_warmup is not None:
        return overrides.prompt_cache_warmup
    value = data.get("prompt_cache_warmup")
    if value is None:
        return DEFAULT_PROMPT_CACHE_WARMUP_S if prompt_cache is not None else 0.0
    return value


def prompt_cache_of(
    data: Mapping[str, Any], where: str, overrides: JobOverrides
) -> PromptCache | None:
    """Where the job's prompt-cache breakpoints go, and their TTL (None: nowhere)."""
    placement = overrides.prompt_cache or data.get("prompt_cache")
    ttl = overrides.prompt_cache_ttl or data.get("prompt_cache_ttl") or PROMPT_CACHE_TTLS[0]
    if ttl not in PROMPT_CACHE_TTLS:
        label = "--prompt-cache-ttl" if overrides.prompt_cache_ttl else f"{where}: prompt_cache_ttl"
        raise ConfigError(f"{label} must be one of {', '.join(PROMPT_CACHE_TTLS)}, got {ttl!r}")
    if placement is None or placement == "none":
        return None
    try:
        return PromptCache(placement, ttl)
    except ValueError as exc:
        label = "--prompt-cache" if overrides.prompt_cache else f"{where}: prompt_cache"
        raise ConfigError(f"{label} {exc}") from None
