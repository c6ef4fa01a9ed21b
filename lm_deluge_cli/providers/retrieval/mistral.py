"""Mistral embeddings (`POST {base_url}/v1/embeddings`)."""

from __future__ import annotations

from collections.abc import Mapping

from lm_deluge_cli.errors import APIStatusError
from lm_deluge_cli.providers.mistral import MistralAdapter
from lm_deluge_cli.providers.retrieval.base import RetrievalEndpoint, chat_endpoint
from lm_deluge_cli.providers.retrieval.openai import OpenAIEmbedAdapter
from lm_deluge_cli.types import HttpResponse, RateLimitInfo

__all__ = ["MistralEmbedAdapter"]

# The chat adapter's error mapping (402, a month's tokens spent) and rate-limit headers are
# the workspace's, whichever endpoint answered.
_CHAT = MistralAdapter()


class MistralEmbedAdapter(OpenAIEmbedAdapter):
    """Mistral embeddings: OpenAI's shape, with `output_dimension` (codestral-embed;
    mistral-embed's size is fixed), a host-root base URL and Mistral's errors.

    input_type is not sent: Mistral's models embed documents and queries alike.
    """

    path = "/v1/embeddings"
    dimensions_field = "output_dimension"
    label = "Mistral embeddings response"

    def status_error(self, endpoint: RetrievalEndpoint, response: HttpResponse) -> APIStatusError:
        return _CHAT.status_error(chat_endpoint(endpoint), response)

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        return _CHAT.rate_limit_info(headers)
