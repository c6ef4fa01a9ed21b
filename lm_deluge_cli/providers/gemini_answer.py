"""A generateContent response read into a Completion: one answer per candidate, with its text,
thought summaries, function calls, the parts to send back (thought signatures) and finish
reason; the usage of the whole response."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lm_deluge_cli.providers.parts import count, finish_reason, tool_call
from lm_deluge_cli.results import Answer, Reasoning, ToolCall, Usage

__all__ = ["WIRE_FORMAT", "candidate_answer", "candidate_answers", "usage"]

# The wire format Gemini's reasoning parts are tagged with (and the only one sent them back).
WIRE_FORMAT = "gemini"

# Every way a candidate can be stopped by a content check reads as content_filter. LANGUAGE
# (an unsupported language) is no verdict on the content: it reads as "other".
_FILTERED = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII")
_FILTERED_IMAGE = ("IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION")
# finishReason → ours; the rest (MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL,
# TOO_MANY_TOOL_CALLS, OTHER, NO_IMAGE, …) read as "other".
_FINISH_REASONS: Mapping[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(_FILTERED + _FILTERED_IMAGE, "content_filter"),
}


def candidate_answers(data: Mapping[str, Any]) -> tuple[Answer, ...]:
    """One answer per candidate, in the order of their index (absent means 0, as proto3 JSON
    leaves zeros out). Raises KeyError, TypeError or AttributeError for a malformed body."""
    candidates = data["candidates"]
    if not isinstance(candidates, list) or not candidates:
        raise TypeError("candidates is not a list of at least one candidate")
    ordered = sorted(candidates, key=lambda candidate: candidate.get("index") or 0)
    return tuple(candidate_answer(candidate) for candidate in ordered)


def candidate_answer(candidate: Mapping[str, Any]) -> Answer:
    """One candidate's answer.

    Text parts are the text and thought parts (``thought: true``) the reasoning text;
    functionCall parts are tool calls, their id the call's own or ``call_<n>`` (n counting
    the candidate's calls from 0). When a part carries a thoughtSignature, the candidate's
    parts are kept whole, as ``{"format": "gemini", "parts": […]}``, to be sent back as they
    came: a signature must return in the part it came in.
    """
    content = candidate.get("content") or {}
    parts = content.get("parts") or []
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    signed = False
    for part in parts:
        if not isinstance(part, dict):
            raise TypeError("a content part is not an object")
        text = part.get("text")
        if text is not None and not isinstance(text, str):
            raise TypeError("part.text is not a string")
        signed = signed or "thoughtSignature" in part
        if "functionCall" in part:
            call = part["functionCall"]
            call_id = call.get("id") or f"call_{len(calls)}"
            calls.append(tool_call(call_id, call["name"], call.get("args")))
        elif text is not None:
            (thoughts if part.get("thought") else texts).append(text)
    kept = ({"format": WIRE_FORMAT, "parts": parts},) if signed else ()
    thought = "".join(thoughts) or None
    ours, own = finish_reason(candidate.get("finishReason"), _FINISH_REASONS)
    if ours == "stop" and calls:
        ours = "tool_calls"
    return Answer(
        text="".join(texts) if texts else None,
        tool_calls=tuple(calls),
        reasoning=Reasoning(thought, kept) if thought or kept else None,
        finish_reason=ours,
        provider_finish_reason=own,
        logprobs=_logprobs(candidate.get("logprobsResult")),
    )


def usage(raw: Any) -> Usage:
    """The usageMetadata of a response (every candidate's tokens together)."""
    if raw is None:
        return Usage()
    thoughts = count(raw.get("thoughtsTokenCount"))
    # Results of tools Gemini ran itself are prompt tokens too; thinking is billed as output
    # (OpenAI's completion_tokens counts it the same way).
    return Usage(
        input_tokens=count(raw.get("promptTokenCount")) + count(raw.get("toolUsePromptTokenCount")),
        output_tokens=count(raw.get("candidatesTokenCount")) + thoughts,
        cached_input_tokens=count(raw.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def _logprobs(raw: Any) -> list[dict[str, Any]] | None:
    """LogprobsResult in the shape OpenAI's logprobs.content uses, so records look alike."""
    if raw is None:
        return None
    top = raw.get("topCandidates") or []
    tokens: list[dict[str, Any]] = []
    for i, chosen in enumerate(raw.get("chosenCandidates") or []):
        alternatives = (top[i].get("candidates") or []) if i < len(top) else []
        tokens.append({**_token(chosen), "top_logprobs": [_token(a) for a in alternatives]})
    return tokens


def _token(candidate: Any) -> dict[str, Any]:
    # proto3 JSON leaves out zero values: a missing logProbability is a certain token.
    return {"token": candidate.get("token"), "logprob": candidate.get("logProbability", 0.0)}
