"""Model names → where and how to send requests, read from the registry data file models.toml."""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from importlib import resources
from typing import Any

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.providers.catalog import (
    ModelTable,
    Naming,
    check_keys,
    entry_name,
    known_providers,
    model_entries,
    model_identity,
    parse_providers,
    reach,
    read_field,
    read_price,
)
from lm_deluge_cli.results import Usage

__all__ = [
    "WIRE_FORMATS",
    "ModelInfo",
    "ProviderInfo",
    "Registry",
    "load_registry",
    "parse_registry",
    "parse_user_models",
]

# The request/response shapes an adapter can speak; a provider names exactly one, and a model
# may name another of the same host (OpenAI models served only by the Responses API).
WIRE_FORMATS = frozenset(
    {
        "openai_chat",
        "openai_responses",
        "anthropic_messages",
        "gemini",
        "mistral",
        "cohere",
        "bedrock_anthropic",
    }
)

# The other wire formats a model may name, by its provider's: a host that serves both APIs.
_MODEL_WIRE_FORMATS = {"openai_chat": frozenset({"openai_responses"})}


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """How to reach one provider."""

    name: str
    wire_format: str
    base_url: str
    base_url_env: str
    api_key_env: str
    # Fraction off both prices through the provider's batch API; its models' default.
    batch_discount: float = 0.0


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What we know of a model: its prices (USD per million tokens) and capabilities."""

    id: str
    provider: str
    wire_id: str
    input_per_mtok: float | None = None
    # Prompt-cache reads, five-minute writes and one-hour writes (None: see cost()).
    cached_input_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None
    cache_write_1h_per_mtok: float | None = None
    output_per_mtok: float | None = None
    context_window: int | None = None
    reasoning: bool = False
    supports_json: bool = False
    supports_json_schema: bool = False
    supports_images: bool = False
    supports_pdf: bool = False
    supports_logprobs: bool = False
    # Anthropic models that take only adaptive thinking (no temperature/top_p/budgets).
    adaptive_thinking: bool = False
    batch_discount: float = 0.0
    # The adapter for this model when it is not its provider's ("" = the provider's).
    wire_format: str = ""

    def cost(self, usage: Usage, batch: bool = False) -> float | None:
        """The price of `usage`, or None when the model's prices are unknown.

        Cache reads are billed at the cached price, five-minute cache writes at the write
        price, one-hour writes at the one-hour price and the rest of the input at the input
        price. An absent cache price is the input price, except the one-hour price, which is
        the five-minute one. `batch` applies the batch discount.
        """
        if self.input_per_mtok is None or self.output_per_mtok is None:
            return None
        full = self.input_per_mtok
        write_price = _or(self.cache_write_per_mtok, full)
        # Reads and writes are parts of input_tokens: a provider's odd counts never bill a
        # token twice or make the cost negative.
        read = min(usage.cached_input_tokens, usage.input_tokens)
        written = min(usage.cache_write_tokens, usage.input_tokens - read)
        written_1h = min(usage.cache_write_1h_tokens, written)
        total = (
            (usage.input_tokens - read - written) * full
            + read * _or(self.cached_input_per_mtok, full)
            + (written - written_1h) * write_price
            + written_1h * _or(self.cache_write_1h_per_mtok, write_price)
            + usage.output_tokens * self.output_per_mtok
        )
        if batch:
            total *= 1.0 - self.batch_discount
        return total / 1_000_000


def _or(price: float | None, default: float) -> float:
    return default if price is None else price


# The data file's keys are the dataclass fields (a model's provider comes from its id).
_PROVIDER_KEYS = frozenset(f.name for f in fields(ProviderInfo)) - {"name"}
_MODEL_KEYS = frozenset(f.name for f in fields(ModelInfo)) - {"provider"} | {"aliases"}
_PRICE_KEYS = tuple(f.name for f in fields(ModelInfo) if f.name.endswith("_per_mtok"))
# Prices that only say what part of the input costs, so they need the input price.
_CACHE_PRICE_KEYS = ("cached_input_per_mtok", "cache_write_per_mtok", "cache_write_1h_per_mtok")
_FLAG_KEYS = tuple(f.name for f in fields(ModelInfo) if f.type == "bool")

_NAMING = Naming("model", "`lm-deluge models`", example="openai")


class Registry:
    """Providers and known models; `provider:model` resolves even for unknown models.

    A model found through `provider:ALIAS` keeps its entry's `id` (what `lm-deluge models`
    lists, and what its aliases belong to) and takes ALIAS as its `wire_id`.
    """

    def __init__(
        self,
        providers: dict[str, ProviderInfo],
        models: dict[str, ModelInfo],
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self.providers = providers
        self.table = ModelTable(models, aliases)

    @property
    def models(self) -> dict[str, ModelInfo]:
        """Known models by id, in data-file order."""
        return self.table.models

    def aliases(self, model_id: str) -> tuple[str, ...]:
        """The aliases of `model_id`, in the order they were added."""
        return self.table.aliases_of(model_id)

    def lookup(self, name: str) -> ModelInfo:
        """Resolve a model name: a known id, an alias or `provider:model`.

        `provider:NAME` where NAME is an alias of one of that provider's models (Anthropic's
        own `claude-sonnet-4-5`, say) is that model, with NAME sent on the wire as written;
        any other `provider:NAME` is a model the registry does not know.
        """
        known = self.table.find(name)
        if known is not None:
            return known
        provider, wire_id = self.table.split(
            name, _NAMING, self.providers, known_providers(self.providers)
        )
        # Aliases are unique across providers, so the alias table is the index; an alias
        # of another provider's model is only a name this provider may also serve.
        entry = self.table.by_alias(wire_id)
        if entry is not None and entry.provider == provider:
            return replace(entry, wire_id=wire_id)
        return ModelInfo(id=name, provider=provider, wire_id=wire_id)

    def provider(self, name: str) -> ProviderInfo:
        """The provider called `name` (KeyError when there is none)."""
        return self.providers[name]

    def iter_models(self, provider: str | None = None) -> Iterator[ModelInfo]:
        """Known models in data-file order, all of them or one provider's."""
        if provider is not None and provider not in self.providers:
            raise ConfigError(f"unknown provider {provider!r}; {known_providers(self.providers)}")
        for model in self.models.values():
            if provider is None or model.provider == provider:
                yield model

    def _add_model(self, spec: Any, where: str, taken: Container[str] | None = None) -> ModelInfo:
        """Validate one model entry and add it with its aliases; `where` names it in errors,
        and an id in `taken` (default: every known model's) is refused."""
        info, aliases = _parse_model(spec, self.providers, where)
        self.table.add(info, aliases, where, taken)
        return info


@functools.cache
def load_registry() -> Registry:
    """The built-in registry (parsed once per process)."""
    text = resources.files("lm_deluge_cli.providers").joinpath("models.toml").read_text("utf-8")
    return parse_registry(tomllib.loads(text), source="models.toml")


def parse_registry(data: Mapping[str, Any], source: str = "registry data") -> Registry:
    """Build a registry from parsed data-file tables, rejecting anything malformed.

    Errors (ConfigError) name `source` and the offending provider or model entry.
    """
    check_keys(data, frozenset({"providers", "models"}), source)
    registry = Registry(parse_providers(data, source, _parse_provider), {})
    for spec, where in model_entries(data, "models", source, "model"):
        registry._add_model(spec, where)
    return registry


def parse_user_models(
    entries: Sequence[Mapping[str, Any]], base: Registry | None = None, source: str = "job file"
) -> Registry:
    """`base` (default: the built-in registry) plus a job file's own model entries.

    Entries take the data file's model keys. One with a built-in id replaces that entry (to
    correct a price, say); its built-in aliases still lead to it. The base is not changed.
    """
    base = load_registry() if base is None else base
    registry = Registry(dict(base.providers), dict(base.models), base.table.aliases)
    seen: set[str] = set()
    for index, spec in enumerate(entries, start=1):
        where = entry_name(source, "model", spec, index)
        seen.add(registry._add_model(spec, where, seen).id)
    return registry


def _parse_provider(name: str, spec: Any, where: str) -> ProviderInfo:
    check_keys(spec, _PROVIDER_KEYS, where)
    wire_format = read_field(spec, "wire_format", where, str, "")
    if wire_format not in WIRE_FORMATS:
        raise ConfigError(
            f"{where}: wire_format {wire_format!r} is not one of {', '.join(sorted(WIRE_FORMATS))}"
        )
    base_url, base_url_env, api_key_env = reach(spec, where)
    return ProviderInfo(
        name=name,
        wire_format=wire_format,
        base_url=base_url,
        base_url_env=base_url_env,
        api_key_env=api_key_env,
        batch_discount=_discount(spec, where, 0.0),
    )


def _parse_model(
    spec: Any, providers: Mapping[str, ProviderInfo], where: str
) -> tuple[ModelInfo, list[str]]:
    model_id, provider, wire_id, aliases = model_identity(spec, _MODEL_KEYS, providers, where)
    fields: dict[str, Any] = {key: read_field(spec, key, where, bool, False) for key in _FLAG_KEYS}
    for key in _PRICE_KEYS:
        fields[key] = read_price(spec, key, where)
    full = fields["input_per_mtok"]
    for key in _CACHE_PRICE_KEYS:
        if fields[key] is not None and full is None:
            raise ConfigError(f"{where}: {key} needs an input_per_mtok")
    cached = fields["cached_input_per_mtok"]
    if cached is not None and full is not None and cached > full:
        raise ConfigError(
            f"{where}: cached_input_per_mtok needs an input_per_mtok at least as high"
        )
    wire_format = read_field(spec, "wire_format", where, str, "")
    own_format = providers[provider].wire_format
    if wire_format and wire_format != own_format:
        allowed = _MODEL_WIRE_FORMATS.get(own_format, frozenset())
        if wire_format not in allowed:
            choices = ", ".join(sorted({own_format, *allowed}))
            raise ConfigError(
                f"{where}: wire_format {wire_format!r} cannot be used with provider "
                f"{provider!r}; choose {choices}"
            )
    context = read_field(spec, "context_window", where, int)
    if context is not None and context <= 0:
        raise ConfigError(f"{where}: context_window must be positive, got {context!r}")
    info = ModelInfo(
        id=model_id,
        provider=provider,
        wire_id=wire_id,
        context_window=context,
        batch_discount=_discount(spec, where, providers[provider].batch_discount),
        wire_format=wire_format,
        **fields,
    )
    return info, aliases


def _discount(spec: Mapping[str, Any], where: str, default: float) -> float:
    value: float | None = read_field(spec, "batch_discount", where, float)
    if value is not None and not 0 <= value < 1:
        raise ConfigError(
            f"{where}: batch_discount is the fraction taken off (0 to 1), got {value}"
        )
    return default if value is None else value
