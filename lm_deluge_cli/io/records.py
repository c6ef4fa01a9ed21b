"""The output's JSON: `Result` values in, one JSON object per line out, and back.

This module alone knows the record's shape. Every record has the keys of RECORD_FIELDS in
that order; an ok record also carries, where there are some, the answer's parts:

* ``provider_finish_reason`` (after ``finish_reason``): the provider's own value;
* ``tool_calls``: ``[{"id", "name", "arguments"}]``, where ``arguments`` is the decoded
  object; arguments that are not a JSON object are kept as sent under ``arguments_raw``,
  with ``arguments`` null and ``arguments_error`` saying what is wrong;
* ``reasoning``: ``{"text", "parts"}``, the reasoning text and the opaque parts a provider
  needs to continue the conversation;
* ``refusal``: the model's refusal message;
* ``logprobs``: the tokens' log probabilities, when asked for;
* ``completions`` and ``samples``: with several samples, every sample's text, and every
  sample's answer as an object of the fields above (the top-level ones are the first's).

Absent means none. A tool's own fields (extract's ``data`` …) follow ``metadata``; so do an
agent loop's ``rounds`` (what each round's result says: model, status, finish reason, how
many tools it called, usage, cost, cache use, attempts) and ``transcript``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from lm_deluge_cli.errors import APIError
from lm_deluge_cli.io.parse import BadLine
from lm_deluge_cli.results import Answer, Completion, ErrorInfo, Reasoning, Result, ToolCall, Usage
from lm_deluge_cli.types import Prompt

__all__ = [
    "EMPTY_ANSWER",
    "INTERNAL_ERROR",
    "INVALID_INPUT",
    "RECORD_FIELDS",
    "Record",
    "answer_from_json",
    "answer_json",
    "api_error_result",
    "bad_line_result",
    "encode",
    "error_result",
    "from_json",
    "has_answer",
    "ok_result",
    "to_json",
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
# The error type of a line whose answers held nothing: no text, tool call or refusal.
EMPTY_ANSWER = "empty_answer"
# What an arguments_error says of tool-call arguments that were not a JSON object.
ARGUMENTS_NOT_JSON = "not a JSON object"


def ok_result(
    prompt: Prompt,
    completion: Completion,
    *,
    model: str,
    attempts: int,
    latency_s: float,
    cost_usd: float | None = None,
    cached: bool = False,
    deduplicated: bool = False,
) -> Result:
    """The result of a prompt that got its answers: from the provider, from the cache
    (`cached`), or from an identical line's request (`deduplicated`)."""
    return Result.build(
        prompt.id,
        prompt.line,
        "ok",
        model,
        completion.answers,
        completion.usage,
        cost_usd,
        attempts,
        round(latency_s, 3),
        cached,
        deduplicated,
        None,  # error
        prompt.metadata,
        {},  # fields
    )


def error_result(
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
) -> Result:
    """The result of a prompt that ended in an error.

    `error_type` is a short stable name: an APIError's ``type`` (``rate_limit``,
    ``bad_request`` …) or the engine's own (``config_error``, ``model_unavailable``).
    """
    return Result(
        id=prompt.id,
        line=prompt.line,
        status="error",
        model=model,
        usage=usage,
        cost_usd=cost_usd,
        attempts=attempts,
        latency_s=round(latency_s, 3),
        error=ErrorInfo(error_type, message, status_code),
        metadata=prompt.metadata,
    )


def api_error_result(
    prompt: Prompt,
    error: BaseException,
    *,
    model: str | None,
    attempts: int,
    latency_s: float = 0.0,
) -> Result:
    """`error_result` for an exception: an APIError gives its type and status code;
    anything else becomes ``internal_error`` with the exception's class name."""
    if isinstance(error, APIError):
        return error_result(
            prompt,
            model=model,
            error_type=error.type,
            message=error.message,
            status_code=error.status_code,
            attempts=attempts,
            latency_s=latency_s,
        )
    return error_result(
        prompt,
        model=model,
        error_type=INTERNAL_ERROR,
        message=f"{type(error).__name__}: {error}",
        attempts=attempts,
        latency_s=latency_s,
    )


def bad_line_result(bad: BadLine) -> Result:
    """The result of an input line that cannot be run (its reason names the line)."""
    return Result(
        id=bad.id,
        line=bad.line,
        status="error",
        model=None,
        error=ErrorInfo(INVALID_INPUT, bad.reason),
    )


def to_json(result: Result) -> Record:
    """The record of a result, as written to the output."""
    # Key by key rather than through update(): this runs for every line.
    record: Record = {"id": result.id, "line": result.line, "status": result.status}
    record["model"] = result.model
    if result.answers:
        first = result.answers[0]
        record["completion"] = first.text
        record["finish_reason"] = first.finish_reason
        _answer_parts(first, record)
        if len(result.answers) > 1:
            record["completions"] = [answer.text for answer in result.answers]
            record["samples"] = [answer_json(answer) for answer in result.answers]
    else:
        record["completion"] = record["finish_reason"] = None
    usage = result.usage
    record["usage"] = usage.to_record() if usage is not None else None
    record["cost_usd"] = result.cost_usd
    record["attempts"] = result.attempts
    record["latency_s"] = result.latency_s
    record["cached"] = result.cached
    record["deduplicated"] = result.deduplicated
    error = result.error
    record["error"] = (
        None
        if error is None
        else {"type": error.type, "message": error.message, "status_code": error.status_code}
    )
    record["metadata"] = result.metadata
    if result.fields:
        record.update(result.fields)
        rounds = result.fields.get("rounds")
        if rounds and isinstance(rounds[0], Result):
            record["rounds"] = [_round_json(round_) for round_ in rounds]
    return record


def _round_json(result: Result) -> Record:
    """What an agent loop's record says of one round."""
    return {
        "model": result.model,
        "status": result.status,
        "finish_reason": result.finish_reason,
        "tool_calls": len(result.tool_calls),
        "usage": result.usage.to_record() if result.usage is not None else None,
        "cost_usd": result.cost_usd,
        "cached": result.cached,
        "attempts": result.attempts,
    }


def answer_json(answer: Answer) -> Record:
    """One answer as an object: ``completion``, ``finish_reason`` and the parts it has."""
    record: Record = {"completion": answer.text, "finish_reason": answer.finish_reason}
    _answer_parts(answer, record)
    return record


def _answer_parts(answer: Answer, record: Record) -> None:
    if answer.provider_finish_reason is not None:
        record["provider_finish_reason"] = answer.provider_finish_reason
    if answer.tool_calls:
        record["tool_calls"] = [_tool_call_json(call) for call in answer.tool_calls]
    if answer.reasoning is not None:
        reasoning = answer.reasoning
        record["reasoning"] = {"text": reasoning.text, "parts": list(reasoning.parts)}
    if answer.refusal is not None:
        record["refusal"] = answer.refusal
    if answer.logprobs is not None:
        record["logprobs"] = answer.logprobs


def _tool_call_json(call: ToolCall) -> Record:
    out: Record = {"id": call.id, "name": call.name, "arguments": call.arguments}
    if call.arguments is None:
        out["arguments_raw"] = call.arguments_raw
        out["arguments_error"] = ARGUMENTS_NOT_JSON
    return out


def answer_from_json(record: Mapping[str, Any]) -> Answer:
    """The inverse of `answer_json` (also reads the top level of a record). Raises
    ValueError (or TypeError, KeyError) for what `answer_json` did not write."""
    text = record.get("completion")
    if text is not None and not isinstance(text, str):
        raise ValueError("completion is not a string")
    calls = record.get("tool_calls")
    reasoning = record.get("reasoning")
    refusal = record.get("refusal")
    if refusal is not None and not isinstance(refusal, str):
        raise ValueError("refusal is not a string")
    return Answer.build(
        text,
        tuple(_tool_call_from_json(call) for call in calls) if calls else (),
        None
        if reasoning is None
        else Reasoning(reasoning.get("text"), tuple(reasoning.get("parts") or ())),
        refusal,
        record.get("finish_reason"),
        record.get("provider_finish_reason"),
        record.get("logprobs"),
    )


def _tool_call_from_json(call: Mapping[str, Any]) -> ToolCall:
    arguments = call["arguments"]
    if arguments is not None and not isinstance(arguments, dict):
        raise ValueError("tool call arguments are not an object")
    return ToolCall(str(call["id"]), str(call["name"]), arguments, call.get("arguments_raw"))


def from_json(record: Mapping[str, Any]) -> Result:
    """The Result a record was written from (a tool's own fields back in `fields`).

    Raises ValueError (or TypeError, KeyError) for an object that is not a record.
    """
    status = record["status"]
    if status not in ("ok", "error"):
        raise ValueError(f"status is {status!r}")
    answers: tuple[Answer, ...] = ()
    if status == "ok":
        samples = record.get("samples")
        if samples:
            answers = tuple(answer_from_json(sample) for sample in samples)
        else:
            answers = (answer_from_json(record),)
    usage = record.get("usage")
    error = record.get("error")
    return Result(
        id=record.get("id"),
        line=int(record.get("line") or 0),
        status=status,
        model=record.get("model"),
        answers=answers,
        usage=Usage.from_record(usage) if isinstance(usage, dict) else None,
        cost_usd=record.get("cost_usd"),
        attempts=int(record.get("attempts") or 0),
        latency_s=float(record.get("latency_s") or 0.0),
        cached=bool(record.get("cached")),
        deduplicated=bool(record.get("deduplicated")),
        error=(
            ErrorInfo(str(error.get("type")), str(error.get("message")), error.get("status_code"))
            if isinstance(error, dict)
            else None
        ),
        metadata=record.get("metadata"),
        fields={key: value for key, value in record.items() if key not in _KNOWN_KEYS},
    )


_KNOWN_KEYS = frozenset(
    (
        *RECORD_FIELDS,
        "provider_finish_reason",
        "tool_calls",
        "reasoning",
        "refusal",
        "logprobs",
        "completions",
        "samples",
    )
)


def has_answer(record: Mapping[str, Any]) -> bool:
    """Whether an ok record holds an answer: text, a tool call or a refusal (in each sample,
    when it has several). Records written before empty answers became errors may not.
    Records without a ``completion`` (embed's, rerank's) answer by their own fields."""
    if "completion" not in record:
        return True
    samples = record.get("samples")
    if isinstance(samples, list) and samples:
        return all(isinstance(s, dict) and _says_something(s) for s in samples)
    return _says_something(record)


def _says_something(record: Mapping[str, Any]) -> bool:
    return bool(record.get("completion") or record.get("tool_calls") or record.get("refusal"))


def encode(record: Result | Record) -> bytes:
    """One output line: compact JSON and a newline."""
    data = to_json(record) if isinstance(record, Result) else record
    try:
        return orjson.dumps(data, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        # A provider can send a lone UTF-16 surrogate (via a JSON \\ud800 escape), which
        # UTF-8 cannot hold; replace it rather than lose the whole record.
        return orjson.dumps(_scrub(data), option=orjson.OPT_APPEND_NEWLINE)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value
