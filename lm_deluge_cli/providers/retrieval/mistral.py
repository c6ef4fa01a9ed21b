"""Mistral embeddings (`POST {base_url}/v1/embeddings`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lm_deluge_cli.providers.mistral import MistralAdapter
from lm_deluge_cli.providers.parts import PARSE_ERRORS
from lm_deluge_cli.providers.retrieval.base import (
    EmbedBatch,
    EmbedOptions,
    RetrievalEndpoint,
    chat_endpoint,
    dimensions,
    indexed_vectors,
    invalid,
    json_request,
    load_json,
    token_count,
)
from lm_deluge_cli.types import HttpRequest, HttpResponse, RateLimitInfo

__all__ = ["MistralEmbedAdapter"]

# The chat adapter's error mapping (402, a month's tokens spent) and rate-limit headers are
# the workspace's, whichever endpoint answered.
_CHAT = MistralAdapter()


class MistralEmbedAdapter:
    """Builds Mistral embeddings requests and reads their responses.

    input_type is not sent: Mistral's models embed documents and queries alike.
    """

    def build_request(
        self,
        endpoint: RetrievalEndpoint,
        texts: Sequence[str],
        options: EmbedOptions,
        timeout: float,
    ) -> HttpRequest:
        body: dict[str, Any] = {"model": endpoint.model.wire_id, "input": list(texts)}
        size = dimensions(endpoint, options)
        if size is not None:
            body["output_dimension"] = size  # codestral-embed; mistral-embed's size is fixed
        return json_request(endpoint, "/v1/embeddings", body, timeout)

    def parse_response(
        self, endpoint: RetrievalEndpoint, response: HttpResponse, count: int
    ) -> EmbedBatch:
        if response.status >= 300:
            raise _CHAT.status_error(chat_endpoint(endpoint), response)
        try:
            data = load_json(response)
            found = indexed_vectors(data["data"], count)
            usage = data.get("usage")
            tokens = token_count(usage.get("prompt_tokens")) if isinstance(usage, dict) else None
        except PARSE_ERRORS as exc:
            raise invalid(endpoint, response, "Mistral embeddings response", exc) from exc
        return EmbedBatch(vectors=found, input_tokens=tokens)

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        return _CHAT.rate_limit_info(headers)
