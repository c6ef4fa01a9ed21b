"""Embedding and rerank model names → where and how to send requests, read from models.toml
beside this module. Names are looked up, and endpoints resolved, the way chat models' are
(providers/catalog.py, providers/base_url.py); what is this registry's own is its two kinds of
model, each with its limits, and which providers speak which."""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from importlib import resources
from typing import Any, TypeVar

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.providers.base_url import access
from lm_deluge_cli.providers.catalog import (
    ModelTable,
    Naming,
    check_keys,
    model_entries,
    model_identity,
    parse_providers,
    reach,
    read_field,
    read_positive,
    read_price,
)
from lm_deluge_cli.providers.retrieval.base import (
    EmbeddingModel,
    RerankModel,
    RetrievalEndpoint,
    RetrievalProvider,
)

__all__ = [
    "EMBED_FORMATS",
    "RERANK_FORMATS",
    "RetrievalRegistry",
    "load_retrieval_registry",
    "parse_retrieval_registry",
    "resolve_embedding_endpoint",
    "resolve_rerank_endpoint",
]

# The wire formats an adapter in this package speaks.
EMBED_FORMATS = frozenset({"openai", "cohere", "gemini", "voyage", "mistral"})
RERANK_FORMATS = frozenset({"cohere", "voyage", "jina"})

# The data file's keys are the dataclass fields (a model's provider comes from its id).
_PROVIDER_KEYS = frozenset(f.name for f in fields(RetrievalProvider)) - {"name"}
_EMBED_KEYS = frozenset(f.name for f in fields(EmbeddingModel)) - {"provider"} | {"aliases"}
_RERANK_KEYS = frozenset(f.name for f in fields(RerankModel)) - {"provider"} | {"aliases"}

_Model = TypeVar("_Model", EmbeddingModel, RerankModel)


@dataclass(frozen=True, slots=True)
class _Kind:
    """What differs between the embedding and the rerank side."""

    naming: Naming  # "embedding model", listed by `lm-deluge models --embeddings`
    article: str  # "an"
    api: str  # "embeddings API"
    format_attr: str  # the provider's field naming its wire format: "embed_format"

    @property
    def a_noun(self) -> str:
        return f"{self.article} {self.naming.noun}"

    def speaks(self, provider: RetrievalProvider) -> bool:
        return bool(getattr(provider, self.format_attr))


_EMBED = _Kind(
    Naming("embedding model", "`lm-deluge models --embeddings`"),
    "an",
    "embeddings API",
    "embed_format",
)
_RERANK = _Kind(
    Naming("rerank model", "`lm-deluge models --rerank`"), "a", "rerank API", "rerank_format"
)


class RetrievalRegistry:
    """Providers and known embedding and rerank models; `provider:model` resolves even for
    unknown models of a provider with the API."""

    def __init__(
        self,
        providers: dict[str, RetrievalProvider],
        embedding_models: dict[str, EmbeddingModel],
        rerank_models: dict[str, RerankModel],
        embedding_aliases: Mapping[str, str] | None = None,
        rerank_aliases: Mapping[str, str] | None = None,
    ) -> None:
        self.providers = providers
        self.embedding = ModelTable(embedding_models, embedding_aliases)
        self.rerank = ModelTable(rerank_models, rerank_aliases)

    @property
    def embedding_models(self) -> dict[str, EmbeddingModel]:
        """Known embedding models by id, in data-file order."""
        return self.embedding.models

    @property
    def rerank_models(self) -> dict[str, RerankModel]:
        """Known rerank models by id, in data-file order."""
        return self.rerank.models

    def embedding_model(self, name: str) -> EmbeddingModel:
        """Resolve an embedding model name: a known id, an alias, or any `provider:model`."""
        return self._lookup(name, _EMBED, self.embedding, (self.rerank, _RERANK), EmbeddingModel)

    def rerank_model(self, name: str) -> RerankModel:
        """Resolve a rerank model name: a known id, an alias, or any `provider:model`."""
        return self._lookup(name, _RERANK, self.rerank, (self.embedding, _EMBED), RerankModel)

    def iter_embedding_models(self) -> Iterator[EmbeddingModel]:
        """Known embedding models in data-file order."""
        yield from self.embedding_models.values()

    def iter_rerank_models(self) -> Iterator[RerankModel]:
        """Known rerank models in data-file order."""
        yield from self.rerank_models.values()

    def aliases(self, model_id: str) -> tuple[str, ...]:
        """The aliases of a known embedding or rerank model, in data-file order."""
        return self.embedding.aliases_of(model_id) + self.rerank.aliases_of(model_id)

    def _lookup(
        self,
        name: str,
        kind: _Kind,
        table: ModelTable[_Model],
        other: tuple[ModelTable[Any], _Kind],
        unknown: Callable[[str, str, str], _Model],
    ) -> _Model:
        known = table.find(name)
        if known is not None:
            return known
        other_table, other_kind = other
        if other_table.find(name) is not None:
            raise ConfigError(f"{name!r} is {other_kind.a_noun}, not {kind.a_noun}")
        capable = ", ".join(sorted(n for n, p in self.providers.items() if kind.speaks(p)))
        choices = f"providers with an {kind.api}: {capable}"
        provider, wire_id = table.split(name, kind.naming, self.providers, choices)
        if not kind.speaks(self.providers[provider]):
            raise ConfigError(
                f"{provider} has no {kind.api} that lm-deluge can call, so {name!r} cannot be "
                f"used as {kind.a_noun}; providers with one: {capable}"
            )
        return unknown(name, provider, wire_id)


@functools.cache
def load_retrieval_registry() -> RetrievalRegistry:
    """The built-in registry (parsed once per process)."""
    package = "lm_deluge_cli.providers.retrieval"
    text = resources.files(package).joinpath("models.toml").read_text("utf-8")
    return parse_retrieval_registry(tomllib.loads(text), source="retrieval models.toml")


def parse_retrieval_registry(
    data: Mapping[str, Any], source: str = "retrieval registry data"
) -> RetrievalRegistry:
    """Build a registry from parsed data-file tables, rejecting anything malformed.

    Errors (ConfigError) name `source` and the offending provider or model entry.
    """
    check_keys(data, frozenset({"providers", "embedding_models", "rerank_models"}), source)
    providers = parse_providers(data, source, _parse_provider)
    registry = RetrievalRegistry(providers, {}, {})
    for spec, where in model_entries(data, "embedding_models", source, "embedding model"):
        registry.embedding.add(*_parse_embedding(spec, providers, where), where)
    for spec, where in model_entries(data, "rerank_models", source, "rerank model"):
        registry.rerank.add(*_parse_rerank(spec, providers, where), where)
    return registry


def resolve_embedding_endpoint(
    name: str,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    env: Mapping[str, str] | None = None,
) -> RetrievalEndpoint:
    """Resolve an embedding model name; raises MissingAPIKeyError naming the variable to set.

    `api_key_env` None means the provider's variable (none at a ``mock://`` URL), "" means
    no key is sent.
    """
    model = load_retrieval_registry().embedding_model(name)
    return _endpoint(name, model, base_url, api_key_env, env)


def resolve_rerank_endpoint(
    name: str,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    env: Mapping[str, str] | None = None,
) -> RetrievalEndpoint:
    """Resolve a rerank model name; raises MissingAPIKeyError naming the variable to set."""
    model = load_retrieval_registry().rerank_model(name)
    return _endpoint(name, model, base_url, api_key_env, env)


def _endpoint(
    name: str,
    model: EmbeddingModel | RerankModel,
    base_url: str | None,
    api_key_env: str | None,
    env: Mapping[str, str] | None,
) -> RetrievalEndpoint:
    provider = load_retrieval_registry().providers[model.provider]
    reached = access(name, provider, base_url, api_key_env, env)
    return RetrievalEndpoint(name=name, model=model, provider=provider, **reached)


# --- data-file validation -----------------------------------------------------------------------


def _parse_provider(name: str, spec: Any, where: str) -> RetrievalProvider:
    check_keys(spec, _PROVIDER_KEYS, where)
    base_url, base_url_env, api_key_env = reach(spec, where)
    embed_format = read_field(spec, "embed_format", where, str, "")
    rerank_format = read_field(spec, "rerank_format", where, str, "")
    for key, value, allowed in (
        ("embed_format", embed_format, EMBED_FORMATS),
        ("rerank_format", rerank_format, RERANK_FORMATS),
    ):
        if value and value not in allowed:
            raise ConfigError(
                f"{where}: {key} {value!r} is not one of {', '.join(sorted(allowed))}"
            )
    if not embed_format and not rerank_format:
        raise ConfigError(f"{where}: give an embed_format, a rerank_format or both")
    return RetrievalProvider(
        name=name,
        base_url=base_url,
        base_url_env=base_url_env,
        api_key_env=api_key_env,
        embed_format=embed_format,
        rerank_format=rerank_format,
    )


def _identity(
    spec: Any,
    allowed: frozenset[str],
    providers: Mapping[str, RetrievalProvider],
    kind: _Kind,
    where: str,
) -> tuple[str, str, str, list[str]]:
    """(id, provider, wire_id, aliases) of a model entry, checked, its provider one with the
    kind's API."""
    identity = model_identity(spec, allowed, providers, where)
    provider = identity[1]
    if not kind.speaks(providers[provider]):
        raise ConfigError(f"{where}: provider {provider!r} has no {kind.format_attr}")
    return identity


def _parse_embedding(
    spec: Any, providers: Mapping[str, RetrievalProvider], where: str
) -> tuple[EmbeddingModel, list[str]]:
    model_id, provider, wire_id, aliases = _identity(spec, _EMBED_KEYS, providers, _EMBED, where)
    choices = tuple(_int_list(spec, "dimension_choices", where))
    if list(choices) != sorted(set(choices)):
        raise ConfigError(f"{where}: dimension_choices must be increasing, got {list(choices)}")
    span = _int_list(spec, "dimension_range", where)
    dimension_range: tuple[int, int] | None = None
    if span:
        if len(span) != 2 or span[0] > span[1]:
            raise ConfigError(f"{where}: dimension_range must be [lowest, highest], got {span}")
        dimension_range = (span[0], span[1])
    if choices and dimension_range is not None:
        raise ConfigError(f"{where}: give dimension_choices or dimension_range, not both")
    model = EmbeddingModel(
        id=model_id,
        provider=provider,
        wire_id=wire_id,
        input_per_mtok=read_price(spec, "input_per_mtok", where),
        dimensions=read_positive(spec, "dimensions", where),
        dimension_choices=choices,
        dimension_range=dimension_range,
        max_batch_inputs=read_positive(spec, "max_batch_inputs", where) or 96,
        max_batch_tokens=read_positive(spec, "max_batch_tokens", where),
        max_input_tokens=read_positive(spec, "max_input_tokens", where),
    )
    if (choices or dimension_range) and model.dimensions is None:
        raise ConfigError(f"{where}: a model with a choice of sizes needs its default dimensions")
    if model.dimensions is not None:
        try:
            model.check_dimensions(model.dimensions)
        except ConfigError as exc:
            raise ConfigError(f"{where}: the default dimensions are not allowed ({exc})") from None
    return model, aliases


def _parse_rerank(
    spec: Any, providers: Mapping[str, RetrievalProvider], where: str
) -> tuple[RerankModel, list[str]]:
    model_id, provider, wire_id, aliases = _identity(spec, _RERANK_KEYS, providers, _RERANK, where)
    model = RerankModel(
        id=model_id,
        provider=provider,
        wire_id=wire_id,
        input_per_mtok=read_price(spec, "input_per_mtok", where),
        per_search_usd=read_price(spec, "per_search_usd", where),
        max_batch_documents=read_positive(spec, "max_batch_documents", where) or 1000,
        max_document_tokens=read_positive(spec, "max_document_tokens", where),
    )
    return model, aliases


def _int_list(spec: Mapping[str, Any], key: str, where: str) -> list[int]:
    value = spec.get(key, [])
    if not isinstance(value, list) or not all(type(item) is int and item >= 1 for item in value):
        raise ConfigError(f"{where}: {key} must be a list of positive integers, got {value!r}")
    return value
