"""Voyage AI embeddings (`POST {base_url}/embeddings`) and rerank (`POST {base_url}/rerank`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lm_deluge_cli.providers.parts import PARSE_ERRORS
from lm_deluge_cli.providers.retrieval.base import (
    EmbedBatch,
    EmbedOptions,
    RetrievalEndpoint,
    dimensions,
    indexed_vectors,
    input_type,
    invalid,
    json_request,
    load_json,
    status_error,
)
from lm_deluge_cli.providers.retrieval.jina import JinaRerankAdapter, total_tokens
from lm_deluge_cli.types import HttpRequest, HttpResponse, RateLimitInfo

__all__ = ["VoyageEmbedAdapter", "VoyageRerankAdapter"]

_INPUT_TYPES: Mapping[str, str] = {"document": "document", "query": "query"}


class VoyageEmbedAdapter:
    """Builds Voyage embeddings requests and reads their responses."""

    def build_request(
        self,
        endpoint: RetrievalEndpoint,
        texts: Sequence[str],
        options: EmbedOptions,
        timeout: float,
    ) -> HttpRequest:
        body: dict[str, Any] = {"model": endpoint.model.wire_id, "input": list(texts)}
        kind = input_type(options, _INPUT_TYPES)
        if kind is not None:  # null (no prompt prepended) is Voyage's default
            body["input_type"] = kind
        size = dimensions(endpoint, options)
        if size is not None:
            body["output_dimension"] = size
        return json_request(endpoint, "/embeddings", body, timeout)

    def parse_response(
        self, endpoint: RetrievalEndpoint, response: HttpResponse, count: int
    ) -> EmbedBatch:
        if response.status >= 300:
            raise status_error(endpoint, response)
        try:
            data = load_json(response)
            found = indexed_vectors(data["data"], count)
            tokens = total_tokens(data)
        except PARSE_ERRORS as exc:
            raise invalid(endpoint, response, "Voyage embeddings response", exc) from exc
        return EmbedBatch(vectors=found, input_tokens=tokens)

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        """Voyage documents no rate-limit headers."""
        return RateLimitInfo()


class VoyageRerankAdapter(JinaRerankAdapter):
    """Voyage rerank: Jina's shape with ``top_k`` and ``data``."""

    top_field = "top_k"
    results_field = "data"
    label = "Voyage rerank response"
