"""Google AI Studio Gemini embeddings
(`POST {base_url}/v1beta/models/{model}:batchEmbedContents`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from lm_deluge_cli.providers import gemini as gemini_chat
from lm_deluge_cli.providers.parts import PARSE_ERRORS
from lm_deluge_cli.providers.retrieval.base import (
    EmbedBatch,
    EmbedOptions,
    RetrievalEndpoint,
    chat_endpoint,
    dimensions,
    input_type,
    invalid,
    load_json,
    vector,
    vectors,
)
from lm_deluge_cli.types import HttpRequest, HttpResponse, RateLimitInfo

__all__ = ["GeminiEmbedAdapter"]

_TASK_TYPES: Mapping[str, str] = {"document": "RETRIEVAL_DOCUMENT", "query": "RETRIEVAL_QUERY"}


class GeminiEmbedAdapter:
    """Builds batchEmbedContents requests (one EmbedContentRequest per text) and reads their
    responses. Gemini reports no token usage for embeddings."""

    def build_request(
        self,
        endpoint: RetrievalEndpoint,
        texts: Sequence[str],
        options: EmbedOptions,
        timeout: float,
    ) -> HttpRequest:
        model = _model_name(endpoint.model.wire_id)
        task_type = input_type(options, _TASK_TYPES)
        size = dimensions(endpoint, options)
        requests: list[dict[str, Any]] = []
        for text in texts:
            # Each text its own Content: parts of one Content would be embedded as one input.
            request: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
            if task_type is not None:
                request["taskType"] = task_type
            if size is not None:
                request["outputDimensionality"] = size
            requests.append(request)
        headers = {"content-type": "application/json"}
        if endpoint.api_key:
            headers["x-goog-api-key"] = endpoint.api_key
        return HttpRequest(
            method="POST",
            url=f"{endpoint.base_url}/v1beta/{model}:batchEmbedContents",
            headers=headers,
            body=orjson.dumps({"requests": requests}),
            timeout=timeout,
        )

    def parse_response(
        self, endpoint: RetrievalEndpoint, response: HttpResponse, count: int
    ) -> EmbedBatch:
        if response.status >= 300:
            # Gemini's mapping: a bad key sent as 400, RetryInfo waits, spent daily quotas.
            raise gemini_chat.status_error(chat_endpoint(endpoint), response)
        try:
            data = load_json(response)
            embeddings = data["embeddings"]
            if not isinstance(embeddings, list):
                raise TypeError("embeddings is not a list")
            # The embeddings come in the order of the requests.
            found = vectors([_values(item) for item in embeddings], count)
        except PARSE_ERRORS as exc:
            raise invalid(endpoint, response, "Gemini batchEmbedContents response", exc) from exc
        return EmbedBatch(vectors=found, input_tokens=None)

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        """Gemini sends no rate-limit headers."""
        return RateLimitInfo()


def _model_name(wire_id: str) -> str:
    """The resource name each request names: ``models/{id}`` (a tuned model's as it is)."""
    return wire_id if wire_id.startswith(("models/", "tunedModels/")) else f"models/{wire_id}"


def _values(item: Any) -> list[float]:
    if not isinstance(item, dict):
        raise TypeError("an embedding is not an object")
    return vector(item["values"])
