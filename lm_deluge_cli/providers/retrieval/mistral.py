"""Mistral embeddings (`POST {base_url}/v1/embeddings`)."""

from __future__ import annotations

from lm_deluge_cli.providers.mistral import MistralAdapter
from lm_deluge_cli.providers.retrieval.openai import OpenAIEmbedAdapter

__all__ = ["MistralEmbedAdapter"]


class MistralEmbedAdapter(OpenAIEmbedAdapter):
    """Mistral embeddings: OpenAI's shape, with `output_dimension` (codestral-embed;
    mistral-embed's size is fixed), a host-root base URL and Mistral's errors.

    input_type is not sent: Mistral's models embed documents and queries alike.
    """

    path = "/v1/embeddings"
    label = "Mistral embeddings response"
    # The chat adapter's error mapping (402, a month's tokens spent) and rate-limit headers
    # are the workspace's, whichever endpoint answered.
    chat = MistralAdapter()
    dimensions_field = "output_dimension"
