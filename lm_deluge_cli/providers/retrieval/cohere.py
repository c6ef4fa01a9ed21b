"""Cohere v2 Embed (`POST {base_url}/v2/embed`) and Rerank (`POST {base_url}/v2/rerank`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lm_deluge_cli.providers.cohere import CohereV2Adapter
from lm_deluge_cli.providers.retrieval.base import (
    EmbedAdapter,
    EmbedBatch,
    EmbedOptions,
    RerankAdapter,
    RerankBatch,
    RetrievalEndpoint,
    dimensions,
    input_type,
    scores,
    token_count,
    vectors,
)

__all__ = ["CohereEmbedAdapter", "CohereRerankAdapter"]

# Embed v3 and later require an input_type; documents are the default, as for the others.
_INPUT_TYPES: Mapping[str, str] = {"document": "search_document", "query": "search_query"}
_DEFAULT_INPUT_TYPE = "search_document"
# The chat adapter's error mapping (402, 499, 501) and trial-key headers hold for every endpoint.
_CHAT = CohereV2Adapter()


class CohereEmbedAdapter(EmbedAdapter):
    """Builds v2 embed requests (float embeddings) and reads their responses."""

    path = "/v2/embed"
    label = "Cohere embed response"
    chat = _CHAT

    def body(
        self, endpoint: RetrievalEndpoint, texts: Sequence[str], options: EmbedOptions
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": endpoint.model.wire_id,
            "texts": list(texts),
            "input_type": input_type(options, _INPUT_TYPES) or _DEFAULT_INPUT_TYPE,
            "embedding_types": ["float"],
        }
        size = dimensions(endpoint, options)
        if size is not None:
            body["output_dimension"] = size  # Embed v4 and later
        return body

    def batch(self, data: dict[str, Any], count: int) -> EmbedBatch:
        embeddings = data["embeddings"]
        if not isinstance(embeddings, dict):
            raise TypeError("embeddings is not an object of embedding types")
        found = vectors(embeddings["float"], count)
        return EmbedBatch(
            vectors=found, input_tokens=token_count(_billed(data).get("input_tokens"))
        )


class CohereRerankAdapter(RerankAdapter):
    """Builds v2 rerank requests and reads their responses (billed in search units)."""

    path = "/v2/rerank"
    label = "Cohere rerank response"
    # v2 never sends documents back, so the shared body is the whole of it.
    chat = _CHAT

    def batch(self, data: dict[str, Any], count: int) -> RerankBatch:
        found = scores(data["results"], count)
        billed = _billed(data)
        return RerankBatch(
            scores=found,
            input_tokens=token_count(billed.get("input_tokens")),
            search_units=token_count(billed.get("search_units")),
        )


def _billed(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """meta.billed_units, or nothing when the response leaves it out."""
    meta = data.get("meta")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise TypeError("meta is not an object")
    billed = meta.get("billed_units")
    if billed is None:
        return {}
    if not isinstance(billed, dict):
        raise TypeError("meta.billed_units is not an object")
    return billed
