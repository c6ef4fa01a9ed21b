"""Build the result records written to the output file, one JSON object per line.

Every record has the keys of RECORD_FIELDS in that order (``logprobs`` follows
``finish_reason`` only when the provider returned some).
"""

from __future__ import annotations

from typing import Any

import orjson

from lm_deluge_cli.errors import APIError
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.types import Completion, Prompt, Usage

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_INPUT",
    "RECORD_FIELDS",
    "Record",
    "api_error_record",
    "bad_line_record",
    "encode",
    "error_record",
    "ok_record",
]

Record = dict[str, Any]

RECORD_FIELDS = (
    "id",
    "line",
    "status",
    "model",
    "completion",
    "finish_reason",
    "usage",
    "cost_usd",
    "attempts",
    "latency_s",
    "cached",
    "deduplicated",
    "error",
    "metadata",
)

# The error type of records for input lines that could not be run.
INVALID_INPUT = "invalid_input"
# The error type for an exception that is not one of ours (a bug, most likely).
INTERNAL_ERROR = "internal_error"


def ok_record(
    prompt: Prompt,
    completion: Completion,
    *,
    model: str,
    attempts: int,
    latency_s: float,
    cost_usd: float | None = None,
    cached: bool = False,
    deduplicated: bool = False,
) -> Record:
    """The record for a prompt that got a completion: from the provider, from the cache
    (`cached`), or from an identical line's request (`deduplicated`)."""
    record: Record = {
        "id": prompt.id,
        "line": prompt.line,
        "status": "ok",
        "model": model,
        "completion": completion.text,
        "finish_reason": completion.finish_reason,
    }
    if completion.logprobs is not None:
        record["logprobs"] = completion.logprobs
    record.update(
        usage=completion.usage.to_record(),
        cost_usd=cost_usd,
        attempts=attempts,
        latency_s=round(latency_s, 3),
        cached=cached,
        deduplicated=deduplicated,
        error=None,
        metadata=prompt.metadata,
    )
    return record


def error_record(
    prompt: Prompt,
    *,
    model: str | None,
    error_type: str,
    message: str,
    status_code: int | None = None,
    attempts: int = 0,
    latency_s: float = 0.0,
    usage: Usage | None = None,
    cost_usd: float | None = None,
) -> Record:
    """The record for a prompt that ended in an error.

    `error_type` is a short stable name: an APIError's ``type`` (``rate_limit``,
    ``bad_request`` …) or the engine's own (``config_error``, ``model_unavailable``).
    """
    return {
        "id": prompt.id,
        "line": prompt.line,
        "status": "error",
        "model": model,
        "completion": None,
        "finish_reason": None,
        "usage": usage.to_record() if usage is not None else None,
        "cost_usd": cost_usd,
        "attempts": attempts,
        "latency_s": round(latency_s, 3),
        "cached": False,
        "deduplicated": False,
        "error": {"type": error_type, "message": message, "status_code": status_code},
        "metadata": prompt.metadata,
    }


def api_error_record(
    prompt: Prompt,
    error: BaseException,
    *,
    model: str | None,
    attempts: int,
    latency_s: float = 0.0,
) -> Record:
    """`error_record` for an exception: an APIError gives its type and status code;
    anything else becomes ``internal_error`` with the exception's class name."""
    if isinstance(error, APIError):
        return error_record(
            prompt,
            model=model,
            error_type=error.type,
            message=error.message,
            status_code=error.status_code,
            attempts=attempts,
            latency_s=latency_s,
        )
    return error_record(
        prompt,
        model=model,
        error_type=INTERNAL_ERROR,
        message=f"{type(error).__name__}: {error}",
        attempts=attempts,
        latency_s=latency_s,
    )


def bad_line_record(bad: BadLine) -> Record:
    """The record for an input line that cannot be run (its reason names the line)."""
    return {
        "id": bad.id,
        "line": bad.line,
        "status": "error",
        "model": None,
        "completion": None,
        "finish_reason": None,
        "usage": None,
        "cost_usd": None,
        "attempts": 0,
        "latency_s": 0.0,
        "cached": False,
        "deduplicated": False,
        "error": {"type": INVALID_INPUT, "message": bad.reason, "status_code": None},
        "metadata": None,
    }


def encode(record: Record) -> bytes:
    """One output line: compact JSON and a newline."""
    try:
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        # A provider can send a lone UTF-16 surrogate (via a JSON \\ud800 escape), which
        # UTF-8 cannot hold; replace it rather than lose the whole record.
        return orjson.dumps(_scrub(record), option=orjson.OPT_APPEND_NEWLINE)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value
