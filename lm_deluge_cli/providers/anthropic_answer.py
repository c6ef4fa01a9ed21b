"""A Messages API response (Anthropic's, and Bedrock's for Claude) read into a Completion: its
text, tool calls, thinking (with the blocks the API wants back), refusal, stop reason and
usage with the prompt-cache counts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from lm_deluge_cli.errors import APIResponseValidationError
from lm_deluge_cli.providers.base import response_snippet
from lm_deluge_cli.providers.parts import PARSE_ERRORS, count, finish_reason, tool_call
from lm_deluge_cli.redaction import redact_keys
from lm_deluge_cli.results import Answer, Completion, Reasoning, ToolCall, Usage
from lm_deluge_cli.types import HttpResponse

__all__ = ["REFUSAL_TEXT", "SCHEMA_TOOL", "THINKING_BLOCKS", "message_answer", "parse_message"]

# The forced tool a json_schema may be asked through (see anthropic_messages): its input is
# the answer.
SCHEMA_TOOL = "respond"
# What a refusal says when the model stopped with stop_reason "refusal" before writing any
# text and the response explains nothing (stop_details.explanation).
REFUSAL_TEXT = "The model declined to answer."
# The blocks kept whole in Reasoning.parts: the API wants them back, unchanged, to continue.
THINKING_BLOCKS = frozenset({"thinking", "redacted_thinking"})
# stop_reason → ours. pause_turn (a long server-tool turn, paused) and values the API adds
# later read as "other"; the provider's own value is kept beside.
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "refusal",
}


def parse_message(
    response: HttpResponse, secret: str | None, what: str, *, wire_format: str
) -> Completion:
    """The completion in a 2xx Message body; `what` names it in a validation error, and
    `wire_format` ("anthropic_messages" or "bedrock_anthropic") tags the thinking blocks kept,
    so that only that format is sent them again."""
    try:
        data = orjson.loads(response.body)
        answer = message_answer(data, wire_format)
        usage = _usage(data.get("usage"))
    except PARSE_ERRORS as exc:
        snippet = response_snippet(response.body, secret, 120)
        message = f"unreadable {what} ({type(exc).__name__}: {exc}); body starts"
        raise APIResponseValidationError(
            f"{redact_keys(message, secret)} {snippet!r}", status_code=response.status
        ) from exc
    return Completion((answer,), usage)


def message_answer(data: Mapping[str, Any], wire_format: str) -> Answer:
    """The answer of one Message object. Raises KeyError or TypeError for a body that is not one.

    Text blocks are joined into the text, tool_use blocks are the tool calls, thinking is the
    reasoning text; thinking and redacted_thinking blocks are kept, in order and exactly as
    received, as ``{"format": wire_format, "block": …}`` parts. Other blocks (server tools'
    calls and results) only come with server tools, which are never sent.
    """
    content = data["content"]
    if not isinstance(content, list):
        raise TypeError("content is not a list")
    texts: list[str] = []
    calls: list[ToolCall] = []
    thoughts: list[str] = []
    kept: list[dict[str, Any]] = []
    schema_answers: list[Any] = []
    for block in content:
        kind = block["type"]
        if kind == "text":
            if not isinstance(block["text"], str):
                raise TypeError("a text block's text is not a string")
            texts.append(block["text"])
        elif kind == "tool_use" and block.get("name") == SCHEMA_TOOL:
            schema_answers.append(block.get("input"))
        elif kind == "tool_use":
            calls.append(tool_call(block["id"], block["name"], block.get("input")))
        elif kind in THINKING_BLOCKS:
            if kind == "thinking" and isinstance(block.get("thinking"), str):
                thoughts.append(block["thinking"])
            kept.append({"format": wire_format, "block": block})
    # Several thinking blocks (interleaved with tool calls) are separate thoughts.
    thought = "\n\n".join(t for t in thoughts if t) or None
    reasoning = Reasoning(thought, tuple(kept)) if thought or kept else None
    stop_reason = data.get("stop_reason")
    ours, own = finish_reason(stop_reason, _FINISH_REASONS)
    if schema_answers:
        # The forced json_schema tool's input is the answer, as JSON text; an answer cut at
        # max_tokens says so ("length"), or a half-written object would pass for a whole one.
        cut = stop_reason == "max_tokens"
        return Answer(
            text=orjson.dumps(schema_answers[0]).decode(),
            tool_calls=tuple(calls),
            reasoning=reasoning,
            finish_reason="length" if cut else "stop",
            provider_finish_reason=own,
        )
    # No text block at all reads as None; a refusal is an answer even without one.
    text = "".join(texts) if texts else None
    refusal = _refusal(data, text) if stop_reason == "refusal" else None
    return Answer(
        text=text,
        tool_calls=tuple(calls),
        reasoning=reasoning,
        refusal=refusal,
        finish_reason=ours,
        provider_finish_reason=own,
    )


def _refusal(data: Mapping[str, Any], text: str | None) -> str:
    """What a refusal says: the text written before the model stopped when there is some, else
    the response's explanation (stop_details), else REFUSAL_TEXT; with the policy category
    stop_details names, if any."""
    if text:
        return text
    details = data.get("stop_details")
    details = details if isinstance(details, Mapping) else {}
    explanation = details.get("explanation")
    said = explanation if isinstance(explanation, str) and explanation else REFUSAL_TEXT
    category = details.get("category")
    return f"{said} (category: {category})" if isinstance(category, str) and category else said


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    # input_tokens counts only what came after the last cache breakpoint: the tokens written
    # to the cache and those read from it are the rest of the input.
    read = count(raw.get("cache_read_input_tokens"))
    creation = raw.get("cache_creation")
    creation = creation if isinstance(creation, dict) else {}
    written_1h = count(creation.get("ephemeral_1h_input_tokens"))
    written = count(raw.get("cache_creation_input_tokens")) or (
        count(creation.get("ephemeral_5m_input_tokens")) + written_1h
    )
    details = raw.get("output_tokens_details")
    thinking = count(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return Usage(
        input_tokens=count(raw.get("input_tokens")) + written + read,
        output_tokens=count(raw.get("output_tokens")),
        cached_input_tokens=read,
        reasoning_tokens=thinking,
        cache_write_tokens=written,
        cache_write_1h_tokens=written_1h,
    )
