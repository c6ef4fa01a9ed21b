"""Embedding and rerank adapters (one per wire format) and their model registry."""

from __future__ import annotations

from lm_deluge_cli.providers.base import registered
from lm_deluge_cli.providers.retrieval import (
    base,
    cohere,
    gemini,
    jina,
    mistral,
    openai,
    registry,
    voyage,
)
from lm_deluge_cli.providers.retrieval.base import *  # noqa: F403
from lm_deluge_cli.providers.retrieval.base import EmbedAdapter, RerankAdapter
from lm_deluge_cli.providers.retrieval.cohere import *  # noqa: F403
from lm_deluge_cli.providers.retrieval.cohere import CohereEmbedAdapter, CohereRerankAdapter
from lm_deluge_cli.providers.retrieval.gemini import *  # noqa: F403
from lm_deluge_cli.providers.retrieval.gemini import GeminiEmbedAdapter
from lm_deluge_cli.providers.retrieval.jina import *  # noqa: F403
from lm_deluge_cli.providers.retrieval.jina import JinaRerankAdapter
from lm_deluge_cli.providers.retrieval.mistral import *  # noqa: F403
from lm_deluge_cli.providers.retrieval.mistral import MistralEmbedAdapter
from lm_deluge_cli.providers.retrieval.openai import *  # noqa: F403
from lm_deluge_cli.providers.retrieval.openai import OpenAIEmbedAdapter
from lm_deluge_cli.providers.retrieval.registry import *  # noqa: F403
from lm_deluge_cli.providers.retrieval.voyage import *  # noqa: F403
from lm_deluge_cli.providers.retrieval.voyage import VoyageEmbedAdapter, VoyageRerankAdapter

__all__ = [
    *base.__all__,
    *cohere.__all__,
    *gemini.__all__,
    *jina.__all__,
    *mistral.__all__,
    *openai.__all__,
    *registry.__all__,
    *voyage.__all__,
    "embed_adapter_for",
    "rerank_adapter_for",
]

_EMBED_ADAPTERS: dict[str, EmbedAdapter] = {
    "openai": OpenAIEmbedAdapter(),
    "cohere": CohereEmbedAdapter(),
    "gemini": GeminiEmbedAdapter(),
    "voyage": VoyageEmbedAdapter(),
    "mistral": MistralEmbedAdapter(),
}
_RERANK_ADAPTERS: dict[str, RerankAdapter] = {
    "cohere": CohereRerankAdapter(),
    "voyage": VoyageRerankAdapter(),
    "jina": JinaRerankAdapter(),
}


def embed_adapter_for(format: str) -> EmbedAdapter:
    """The adapter that speaks the embeddings wire format `format`."""
    return registered(_EMBED_ADAPTERS, format, "embeddings adapter")


def rerank_adapter_for(format: str) -> RerankAdapter:
    """The adapter that speaks the rerank wire format `format`."""
    return registered(_RERANK_ADAPTERS, format, "rerank adapter")
