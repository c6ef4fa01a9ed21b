"""A Messages API response (Anthropic's, and Bedrock's for Claude) read into a Completion."""

from __future__ import annotations

from typing import Any

import orjson

from lm_deluge_cli.errors import APIResponseValidationError
from lm_deluge_cli.providers.base import redact, response_snippet
from lm_deluge_cli.types import Completion, HttpResponse, Usage

__all__ = ["SCHEMA_TOOL", "parse_message"]

# The forced tool a json_schema may be asked through (see anthropic_messages): its input is
# the answer.
SCHEMA_TOOL = "respond"
# stop_reason → the OpenAI finish_reason our records use; others pass through as they are.
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# ValueError covers orjson.JSONDecodeError, and with OverflowError int() of "abc" or 1e400.
_RESPONSE_ERRORS = (KeyError, IndexError, TypeError, AttributeError, ValueError, OverflowError)


def parse_message(response: HttpResponse, secret: str | None, what: str) -> Completion:
    """The completion in a 2xx Message body; `what` names it in a validation error."""
    try:
        data = orjson.loads(response.body)
        content = data["content"]
        if not isinstance(content, list):
            raise TypeError("content is not a list")
        texts = [block["text"] for block in content if block["type"] == "text"]
        if not all(isinstance(text, str) for text in texts):
            raise TypeError("a text block's text is not a string")
        answers = [
            block["input"]
            for block in content
            if block["type"] == "tool_use" and block.get("name") == SCHEMA_TOOL
        ]
        usage = _usage(data.get("usage"))
    except _RESPONSE_ERRORS as exc:
        snippet = response_snippet(response.body, secret, 120)
        message = f"unreadable {what} ({type(exc).__name__}: {exc}); body starts"
        raise APIResponseValidationError(
            f"{redact(message, secret)} {snippet!r}", status_code=response.status
        ) from exc
    if answers:
        # The forced json_schema tool's input is the answer, as JSON text; an answer cut at
        # max_tokens says so ("length"), or a half-written object would pass for a whole one.
        cut = data.get("stop_reason") == "max_tokens"
        return Completion.of(orjson.dumps(answers[0]).decode(), "length" if cut else "stop", usage)
    return Completion.of(
        # Thinking and tool_use blocks are not text; no text block at all reads as None.
        text="".join(texts) if texts else None,
        finish_reason=_finish_reason(data.get("stop_reason")),
        usage=usage,
    )


def _finish_reason(stop_reason: Any) -> str | None:
    if not isinstance(stop_reason, str):
        return None
    return _FINISH_REASONS.get(stop_reason, stop_reason)


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    # input_tokens counts only what came after the last cache breakpoint.
    read = int(raw.get("cache_read_input_tokens") or 0)
    fresh = int(raw.get("input_tokens") or 0) + int(raw.get("cache_creation_input_tokens") or 0)
    return Usage(fresh + read, int(raw.get("output_tokens") or 0), cached_input_tokens=read)
