"""The cache keys of vectors and scores: what changes them, what does not, and their value."""

from __future__ import annotations

import dataclasses

from lm_deluge_cli.providers.retrieval import (
    EmbedOptions,
    resolve_embedding_endpoint,
    resolve_rerank_endpoint,
)
from lm_deluge_cli.retrieval.keys import embed_key, rerank_key

ENV = {"OPENAI_API_KEY": "sk-one", "CO_API_KEY": "co-one"}


def test_an_embedding_key_covers_the_model_size_input_type_and_text_only() -> None:
    endpoint = resolve_embedding_endpoint("openai:text-embedding-3-small", env=ENV)
    key = embed_key(endpoint, EmbedOptions(dimensions=256), "hello")
    elsewhere = dataclasses.replace(endpoint, base_url="http://127.0.0.1:9/v1", api_key="sk-2")
    assert embed_key(elsewhere, EmbedOptions(dimensions=256), "hello") == key
    assert embed_key(endpoint, EmbedOptions(dimensions=512), "hello") != key
    assert embed_key(endpoint, EmbedOptions(dimensions=256, input_type="query"), "hello") != key
    assert embed_key(endpoint, EmbedOptions(dimensions=256), "hello!") != key
    large = resolve_embedding_endpoint("openai:text-embedding-3-large", env=ENV)
    assert embed_key(large, EmbedOptions(dimensions=256), "hello") != key


def test_a_rerank_key_covers_the_model_query_and_document_only() -> None:
    endpoint = resolve_rerank_endpoint("cohere:rerank-v3.5", env=ENV)
    key = rerank_key(endpoint, "cats", "cats purr")
    assert rerank_key(dataclasses.replace(endpoint, api_key="co-2"), "cats", "cats purr") == key
    assert rerank_key(endpoint, "dogs", "cats purr") != key
    assert rerank_key(endpoint, "cats", "cats purr.") != key


def test_keys_are_pinned() -> None:
    # A change here silently empties every user's cache: bump KEY_VERSION on purpose instead.
    embed = resolve_embedding_endpoint("openai:text-embedding-3-small", env=ENV)
    rerank = resolve_rerank_endpoint("cohere:rerank-v3.5", env=ENV)
    assert embed_key(embed, EmbedOptions(), "hello") == EMBED_HELLO
    assert rerank_key(rerank, "cats", "cats purr") == RERANK_CATS


EMBED_HELLO = "11d1e21f738db4d58df4bff773491baf8b84a184933c3bbacbb3f44b60340157"
RERANK_CATS = "256455bc9eebed8f16bcee8e3180a5e65e89d21d9f5642546f6ab3266aa76489"
