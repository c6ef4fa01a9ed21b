"""Embedding and rerank model names → where and how to send requests, read from models.toml
beside this module, and resolved into endpoints the way chat models are."""

from __future__ import annotations

import difflib
import functools
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields
from importlib import resources
from typing import Any, TypeVar

from lm_deluge_cli.errors import ConfigError, MissingAPIKeyError
from lm_deluge_cli.providers.base_url import (
    base_url_source,
    check_base_url,
    header_safe,
    key_variable,
)
from lm_deluge_cli.providers.registry import check_keys, read_field
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


class _Kind:
    """The words that differ between the embedding and the rerank side, for messages."""

    def __init__(self, noun: str, article: str, api: str, flag: str, format_attr: str) -> None:
        self.noun = noun  # "embedding model"
        self.a_noun = f"{article} {noun}"  # "an embedding model"
        self.api = api  # "embeddings API"
        self.flag = flag  # "--embeddings"
        self.format_attr = format_attr  # "embed_format"

    def speaks(self, provider: RetrievalProvider) -> bool:
        return bool(getattr(provider, self.format_attr))


_EMBED = _Kind("embedding model", "an", "embeddings API", "--embeddings", "embed_format")
_RERANK = _Kind("rerank model", "a", "rerank API", "--rerank", "rerank_format")


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
        self.embedding_models = embedding_models
        self.rerank_models = rerank_models
        self._embedding_aliases = dict(embedding_aliases or {})
        self._rerank_aliases = dict(rerank_aliases or {})

    def embedding_model(self, name: str) -> EmbeddingModel:
        """Resolve an embedding model name: a known id, an alias, or any `provider:model`."""
        return _lookup(
            name,
            _EMBED,
            self.providers,
            self.embedding_models,
            self._embedding_aliases,
            (self.rerank_models, self._rerank_aliases, _RERANK),
            lambda model_id, provider, wire_id: EmbeddingModel(model_id, provider, wire_id),
        )

    def rerank_model(self, name: str) -> RerankModel:
        """Resolve a rerank model name: a known id, an alias, or any `provider:model`."""
        return _lookup(
            name,
            _RERANK,
            self.providers,
            self.rerank_models,
            self._rerank_aliases,
            (self.embedding_models, self._embedding_aliases, _EMBED),
            lambda model_id, provider, wire_id: RerankModel(model_id, provider, wire_id),
        )

    def iter_embedding_models(self) -> Iterator[EmbeddingModel]:
        """Known embedding models in data-file order."""
        yield from self.embedding_models.values()

    def iter_rerank_models(self) -> Iterator[RerankModel]:
        """Known rerank models in data-file order."""
        yield from self.rerank_models.values()

    def aliases(self, model_id: str) -> tuple[str, ...]:
        """The aliases of a known embedding or rerank model, in data-file order."""
        return tuple(
            alias
            for table in (self._embedding_aliases, self._rerank_aliases)
            for alias, target in table.items()
            if target == model_id
        )

    def base_url(
        self,
        provider: RetrievalProvider,
        override: str | None,
        env: Mapping[str, str] | None = None,
    ) -> str:
        """The given base_url, else $<base_url_env>, else the official default (no trailing /)."""
        if override:
            return override.rstrip("/")
        env = os.environ if env is None else env
        from_env = env.get(provider.base_url_env) if provider.base_url_env else None
        return (from_env or provider.base_url).rstrip("/")


def _lookup(
    name: str,
    kind: _Kind,
    providers: Mapping[str, RetrievalProvider],
    models: Mapping[str, _Model],
    aliases: Mapping[str, str],
    other: tuple[Mapping[str, Any], Mapping[str, str], _Kind],
    unknown: Callable[[str, str, str], _Model],
) -> _Model:
    canonical = aliases.get(name, name)
    if canonical in models:
        return models[canonical]
    other_models, other_aliases, other_kind = other
    if other_aliases.get(name, name) in other_models:
        raise ConfigError(f"{name!r} is {other_kind.a_noun}, not {kind.a_noun}")
    provider, sep, wire_id = name.partition(":")
    if not sep or not provider or not wire_id:
        close = difflib.get_close_matches(name, [*aliases, *models], n=3)
        hint = (
            f"did you mean {', '.join(close)}?"
            if close
            else f"`lm-deluge models {kind.flag}` lists them"
        )
        raise ConfigError(
            f"unknown {kind.noun} {name!r}: write it as provider:model or use a known name; {hint}"
        )
    capable = sorted(n for n, p in providers.items() if kind.speaks(p))
    if provider not in providers:
        raise ConfigError(
            f"unknown provider {provider!r} in {kind.noun} {name!r}; "
            f"providers with an {kind.api}: {', '.join(capable)}"
        )
    if not kind.speaks(providers[provider]):
        raise ConfigError(
            f"{provider} has no {kind.api} that lm-deluge can call, so {name!r} cannot be used "
            f"as {kind.a_noun}; providers with one: {', '.join(capable)}"
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
    specs = data.get("providers", {})
    if not isinstance(specs, Mapping):
        raise ConfigError(f"{source}: providers must be a table ([providers.NAME])")
    providers = {
        name: _parse_provider(name, spec, f"{source}: provider {name!r}")
        for name, spec in specs.items()
    }
    registry = RetrievalRegistry(providers, {}, {})
    for spec, where in _entries(data, "embedding_models", source):
        model, aliases = _parse_embedding(spec, providers, where)
        _add(model, aliases, registry.embedding_models, registry._embedding_aliases, where)
    for spec, where in _entries(data, "rerank_models", source):
        rerank, aliases = _parse_rerank(spec, providers, where)
        _add(rerank, aliases, registry.rerank_models, registry._rerank_aliases, where)
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
    registry = load_retrieval_registry()
    return _endpoint(name, registry.embedding_model(name), registry, base_url, api_key_env, env)


def resolve_rerank_endpoint(
    name: str,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    env: Mapping[str, str] | None = None,
) -> RetrievalEndpoint:
    """Resolve a rerank model name; raises MissingAPIKeyError naming the variable to set."""
    registry = load_retrieval_registry()
    return _endpoint(name, registry.rerank_model(name), registry, base_url, api_key_env, env)


def _endpoint(
    name: str,
    model: EmbeddingModel | RerankModel,
    registry: RetrievalRegistry,
    base_url: str | None,
    api_key_env: str | None,
    env: Mapping[str, str] | None,
) -> RetrievalEndpoint:
    env = os.environ if env is None else env
    provider = registry.providers[model.provider]
    # The same `env` for the base URL as for the key, so a caller's mapping is the whole truth.
    url = registry.base_url(provider, base_url, env)
    key_env = key_variable(url, provider.api_key_env, api_key_env)
    check_base_url(url, name, base_url_source(base_url, provider.base_url_env, env), key_env)
    api_key: str | None = None
    if key_env:
        # Stray whitespace (a pasted newline) would make an invalid Authorization header.
        api_key = (env.get(key_env) or "").strip() or None
        if api_key is None:
            raise MissingAPIKeyError(key_env, name)
        if not header_safe(api_key):
            # Name the variable, never the value.
            raise ConfigError(
                f"{key_env} (the key for {name}) contains spaces, control or non-ASCII "
                "characters, which an HTTP header cannot carry; check that it was pasted whole"
            )
    return RetrievalEndpoint(
        name=name,
        model=model,
        provider=provider,
        base_url=url,
        api_key=api_key,
        api_key_env=key_env,
        compatible=url != provider.base_url.rstrip("/"),
    )


# --- data-file validation -----------------------------------------------------------------------


def _entries(data: Mapping[str, Any], key: str, source: str) -> Iterator[tuple[Any, str]]:
    specs = data.get(key, [])
    if not isinstance(specs, list):
        raise ConfigError(f"{source}: {key} must be an array of tables ([[{key}]])")
    for index, spec in enumerate(specs, start=1):
        model_id = spec.get("id") if isinstance(spec, Mapping) else None
        label = key.removesuffix("s").replace("_", " ")  # "embedding model"
        yield spec, (f"{source}: {label} {model_id!r}" if model_id else f"{source}: {key} {index}")


def _parse_provider(name: str, spec: Any, where: str) -> RetrievalProvider:
    check_keys(spec, _PROVIDER_KEYS, where)
    base_url = read_field(spec, "base_url", where, str, "")
    if not base_url:
        raise ConfigError(f"{where}: base_url is required")
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
        base_url_env=read_field(spec, "base_url_env", where, str, ""),
        api_key_env=read_field(spec, "api_key_env", where, str, ""),
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
    """(id, provider, wire_id, aliases) of a model entry, checked."""
    check_keys(spec, allowed, where)
    model_id = read_field(spec, "id", where, str, "")
    provider, sep, wire_id = model_id.partition(":")
    if not sep or not provider or not wire_id:
        raise ConfigError(f"{where}: id must be written provider:model")
    if provider not in providers:
        raise ConfigError(
            f"{where}: unknown provider {provider!r}; known providers: {', '.join(providers)}"
        )
    if not kind.speaks(providers[provider]):
        raise ConfigError(f"{where}: provider {provider!r} has no {kind.format_attr}")
    aliases = spec.get("aliases", [])
    # A ":" would make an alias indistinguishable from a provider:model name.
    if not isinstance(aliases, list) or not all(
        isinstance(a, str) and a and ":" not in a for a in aliases
    ):
        raise ConfigError(f"{where}: aliases must be a list of names without ':', got {aliases!r}")
    return model_id, provider, read_field(spec, "wire_id", where, str, "") or wire_id, aliases


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
        input_per_mtok=_price(spec, "input_per_mtok", where),
        dimensions=_positive(spec, "dimensions", where),
        dimension_choices=choices,
        dimension_range=dimension_range,
        max_batch_inputs=_positive(spec, "max_batch_inputs", where) or 96,
        max_batch_tokens=_positive(spec, "max_batch_tokens", where),
        max_input_tokens=_positive(spec, "max_input_tokens", where),
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
        input_per_mtok=_price(spec, "input_per_mtok", where),
        per_search_usd=_price(spec, "per_search_usd", where),
        max_batch_documents=_positive(spec, "max_batch_documents", where) or 1000,
        max_document_tokens=_positive(spec, "max_document_tokens", where),
    )
    return model, aliases


def _add(
    model: _Model,
    aliases: list[str],
    models: dict[str, _Model],
    table: dict[str, str],
    where: str,
) -> None:
    if model.id in models:
        raise ConfigError(f"{where}: the id is listed twice")
    models[model.id] = model
    for alias in aliases:
        taken = table.get(alias, model.id)
        if taken != model.id:
            raise ConfigError(f"{where}: alias {alias!r} already names {taken!r}")
        table[alias] = model.id


def _price(spec: Mapping[str, Any], key: str, where: str) -> float | None:
    value: float | None = read_field(spec, key, where, float)
    if value is not None and value < 0:
        raise ConfigError(f"{where}: {key} cannot be negative, got {value!r}")
    return value


def _positive(spec: Mapping[str, Any], key: str, where: str) -> int | None:
    value: int | None = read_field(spec, key, where, int)
    if value is not None and value < 1:
        raise ConfigError(f"{where}: {key} must be positive, got {value!r}")
    return value


def _int_list(spec: Mapping[str, Any], key: str, where: str) -> list[int]:
    value = spec.get(key, [])
    if not isinstance(value, list) or not all(type(item) is int and item >= 1 for item in value):
        raise ConfigError(f"{where}: {key} must be a list of positive integers, got {value!r}")
    return value
