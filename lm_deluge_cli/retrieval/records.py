"""The records embed and rerank write: `run`'s fields around each command's own.

Field order: id, line, status, model, the command's own fields (``embedding`` and
``dimensions``; ``index`` and ``relevance_score``; ``results``), usage, cost_usd, attempts,
latency_s, cached, deduplicated, error, metadata. Rerank's sorted output adds ``rank`` first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lm_deluge_cli.errors import APIError
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.io.records import INVALID_INPUT, Record

__all__ = ["bad_line_record", "error_fields", "retrieval_record"]


def error_fields(error: APIError) -> dict[str, Any]:
    """A record's ``error`` for a request that failed."""
    return {"type": error.type, "message": error.message, "status_code": error.status_code}


def retrieval_record(
    id: str | int | None,
    line: int,
    model: str | None,
    own: Mapping[str, Any],
    *,
    input_tokens: int | None = None,
    estimated: bool = False,
    cost_usd: float | None = None,
    attempts: int = 0,
    latency_s: float = 0.0,
    cached: bool = False,
    deduplicated: bool = False,
    error: dict[str, Any] | None = None,
    metadata: Any = None,
) -> Record:
    """One record; `error` (type, message, status_code) makes it an error record, and
    `estimated` marks token counts that are ours, not the provider's."""
    usage: dict[str, Any] | None = None
    if input_tokens is not None:
        usage = {"input_tokens": input_tokens}
        if estimated:
            usage["estimated"] = True
    record: Record = {"id": id, "line": line, "status": "error" if error else "ok", "model": model}
    record.update(own)
    record.update(
        usage=usage,
        cost_usd=cost_usd,
        attempts=attempts,
        latency_s=round(latency_s, 3),
        cached=cached,
        deduplicated=deduplicated,
        error=error,
        metadata=metadata,
    )
    return record


def bad_line_record(bad: BadLine, own: Mapping[str, Any]) -> Record:
    """The record of an input line that cannot be used (`own`: the command's null fields)."""
    error = {"type": INVALID_INPUT, "message": bad.reason, "status_code": None}
    return retrieval_record(bad.id, bad.line, None, own, error=error)
