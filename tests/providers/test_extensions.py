"""Stripping the keys a line carries that a wire format does not take: ``reasoning`` on an
assistant message, ``cache_control`` on messages, content parts and tools."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lm_deluge_cli.errors import APIError
from lm_deluge_cli.providers.extensions import (
    reasoning_parts,
    wire_message,
    wire_messages,
    wire_tools,
)

MARKER = {"type": "ephemeral", "ttl": "1h"}
PLAIN: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    {"role": "assistant", "content": "Hello."},
]


def marked() -> list[dict[str, Any]]:
    return [
        {
            "role": "system",
            "content": [{"type": "text", "text": "Be brief.", "cache_control": MARKER}],
        },
        {"role": "user", "content": "hi", "cache_control": MARKER},
        {
            "role": "assistant",
            "content": "Hello.",
            "reasoning": {"text": "greet", "parts": [{"format": "openai_responses", "item": {}}]},
        },
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
        },
    ]


@pytest.mark.parametrize("keep", [False, True])
def test_nothing_to_strip_is_not_copied(keep: bool) -> None:
    messages = copy.deepcopy(PLAIN)
    assert wire_messages(messages, keep_cache_control=keep) is messages
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert wire_tools(tools, keep_cache_control=keep) is tools


def test_everything_is_stripped_for_a_provider_that_takes_neither() -> None:
    messages = marked()
    before = copy.deepcopy(messages)
    sent = wire_messages(messages, keep_cache_control=False)
    assert sent == [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello."},
        messages[3],
    ]
    # Only the messages that carried something are new; the line is left as it was.
    assert sent[3] is messages[3]
    assert messages == before


def test_cache_control_is_kept_for_compatible_servers_and_reasoning_never() -> None:
    messages = marked()
    sent = wire_messages(messages, keep_cache_control=True)
    assert sent[0] is messages[0] and sent[1] is messages[1]
    assert sent[2] == {"role": "assistant", "content": "Hello."}


def test_a_message_with_nothing_to_strip_is_itself() -> None:
    message = {"role": "user", "content": "hi"}
    assert wire_message(message, keep_cache_control=False) is message


def test_cache_control_on_a_tool_or_its_function_is_stripped() -> None:
    tools = [
        {"type": "function", "function": {"name": "a"}, "cache_control": MARKER},
        {"type": "function", "function": {"name": "b", "cache_control": MARKER}},
        {"type": "function", "function": {"name": "c"}},
    ]
    before = copy.deepcopy(tools)
    sent = wire_tools(tools, keep_cache_control=False)
    assert sent == [
        {"type": "function", "function": {"name": "a"}},
        {"type": "function", "function": {"name": "b"}},
        {"type": "function", "function": {"name": "c"}},
    ]
    assert sent[2] is tools[2]
    assert tools == before
    assert wire_tools(tools, keep_cache_control=True) is tools


@pytest.mark.parametrize("tools", [None, "not a list", {"name": "f"}])
def test_tools_that_are_not_a_list_are_left_for_the_adapter(tools: Any) -> None:
    assert wire_tools(tools, keep_cache_control=False) is tools


def test_reasoning_parts_of_one_format() -> None:
    ours = {"format": "openai_responses", "item": {"id": "rs_1"}}
    theirs = {"format": "anthropic_messages", "type": "thinking"}
    message = {"role": "assistant", "reasoning": {"text": "t", "parts": [theirs, ours, "junk"]}}
    assert reasoning_parts(message, "openai_responses") == [ours]
    assert reasoning_parts(message, "mistral") == []
    assert reasoning_parts({"role": "assistant"}, "openai_responses") == []
    assert reasoning_parts({"reasoning": {"text": "t"}}, "openai_responses") == []


@pytest.mark.parametrize("reasoning", ["text", ["part"], {"parts": "part"}])
def test_a_reasoning_that_is_not_a_records_is_refused(reasoning: Any) -> None:
    with pytest.raises(APIError, match="reasoning"):
        reasoning_parts({"role": "assistant", "reasoning": reasoning}, "openai_responses")
