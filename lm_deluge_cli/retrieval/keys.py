"""Cache keys of vectors and relevance scores: what decides the answer, and nothing else
(not the base URL, the key, ids or metadata). Bump KEY_VERSION when that changes: older
entries then simply miss."""

from __future__ import annotations

import hashlib

import orjson

from lm_deluge_cli.providers.retrieval import EmbedOptions, RetrievalEndpoint

__all__ = ["KEY_VERSION", "embed_key", "rerank_key"]

KEY_VERSION = 1


def _key(kind: str, endpoint: RetrievalEndpoint, **fields: object) -> str:
    material = {
        "v": KEY_VERSION,
        "kind": kind,
        "provider": endpoint.provider.name,
        "model": endpoint.model.wire_id,
        **fields,
    }
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()


def embed_key(endpoint: RetrievalEndpoint, options: EmbedOptions, text: str) -> str:
    """One text's vector: the model, the size, the input type and the text."""
    return _key(
        "embedding",
        endpoint,
        dimensions=options.dimensions,
        input_type=options.input_type,
        text=text,
    )


def rerank_key(endpoint: RetrievalEndpoint, query: str, document: str) -> str:
    """One (query, document) relevance score of the model."""
    return _key("rerank", endpoint, query=query, document=document)
