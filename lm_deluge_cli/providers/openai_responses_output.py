"""A finished Responses API response read into one Answer: the text (and logprobs) of its
``message`` items, their refusals, its ``function_call`` items, its ``reasoning`` items (their
summaries as text, each item kept whole to be sent back), and why it stopped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lm_deluge_cli.providers.parts import openai_usage, tool_call
from lm_deluge_cli.results import Answer, Reasoning, ToolCall, Usage

__all__ = ["FORMAT", "responses_answer", "responses_usage"]

# The tag of the reasoning parts this format reads and is sent back.
FORMAT = "openai_responses"
# Summaries are paragraphs of their own (each opens with a bold title): kept apart.
_SUMMARY_SEPARATOR = "\n\n"
# incomplete_details.reason → ours. An incomplete response without a reason ran out of
# max_output_tokens: the only reason the API documented before content_filter.
_INCOMPLETE: Mapping[str, str] = {"max_output_tokens": "length", "content_filter": "content_filter"}


def responses_answer(data: Mapping[str, Any]) -> Answer:
    """The answer in a completed or incomplete response.

    `provider_finish_reason` is the response's ``status`` ("completed"), or for an incomplete
    one the reason ``incomplete_details`` gives ("max_output_tokens", "content_filter";
    "incomplete" when it gives none): the status alone would not say why.
    """
    output = data["output"]
    if not isinstance(output, list):
        raise TypeError("output is not a list")
    texts: list[str] = []
    refusals: list[str] = []
    logprobs: list[Any] | None = None
    calls: list[ToolCall] = []
    thoughts: list[str] = []
    parts: list[Mapping[str, Any]] = []
    for item in output:
        kind = item["type"]
        if kind == "message":
            for part in item.get("content") or ():
                logprobs = _read_part(part, texts, refusals, logprobs)
        elif kind == "function_call":
            calls.append(tool_call(item["call_id"], item["name"], item.get("arguments")))
        elif kind == "reasoning":
            thoughts.extend(_reasoning_texts(item))
            # Whole, encrypted_content included: a request with store false continues from it.
            parts.append({"format": FORMAT, "item": item})
        # Other items are built-in tools' calls, and requests only ever send function tools.
    text = "".join(texts) if texts else None
    refusal = "".join(refusals) if refusals else None
    ours, own = _finish_reason(data, text, calls, refusal)
    reasoning = None
    if parts:
        reasoning = Reasoning(_SUMMARY_SEPARATOR.join(thoughts) or None, tuple(parts))
    return Answer(
        text=text,
        tool_calls=tuple(calls),
        reasoning=reasoning,
        refusal=refusal,
        finish_reason=ours,
        provider_finish_reason=own,
        logprobs=logprobs,
    )


def responses_usage(raw: Any) -> Usage:
    """The response's usage; output_tokens counts the reasoning tokens, as Chat Completions'
    completion_tokens does."""
    return openai_usage(raw, "input_tokens", "output_tokens")


def _read_part(
    part: Any, texts: list[str], refusals: list[str], logprobs: list[Any] | None
) -> list[Any] | None:
    """Adds a message content part's text or refusal; returns the logprobs so far."""
    kind = part["type"]
    if kind == "refusal":
        refusal = part["refusal"]
        if not isinstance(refusal, str):
            raise TypeError("a refusal part's refusal is not a string")
        refusals.append(refusal)
    elif kind == "output_text":
        text = part["text"]
        if not isinstance(text, str):
            raise TypeError("an output_text part's text is not a string")
        texts.append(text)
        tokens = part.get("logprobs")
        # Already in the shape of Chat Completions' logprobs.content; [] when not asked for.
        if tokens:
            if not isinstance(tokens, list):
                raise TypeError("an output_text part's logprobs is not a list")
            logprobs = (logprobs or []) + tokens
    return logprobs


def _reasoning_texts(item: Mapping[str, Any]) -> list[str]:
    """A reasoning item's summary texts; its raw reasoning text (``content``, which only
    open-weight models behind compatible servers show) when it has no summary."""
    for field, kind in (("summary", "summary_text"), ("content", "reasoning_text")):
        texts: list[str] = []
        for entry in item.get(field) or ():
            if entry.get("type") == kind:
                if not isinstance(entry.get("text"), str):
                    raise TypeError(f"a {kind} entry's text is not a string")
                texts.append(entry["text"])
        if texts:
            return texts
    return []


def _finish_reason(
    data: Mapping[str, Any], text: str | None, calls: list[ToolCall], refusal: str | None
) -> tuple[str | None, str | None]:
    status = data.get("status")
    if status == "incomplete":
        reason = (data.get("incomplete_details") or {}).get("reason")
        if not isinstance(reason, str) or not reason:
            return "length", "incomplete"
        return _INCOMPLETE.get(reason, "other"), reason
    own = status if isinstance(status, str) else None
    if calls:
        return "tool_calls", own
    if refusal and not text:
        return "refusal", own
    return "stop", own
