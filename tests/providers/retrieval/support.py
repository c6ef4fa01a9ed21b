"""Helpers shared by the retrieval adapter tests: endpoints with a canary key, responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from lm_deluge_cli.errors import APIError
from lm_deluge_cli.providers.retrieval import (
    RetrievalEndpoint,
    load_retrieval_registry,
)
from lm_deluge_cli.types import HttpRequest, HttpResponse

# Key-shaped, so that the redaction of key-like tokens is exercised too; never a real key.
KEY = "sk-canary-Rt7Qw3Lm9Np5Vb2Kd4Zx81"


def embed_endpoint(
    name: str, *, key: str | None = KEY, base_url: str | None = None
) -> RetrievalEndpoint:
    """The endpoint of a registry embedding model, with the canary key."""
    registry = load_retrieval_registry()
    model = registry.embedding_model(name)
    provider = registry.providers[model.provider]
    url = (base_url or provider.base_url).rstrip("/")
    return RetrievalEndpoint(
        name=name,
        model=model,
        provider=provider,
        base_url=url,
        api_key=key,
        api_key_env=provider.api_key_env,
        compatible=url != provider.base_url,
    )


def rerank_endpoint(name: str, *, key: str | None = KEY) -> RetrievalEndpoint:
    """The endpoint of a registry rerank model, with the canary key."""
    registry = load_retrieval_registry()
    model = registry.rerank_model(name)
    provider = registry.providers[model.provider]
    return RetrievalEndpoint(
        name=name,
        model=model,
        provider=provider,
        base_url=provider.base_url,
        api_key=key,
        api_key_env=provider.api_key_env,
    )


def ok(body: Any, headers: Mapping[str, str] | None = None) -> HttpResponse:
    """A 200 with this JSON body (bytes are sent as they are)."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return HttpResponse(200, {"content-type": "application/json", **(headers or {})}, raw)


def failed(status: int, body: Any, headers: Mapping[str, str] | None = None) -> HttpResponse:
    """An error response with this JSON body (bytes are sent as they are)."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return HttpResponse(status, {"content-type": "application/json", **(headers or {})}, raw)


def sent(request: HttpRequest) -> dict[str, Any]:
    """The JSON body of a built request."""
    body: dict[str, Any] = orjson.loads(request.body)
    return body


def assert_keyless(error: APIError) -> None:
    """Neither the message nor the repr of an error shows the key."""
    for text in (str(error), repr(error), error.message):
        assert KEY not in text
        assert KEY[:12] not in text
