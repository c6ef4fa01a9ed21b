"""The OpenAI-shaped embeddings APIs as the mock speaks them: OpenAI (`POST /v1/embeddings`),
Mistral (`/mistral/v1/embeddings`) and Voyage AI (`/voyage/v1/embeddings`).

All three take ``{"model", "input": str | [str], …}`` and answer
``{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model",
"usage"}``; they differ in the dimensions field, their limits, usage and error bodies:

=======  ======================  ==========  =================  =============================
API      dimensions field        max inputs  max tokens / call  usage
=======  ======================  ==========  =================  =============================
OpenAI   ``dimensions``          2048        300,000            prompt_tokens, total_tokens
Mistral  ``output_dimension``    512         16,384             prompt, completion (0), total
Voyage   ``output_dimension``    1000        (per model)        total_tokens
=======  ======================  ==========  =================  =============================

``encoding_format: "base64"`` is answered as the base64 of little-endian float32s, as OpenAI
sends it; only float vectors are written (``output_dtype`` other than float is refused).
"""

from __future__ import annotations

import base64
import struct
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from lm_deluge_cli.mock.formats.base import (
    JSON,
    Answer,
    Call,
    Embeddings,
    EmbedFormat,
    EmbedRequest,
    json_answer,
)
from lm_deluge_cli.mock.formats.dialects import detail_error
from lm_deluge_cli.mock.formats.inputs import Problem, read_dimensions, read_texts
from lm_deluge_cli.mock.formats.openai import error_body
from lm_deluge_cli.mock.wire import count_text_tokens

__all__ = ["MistralEmbeddings", "OpenAIEmbeddings", "VoyageEmbeddings", "float32_base64"]


def float32_base64(vector: list[float]) -> str:
    """A vector as OpenAI's ``encoding_format: "base64"`` sends it: little-endian float32s."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


class _OpenAIShaped(EmbedFormat):
    """Reads ``{"model", "input", …}`` and writes the ``data`` list; subclasses word the
    errors and the usage."""

    answer_fields = ("data",)
    dimensions_field: ClassVar[str]
    max_inputs: ClassVar[int]
    max_tokens: ClassVar[int | None]  # summed over the inputs; None: no limit checked
    encodings: ClassVar[tuple[str | None, ...]] = (None, "float", "base64")

    @abstractmethod
    def _invalid(self, message: str, param: str | None, missing: bool = False) -> Answer:
        """The error for a body that is not JSON or a field that is missing or wrong."""

    @abstractmethod
    def _too_large(self, message: str, code: str) -> Answer:
        """The error for too many inputs (``code`` "inputs") or tokens ("tokens")."""

    @abstractmethod
    def _usage(self, tokens: int) -> dict[str, int]:
        """The usage object for this many input tokens."""

    def _extra(self, reply: Embeddings) -> dict[str, Any]:
        """Fields only this API sends (an id)."""
        return {}

    def parse(self, call: Call) -> EmbedRequest | Answer:
        try:
            request = orjson.loads(call.body)
        except orjson.JSONDecodeError:
            return self._invalid("We could not parse the JSON body of your request.", None)
        if not isinstance(request, dict):
            return self._invalid("The request body must be a JSON object.", None)
        for name in ("model", "input"):
            if name not in request:
                return self._invalid(f"Missing required parameter: '{name}'.", name, True)
        model = request["model"]
        if not isinstance(model, str) or not model:
            return self._invalid("Invalid 'model': expected a non-empty string.", "model")
        return self._read(request, model)

    def _read(self, request: Mapping[str, Any], model: str) -> EmbedRequest | Answer:
        texts = read_texts(request["input"], None)
        if isinstance(texts, Problem):
            return self._invalid(f"Invalid 'input': it {texts}.", "input")
        if len(texts) > self.max_inputs:
            message = f"Too many inputs: {len(texts)} were given, the maximum is "
            return self._too_large(message + f"{self.max_inputs}.", "inputs")
        tokens = sum(count_text_tokens(text) for text in texts)
        if self.max_tokens is not None and tokens > self.max_tokens:
            message = f"Requested {tokens} tokens, max {self.max_tokens} tokens per request."
            return self._too_large(message, "tokens")
        field = self.dimensions_field
        dimensions = read_dimensions(request.get(field))
        if isinstance(dimensions, Problem):
            return self._invalid(f"Invalid '{field}': it {dimensions}.", field)
        encoding = request.get("encoding_format")
        if encoding not in self.encodings:
            allowed = ", ".join(repr(e) for e in self.encodings if e is not None)
            message = f"Invalid 'encoding_format': {encoding!r}; supported values are {allowed}."
            return self._invalid(message, "encoding_format")
        dtype = request.get("output_dtype")
        if dtype not in (None, "float"):
            message = f"Invalid 'output_dtype': {dtype!r}; this mock writes only 'float'."
            return self._invalid(message, "output_dtype")
        return EmbedRequest(model, texts, dimensions, request)

    def embeddings(self, request: EmbedRequest, reply: Embeddings) -> Answer:
        as_base64 = request.raw.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": float32_base64(vector) if as_base64 else vector,
            }
            for i, vector in enumerate(reply.vectors)
        ]
        payload = {
            **self._extra(reply),
            "object": "list",
            "data": data,
            "model": request.model,
            "usage": self._usage(reply.tokens),
        }
        return json_answer(200, payload)


class OpenAIEmbeddings(_OpenAIShaped):
    """OpenAI's ``POST /v1/embeddings``: at most 2048 inputs and 300,000 tokens a request."""

    name = "openai_embeddings"
    dimensions_field = "dimensions"
    max_inputs = 2048
    max_tokens = 300_000

    def _invalid(self, message: str, param: str | None, missing: bool = False) -> Answer:
        body = error_body(message, "invalid_request_error", None, param)
        return Answer(400, dict(JSON), body)

    def _too_large(self, message: str, code: str) -> Answer:
        if code == "inputs":
            param: str | None = "input"
            code = "array_above_max_length"
        else:
            param, code = None, "max_tokens_per_request"
        body = error_body(message, "invalid_request_error", code, param)
        return Answer(400, dict(JSON), body)

    def _usage(self, tokens: int) -> dict[str, int]:
        return {"prompt_tokens": tokens, "total_tokens": tokens}


class MistralEmbeddings(_OpenAIShaped):
    """Mistral's ``POST /v1/embeddings``: at most 512 inputs and 16,384 tokens a request
    (400 with codes 3210 and 3211); schema errors are 422 validation errors, as for chat."""

    name = "mistral_embeddings"
    dimensions_field = "output_dimension"
    max_inputs = 512
    max_tokens = 16_384

    def _invalid(self, message: str, param: str | None, missing: bool = False) -> Answer:
        loc: list[Any] = ["body"] if param is None else ["body", param]
        if missing:
            detail = {"loc": loc, "msg": "field required", "type": "value_error.missing"}
        else:
            detail = {"loc": loc, "msg": message, "type": "value_error"}
        return json_answer(422, {"detail": [detail]})

    def _too_large(self, message: str, code: str) -> Answer:
        if code == "inputs":
            message, number = "Too many inputs in request, split into more batches.", "3210"
        else:
            message, number = "Too many tokens overall, split into more batches.", "3211"
        payload = {
            "object": "error",
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": number,
        }
        return json_answer(400, payload)

    def _usage(self, tokens: int) -> dict[str, int]:
        return {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}

    def _extra(self, reply: Embeddings) -> dict[str, Any]:
        return {"id": reply.response_id[-32:].rjust(32, "0")}


class VoyageEmbeddings(_OpenAIShaped):
    """Voyage AI's ``POST /v1/embeddings``: at most 1000 inputs; ``input_type`` is null,
    "query" or "document"; ``truncation`` a boolean. The per-model token totals (120K to 1M)
    are not checked."""

    name = "voyage_embeddings"
    dimensions_field = "output_dimension"
    max_inputs = 1000
    max_tokens = None
    encodings = (None, "base64")

    def _read(self, request: Mapping[str, Any], model: str) -> EmbedRequest | Answer:
        input_type = request.get("input_type")
        if input_type not in (None, "query", "document"):
            message = f"Invalid 'input_type': {input_type!r}; use null, 'query' or 'document'."
            return self._invalid(message, "input_type")
        if not isinstance(request.get("truncation", True), bool):
            return self._invalid("Invalid 'truncation': expected true or false.", "truncation")
        return super()._read(request, model)

    def _invalid(self, message: str, param: str | None, missing: bool = False) -> Answer:
        return detail_error(400, message)

    def _too_large(self, message: str, code: str) -> Answer:
        return detail_error(400, message)

    def _usage(self, tokens: int) -> dict[str, int]:
        return {"total_tokens": tokens}
