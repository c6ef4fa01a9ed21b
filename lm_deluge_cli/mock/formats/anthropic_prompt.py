"""How a Messages body lays out its prompt (Anthropic's API and Bedrock's InvokeModel): its
client tools, and the prompt-cache breakpoints its ``cache_control`` fields set.

The prompt runs tools, then system, then messages, as the API documents; a breakpoint's
prefix is everything up to and including the block that carries it. Breakpoints sit on
tools, on system text blocks and on messages' content blocks; at most four per request,
``ttl`` "5m" (the default) or "1h", and an hour-long one never after a five-minute one: the
API answers 400 otherwise, in the words `read_breakpoints` returns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from lm_deluge_cli.mock.formats.chat import Breakpoint, ToolSpec, tool_spec, tool_tokens
from lm_deluge_cli.mock.wire import count_prompt_tokens

__all__ = ["MAX_BREAKPOINTS", "TTLS", "client_tool", "read_breakpoints"]

# The most cache_control blocks one request may carry.
MAX_BREAKPOINTS = 4
# ttl → seconds; a breakpoint without one lasts five minutes.
TTLS: Mapping[str, float] = {"5m": 300.0, "1h": 3600.0}
_ORDER = "Note that blocks are processed in the following order: `tools`, `system`, `messages`."


def client_tool(tool: Any) -> ToolSpec | None:
    """A client tool ``{"name", "description", "input_schema"}``, or None for anything else
    (a server tool, such as web search, has a ``type`` of its own)."""
    if not isinstance(tool, dict) or tool.get("type", "custom") != "custom":
        return None
    return tool_spec(tool.get("name"), tool.get("input_schema"), tool.get("description"))


def read_breakpoints(
    request: Mapping[str, Any], scope: str, model: str
) -> tuple[Breakpoint, ...] | str:
    """The breakpoints of a validated Messages body in prompt order, each with the digest and
    prompt tokens of its prefix (`scope` and `model` keep caches apart, as the API keeps
    each model's); or the API's words for why it refuses them."""
    raw_tools = request.get("tools")
    tools = raw_tools if isinstance(raw_tools, list) else []
    raw_system = request.get("system")
    system_blocks = raw_system if isinstance(raw_system, list) else []
    messages: list[dict[str, Any]] = request["messages"]
    marks = _marks(tools, system_blocks, messages)
    if isinstance(marks, str):
        return marks
    if not marks:
        return ()
    specs = [spec for tool in tools if (spec := client_tool(tool)) is not None]
    all_tools = tool_tokens(specs)
    system_texts = [block["text"] for block in system_blocks]
    system = "\n\n".join(system_texts) if system_blocks else raw_system
    digest = hashlib.blake2b(f"{scope}\x00{model}".encode(), digest_size=32)
    points: list[Breakpoint] = []
    for where, item in _walk(tools, system_blocks, raw_system, messages):
        digest.update(_canonical(item))
        ttl_s = marks.get(where)
        if ttl_s is None:
            continue
        kind, first, second = where
        if kind == "tools":
            tokens = tool_tokens(s for t in tools[: first + 1] if (s := client_tool(t)))
        elif kind == "system":
            joined = "\n\n".join(system_texts[: first + 1])
            tokens = all_tools + count_prompt_tokens([{"role": "system", "content": joined}])
        else:
            head = [{"role": "system", "content": system}] if system else []
            for message in messages[:first]:
                head.append({"role": message["role"], "content": message["content"]})
            message = messages[first]
            head.append({"role": message["role"], "content": message["content"][: second + 1]})
            tokens = all_tools + count_prompt_tokens(head)
        points.append(Breakpoint(digest.copy().digest(), tokens, ttl_s))
    return tuple(points)


_Where = tuple[str, int, int]


def _marks(
    tools: list[Any], system_blocks: list[Any], messages: list[dict[str, Any]]
) -> dict[_Where, float] | str:
    """Where the breakpoints are and their TTLs, or what is wrong with them."""
    found: list[tuple[_Where, float, str]] = []
    for where, block in _blocks(tools, system_blocks, messages):
        control = block.get("cache_control") if isinstance(block, dict) else None
        if control is None:
            continue
        path = _path(where) + ".cache_control"
        if not isinstance(control, dict) or control.get("type") != "ephemeral":
            return f"{path}.type: Input should be 'ephemeral'"
        ttl = control.get("ttl", "5m")
        if ttl not in TTLS:
            return f"{path}.ttl: Input should be '5m' or '1h'"
        found.append((where, TTLS[ttl], path))
    if len(found) > MAX_BREAKPOINTS:
        return (
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(found)}."
        )
    shortest = max(TTLS.values())
    for _, ttl_s, path in found:
        if ttl_s > shortest:
            return (
                f"{path}.ttl: a ttl='1h' cache_control block must not come after a ttl='5m' "
                f"cache_control block. {_ORDER}"
            )
        shortest = min(shortest, ttl_s)
    return {where: ttl_s for where, ttl_s, _ in found}


def _blocks(
    tools: list[Any], system_blocks: list[Any], messages: list[dict[str, Any]]
) -> list[tuple[_Where, Any]]:
    """Every block that may carry a breakpoint, in prompt order."""
    blocks: list[tuple[_Where, Any]] = [(("tools", k, 0), t) for k, t in enumerate(tools)]
    blocks += [(("system", k, 0), b) for k, b in enumerate(system_blocks)]
    for m, message in enumerate(messages):
        content = message["content"]
        if isinstance(content, list):
            blocks += [(("messages", m, j), block) for j, block in enumerate(content)]
    return blocks


def _walk(
    tools: list[Any], system_blocks: list[Any], raw_system: Any, messages: list[dict[str, Any]]
) -> list[tuple[_Where, Any]]:
    """Every piece of the prompt in order: what the digests cover."""
    pieces = _blocks(tools, system_blocks, [])
    if isinstance(raw_system, str):
        pieces.append((("system", -1, 0), {"system": raw_system}))
    for m, message in enumerate(messages):
        content = message["content"]
        pieces.append((("messages", m, -1), {"role": message["role"]}))
        if isinstance(content, str):
            pieces.append((("messages", m, -1), {"type": "text", "text": content}))
        else:
            pieces += [(("messages", m, j), block) for j, block in enumerate(content)]
    return pieces


def _canonical(item: Any) -> bytes:
    """A block as its digest reads it: without its cache_control, keys sorted."""
    if isinstance(item, dict):
        item = {key: value for key, value in item.items() if key != "cache_control"}
    return orjson.dumps(item, option=orjson.OPT_SORT_KEYS, default=str) + b"\x1e"


def _path(where: _Where) -> str:
    kind, first, second = where
    return f"messages.{first}.content.{second}" if kind == "messages" else f"{kind}.{first}"
