"""Jina AI rerank (`POST {base_url}/rerank`), also the format of the mock provider's rerank."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lm_deluge_cli.providers.parts import PARSE_ERRORS
from lm_deluge_cli.providers.retrieval.base import (
    RerankBatch,
    RetrievalEndpoint,
    invalid,
    json_request,
    load_json,
    scores,
    status_error,
    token_count,
)
from lm_deluge_cli.types import HttpRequest, HttpResponse, RateLimitInfo

__all__ = ["JinaRerankAdapter", "total_tokens"]


class JinaRerankAdapter:
    """Builds Jina rerank requests and reads their responses.

    Voyage's rerank has the same shape under other names (``top_k``, ``data``): its adapter
    overrides the class attributes.
    """

    top_field = "top_n"
    results_field = "results"
    label = "Jina rerank response"

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
            self.top_field: len(documents),
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
            found = scores(data[self.results_field], count)
            tokens = total_tokens(data)
        except PARSE_ERRORS as exc:
            raise invalid(endpoint, response, self.label, exc) from exc
        return RerankBatch(scores=found, input_tokens=tokens, search_units=None)

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        """Neither Jina nor Voyage documents rate-limit headers."""
        return RateLimitInfo()


def total_tokens(data: Mapping[str, Any]) -> int | None:
    """``usage.total_tokens``, or None when the response reports no usage."""
    usage = data.get("usage")
    if usage is None:
        return None
    if not isinstance(usage, dict):
        raise TypeError("usage is not an object")
    return token_count(usage.get("total_tokens"))
