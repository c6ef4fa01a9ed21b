"""The job's prompt-cache breakpoints in a Messages body (Anthropic's and Bedrock's).

A breakpoint is a ``cache_control`` on a block: the request up to it (tools, then system, then
messages) is cached. The job may ask for one at the end of the system prompt, on the last
tool definition, both, or on the last block of the last user turn; those a line carries
itself are sent as they are, and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lm_deluge_cli.types import PromptCache

__all__ = ["MAX_CACHE_BREAKPOINTS", "add_breakpoints", "breakpoints"]

# The API refuses a request with more cache_control blocks than this.
MAX_CACHE_BREAKPOINTS = 4

Block = dict[str, Any]


def add_breakpoints(body: dict[str, Any], cache: PromptCache | None) -> None:
    """Add the job's breakpoints (`cache`) to `body`, in place.

    A block that already is a breakpoint is left as the line made it. When the line's own
    breakpoints leave no room under MAX_CACHE_BREAKPOINTS, the job's are skipped (the line's
    are what its author placed on purpose); with room for one of "system_and_tools", the
    system prompt's is placed, whose prefix holds the tools too. The API wants breakpoints
    of longer TTLs before shorter ones, so a job breakpoint after a line's 5-minute one is
    sent for 5 minutes, and one before a line's 1-hour one for an hour.
    """
    if cache is None or len(breakpoints(body)) >= MAX_CACHE_BREAKPOINTS:
        return
    targets: list[Block | None] = []
    if cache.placement in ("system", "system_and_tools"):
        targets.append(_system_end(body))
    if cache.placement in ("tools", "system_and_tools"):
        tools = body.get("tools")
        targets.append(tools[-1] if tools else None)
    if cache.placement == "last_user":
        targets.append(_last_user_block(body))
    for target in targets:
        if target is None or "cache_control" in target:
            continue
        if len(breakpoints(body)) >= MAX_CACHE_BREAKPOINTS:
            break
        target["cache_control"] = _control(_fitted_ttl(body, target, cache.ttl))


def breakpoints(body: dict[str, Any]) -> list[Block]:
    """The blocks of `body` that carry a ``cache_control``, in the order the API reads them."""
    return [block for block in _blocks(body) if block.get("cache_control") is not None]


def _blocks(body: dict[str, Any]) -> Iterator[Block]:
    """Every block that may carry a cache_control, in order: tools, system, messages (with the
    blocks inside a tool_result right after it)."""
    yield from _dicts(body.get("tools"))
    yield from _dicts(body.get("system"))
    for turn in _dicts(body.get("messages")):
        for block in _dicts(turn.get("content")):
            yield block
            yield from _dicts(block.get("content"))


def _dicts(value: Any) -> Iterator[Block]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def _system_end(body: dict[str, Any]) -> Block | None:
    """The system prompt's last block, a string system prompt made a one-block list first."""
    system = body.get("system")
    if isinstance(system, str) and system:
        body["system"] = [{"type": "text", "text": system}]
    blocks = body.get("system")
    return blocks[-1] if isinstance(blocks, list) and blocks else None


def _last_user_block(body: dict[str, Any]) -> Block | None:
    """The last block of the last user turn (tool results included), a string content made
    a one-block list first."""
    users = [turn for turn in body.get("messages") or () if turn.get("role") == "user"]
    if not users:
        return None
    turn = users[-1]
    if isinstance(turn.get("content"), str):
        turn["content"] = [{"type": "text", "text": turn["content"]}]
    content = turn.get("content")
    return content[-1] if isinstance(content, list) and content else None


def _fitted_ttl(body: dict[str, Any], target: Block, ttl: str) -> str:
    """`ttl`, or the one the line's own breakpoints around `target` leave it (longer TTLs
    must come first)."""
    blocks = list(_blocks(body))
    at = next(i for i, block in enumerate(blocks) if block is target)
    before = [_ttl(block) for block in blocks[:at] if block.get("cache_control") is not None]
    after = [_ttl(block) for block in blocks[at + 1 :] if block.get("cache_control") is not None]
    if ttl == "1h" and "5m" in before:
        return "5m"
    if ttl != "1h" and "1h" in after:
        return "1h"
    return ttl


def _ttl(block: Block) -> str:
    control = block["cache_control"]
    ttl = control.get("ttl") if isinstance(control, dict) else None
    return ttl if isinstance(ttl, str) else "5m"


def _control(ttl: str) -> dict[str, str]:
    # 5 minutes is the default: no ttl is sent for it. The 1-hour TTL is generally available
    # (no beta header), on Bedrock's InvokeModel too.
    return {"type": "ephemeral", "ttl": "1h"} if ttl == "1h" else {"type": "ephemeral"}
