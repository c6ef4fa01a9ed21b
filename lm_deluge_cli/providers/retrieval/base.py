"""The contract of the embedding and rerank adapters (pure functions over data, no I/O): the
endpoint and model values, the base classes that build and read the requests alike, and the
pieces of response checking the wire formats share."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from lm_deluge_cli.errors import APIStatusError, ConfigError, status_error_class
from lm_deluge_cli.headers import parse_retry_after
from lm_deluge_cli.providers.base import Endpoint, error_object, error_text
from lm_deluge_cli.providers.parts import bearer_json_request, count, read_body
from lm_deluge_cli.providers.registry import ModelInfo, ProviderInfo
from lm_deluge_cli.redaction import redact_keys
from lm_deluge_cli.types import HttpRequest, HttpResponse, RateLimitInfo

__all__ = [
    "INPUT_TYPES",
    "ChatErrors",
    "EmbedAdapter",
    "EmbedBatch",
    "EmbedOptions",
    "EmbeddingModel",
    "RerankAdapter",
    "RerankBatch",
    "RerankModel",
    "RetrievalEndpoint",
    "RetrievalProvider",
]

_Batch = TypeVar("_Batch")

# What EmbedOptions.input_type may say; each adapter maps it to its provider's names.
INPUT_TYPES = frozenset({"document", "query"})


@dataclass(frozen=True, slots=True)
class RetrievalProvider:
    """How to reach one provider's embeddings and rerank APIs."""

    name: str
    # The official default, as in the chat registry: OpenAI's, Voyage's and Jina's end in /v1;
    # Cohere's, Gemini's and Mistral's are host roots.
    base_url: str
    base_url_env: str  # "" = none
    api_key_env: str  # "" = no key sent
    embed_format: str = ""  # "openai" | "cohere" | "gemini" | "voyage" | "mistral" | "" (none)
    rerank_format: str = ""  # "cohere" | "voyage" | "jina" | "" (none)


@dataclass(frozen=True, slots=True)
class EmbeddingModel:
    """What we know of an embedding model: its price (USD per million tokens) and limits."""

    id: str  # "provider:wire-id"
    provider: str
    wire_id: str
    input_per_mtok: float | None = None
    dimensions: int | None = None  # the default vector size
    dimension_choices: tuple[int, ...] = ()  # the exact sizes --dimensions may take
    dimension_range: tuple[int, int] | None = None  # or any size in [lo, hi]
    max_batch_inputs: int = 96  # texts per request
    max_batch_tokens: int | None = None  # summed tokens per request
    max_input_tokens: int | None = None  # tokens per text

    def check_dimensions(self, n: int) -> None:
        """Raise ConfigError unless the model can return vectors of size `n`.

        A model we know nothing about (no sizes recorded) is given the benefit of the doubt.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"{self.id}: dimensions must be a positive integer, got {n!r}")
        if self.dimension_choices:
            if n not in self.dimension_choices:
                sizes = ", ".join(str(c) for c in self.dimension_choices)
                raise ConfigError(f"{self.id}: dimensions must be one of {sizes}, got {n}")
        elif self.dimension_range is not None:
            lo, hi = self.dimension_range
            if not lo <= n <= hi:
                raise ConfigError(f"{self.id}: dimensions must be from {lo} to {hi}, got {n}")
        elif self.dimensions is not None and n != self.dimensions:
            raise ConfigError(
                f"{self.id}: this model's size is fixed at {self.dimensions}; "
                f"it cannot return {n} dimensions (leave dimensions out)"
            )

    @property
    def sizable(self) -> bool:
        """Whether a dimensions parameter may be sent (a choice of sizes, or nothing known)."""
        known = bool(self.dimension_choices) or self.dimension_range is not None
        return known or self.dimensions is None

    def cost(self, input_tokens: int) -> float | None:
        """The price of `input_tokens`, or None when the model's price is unknown."""
        if self.input_per_mtok is None:
            return None
        return input_tokens * self.input_per_mtok / 1_000_000


@dataclass(frozen=True, slots=True)
class RerankModel:
    """What we know of a rerank model: its price and limits."""

    id: str
    provider: str
    wire_id: str
    input_per_mtok: float | None = None  # token-priced (Voyage, Jina)
    # Search-unit-priced (Cohere: one search unit is one query with up to 100 documents).
    per_search_usd: float | None = None
    max_batch_documents: int = 1000  # documents per request
    max_document_tokens: int | None = None

    def cost(self, input_tokens: int | None, search_units: int | None) -> float | None:
        """The price of one request's usage; None when a price or the count it needs is
        unknown."""
        if self.input_per_mtok is None and self.per_search_usd is None:
            return None
        total = 0.0
        if self.input_per_mtok is not None:
            if input_tokens is None:
                return None
            total += input_tokens * self.input_per_mtok / 1_000_000
        if self.per_search_usd is not None:
            if search_units is None:
                return None
            total += search_units * self.per_search_usd
        return total


@dataclass(frozen=True, slots=True)
class RetrievalEndpoint:
    """One resolved model: where requests go and with which key (the key stays out of repr)."""

    name: str  # as the user wrote it
    model: EmbeddingModel | RerankModel
    provider: RetrievalProvider
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str = ""
    # base_url is not the provider's official one (an OpenAI-compatible server).
    compatible: bool = False


@dataclass(frozen=True, slots=True)
class EmbedOptions:
    """How to embed: the vector size, and whether the texts are documents or queries."""

    dimensions: int | None = None
    input_type: str | None = None  # "document" | "query" | None


@dataclass(frozen=True, slots=True)
class EmbedBatch:
    """What an embeddings response holds."""

    vectors: list[list[float]]  # in input order
    input_tokens: int | None  # None when the provider reports no usage (Gemini)


@dataclass(frozen=True, slots=True)
class RerankBatch:
    """What a rerank response holds."""

    # (index into the request's documents, relevance score), one per document, by index.
    scores: list[tuple[int, float]]
    input_tokens: int | None
    search_units: int | None


class ChatErrors(Protocol):
    """The chat adapter of the same API: its error mapping and rate-limit headers hold for
    the API's embeddings and rerank endpoints too."""

    def status_error(self, endpoint: Endpoint, response: HttpResponse) -> APIStatusError: ...

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo: ...


class _Adapter(ABC, Generic[_Batch]):
    """What every embeddings and rerank adapter does alike: the request a JSON POST of its
    body, the response read after its status is checked, errors classified the way its
    API's chat adapter classifies them. A subclass says what is its wire format's own."""

    path: ClassVar[str] = ""  # where the requests go, after the base URL
    label: ClassVar[str] = ""  # what errors call the response ("Jina rerank response")
    # None: a provider with no chat adapter (Voyage, Jina), whose errors are read by status
    # and FastAPI's detail, and who documents no rate-limit headers.
    chat: ClassVar[ChatErrors | None] = None

    def parse_response(
        self, endpoint: RetrievalEndpoint, response: HttpResponse, count: int
    ) -> _Batch:
        """What a 2xx response holds for `count` inputs; raises an `APIError` for an error
        response or a body that is not this API's answer (key redacted)."""
        return read_body(
            chat_endpoint(endpoint),
            response,
            self.label,
            self._status_error,
            lambda data: self.batch(_object(data), count),
        )

    def rate_limit_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        """What the provider's rate-limit headers say."""
        return RateLimitInfo() if self.chat is None else self.chat.rate_limit_info(headers)

    def request(
        self, endpoint: RetrievalEndpoint, body: Mapping[str, Any], timeout: float
    ) -> HttpRequest:
        """`body` as a JSON POST to `base_url + path`, the key as a Bearer token (if any)."""
        return bearer_json_request(chat_endpoint(endpoint), self.path, body, timeout)

    @abstractmethod
    def batch(self, data: dict[str, Any], count: int) -> _Batch:
        """What a 2xx body holds for `count` inputs; raises one of PARSE_ERRORS for a body
        that is not this API's answer."""

    def _status_error(self, endpoint: Endpoint, response: HttpResponse) -> APIStatusError:
        if self.chat is not None:
            return self.chat.status_error(endpoint, response)
        message, code = error_text(response.body, endpoint.api_key)
        detail = _detail(response.body)
        if detail is not None:
            message = redact_keys(detail, endpoint.api_key)
        return status_error_class(response.status)(
            f"{response.status}: {message}",
            status_code=response.status,
            retry_after=parse_retry_after(response.headers),
            code=code,
        )


class EmbedAdapter(_Adapter[EmbedBatch]):
    """Speaks one embeddings wire format: its body, and what its answer holds (`batch`)."""

    def build_request(
        self,
        endpoint: RetrievalEndpoint,
        texts: Sequence[str],
        options: EmbedOptions,
        timeout: float,
    ) -> HttpRequest:
        """The HTTP request embedding `texts`."""
        return self.request(endpoint, self.body(endpoint, texts, options), timeout)

    @abstractmethod
    def body(
        self, endpoint: RetrievalEndpoint, texts: Sequence[str], options: EmbedOptions
    ) -> dict[str, Any]:
        """The request's JSON body."""


class RerankAdapter(_Adapter[RerankBatch]):
    """Speaks one rerank wire format: its body, and what its answer holds (`batch`)."""

    # The field that says how many results to return: every document, so every one is scored.
    top_field: ClassVar[str] = "top_n"

    def build_request(
        self,
        endpoint: RetrievalEndpoint,
        query: str,
        documents: Sequence[str],
        timeout: float,
    ) -> HttpRequest:
        """The HTTP request scoring every document (none of them sent back)."""
        return self.request(endpoint, self.body(endpoint, query, documents), timeout)

    def body(
        self, endpoint: RetrievalEndpoint, query: str, documents: Sequence[str]
    ) -> dict[str, Any]:
        """The request's JSON body: what every rerank API takes."""
        return {
            "model": endpoint.model.wire_id,
            "query": query,
            "documents": list(documents),
            self.top_field: len(documents),
        }


# --- shared pieces for the adapters --------------------------------------------------------------


def chat_endpoint(endpoint: RetrievalEndpoint) -> Endpoint:
    """The endpoint as the chat helpers take it, so their error mapping is reused, not copied.

    They read the key (to redact it) and nothing model-specific.
    """
    model = endpoint.model
    provider = endpoint.provider
    return Endpoint(
        name=endpoint.name,
        model=ModelInfo(id=model.id, provider=model.provider, wire_id=model.wire_id),
        provider=ProviderInfo(
            name=provider.name,
            wire_format="",
            base_url=provider.base_url,
            base_url_env=provider.base_url_env,
            api_key_env=provider.api_key_env,
        ),
        base_url=endpoint.base_url,
        api_key=endpoint.api_key,
        api_key_env=endpoint.api_key_env,
        compatible=endpoint.compatible,
    )


def input_type(options: EmbedOptions, names: Mapping[str, str]) -> str | None:
    """The provider's name for options.input_type (None when none was asked for)."""
    if options.input_type is None:
        return None
    if options.input_type not in INPUT_TYPES:
        raise ConfigError(f"input_type must be document or query, got {options.input_type!r}")
    return names[options.input_type]


def dimensions(endpoint: RetrievalEndpoint, options: EmbedOptions) -> int | None:
    """The vector size to ask for: None when not asked, or when the model's size is fixed
    (models of one size reject the parameter, even with their own size).

    The size itself is checked once, up front, with `EmbeddingModel.check_dimensions`.
    """
    model = endpoint.model
    if options.dimensions is None:
        return None
    if isinstance(model, EmbeddingModel) and not model.sizable:
        return None
    return options.dimensions


def vector(raw: Any) -> list[float]:
    """One embedding as a list of floats; raises TypeError for anything else."""
    if not isinstance(raw, list) or not raw:
        raise TypeError("an embedding is not a non-empty list of numbers")
    if all(type(x) is float for x in raw):
        return raw
    if all(type(x) is float or type(x) is int for x in raw):
        return [float(x) for x in raw]
    raise TypeError("an embedding holds something other than numbers")


def vectors(raw: Any, expected: int) -> list[list[float]]:
    """A list of embeddings already in input order, checked: `expected` of one size."""
    if not isinstance(raw, list):
        raise TypeError("the embeddings are not a list")
    if len(raw) != expected:
        raise ValueError(f"{len(raw)} embeddings for {expected} texts")
    out = [vector(item) for item in raw]
    if len({len(v) for v in out}) > 1:
        raise ValueError("the embeddings are not all of one size")
    return out


def indexed_vectors(items: Any, expected: int) -> list[list[float]]:
    """OpenAI-style ``data`` items (``{"index", "embedding"}``) in input order, checked: one
    per index from 0 to expected - 1."""
    if not isinstance(items, list):
        raise TypeError("data is not a list")
    if len(items) != expected:
        raise ValueError(f"{len(items)} embeddings for {expected} texts")
    placed: list[list[float] | None] = [None] * expected
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise TypeError("a data item is not an object")
        index = _index(item.get("index", position), expected)
        if placed[index] is not None:
            raise ValueError(f"index {index} appears twice")
        placed[index] = item["embedding"]
    return vectors(placed, expected)


def scores(items: Any, expected: int) -> list[tuple[int, float]]:
    """Rerank results (``{"index", "relevance_score"}``) by document index, checked: one per
    document."""
    if not isinstance(items, list):
        raise TypeError("the results are not a list")
    if len(items) != expected:
        raise ValueError(f"{len(items)} scores for {expected} documents")
    seen: dict[int, float] = {}
    for item in items:
        if not isinstance(item, dict):
            raise TypeError("a result is not an object")
        index = _index(item["index"], expected)
        if index in seen:
            raise ValueError(f"index {index} appears twice")
        score = item["relevance_score"]
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise TypeError("a relevance_score is not a number")
        if not math.isfinite(score):
            raise ValueError("a relevance_score is not finite")
        seen[index] = float(score)
    return sorted(seen.items())


def token_count(value: Any) -> int | None:
    """A usage count, or None when the provider left it out."""
    return None if value is None else count(value)


def _index(value: Any, expected: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"index {value!r} is not an integer")
    if not 0 <= value < expected:
        raise ValueError(f"index {value} is out of range for {expected} inputs")
    return value


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError(f"the body is a JSON {type(data).__name__}, not an object")
    return data


def _detail(body: bytes) -> str | None:
    detail = error_object(body).get("detail")
    return detail if isinstance(detail, str) and detail else None
