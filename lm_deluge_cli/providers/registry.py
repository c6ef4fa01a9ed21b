"""Model names → where and how to send requests, read from the registry data file models.toml."""

from __future__ import annotations

import difflib
import functools
import math
import os
import tomllib
from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from importlib import resources
from typing import Any

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.results import Usage

__all__ = [
    "WIRE_FORMATS",
    "ModelInfo",
    "ProviderInfo",
    "Registry",
    "check_keys",
    "load_registry",
    "parse_registry",
    "parse_user_models",
    "read_field",
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
        self.models = models
        self._aliases: dict[str, str] = dict(aliases or {})

    def add_alias(self, alias: str, model_id: str) -> None:
        """Make `alias` resolve to the model `model_id`."""
        self._aliases[alias] = model_id

    def aliases(self, model_id: str) -> tuple[str, ...]:
        """The aliases of `model_id`, in the order they were added."""
        return tuple(alias for alias, target in self._aliases.items() if target == model_id)

    def lookup(self, name: str) -> ModelInfo:
        """Resolve a model name: a known id, an alias or `provider:model`.

        `provider:NAME` where NAME is an alias of one of that provider's models (Anthropic's
        own `claude-sonnet-4-5`, say) is that model, with NAME sent on the wire as written;
        any other `provider:NAME` is a model the registry does not know.
        """
        canonical = self._aliases.get(name, name)
        if canonical in self.models:
            return self.models[canonical]
        provider, sep, wire_id = name.partition(":")
        if not sep or not wire_id:
            close = difflib.get_close_matches(name, [*self._aliases, *self.models], n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "`lm-deluge models` lists them"
            raise ConfigError(
                f"unknown model {name!r}: write it as provider:model "
                f"(e.g. openai:{name}) or use a known name; {hint}"
            )
        if provider not in self.providers:
            raise ConfigError(
                f"unknown provider {provider!r} in model {name!r}; {_known(self.providers)}"
            )
        # Aliases are unique across providers, so the alias table is the index; an alias
        # of another provider's model is only a name this provider may also serve.
        target = self._aliases.get(wire_id)
        entry = self.models.get(target) if target is not None else None
        if entry is not None and entry.provider == provider:
            return replace(entry, wire_id=wire_id)
        return ModelInfo(id=name, provider=provider, wire_id=wire_id)

    def provider(self, name: str) -> ProviderInfo:
        """The provider called `name` (KeyError when there is none)."""
        return self.providers[name]

    def iter_models(self, provider: str | None = None) -> Iterator[ModelInfo]:
        """Known models in data-file order, all of them or one provider's."""
        if provider is not None and provider not in self.providers:
            raise ConfigError(f"unknown provider {provider!r}; {_known(self.providers)}")
        for model in self.models.values():
            if provider is None or model.provider == provider:
                yield model

    def base_url(
        self, provider: ProviderInfo, override: str | None, env: Mapping[str, str] | None = None
    ) -> str:
        """The job's base_url, else $<PROVIDER>_BASE_URL, else the official default.

        The variable is read from `env` (default: os.environ); trailing slashes are dropped.
        """
        if override:
            return override.rstrip("/")
        env = os.environ if env is None else env
        if provider.base_url_env:
            from_env = env.get(provider.base_url_env)
            if from_env:
                return from_env.rstrip("/")
        return provider.base_url.rstrip("/")

    def _add_model(self, spec: Any, where: str, taken_ids: Container[str]) -> ModelInfo:
        """Validate one model entry and add it with its aliases; `where` names it in errors."""
        info, aliases = _parse_model(spec, self.providers, where)
        if info.id in taken_ids:
            raise ConfigError(f"{where}: the id is listed twice")
        self.models[info.id] = info
        for alias in aliases:
            taken = self._aliases.get(alias, info.id)
            if taken != info.id:
                raise ConfigError(f"{where}: alias {alias!r} already names {taken!r}")
            self._aliases[alias] = info.id
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
    provider_specs = data.get("providers", {})
    if not isinstance(provider_specs, Mapping):
        raise ConfigError(f"{source}: providers must be a table ([providers.NAME])")
    providers = {
        name: _parse_provider(name, spec, f"{source}: provider {name!r}")
        for name, spec in provider_specs.items()
    }
    model_specs = data.get("models", [])
    if not isinstance(model_specs, list):
        raise ConfigError(f"{source}: models must be an array of tables ([[models]])")
    registry = Registry(providers, {})
    for index, spec in enumerate(model_specs, start=1):
        registry._add_model(spec, _entry_name(source, spec, index), registry.models)
    return registry


def parse_user_models(
    entries: Sequence[Mapping[str, Any]], base: Registry | None = None, source: str = "job file"
) -> Registry:
    """`base` (default: the built-in registry) plus a job file's own model entries.

    Entries take the data file's model keys. One with a built-in id replaces that entry (to
    correct a price, say); its built-in aliases still lead to it. The base is not changed.
    """
    base = load_registry() if base is None else base
    registry = Registry(dict(base.providers), dict(base.models), base._aliases)
    seen: set[str] = set()
    for index, spec in enumerate(entries, start=1):
        seen.add(registry._add_model(spec, _entry_name(source, spec, index), seen).id)
    return registry


def _entry_name(source: str, spec: Any, index: int) -> str:
    model_id = spec.get("id") if isinstance(spec, Mapping) else None
    return f"{source}: model {model_id!r}" if model_id else f"{source}: model entry {index}"


def _known(providers: Mapping[str, ProviderInfo]) -> str:
    return f"known providers: {', '.join(sorted(providers))}"


def _parse_provider(name: str, spec: Any, where: str) -> ProviderInfo:
    check_keys(spec, _PROVIDER_KEYS, where)
    wire_format = read_field(spec, "wire_format", where, str, "")
    if wire_format not in WIRE_FORMATS:
        raise ConfigError(
            f"{where}: wire_format {wire_format!r} is not one of {', '.join(sorted(WIRE_FORMATS))}"
        )
    base_url = read_field(spec, "base_url", where, str, "")
    if not base_url:
        raise ConfigError(f"{where}: base_url is required")
    return ProviderInfo(
        name=name,
        wire_format=wire_format,
        base_url=base_url,
        base_url_env=read_field(spec, "base_url_env", where, str, ""),
        api_key_env=read_field(spec, "api_key_env", where, str, ""),
        batch_discount=_discount(spec, where, 0.0),
    )


def _parse_model(
    spec: Any, providers: Mapping[str, ProviderInfo], where: str
) -> tuple[ModelInfo, list[str]]:
    check_keys(spec, _MODEL_KEYS, where)
    model_id = read_field(spec, "id", where, str, "")
    provider, sep, wire_id = model_id.partition(":")
    if not sep or not provider or not wire_id:
        raise ConfigError(f"{where}: id must be written provider:model")
    if provider not in providers:
        raise ConfigError(f"{where}: unknown provider {provider!r}; {_known(providers)}")
    fields: dict[str, Any] = {key: read_field(spec, key, where, bool, False) for key in _FLAG_KEYS}
    for key in _PRICE_KEYS:
        fields[key] = price = read_field(spec, key, where, float)
        if price is not None and price < 0:
            raise ConfigError(f"{where}: {key} cannot be negative, got {price!r}")
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
    aliases = spec.get("aliases", [])
    # A ":" would make an alias indistinguishable from a provider:model name.
    if not isinstance(aliases, list) or not all(
        isinstance(a, str) and a and ":" not in a for a in aliases
    ):
        raise ConfigError(f"{where}: aliases must be a list of names without ':', got {aliases!r}")
    info = ModelInfo(
        id=model_id,
        provider=provider,
        wire_id=read_field(spec, "wire_id", where, str, "") or wire_id,
        context_window=context,
        batch_discount=_discount(spec, where, providers[provider].batch_discount),
        wire_format=wire_format,
        **fields,
    )
    return info, aliases


def check_keys(spec: Any, allowed: frozenset[str], where: str) -> None:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a table, got {spec!r}")
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(allowed))}"
        )


_KINDS = {str: "a string", bool: "true or false", int: "an integer", float: "a number"}


def read_field(
    spec: Mapping[str, Any], key: str, where: str, kind: type, default: Any = None
) -> Any:
    """spec[key] checked to be of `kind` (an int is accepted as a float), else `default`."""
    value: Any = spec.get(key)
    if value is None:
        return default
    accepted = (int, float) if kind is float else (kind,)
    # bool is an int subclass, and `true` is never a price or a size.
    wrong = isinstance(value, bool) != (kind is bool) or type(value) not in accepted
    if wrong or (kind is float and not math.isfinite(value)):
        raise ConfigError(f"{where}: {key} must be {_KINDS[kind]}, got {value!r}")
    return float(value) if kind is float else value


def _discount(spec: Mapping[str, Any], where: str, default: float) -> float:
    value: float | None = read_field(spec, "batch_discount", where, float)
    if value is not None and not 0 <= value < 1:
        raise ConfigError(
            f"{where}: batch_discount is the fraction taken off (0 to 1), got {value}"
        )
    return default if value is None else value
