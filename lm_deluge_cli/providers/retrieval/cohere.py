"""Cohere v2 Embed (`POST {base_url}/v2/embed`) and Rerank (`POST {base_url}/v2/rerank`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lm_deluge_cli.providers.cohere import CohereV2Adapter
from lm_deluge_cli.providers.parts import PARSE_ERRORS
from lm_deluge_cli.providers.retrieval.base import (
    EmbedBatch,
    EmbedOptions,
    RerankBatch,
    RetrievalEndpoint,
    chat_endpoint,
    dimensions,
    input_type,
    invalid,
    json_request,
    load_json,
    scores,
    token_count,
    vectors,
)
from lm_deluge_cli.types import HttpRequest, HttpResponse, RateLimitInfo

__all__ = ["CohereEmbedAdapter", "CohereRerankAdapter"]

# Embed v3 and later require an input_type; documents are the default, as for the others.
_INPUT_TYPES: Mapping[str, str] = {"document": "search_document", "query": "search_query"}
_DEFAULT_INPUT_TYPE = "search_document"
# The chat adapter's error mapping (402, 499, 501) and trial-key headers hold for every endpoint.
_CHAT = CohereV2Adapter()


class CohereEmbedAdapter:
    """Builds v2 embed requests (float embeddings) and reads their responses."""

    def build_request(
        self,
        endpoint: RetrievalEndpoint,
        texts: Sequence[str],
        options: EmbedOptions,
        timeout: float,
    ) -> HttpRequest:
        body: dict[str, Any] = {
            "model": endpoint.model.wire_id,
            "texts": list(texts),
            "input_type": input_type(options, _INPUT_TYPES) or _DEFAULT_INPUT_TYPE,
            "embedding_types": ["float"],
        }
        size = dimensions(endpoint, options)
        if size is not None:
            body["output_dimension"] = size  # Embed v4 and later
        return json_request(endpoint, "/v2/embed", body, timeout)

    def parse_response(
        self, endpoint: RetrievalEndpoint, response: HttpResponse, count: int
    ) -> EmbedBatch:
        if response.status >= 300:
            raise _CHAT.status_error(chat_endpoint(endpoint), response)
        try:
            data = load_json(response)
            embeddings = data["embeddings"]
            if not isinstance(embeddings, dict):
                raise TypeError("embeddings is not an object of embedding types")
            found = vectors(embeddings["float"], count)
            tokens = _billed(data).get("input_tokens")
            input_tokens = token_count(tokens)
        except PARSE_ERRORS as exc:
            raise invalid(endpoint, response, "Cohere embed response", exc) from exc
        return EmbedBatch(vectors=found, input_tokens=input_tokens)

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        return _CHAT.rate_limit_info(headers)


class CohereRerankAdapter:
    """Builds v2 rerank requests and reads their responses (billed in search units)."""

    def build_request(
        self,
        endpoint: RetrievalEndpoint,
        query: str,
        documents: Sequence[str],
        timeout: float,
    ) -> HttpRequest:
        # v2 never sends documents back; top_n = every document, so every one is scored.
        body: dict[str, Any] = {
            "model": endpoint.model.wire_id,
            "query": query,
            "documents": list(documents),
            "top_n": len(documents),
        }
        return json_request(endpoint, "/v2/rerank", body, timeout)

    def parse_response(
        self, endpoint: RetrievalEndpoint, response: HttpResponse, count: int
    ) -> RerankBatch:
        if response.status >= 300:
            raise _CHAT.status_error(chat_endpoint(endpoint), response)
        try:
            data = load_json(response)
            found = scores(data["results"], count)
            billed = _billed(data)
            search_units = token_count(billed.get("search_units"))
            input_tokens = token_count(billed.get("input_tokens"))
        except PARSE_ERRORS as exc:
            raise invalid(endpoint, response, "Cohere rerank response", exc) from exc
        return RerankBatch(scores=found, input_tokens=input_tokens, search_units=search_units)

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        return _CHAT.rate_limit_info(headers)


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
