"""Jina AI rerank (`POST {base_url}/rerank`), also the format of the mock provider's rerank."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lm_deluge_cli.providers.retrieval.base import (
    RerankAdapter,
    RerankBatch,
    RetrievalEndpoint,
    scores,
    token_count,
)

__all__ = ["JinaRerankAdapter", "total_tokens"]


class JinaRerankAdapter(RerankAdapter):
    """Builds Jina rerank requests and reads their responses. Neither Jina nor Voyage
    documents rate-limit headers.

    Voyage's rerank has the same shape under other names (``top_k``, ``data``): its adapter
    overrides the class attributes.
    """

    path = "/rerank"
    label = "Jina rerank response"
    results_field = "results"

    def body(
        self, endpoint: RetrievalEndpoint, query: str, documents: Sequence[str]
    ) -> dict[str, Any]:
        return {**super().body(endpoint, query, documents), "return_documents": False}

    def batch(self, data: dict[str, Any], count: int) -> RerankBatch:
        found = scores(data[self.results_field], count)
        return RerankBatch(scores=found, input_tokens=total_tokens(data), search_units=None)


def total_tokens(data: Mapping[str, Any]) -> int | None:
    """``usage.total_tokens``, or None when the response reports no usage."""
    usage = data.get("usage")
    if usage is None:
        return None
    if not isinstance(usage, dict):
        raise TypeError("usage is not an object")
    return token_count(usage.get("total_tokens"))
