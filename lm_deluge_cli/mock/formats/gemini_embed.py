"""Gemini's embeddings (`POST /v1beta/models/{model}:batchEmbedContents` and
`:embedContent`) as the mock speaks them; keys, quotas and failures as its chat.

A batch is ``{"requests": [{"model": "models/{model}", "content": {"parts": [{"text"}]},
"taskType"?, "title"?, "outputDimensionality"?}]}`` of at most 100 requests, each naming the
URL's model; the answer is ``{"embeddings": [{"values": […]}]}``, with no usage. One text
goes to ``:embedContent`` as one such request (``model`` optional) and comes back as
``{"embedding": {"values": […]}}``. Both spellings of each field are read, as Google's
parser does. One batch's requests must ask for the same ``outputDimensionality`` here.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from lm_deluge_cli.mock.formats.base import (
    Answer,
    Call,
    Embeddings,
    EmbedFormat,
    EmbedRequest,
    json_answer,
    load_json_object,
)
from lm_deluge_cli.mock.formats.inputs import Problem, read_dimensions

__all__ = ["GeminiBatchEmbed", "GeminiEmbed"]

MAX_BATCH = 100
_TASK_TYPES = (
    "TASK_TYPE_UNSPECIFIED",
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
)
_TYPE = "type.googleapis.com/google.rpc.BadRequest"


def _invalid(message: str) -> Answer:
    """A 400 ``INVALID_ARGUMENT`` naming the field, as Google's parser reports it."""
    violation = {"field": message.split(":", 1)[0].lstrip("* "), "description": message}
    error = {
        "code": 400,
        "message": message,
        "status": "INVALID_ARGUMENT",
        "details": [{"@type": _TYPE, "fieldViolations": [violation]}],
    }
    return json_answer(400, {"error": error})


def _field(body: Mapping[str, Any], camel: str, snake: str) -> Any:
    return body[camel] if camel in body else body.get(snake)


def _read_one(request: Any, where: str, model: str, model_required: bool) -> tuple[str, Any] | str:
    """(text, requested dimensionality) of one EmbedContentRequest, or what is wrong."""
    if not isinstance(request, dict):
        return f"* {where}: must be an object"
    named = request.get("model")
    if named is None and model_required:
        return f"* {where}.model: model is required"
    if named is not None and named != f"models/{model}":
        return f"* {where}.model: must be models/{model}, the model the URL names"
    content = request.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not parts:
        return f"* {where}.content.parts: contents.parts must not be empty."
    texts: list[str] = []
    for part in parts:
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            return f"* {where}.content.parts: this mock embeds text parts only"
        texts.append(part["text"])
    text = "\n".join(texts)
    if not text:
        return f"* {where}.content: the text to embed is empty"
    task = _field(request, "taskType", "task_type")
    if task is not None and task not in _TASK_TYPES:
        return f"* {where}.task_type: invalid value {task!r}"
    return text, _field(request, "outputDimensionality", "output_dimensionality")


def _read(requests: list[Any], where: str, model: str, required: bool) -> EmbedRequest | Answer:
    texts: list[str] = []
    wanted: list[Any] = []
    for i, request in enumerate(requests):
        read = _read_one(request, where.format(i), model, required)
        if isinstance(read, str):
            return _invalid(read)
        texts.append(read[0])
        wanted.append(read[1])
    if any(value != wanted[0] for value in wanted):
        return _invalid(f"* {where.format(0)}: this mock needs one outputDimensionality a batch")
    dimensions = read_dimensions(wanted[0])
    if isinstance(dimensions, Problem):
        return _invalid(f"* {where.format(0)}.output_dimensionality: {dimensions}")
    return EmbedRequest(model, texts, dimensions)


class _GeminiEmbed(EmbedFormat):
    """Reads a JSON object that holds EmbedContentRequests; subclasses say where they are."""

    @abstractmethod
    def _requests(self, body: dict[str, Any]) -> tuple[list[Any], str, bool] | Answer:
        """The body's requests, their place in Google's field paths (``{}`` their index)
        and whether each must name the URL's model; or the error for a body that holds
        none or too many."""

    def parse(self, call: Call) -> EmbedRequest | Answer:
        body = load_json_object(call.body)
        if body is None:
            return _invalid("Invalid JSON payload received. Expected an object.")
        found = self._requests(body)
        if isinstance(found, Answer):
            return found
        requests, where, model_required = found
        return _read(requests, where, call.path_model or "", model_required)


class GeminiBatchEmbed(_GeminiEmbed):
    """``models/{model}:batchEmbedContents``: up to 100 requests, one vector each."""

    name = "gemini_batch_embed"
    answer_fields = ("embeddings",)

    def _requests(self, body: dict[str, Any]) -> tuple[list[Any], str, bool] | Answer:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            return _invalid("* BatchEmbedContentsRequest.requests: requests must not be empty")
        if len(requests) > MAX_BATCH:
            return _invalid(
                f"* BatchEmbedContentsRequest.requests: at most {MAX_BATCH} requests can be "
                "in one batch"
            )
        return requests, "BatchEmbedContentsRequest.requests[{}]", True

    def embeddings(self, request: EmbedRequest, reply: Embeddings) -> Answer:
        return json_answer(200, {"embeddings": [{"values": v} for v in reply.vectors]})


class GeminiEmbed(_GeminiEmbed):
    """``models/{model}:embedContent``: one text, one vector."""

    name = "gemini_embed"
    answer_fields = ("embedding",)

    def _requests(self, body: dict[str, Any]) -> tuple[list[Any], str, bool] | Answer:
        return [body], "EmbedContentRequest", False

    def embeddings(self, request: EmbedRequest, reply: Embeddings) -> Answer:
        return json_answer(200, {"embedding": {"values": reply.vectors[0]}})
