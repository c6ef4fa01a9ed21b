"""Google AI Studio Gemini embeddings
(`POST {base_url}/v1beta/models/{model}:batchEmbedContents`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lm_deluge_cli.providers.gemini import GeminiAdapter, google_json_request, model_path
from lm_deluge_cli.providers.retrieval.base import (
    EmbedAdapter,
    EmbedBatch,
    EmbedOptions,
    RetrievalEndpoint,
    chat_endpoint,
    dimensions,
    input_type,
    vector,
    vectors,
)
from lm_deluge_cli.types import HttpRequest

__all__ = ["GeminiEmbedAdapter"]

_TASK_TYPES: Mapping[str, str] = {"document": "RETRIEVAL_DOCUMENT", "query": "RETRIEVAL_QUERY"}


class GeminiEmbedAdapter(EmbedAdapter):
    """Builds batchEmbedContents requests (one EmbedContentRequest per text) and reads their
    responses. Gemini reports no token usage for embeddings."""

    label = "Gemini batchEmbedContents response"
    # Gemini's mapping: a bad key sent as 400, RetryInfo waits, spent daily quotas; and no
    # rate-limit headers.
    chat = GeminiAdapter()

    def request(
        self, endpoint: RetrievalEndpoint, body: Mapping[str, Any], timeout: float
    ) -> HttpRequest:
        path = f"/v1beta/{model_path(endpoint.model.wire_id)}:batchEmbedContents"
        return google_json_request(chat_endpoint(endpoint), path, body, timeout)

    def body(
        self, endpoint: RetrievalEndpoint, texts: Sequence[str], options: EmbedOptions
    ) -> dict[str, Any]:
        model = model_path(endpoint.model.wire_id)
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
        return {"requests": requests}

    def batch(self, data: dict[str, Any], count: int) -> EmbedBatch:
        embeddings = data["embeddings"]
        if not isinstance(embeddings, list):
            raise TypeError("embeddings is not a list")
        # The embeddings come in the order of the requests.
        found = vectors([_values(item) for item in embeddings], count)
        return EmbedBatch(vectors=found, input_tokens=None)


def _values(item: Any) -> list[float]:
    if not isinstance(item, dict):
        raise TypeError("an embedding is not an object")
    return vector(item["values"])
