"""Reasoning in every chat format, when it is asked and only then: Anthropic's thinking
blocks, Gemini's thought parts and signatures, the Responses API's reasoning items,
``reasoning_content`` on Chat Completions, Mistral's and Cohere's thinking content."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from lm_deluge_cli.mock.wire import count_text_tokens
from tests.mock.chats import (
    PROVIDERS,
    TOOLS,
    answer,
    calls_of,
    make,
    output_tokens,
    request,
    text_of,
)

QUESTION = "Why is the sky blue?"


def thinking(provider: str, body: dict[str, Any], **how: Any) -> dict[str, Any]:
    """`body` asking to reason, in the provider's words."""
    if provider in ("openai", "mistral"):
        return {**body, "reasoning_effort": how.get("effort", "high")}
    if provider == "responses":
        reasoning = {"effort": "low", **({"summary": how["summary"]} if "summary" in how else {})}
        return {
            **body,
            "reasoning": reasoning,
            **({"include": how["include"]} if "include" in how else {}),
        }
    if provider in ("anthropic", "bedrock"):
        config = how.get("thinking", {"type": "enabled", "budget_tokens": 1024})
        return {**body, "thinking": config}
    if provider == "gemini":
        config = how.get("config", {"includeThoughts": True})
        return {**body, "generationConfig": {**body["generationConfig"], "thinkingConfig": config}}
    return {**body, "thinking": {"type": "enabled"}}


def reasoning_of(provider: str, data: Any) -> str | None:
    """The reasoning text where the provider documents it, or None."""
    if provider == "openai":
        thought: str | None = data["choices"][0]["message"].get("reasoning_content")
        return thought
    if provider == "mistral":
        content = data["choices"][0]["message"]["content"]
        if not isinstance(content, list):
            return None
        chunks = [c for c in content if c["type"] == "thinking"]
        return "".join(t["text"] for c in chunks for t in c["thinking"]) if chunks else None
    if provider == "responses":
        items = [i for i in data["output"] if i["type"] == "reasoning"]
        if not items:
            return None
        return "".join(part["text"] for part in items[0]["summary"])
    if provider in ("anthropic", "bedrock"):
        blocks = [b for b in data["content"] if b["type"] == "thinking"]
        return blocks[0]["thinking"] if blocks else None
    if provider == "gemini":
        parts = data["candidates"][0]["content"].get("parts", [])
        thoughts = [p["text"] for p in parts if p.get("thought")]
        return thoughts[0] if thoughts else None
    content = data["message"].get("content", [])
    thoughts = [c["thinking"] for c in content if c["type"] == "thinking"]
    return thoughts[0] if thoughts else None


def reasoning_tokens(provider: str, data: Any) -> int | None:
    """The reasoning tokens the usage reports (None: the format reports none)."""
    if provider == "openai":
        return int(data["usage"]["completion_tokens_details"]["reasoning_tokens"])
    if provider == "responses":
        return int(data["usage"]["output_tokens_details"]["reasoning_tokens"])
    if provider in ("anthropic", "bedrock"):
        details = data["usage"].get("output_tokens_details")
        return None if details is None else int(details["thinking_tokens"])
    if provider == "gemini":
        return int(data["usageMetadata"].get("thoughtsTokenCount", 0))
    return None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_reasoning_when_asked(provider: str) -> None:
    body = thinking(provider, request(provider, QUESTION), summary="auto")
    data = answer(make(), provider, body)
    thought = reasoning_of(provider, data)
    assert thought and QUESTION in thought
    text = text_of(provider, data)
    assert text.startswith("Mock reply")
    spent = count_text_tokens(thought.removeprefix("**Thinking it through**\n\n"))
    assert output_tokens(provider, data) == spent + count_text_tokens(text)
    if provider in ("openai", "responses", "anthropic", "bedrock", "gemini"):
        assert reasoning_tokens(provider, data) == spent
    # The same question, the same thinking.
    assert reasoning_of(provider, answer(make(), provider, body)) == thought


@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_reasoning_when_not_asked(provider: str) -> None:
    data = answer(make(), provider, request(provider, QUESTION))
    assert reasoning_of(provider, data) is None
    assert reasoning_tokens(provider, data) in (None, 0)
    if provider == "responses":
        assert [item["type"] for item in data["output"]] == ["message"]
    if provider == "mistral":
        assert isinstance(data["choices"][0]["message"]["content"], str)


@pytest.mark.parametrize(
    ("provider", "off"),
    [
        ("openai", {"effort": "none"}),
        ("mistral", {"effort": "none"}),
        ("gemini", {"config": {"thinkingBudget": 0, "includeThoughts": True}}),
        ("anthropic", {"thinking": {"type": "disabled"}}),
    ],
)
def test_reasoning_turned_off_is_none(provider: str, off: dict[str, Any]) -> None:
    data = answer(make(), provider, thinking(provider, request(provider, QUESTION), **off))
    assert reasoning_of(provider, data) is None


@pytest.mark.parametrize("provider", ["anthropic", "bedrock"])
def test_a_thinking_block_comes_first_with_a_base64_signature(provider: str) -> None:
    for config in ({"type": "enabled", "budget_tokens": 2048}, {"type": "adaptive"}):
        data = answer(
            make(), provider, thinking(provider, request(provider, QUESTION), thinking=config)
        )
        first, second = data["content"]
        assert (first["type"], second["type"]) == ("thinking", "text")
        assert set(first) == {"type", "thinking", "signature"}
        assert len(base64.b64decode(first["signature"], validate=True)) > 100
        assert data["stop_reason"] == "end_turn"


def test_omitted_thinking_keeps_only_the_signature() -> None:
    config = {"type": "adaptive", "display": "omitted"}
    data = answer(
        make(), "anthropic", thinking("anthropic", request("anthropic", QUESTION), thinking=config)
    )
    block = data["content"][0]
    assert block["thinking"] == "" and block["signature"]
    assert data["usage"]["output_tokens_details"]["thinking_tokens"] > 0


def test_thinking_counts_against_max_tokens() -> None:
    body = thinking("anthropic", request("anthropic", QUESTION, max_tokens=8))
    data = answer(make(), "anthropic", body)
    assert data["stop_reason"] == "max_tokens"
    assert [block["type"] for block in data["content"]] == ["thinking"]
    assert data["usage"]["output_tokens"] == 8


def test_anthropic_thinks_before_calling_tools() -> None:
    body = thinking("anthropic", request("anthropic", QUESTION, tools=TOOLS))
    data = answer(make(), "anthropic", body)
    kinds = [block["type"] for block in data["content"]]
    assert kinds[:2] == ["thinking", "text"] and set(kinds[2:]) == {"tool_use"}


def test_gemini_signs_the_first_function_call_part() -> None:
    body = thinking("gemini", request("gemini", QUESTION, tools=TOOLS))
    for prompt in [f"{QUESTION} {i}" for i in range(20)]:
        body["contents"][0]["parts"][0]["text"] = prompt
        data = answer(make(), "gemini", body)
        parts = data["candidates"][0]["content"]["parts"]
        assert parts[0]["thought"] is True and "thoughtSignature" not in parts[0]
        calls = [p for p in parts if "functionCall" in p]
        assert calls and "thoughtSignature" in calls[0]
        assert all("thoughtSignature" not in p for p in calls[1:])
        base64.b64decode(calls[0]["thoughtSignature"], validate=True)


def test_gemini_signs_the_last_part_of_a_text_answer() -> None:
    data = answer(make(), "gemini", thinking("gemini", request("gemini", QUESTION)))
    thought, text = data["candidates"][0]["content"]["parts"]
    assert thought["thought"] is True and "thoughtSignature" in text


def test_gemini_counts_thoughts_it_does_not_show() -> None:
    body = thinking("gemini", request("gemini", QUESTION), config={"thinkingBudget": 1024})
    data = answer(make(), "gemini", body)
    parts = data["candidates"][0]["content"]["parts"]
    assert not any(part.get("thought") for part in parts)
    meta = data["usageMetadata"]
    assert meta["thoughtsTokenCount"] > 0
    assert meta["totalTokenCount"] == (
        meta["promptTokenCount"] + meta["candidatesTokenCount"] + meta["thoughtsTokenCount"]
    )


def test_responses_summary_and_encrypted_content_only_when_asked() -> None:
    body = request("responses", QUESTION)
    bare = answer(make(), "responses", thinking("responses", body))
    item = bare["output"][0]
    assert item["type"] == "reasoning" and item["id"].startswith("rs_")
    assert item["summary"] == [] and "encrypted_content" not in item
    assert bare["usage"]["output_tokens_details"]["reasoning_tokens"] > 0
    full = thinking("responses", body, summary="detailed", include=["reasoning.encrypted_content"])
    data = answer(make(), "responses", full)
    item = data["output"][0]
    assert [part["type"] for part in item["summary"]] == ["summary_text"]
    assert item["encrypted_content"].startswith("gAAAAAB")
    assert data["reasoning"] == {"effort": "low", "summary": "detailed"}
    assert [i["type"] for i in data["output"]] == ["reasoning", "message"]


def test_responses_reasoning_then_function_calls() -> None:
    body = thinking("responses", request("responses", QUESTION, tools=TOOLS))
    data = answer(make(), "responses", body)
    kinds = [item["type"] for item in data["output"]]
    assert kinds[0] == "reasoning" and set(kinds[1:]) == {"function_call"}
    assert calls_of("responses", data)


def test_mistral_prompt_mode_reasoning_thinks() -> None:
    body = {**request("mistral", QUESTION), "prompt_mode": "reasoning"}
    assert reasoning_of("mistral", answer(make(), "mistral", body))
