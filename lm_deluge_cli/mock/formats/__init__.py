"""The wire formats the mock provider speaks, and the URL paths that reach each one.

One server answers every format. Each provider also has a path prefix, so providers whose
paths collide (OpenAI and Mistral both use ``/v1/chat/completions``) can share a server,
and a model entry's ``base_url`` is simply the server's root plus that prefix:

=========  ==================  ==================================================
provider   base_url            paths answered
=========  ==================  ==================================================
openai     ``ROOT/v1``         ``/v1/chat/completions``, ``/chat/completions``,
                               ``/openai/v1/chat/completions``; the Responses API at
                               ``/v1/responses``, ``/responses``,
                               ``/openai/v1/responses``
anthropic  ``ROOT/anthropic``  ``/anthropic/v1/messages``, ``/v1/messages``
gemini     ``ROOT/gemini``     ``/gemini/v1beta/models/{model}:generateContent``
                               (also ``v1``, and without the prefix)
mistral    ``ROOT/mistral``    ``/mistral/v1/chat/completions``
cohere     ``ROOT/cohere``     ``/cohere/v2/chat``, ``/v2/chat``
bedrock    ``ROOT/bedrock``    ``/bedrock/model/{modelId}/invoke``,
                               ``/model/{modelId}/invoke``
voyage     ``ROOT/voyage/v1``  (embeddings and rerank only, below)
jina       ``ROOT/jina/v1``    (rerank only, below)
=========  ==================  ==================================================

Embeddings and rerank, answered by the same simulator (`formats.embeddings`,
`formats.cohere_embed`, `formats.gemini_embed`, `formats.rerank`):

=========  ======================================================================
provider   paths answered
=========  ======================================================================
openai     ``/v1/embeddings``, ``/embeddings``, ``/openai/v1/embeddings``
mistral    ``/mistral/v1/embeddings``
cohere     ``/cohere/v2/embed``, ``/v2/embed``; ``/cohere/v2/rerank``, ``/v2/rerank``
gemini     ``/gemini/v1beta/models/{model}:batchEmbedContents`` and ``:embedContent``
           (also ``v1``, and without the prefix)
voyage     ``/voyage/v1/embeddings``, ``/voyage/v1/rerank``
jina       ``/jina/v1/rerank``, ``/v1/rerank`` (the in-process ``mock`` provider's)
=========  ======================================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import unquote

from lm_deluge_cli.mock.formats.anthropic import AnthropicFormat
from lm_deluge_cli.mock.formats.base import AnyFormat, WireFormat
from lm_deluge_cli.mock.formats.bedrock import BedrockFormat
from lm_deluge_cli.mock.formats.cohere import CohereFormat
from lm_deluge_cli.mock.formats.cohere_embed import CohereEmbed
from lm_deluge_cli.mock.formats.dialects import JinaDialect, VoyageDialect
from lm_deluge_cli.mock.formats.embeddings import (
    MistralEmbeddings,
    OpenAIEmbeddings,
    VoyageEmbeddings,
)
from lm_deluge_cli.mock.formats.gemini import GeminiFormat
from lm_deluge_cli.mock.formats.gemini_embed import GeminiBatchEmbed, GeminiEmbed
from lm_deluge_cli.mock.formats.mistral import MistralFormat
from lm_deluge_cli.mock.formats.openai import OpenAIFormat
from lm_deluge_cli.mock.formats.openai_responses import OpenAIResponsesFormat
from lm_deluge_cli.mock.formats.rerank import CohereRerank, JinaRerank, VoyageRerank

__all__ = [
    "BASE_PATHS",
    "ENDPOINTS",
    "FORMATS",
    "OPENAI",
    "OPENAI_RESPONSES",
    "Route",
    "WireFormat",
    "base_url",
    "match_route",
]

OPENAI = OpenAIFormat()
# Served under OpenAI's base URL, next to its Chat Completions.
OPENAI_RESPONSES = OpenAIResponsesFormat()
# Each provider's own format, by provider name (the names BASE_PATHS uses).
FORMATS: Mapping[str, WireFormat] = {
    fmt.name: fmt
    for fmt in (
        OPENAI,
        AnthropicFormat(),
        GeminiFormat(),
        MistralFormat(),
        CohereFormat(),
        BedrockFormat(),
    )
}

_VOYAGE, _JINA = VoyageDialect(), JinaDialect()
# The embeddings and rerank APIs, by format name; each refuses and fails as its provider's
# chat does (Voyage and Jina, which have none here, as `formats.dialects` says).
ENDPOINTS: Mapping[str, AnyFormat] = {
    fmt.name: fmt
    for fmt in (
        OpenAIEmbeddings(OPENAI),
        MistralEmbeddings(FORMATS["mistral"]),
        CohereEmbed(FORMATS["cohere"]),
        CohereRerank(FORMATS["cohere"]),
        GeminiBatchEmbed(FORMATS["gemini"]),
        GeminiEmbed(FORMATS["gemini"]),
        VoyageEmbeddings(_VOYAGE),
        VoyageRerank(_VOYAGE),
        JinaRerank(_JINA),
    )
}

# Every format the server speaks, by format name.
_BY_NAME: Mapping[str, AnyFormat] = {
    **FORMATS,
    OPENAI_RESPONSES.name: OPENAI_RESPONSES,
    **ENDPOINTS,
}

# What to append to the server's root for each provider's base_url: the adapters add the
# rest (OpenAI's base URL ends in /v1, the others are host roots).
BASE_PATHS: Mapping[str, str] = {
    "openai": "/v1",
    "anthropic": "/anthropic",
    "gemini": "/gemini",
    "mistral": "/mistral",
    "cohere": "/cohere",
    "bedrock": "/bedrock",
    "voyage": "/voyage/v1",
    "jina": "/jina/v1",
}

# (format name, path pattern); a "model" group is the model the URL names.
_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("openai", re.compile(r"(?:/openai)?(?:/v1)?/chat/completions")),
    ("openai_responses", re.compile(r"(?:/openai)?(?:/v1)?/responses")),
    ("mistral", re.compile(r"/mistral/v1/chat/completions")),
    ("anthropic", re.compile(r"(?:/anthropic)?/v1/messages")),
    ("gemini", re.compile(r"(?:/gemini)?/v1(?:beta)?/models/(?P<model>[^/:]+):generateContent")),
    ("cohere", re.compile(r"(?:/cohere)?/v2/chat")),
    ("bedrock", re.compile(r"(?:/bedrock)?/model/(?P<model>[^/]+)/invoke")),
    ("openai_embeddings", re.compile(r"(?:/openai)?(?:/v1)?/embeddings")),
    ("mistral_embeddings", re.compile(r"/mistral/v1/embeddings")),
    ("voyage_embeddings", re.compile(r"/voyage/v1/embeddings")),
    ("cohere_embed", re.compile(r"(?:/cohere)?/v2/embed")),
    ("cohere_rerank", re.compile(r"(?:/cohere)?/v2/rerank")),
    ("voyage_rerank", re.compile(r"/voyage/v1/rerank")),
    ("jina_rerank", re.compile(r"(?:/jina)?/v1/rerank")),
    (
        "gemini_batch_embed",
        re.compile(r"(?:/gemini)?/v1(?:beta)?/models/(?P<model>[^/:]+):batchEmbedContents"),
    ),
    ("gemini_embed", re.compile(r"(?:/gemini)?/v1(?:beta)?/models/(?P<model>[^/:]+):embedContent")),
)


class Route(NamedTuple):
    """Where a request goes: its wire format (chat, embeddings or rerank), and the model its
    URL names (if any)."""

    format: AnyFormat
    model: str | None = None


def match_route(path: str) -> Route | None:
    """The provider route a URL path (without its query) reaches, or None."""
    for name, pattern in _ROUTES:
        match = pattern.fullmatch(path)
        if match is not None:
            model = match.groupdict().get("model")
            # Bedrock model ids and ARNs arrive percent-encoded ("%3A", "%2F").
            return Route(_BY_NAME[name], unquote(model) if model is not None else None)
    return None


def base_url(root: str, provider: str) -> str:
    """The ``base_url`` a model entry of ``provider`` uses to reach a mock server at ``root``."""
    return root.rstrip("/") + BASE_PATHS[provider]
