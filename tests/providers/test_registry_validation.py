"""The model registry's strict validation of models.toml data, and user model entries."""

from __future__ import annotations

from typing import Any

import pytest

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.providers.registry import (
    ModelInfo,
    Registry,
    load_registry,
    parse_registry,
    parse_user_models,
)
from lm_deluge_cli.results import Usage


@pytest.fixture
def registry() -> Registry:
    return load_registry()


# --- strict validation ---------------------------------------------------------------------

PROVIDER = {"wire_format": "openai_chat", "base_url": "http://127.0.0.1:1/v1"}


def model(**fields: Any) -> dict[str, Any]:
    return {"id": "local:m", "input_per_mtok": 1.0, "output_per_mtok": 2.0, **fields}


def data(*models: object, **provider: Any) -> dict[str, Any]:
    """A models.toml document; a model entry may be any TOML value, to test rejecting it."""
    return {"providers": {"local": {**PROVIDER, **provider}}, "models": list(models)}


@pytest.mark.parametrize(
    ("bad", "fragments"),
    [
        ({"providers": {}, "models": [], "extra": 1}, ["unknown key 'extra'"]),
        ({"providers": 3, "models": []}, ["providers must be a table"]),
        ({"providers": {}, "models": {}}, ["models must be an array of tables"]),
        (
            data(colour="red"),
            ["provider 'local'", "unknown key 'colour'", "known keys: api_key_env"],
        ),
        (
            data(wire_format="grpc"),
            ["provider 'local'", "wire_format 'grpc' is not one of", "openai_chat"],
        ),
        (data(base_url=""), ["provider 'local'", "base_url is required"]),
        (data(api_key_env=3), ["provider 'local'", "api_key_env must be a string, got 3"]),
        (data(batch_discount=1), ["provider 'local'", "batch_discount", "0 to 1"]),
        (
            data(model(pricee=1)),
            ["model 'local:m'", "unknown key 'pricee'", "known keys: adaptive_thinking, aliases"],
        ),
        (data(model(input_per_mtok="1.0")), ["model 'local:m'", "input_per_mtok must be a number"]),
        (
            data(model(output_per_mtok=True)),
            ["model 'local:m'", "output_per_mtok must be a number"],
        ),
        (
            data(model(output_per_mtok=float("nan"))),
            ["model 'local:m'", "output_per_mtok must be a number"],
        ),
        (data(model(input_per_mtok=-1)), ["model 'local:m'", "input_per_mtok cannot be negative"]),
        (
            data(model(cached_input_per_mtok=1.5)),
            ["model 'local:m'", "cached_input_per_mtok needs"],
        ),
        (
            data(model(input_per_mtok=None, cached_input_per_mtok=0.1)),
            ["cached_input_per_mtok needs"],
        ),
        (
            data(model(cache_write_per_mtok=-1.25)),
            ["model 'local:m'", "cache_write_per_mtok cannot be negative"],
        ),
        (
            data(model(cache_write_1h_per_mtok="2")),
            ["model 'local:m'", "cache_write_1h_per_mtok must be a number"],
        ),
        (
            data(model(input_per_mtok=None, cache_write_per_mtok=1.25)),
            ["cache_write_per_mtok needs an input_per_mtok"],
        ),
        (
            data(model(input_per_mtok=None, cache_write_1h_per_mtok=2)),
            ["cache_write_1h_per_mtok needs an input_per_mtok"],
        ),
        (data(model(context_window=1.5)), ["model 'local:m'", "context_window must be an integer"]),
        (data(model(context_window=0)), ["model 'local:m'", "context_window must be positive"]),
        (data(model(reasoning="yes")), ["model 'local:m'", "reasoning must be true or false"]),
        (data(model(supports_json=1)), ["model 'local:m'", "supports_json must be true or false"]),
        (data(model(batch_discount=-0.1)), ["model 'local:m'", "batch_discount"]),
        (data(model(wire_id=7)), ["model 'local:m'", "wire_id must be a string"]),
        (data(model(wire_format=1)), ["model 'local:m'", "wire_format must be a string"]),
        (
            data(model(wire_format="gemini")),
            ["model 'local:m'", "'gemini' cannot be used with provider 'local'", "openai_chat"],
        ),
        (
            data(model(wire_format="openai_responses"), wire_format="mistral"),
            ["'openai_responses' cannot be used", "choose mistral"],
        ),
        (data(model(aliases="m")), ["model 'local:m'", "aliases must be a list"]),
        (data(model(aliases=["a:b"])), ["model 'local:m'", "without ':'"]),
        (data(model(aliases=[""])), ["model 'local:m'", "without ':'"]),
        (data(model(), model()), ["model 'local:m'", "the id is listed twice"]),
        (
            data(model(aliases=["m"]), model(id="local:n", aliases=["m"])),
            ["model 'local:n'", "alias 'm' already names 'local:m'"],
        ),
        (
            data(model(id="other:m")),
            ["model 'other:m'", "unknown provider 'other'", "known providers: local"],
        ),
        (data(model(id="local")), ["model 'local'", "provider:model"]),
        (data(model(id="local:")), ["provider:model"]),
        (data({"input_per_mtok": 1.0}), ["model entry 1", "id must be written provider:model"]),
        (data("local:m"), ["model entry 1", "expected a table"]),
    ],
)
def test_parse_registry_rejects_malformed_data(bad: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_registry(bad, source="models.toml")
    message = str(info.value)
    assert message.startswith("models.toml")
    for fragment in fragments:
        assert fragment in message


def test_parse_registry_reads_every_field() -> None:
    registry = parse_registry(
        data(
            model(
                cached_input_per_mtok=0.25,
                cache_write_per_mtok=1.25,
                cache_write_1h_per_mtok=2,
                context_window=1000,
                supports_json=True,
                supports_json_schema=True,
                supports_images=True,
                supports_pdf=True,
                supports_logprobs=True,
                batch_discount=0.25,
                wire_format="openai_responses",
            ),
            model(id="local:n", input_per_mtok=1, output_per_mtok=3),
            batch_discount=0.5,
        )
    )
    assert registry.lookup("local:m") == ModelInfo(
        id="local:m",
        provider="local",
        wire_id="m",
        input_per_mtok=1.0,
        cached_input_per_mtok=0.25,
        cache_write_per_mtok=1.25,
        cache_write_1h_per_mtok=2.0,
        output_per_mtok=2.0,
        context_window=1000,
        supports_json=True,
        supports_json_schema=True,
        supports_images=True,
        supports_pdf=True,
        supports_logprobs=True,
        batch_discount=0.25,
        wire_format="openai_responses",
    )
    plain = registry.lookup("local:n")
    assert plain.wire_format == ""
    assert plain.batch_discount == 0.5
    assert isinstance(plain.input_per_mtok, float)
    assert not plain.reasoning and not plain.supports_json


# --- user entries ----------------------------------------------------------------------------


def test_user_models_add_to_the_built_in_registry(registry: Registry) -> None:
    extended = parse_user_models(
        [
            {
                "id": "openai:ft:gpt-4.1-mini:acme::abc123",
                "aliases": ["acme-mini"],
                "input_per_mtok": 0.8,
                "cached_input_per_mtok": 0.2,
                "output_per_mtok": 3.2,
                "supports_json": True,
            }
        ]
    )
    tuned = extended.lookup("acme-mini")
    assert tuned.wire_id == "ft:gpt-4.1-mini:acme::abc123"
    assert tuned.supports_json and not tuned.supports_logprobs
    # The provider's batch discount applies unless the entry names its own.
    assert tuned.cost(Usage(1_000_000, 1_000_000), batch=True) == pytest.approx(2.0)
    assert extended.lookup("gpt-4.1") is registry.lookup("gpt-4.1")
    # The built-in registry is untouched.
    with pytest.raises(ConfigError):
        registry.lookup("acme-mini")
    assert "openai:ft:gpt-4.1-mini:acme::abc123" not in registry.models


def test_a_user_entry_replaces_a_built_in_one_and_keeps_its_aliases(registry: Registry) -> None:
    extended = parse_user_models(
        [{"id": "openai:gpt-4.1", "input_per_mtok": 1.0, "output_per_mtok": 4.0}], registry
    )
    assert extended.lookup("gpt-4.1").input_per_mtok == 1.0
    assert extended.lookup("openai:gpt-4.1").output_per_mtok == 4.0
    assert registry.lookup("gpt-4.1").input_per_mtok == 2.0
    assert [m.id for m in extended.iter_models()] == [m.id for m in registry.iter_models()]


def test_a_user_entrys_alias_works_after_its_provider(registry: Registry) -> None:
    extended = parse_user_models(
        [
            {"id": "openai:ft:gpt-4.1-mini:acme::abc123", "aliases": ["acme-mini"]},
            {
                "id": "anthropic:claude-sonnet-4-5-20250929",
                "input_per_mtok": 2,
                "output_per_mtok": 9,
            },
        ],
        registry,
    )
    tuned = extended.lookup("openai:acme-mini")
    assert (tuned.id, tuned.wire_id) == ("openai:ft:gpt-4.1-mini:acme::abc123", "acme-mini")
    # A built-in alias leads to the entry that replaced its model, under the provider too.
    sonnet = extended.lookup("anthropic:claude-sonnet-4-5")
    assert (sonnet.wire_id, sonnet.input_per_mtok) == ("claude-sonnet-4-5", 2.0)
    assert extended.lookup("anthropic:acme-mini").cost(Usage(1, 1)) is None


def test_user_models_on_an_explicit_base() -> None:
    base = parse_registry(data(model()))
    extended = parse_user_models([model(id="local:n", aliases=["n"])], base, source="job.toml")
    assert extended.lookup("n").wire_id == "n"
    assert "local:n" not in base.models


@pytest.mark.parametrize(
    ("entries", "fragments"),
    [
        (
            [{"id": "nosuch:m"}],
            [
                "job file: model 'nosuch:m'",
                "unknown provider 'nosuch'",
                "known providers: anthropic",
            ],
        ),
        ([{"id": "openai:x", "price": 1}], ["job file: model 'openai:x'", "unknown key 'price'"]),
        (
            [{"id": "openai:x"}, {"id": "openai:x"}],
            ["job file: model 'openai:x'", "the id is listed twice"],
        ),
        (
            [{"id": "openai:x", "aliases": ["gpt-4.1"]}],
            ["alias 'gpt-4.1' already names 'openai:gpt-4.1'"],
        ),
        ([{"id": "openai:x", "input_per_mtok": "cheap"}], ["input_per_mtok must be a number"]),
        ([{"wire_id": "x"}], ["job file: model entry 1", "provider:model"]),
    ],
)
def test_user_models_are_validated_like_the_data_file(
    registry: Registry, entries: list[dict[str, Any]], fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_user_models(entries, registry)
    for fragment in fragments:
        assert fragment in str(info.value)
