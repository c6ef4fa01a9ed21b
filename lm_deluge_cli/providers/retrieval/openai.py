"""OpenAI embeddings (`POST {base_url}/embeddings`), also used for OpenAI-compatible servers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lm_deluge_cli.errors import APIStatusError
from lm_deluge_cli.providers import openai_chat
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

__all__ = ["OpenAIEmbedAdapter"]


class OpenAIEmbedAdapter:
    """Builds embeddings requests and reads their responses.

    input_type is not sent: OpenAI's models embed documents and queries alike. Mistral's
    API has the same shape under other names: its adapter overrides the class attributes.
    """

    path = "/embeddings"
    dimensions_field = "dimensions"
    label = "embeddings response"

    def build_request(
        self,
        endpoint: RetrievalEndpoint,
        texts: Sequence[str],
        options: EmbedOptions,
        timeout: float,
    ) -> HttpRequest:
        # encoding_format is left at its default (float): the SDKs' base64 is not understood
        # by every compatible server.
        body: dict[str, Any] = {"model": endpoint.model.wire_id, "input": list(texts)}
        size = dimensions(endpoint, options)
        if size is not None:
            body[self.dimensions_field] = size
        return json_request(endpoint, self.path, body, timeout)

    def parse_response(
        self, endpoint: RetrievalEndpoint, response: HttpResponse, count: int
    ) -> EmbedBatch:
        if response.status >= 300:
            raise self.status_error(endpoint, response)
        try:
            data = load_json(response)
            vectors = indexed_vectors(data["data"], count)
            usage = data.get("usage")
            # Some compatible servers report no usage at all.
            tokens = token_count(usage.get("prompt_tokens")) if isinstance(usage, dict) else None
        except PARSE_ERRORS as exc:
            raise invalid(endpoint, response, self.label, exc) from exc
        return EmbedBatch(vectors=vectors, input_tokens=tokens)

    def status_error(self, endpoint: RetrievalEndpoint, response: HttpResponse) -> APIStatusError:
        return openai_chat.status_error(chat_endpoint(endpoint), response)

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        return openai_chat.rate_limit_info(headers)
