"""A batch input file checked as OpenAI checks it while a batch is ``validating``: one JSON
request a line, each ``{custom_id, method, url, body}``, custom ids unique, every url the
batch's endpoint, one model for the whole file, and no more requests than the limit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from lm_deluge_cli.mock.batches.settings import BatchSettings

__all__ = ["InputLine", "validate_input"]

# Where OpenAI asks every request of a file to name the same model.
_ONE_MODEL = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings")


@dataclass(frozen=True, slots=True)
class InputLine:
    """One request of a valid input file."""

    custom_id: str
    body: dict[str, Any]


def _error(code: str, message: str, line: int | None, param: str | None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def validate_input(
    content: bytes, endpoint: str, settings: BatchSettings
) -> tuple[list[InputLine], list[dict[str, Any]]]:
    """The file's requests, or the errors (OpenAI's ``errors.data`` entries) that fail it."""
    lines: list[InputLine] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    model: str | None = None
    raw_lines = [raw for raw in content.split(b"\n") if raw.strip()]
    if not raw_lines:
        return [], [_error("empty_file", "The batch input file is empty.", None, None)]
    if len(raw_lines) > settings.max_requests:
        message = (
            f"The batch input file has {len(raw_lines)} requests; "
            f"a batch can hold at most {settings.max_requests}."
        )
        return [], [_error("too_many_requests", message, None, None)]
    for number, raw in enumerate(content.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            request = orjson.loads(raw)
        except orjson.JSONDecodeError:
            request = None
        if not isinstance(request, dict):
            message = "This line is not parseable as valid JSON."
            errors.append(_error("invalid_json_line", message, number, None))
            continue
        problem = _check_line(request, endpoint, seen)
        if problem is not None:
            code, message, param = problem
            errors.append(_error(code, message, number, param))
            continue
        body = request["body"]
        line_model = body.get("model")
        if endpoint in _ONE_MODEL:
            if not isinstance(line_model, str):
                message = "The request body must name a model."
                errors.append(_error("missing_required_parameter", message, number, "body.model"))
                continue
            if model is None:
                model = line_model
            elif line_model != model:
                message = (
                    f"The model {line_model!r} differs from the file's model {model!r}; "
                    "a batch file may only hold requests for one model."
                )
                errors.append(_error("mismatched_model", message, number, "body.model"))
                continue
        seen.add(request["custom_id"])
        lines.append(InputLine(request["custom_id"], body))
    if endpoint == "/v1/embeddings" and not errors:
        texts = sum(_inputs(line.body.get("input")) for line in lines)
        if texts > settings.max_embedding_inputs:
            message = (
                f"The batch has {texts} embedding inputs; an embeddings batch can hold "
                f"at most {settings.max_embedding_inputs} across all its requests."
            )
            errors.append(_error("too_many_inputs", message, None, None))
    return lines, errors


def _inputs(value: Any) -> int:
    """How many texts an embeddings request's ``input`` holds (a list of token ids is one)."""
    if isinstance(value, list) and value and not all(isinstance(v, int) for v in value):
        return len(value)
    return 1


def _check_line(
    request: dict[str, Any], endpoint: str, seen: set[str]
) -> tuple[str, str, str] | None:
    """(code, message, param) for a request line that breaks a rule, else None."""
    for param in ("custom_id", "method", "url", "body"):
        if param not in request:
            return "missing_required_parameter", f"Missing required parameter: '{param}'.", param
    custom_id = request["custom_id"]
    if not isinstance(custom_id, str) or not custom_id:
        return "invalid_value", "custom_id must be a non-empty string.", "custom_id"
    if custom_id in seen:
        message = (
            "The custom_id for this request is a duplicate of another request. "
            "The custom_id parameter must be unique for each individual request in a batch."
        )
        return "duplicate_custom_id", message, "custom_id"
    if request["method"] != "POST":
        return "invalid_value", "Only the POST method is supported.", "method"
    if request["url"] != endpoint:
        message = "The URL provided for this request does not match the batch endpoint."
        return "invalid_url", message, "url"
    if not isinstance(request["body"], dict):
        return "invalid_value", "The request body must be a JSON object.", "body"
    return None
