"""Cohere's Embed API v2 (`POST /v2/embed`) as the mock speaks it.

A request names ``model``, ``input_type`` (required) and up to 96 ``texts``; the answer holds
one list of vectors per requested ``embedding_types`` entry (default ``["float"]``):
``{"id", "embeddings": {"float": [[…]]}, "texts", "meta": {"api_version", "billed_units":
{"input_tokens"}}, "response_type": "embeddings_by_type"}``. Besides float the mock writes
``int8``/``uint8`` (each value scaled by 127) and ``binary``/``ubinary`` (sign bits, eight to
a byte); ``base64``, ``images`` and ``inputs`` are refused.
"""

from __future__ import annotations

import uuid
from typing import Any

from lm_deluge_cli.mock.formats.base import (
    Answer,
    Call,
    Embeddings,
    EmbedFormat,
    EmbedRequest,
    as_uuid,
    json_answer,
    load_json_object,
)
from lm_deluge_cli.mock.formats.inputs import Problem, read_dimensions, read_texts

__all__ = ["CohereEmbed", "quantize"]

MAX_TEXTS = 96
_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering", "image")
_TYPES = ("float", "int8", "uint8", "binary", "ubinary")
_TRUNCATE = ("NONE", "START", "END")


def _error(message: str) -> Answer:
    """Cohere's 400: an id for support, and the message."""
    return json_answer(400, {"id": str(uuid.uuid4()), "message": f"invalid request: {message}"})


def quantize(vector: list[float], kind: str) -> list[float] | list[int]:
    """The vector as Cohere's ``embedding_types`` entry ``kind`` writes it."""
    if kind == "float":
        return vector
    if kind in ("int8", "uint8"):
        offset = 128 if kind == "uint8" else 0
        return [max(-128, min(127, round(value * 127))) + offset for value in vector]
    packed: list[int] = []
    for start in range(0, len(vector), 8):
        byte = 0
        for value in vector[start : start + 8]:
            byte = (byte << 1) | (value > 0)
        byte <<= 8 - len(vector[start : start + 8])
        packed.append(byte - 128 if kind == "binary" else byte)
    return packed


def _read(request: dict[str, Any]) -> EmbedRequest | str:
    """The request in neutral terms, or what is wrong with it."""
    model = request.get("model")
    if not isinstance(model, str) or not model:
        return "model must be specified"
    input_type = request.get("input_type")
    if input_type not in _INPUT_TYPES:
        return f"input_type must be one of {', '.join(_INPUT_TYPES)}"
    if "images" in request or "inputs" in request:
        return "this mock embeds texts only; send them as texts"
    texts = read_texts(request.get("texts"), None, one_allowed=False)
    if isinstance(texts, Problem):
        return f"texts {texts}"
    if len(texts) > MAX_TEXTS:
        return f"total number of texts must be at most {MAX_TEXTS} - received {len(texts)}"
    types = request.get("embedding_types", ["float"])
    if not isinstance(types, list) or not types or not all(t in _TYPES for t in types):
        listed = ", ".join(_TYPES)
        return f"embedding_types must be a non-empty list of {listed} (the mock writes no base64)"
    dimensions = read_dimensions(request.get("output_dimension"))
    if isinstance(dimensions, Problem):
        return f"output_dimension {dimensions}"
    if request.get("truncate", "END") not in _TRUNCATE:
        return f"truncate must be one of {', '.join(_TRUNCATE)}"
    return EmbedRequest(model, texts, dimensions, request)


class CohereEmbed(EmbedFormat):
    """Cohere's Embed API v2; errors, limits and keys as its chat (`CohereFormat`)."""

    name = "cohere_embed"
    answer_fields = ("embeddings",)

    def parse(self, call: Call) -> EmbedRequest | Answer:
        request = load_json_object(call.body)
        if request is None:
            return _error("the body is not a JSON object")
        read = _read(request)
        return _error(read) if isinstance(read, str) else read

    def embeddings(self, request: EmbedRequest, reply: Embeddings) -> Answer:
        types: list[str] = list(dict.fromkeys(request.raw.get("embedding_types", ["float"])))
        payload = {
            "id": as_uuid(reply.response_id),
            "embeddings": {kind: [quantize(v, kind) for v in reply.vectors] for kind in types},
            "texts": request.texts,
            "meta": {
                "api_version": {"version": "2", "is_experimental": False},
                "billed_units": {"input_tokens": reply.tokens},
            },
            "response_type": "embeddings_by_type",
        }
        return json_answer(200, payload)
