"""Voyage AI embeddings (`POST {base_url}/embeddings`) and rerank (`POST {base_url}/rerank`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lm_deluge_cli.providers.parts import PARSE_ERRORS
from lm_deluge_cli.providers.retrieval.base import (
    EmbedBatch,
    EmbedOptions,
    RerankBatch,
    RetrievalEndpoint,
    dimensions,
    indexed_vectors,
    input_type,
    invalid,
    json_request,
    load_json,
    scores,
    status_error,
    token_count,
)
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
            tokens = _total_tokens(data)
        except PARSE_ERRORS as exc:
            raise invalid(endpoint, response, "Voyage embeddings response", exc) from exc
        return EmbedBatch(vectors=found, input_tokens=tokens)

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        """Voyage documents no rate-limit headers."""
        return RateLimitInfo()


class VoyageRerankAdapter:
    """Builds Voyage rerank requests and reads their responses."""

    def build_request(
        self,
        endpoint: RetrievalEndpoint,
        query: str,
        documents: Sequence[str],
        timeout: float,
    ) -> HttpRequest:
        body: dict[str, Any] = {
            "model": endpoint.model.wire_id,
            "query": query,
            "documents": list(documents),
            "top_k": len(documents),
            "return_documents": False,
        }
        return json_request(endpoint, "/rerank", body, timeout)

    def parse_response(
        self, endpoint: RetrievalEndpoint, response: HttpResponse, count: int
    ) -> RerankBatch:
        if response.status >= 300:
            raise status_error(endpoint, response)
        try:
            data = load_json(response)
            found = scores(data["data"], count)
            tokens = _total_tokens(data)
        except PARSE_ERRORS as exc:
            raise invalid(endpoint, response, "Voyage rerank response", exc) from exc
        return RerankBatch(scores=found, input_tokens=tokens, search_units=None)

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        """Voyage documents no rate-limit headers."""
        return RateLimitInfo()


def _total_tokens(data: Mapping[str, Any]) -> int | None:
    usage = data.get("usage")
    if usage is None:
        return None
    if not isinstance(usage, dict):
        raise TypeError("usage is not an object")
    return token_count(usage.get("total_tokens"))
