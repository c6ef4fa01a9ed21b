"""What the chat and the retrieval registries share: their data files read and checked (the
provider tables, a model entry's id, aliases and prices), and a model name resolved to a known
entry or to `provider:model`, a provider's model no entry describes."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Collection, Container, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from lm_deluge_cli.errors import ConfigError

__all__ = [
    "ModelTable",
    "Naming",
    "check_keys",
    "entry_name",
    "known_providers",
    "model_entries",
    "model_identity",
    "parse_providers",
    "reach",
    "read_field",
    "read_positive",
    "read_price",
]


class _Entry(Protocol):
    @property
    def id(self) -> str: ...


_M = TypeVar("_M", bound=_Entry)
_P = TypeVar("_P")


@dataclass(frozen=True, slots=True)
class Naming:
    """How messages name one kind of model."""

    noun: str  # "model", "embedding model"
    listing: str  # the command that lists the known ones
    # A provider to show a name under ("e.g. openai:NAME"); "" shows none.
    example: str = ""


class ModelTable(Generic[_M]):
    """Known models of one kind by id, in data-file order, and their aliases."""

    def __init__(
        self, models: dict[str, _M] | None = None, aliases: Mapping[str, str] | None = None
    ):
        self.models: dict[str, _M] = {} if models is None else models
        self.aliases: dict[str, str] = dict(aliases or {})

    def find(self, name: str) -> _M | None:
        """The model with the id or alias `name`, if there is one."""
        return self.models.get(self.aliases.get(name, name))

    def by_alias(self, alias: str) -> _M | None:
        """The model `alias` names, if it is an alias."""
        target = self.aliases.get(alias)
        return None if target is None else self.models.get(target)

    def aliases_of(self, model_id: str) -> tuple[str, ...]:
        """The aliases of `model_id`, in the order they were added."""
        return tuple(alias for alias, target in self.aliases.items() if target == model_id)

    def add(
        self, model: _M, aliases: list[str], where: str, taken: Container[str] | None = None
    ) -> None:
        """Add `model` with its aliases; an id in `taken` (default: the table's) is refused, and
        so is an alias of another model. `where` names the entry in errors."""
        if model.id in (self.models if taken is None else taken):
            raise ConfigError(f"{where}: the id is listed twice")
        self.models[model.id] = model
        for alias in aliases:
            owner = self.aliases.get(alias, model.id)
            if owner != model.id:
                raise ConfigError(f"{where}: alias {alias!r} already names {owner!r}")
            self.aliases[alias] = model.id

    def split(
        self, name: str, naming: Naming, providers: Container[str], choices: str
    ) -> tuple[str, str]:
        """(provider, wire id) of `name`, not a known model, written `provider:model`;
        otherwise a ConfigError that says what to write, `choices` naming the providers."""
        provider, sep, wire_id = name.partition(":")
        if not sep or not wire_id:
            close = difflib.get_close_matches(name, [*self.aliases, *self.models], n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"{naming.listing} lists them"
            example = f" (e.g. {naming.example}:{name})" if naming.example else ""
            raise ConfigError(
                f"unknown {naming.noun} {name!r}: write it as provider:model{example} "
                f"or use a known name; {hint}"
            )
        if provider not in providers:
            raise ConfigError(f"unknown provider {provider!r} in {naming.noun} {name!r}; {choices}")
        return provider, wire_id


def known_providers(providers: Collection[str]) -> str:
    return f"known providers: {', '.join(sorted(providers))}"


# --- data-file validation -----------------------------------------------------------------------


def parse_providers(
    data: Mapping[str, Any], source: str, parse: Callable[[str, Any, str], _P]
) -> dict[str, _P]:
    """The data file's [providers.NAME] tables, each read by `parse(name, spec, where)`."""
    specs = data.get("providers", {})
    if not isinstance(specs, Mapping):
        raise ConfigError(f"{source}: providers must be a table ([providers.NAME])")
    return {name: parse(name, spec, f"{source}: provider {name!r}") for name, spec in specs.items()}


def reach(spec: Mapping[str, Any], where: str) -> tuple[str, str, str]:
    """A provider table's (base_url, base_url_env, api_key_env); the base URL is required."""
    base_url = read_field(spec, "base_url", where, str, "")
    if not base_url:
        raise ConfigError(f"{where}: base_url is required")
    return (
        base_url,
        read_field(spec, "base_url_env", where, str, ""),
        read_field(spec, "api_key_env", where, str, ""),
    )


def model_entries(
    data: Mapping[str, Any], key: str, source: str, label: str
) -> Iterator[tuple[Any, str]]:
    """The data file's [[key]] entries, each with its name for errors."""
    specs = data.get(key, [])
    if not isinstance(specs, list):
        raise ConfigError(f"{source}: {key} must be an array of tables ([[{key}]])")
    for index, spec in enumerate(specs, start=1):
        yield spec, entry_name(source, label, spec, index)


def entry_name(source: str, label: str, spec: Any, index: int) -> str:
    """A model entry as errors name it: by its id, else by its place among its kind."""
    model_id = spec.get("id") if isinstance(spec, Mapping) else None
    return f"{source}: {label} {model_id!r}" if model_id else f"{source}: {label} entry {index}"


def model_identity(
    spec: Any, allowed: frozenset[str], providers: Collection[str], where: str
) -> tuple[str, str, str, list[str]]:
    """(id, provider, wire_id, aliases) of a model entry whose keys are `allowed`, checked."""
    check_keys(spec, allowed, where)
    model_id = read_field(spec, "id", where, str, "")
    provider, sep, wire_id = model_id.partition(":")
    if not sep or not provider or not wire_id:
        raise ConfigError(f"{where}: id must be written provider:model")
    if provider not in providers:
        raise ConfigError(f"{where}: unknown provider {provider!r}; {known_providers(providers)}")
    aliases = spec.get("aliases", [])
    # A ":" would make an alias indistinguishable from a provider:model name.
    if not isinstance(aliases, list) or not all(
        isinstance(a, str) and a and ":" not in a for a in aliases
    ):
        raise ConfigError(f"{where}: aliases must be a list of names without ':', got {aliases!r}")
    return model_id, provider, read_field(spec, "wire_id", where, str, "") or wire_id, aliases


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


def read_price(spec: Mapping[str, Any], key: str, where: str) -> float | None:
    value: float | None = read_field(spec, key, where, float)
    if value is not None and value < 0:
        raise ConfigError(f"{where}: {key} cannot be negative, got {value!r}")
    return value


def read_positive(spec: Mapping[str, Any], key: str, where: str) -> int | None:
    value: int | None = read_field(spec, key, where, int)
    if value is not None and value < 1:
        raise ConfigError(f"{where}: {key} must be positive, got {value!r}")
    return value
