"""OpenAI embeddings (`POST {base_url}/embeddings`), also used for OpenAI-compatible servers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from lm_deluge_cli.providers.openai_chat import OpenAIChatAdapter
from lm_deluge_cli.providers.retrieval.base import (
    ChatErrors,
    EmbedAdapter,
    EmbedBatch,
    EmbedOptions,
    RetrievalEndpoint,
    dimensions,
    indexed_vectors,
    token_count,
)

__all__ = ["OpenAIEmbedAdapter"]


class OpenAIEmbedAdapter(EmbedAdapter):
    """Builds embeddings requests and reads their responses.

    input_type is not sent: OpenAI's models embed documents and queries alike. Mistral's and
    Voyage's APIs have the same shape under other names: their adapters override the class
    attributes (and Voyage's, its own fields).
    """

    path = "/embeddings"
    label = "embeddings response"
    chat: ClassVar[ChatErrors | None] = OpenAIChatAdapter()
    dimensions_field = "dimensions"

    def body(
        self, endpoint: RetrievalEndpoint, texts: Sequence[str], options: EmbedOptions
    ) -> dict[str, Any]:
        # encoding_format is left at its default (float): the SDKs' base64 is not understood
        # by every compatible server.
        body: dict[str, Any] = {"model": endpoint.model.wire_id, "input": list(texts)}
        size = dimensions(endpoint, options)
        if size is not None:
            body[self.dimensions_field] = size
        return body

    def batch(self, data: dict[str, Any], count: int) -> EmbedBatch:
        return EmbedBatch(
            vectors=indexed_vectors(data["data"], count), input_tokens=self.tokens(data)
        )

    def tokens(self, data: Mapping[str, Any]) -> int | None:
        """The input tokens the response reports, if any."""
        usage = data.get("usage")
        # Some compatible servers report no usage at all.
        return token_count(usage.get("prompt_tokens")) if isinstance(usage, dict) else None
