"""The mock model's tool use: whether an answer calls tools, which ones, and with what
arguments; and what a conversation has done with tools so far. Pure functions.

Every decision is deterministic, from the conversation:

- ``tool_choice`` none never calls; required (OpenAI's and Mistral's "required", Anthropic's
  "any", Gemini's ``ANY``, Cohere's ``REQUIRED``) or a named function always calls (that
  function, once).
- auto calls while the conversation has had fewer tool-calling assistant turns than its
  number of rounds: drawn from the first user message, from 1 to ``tool_rounds`` (none
  when ``tool_rounds`` is 0). With the default of 1, a conversation gets one tool call,
  then a text answer once the tool result is in.
- the tool is drawn from the first user message and the turn; about one answer in three
  calls a second tool beside it (the same one with other arguments when only one is
  offered), unless parallel calls are turned off or the function is forced.
- the arguments are a value of the tool's JSON Schema (`structured.instance`), made from
  the user's words, the tool and the turn.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson

from lm_deluge_cli.mock import structured
from lm_deluge_cli.mock.formats.chat import ChatRequest, ToolSpec, ToolUse
from lm_deluge_cli.mock.wire import content_text, count_text_tokens, prompt_text

__all__ = ["broken_arguments", "call_tokens", "plan_calls", "rounds", "tool_plan"]

# One answer in this many calls a second tool beside the first, when parallel calls are on.
_PARALLEL_ONE_IN = 3
# Arguments when a tool's schema says nothing about them.
_NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


def rounds(request: ChatRequest, tool_rounds: int) -> int:
    """How many tool-calling turns this conversation gets on auto: from 1 to `tool_rounds`,
    drawn from its first user message (0 when `tool_rounds` is 0)."""
    if tool_rounds <= 0:
        return 0
    return 1 + _draw(_first_user_text(request), "rounds") % tool_rounds


def plan_calls(
    request: ChatRequest, tool_rounds: int, call_id: str, variant: int = 0
) -> tuple[ToolUse, ...]:
    """The tool calls this answer makes (none: it answers in text). `call_id` is unique hex
    that each call's id extends; `variant` is the answer's index among several samples."""
    choice = request.tool_choice
    if not request.tools or choice.mode == "none" or request.schema_tool is not None:
        return ()
    offered = [tool for tool in request.tools if not choice.names or tool.name in choice.names]
    if not offered:
        return ()
    if choice.mode == "auto" and request.tool_turns >= rounds(request, tool_rounds):
        return ()
    seed = _first_user_text(request)
    turn = request.tool_turns
    draw = _draw(seed, f"turn {turn}")
    picked = [offered[draw % len(offered)]]
    if choice.parallel and len(choice.names) != 1 and (draw >> 20) % _PARALLEL_ONE_IN == 0:
        picked.append(offered[(draw + 1) % len(offered)])
    prompt = prompt_text(request.messages, ("user",))
    calls: list[ToolUse] = []
    for index, tool in enumerate(picked):
        salt = f"\x00{tool.name}\x00turn {turn}\x00call {index}"
        if variant:
            salt += f"\x00sample {variant}"
        arguments = _arguments(tool, prompt + salt)
        calls.append(ToolUse(f"{call_id}{index:02x}", tool.name, arguments))
    return tuple(calls)


def _arguments(tool: ToolSpec, prompt: str) -> str:
    """A JSON object that matches the tool's parameters, from `prompt`."""
    value = structured.instance(tool.parameters or _NO_PARAMETERS, prompt)
    return orjson.dumps(value if isinstance(value, dict) else {}).decode()


def call_tokens(calls: Iterable[ToolUse]) -> int:
    """The output tokens of tool calls: each function's name and arguments."""
    return sum(count_text_tokens(call.name) + count_text_tokens(call.arguments) for call in calls)


def tool_plan(calls: tuple[ToolUse, ...]) -> str:
    """What a model says before it calls tools (Anthropic's text, Cohere's tool_plan)."""
    names = [call.name for call in calls]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"I will call {listed} to answer this."


def broken_arguments(arguments: str) -> str:
    """The arguments as a model that stopped early writes them: an object never closed, so
    not JSON (``{"city": "Paris"`` for ``{"city": "Paris"}``)."""
    return arguments[:-1]


def _first_user_text(request: ChatRequest) -> str:
    for message in request.messages:
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def _draw(seed: str, salt: str) -> int:
    digest = hashlib.blake2b(f"tools\x00{salt}\x00{seed}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
