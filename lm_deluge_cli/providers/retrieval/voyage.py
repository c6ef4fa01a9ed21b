"""Voyage AI embeddings (`POST {base_url}/embeddings`) and rerank (`POST {base_url}/rerank`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lm_deluge_cli.providers.retrieval.base import (
    EmbedOptions,
    RetrievalEndpoint,
    input_type,
)
from lm_deluge_cli.providers.retrieval.jina import JinaRerankAdapter, total_tokens
from lm_deluge_cli.providers.retrieval.openai import OpenAIEmbedAdapter

__all__ = ["VoyageEmbedAdapter", "VoyageRerankAdapter"]

_INPUT_TYPES: Mapping[str, str] = {"document": "document", "query": "query"}


class VoyageEmbedAdapter(OpenAIEmbedAdapter):
    """Voyage embeddings: OpenAI's shape, with an input_type, `output_dimension`,
    ``usage.total_tokens``, and errors of its own (Voyage documents no rate-limit headers)."""

    label = "Voyage embeddings response"
    chat = None
    dimensions_field = "output_dimension"

    def body(
        self, endpoint: RetrievalEndpoint, texts: Sequence[str], options: EmbedOptions
    ) -> dict[str, Any]:
        body = super().body(endpoint, texts, options)
        kind = input_type(options, _INPUT_TYPES)
        if kind is not None:  # null (no prompt prepended) is Voyage's default
            body["input_type"] = kind
        return body

    def tokens(self, data: Mapping[str, Any]) -> int | None:
        return total_tokens(data)


class VoyageRerankAdapter(JinaRerankAdapter):
    """Voyage rerank: Jina's shape with ``top_k`` and ``data``."""

    top_field = "top_k"
    results_field = "data"
    label = "Voyage rerank response"
