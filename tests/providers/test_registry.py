"""The model registry: lookups, prices, batch cost, parsing and iter_models."""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources
from typing import Any, TypedDict

import pytest

from lm_deluge_cli.errors import ConfigError, UsageError
from lm_deluge_cli.providers.base_url import base_url_for
from lm_deluge_cli.providers.registry import (
    WIRE_FORMATS,
    ModelInfo,
    ProviderInfo,
    Registry,
    load_registry,
    parse_registry,
)
from lm_deluge_cli.results import Usage

OFFICIAL = "https://api.openai.com/v1"


def models_toml() -> dict[str, Any]:
    text = resources.files("lm_deluge_cli.providers").joinpath("models.toml").read_text("utf-8")
    return tomllib.loads(text)


@pytest.fixture
def registry() -> Registry:
    return load_registry()


# --- lookup ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "model_id", "wire_id"),
    [
        ("openai:gpt-4.1-mini", "openai:gpt-4.1-mini", "gpt-4.1-mini"),
        ("gpt-4.1-mini", "openai:gpt-4.1-mini", "gpt-4.1-mini"),
        ("o3", "openai:o3", "o3"),
        ("mock:fast", "mock:fast", "fast"),
    ],
)
def test_lookup_by_id_and_alias(registry: Registry, name: str, model_id: str, wire_id: str) -> None:
    info = registry.lookup(name)
    assert info.id == model_id
    assert info.wire_id == wire_id
    assert info.input_per_mtok is not None
    assert info is registry.lookup(model_id)


def test_reasoning_flag_comes_from_the_data(registry: Registry) -> None:
    assert registry.lookup("o3").reasoning
    assert registry.lookup("gpt-5-mini").reasoning
    assert not registry.lookup("gpt-4.1").reasoning
    assert not registry.lookup("openai:some-future-model").reasoning


@pytest.mark.parametrize(
    ("name", "provider", "wire_id"),
    [
        ("openai:gpt-9-turbo", "openai", "gpt-9-turbo"),
        ("openai:meta-llama/Llama-3.1-8B-Instruct", "openai", "meta-llama/Llama-3.1-8B-Instruct"),
        ("openai:qwen2.5:7b", "openai", "qwen2.5:7b"),
        ("mock:slow", "mock", "slow"),
    ],
)
def test_unknown_model_of_a_known_provider_passes_through(
    registry: Registry, name: str, provider: str, wire_id: str
) -> None:
    info = registry.lookup(name)
    assert info == ModelInfo(id=name, provider=provider, wire_id=wire_id)
    assert info.input_per_mtok is None
    assert info.cost(Usage(1000, 1000)) is None


# --- a provider's own names: provider:ALIAS ----------------------------------------------

# Every alias in the data file, with the entry it belongs to.
ALIASES = [(spec, alias) for spec in models_toml()["models"] for alias in spec.get("aliases", [])]
PRICES = [f.name for f in dataclasses.fields(ModelInfo) if f.name.endswith("_per_mtok")]
FLAGS = [f.name for f in dataclasses.fields(ModelInfo) if f.type == "bool"]


@pytest.mark.parametrize("form", ["ALIAS", "provider:ALIAS"])
@pytest.mark.parametrize(
    ("spec", "alias"), ALIASES, ids=[f"{spec['id']}={alias}" for spec, alias in ALIASES]
)
def test_every_alias_finds_its_entry_bare_and_after_its_provider(
    registry: Registry, spec: dict[str, Any], alias: str, form: str
) -> None:
    provider, _, after_colon = spec["id"].partition(":")
    name = alias if form == "ALIAS" else f"{provider}:{alias}"
    info = registry.lookup(name)
    # A bare alias sends the entry's own model name; provider:ALIAS sends ALIAS as written.
    wire_id = spec.get("wire_id", after_colon) if form == "ALIAS" else alias
    assert (info.id, info.provider, info.wire_id) == (spec["id"], provider, wire_id)
    for key in PRICES:
        assert getattr(info, key) == spec.get(key), key
    for key in FLAGS:
        assert getattr(info, key) == spec.get(key, False), key
    # Everything but the name on the wire is the entry's.
    entry = registry.models[spec["id"]]
    assert dataclasses.replace(info, wire_id=entry.wire_id) == entry


@pytest.mark.parametrize(("spec", "alias"), ALIASES)
def test_an_alias_after_another_provider_is_an_unknown_model(
    registry: Registry, spec: dict[str, Any], alias: str
) -> None:
    other = "mistral" if spec["id"].startswith("openai:") else "openai"
    assert registry.lookup(f"{other}:{alias}") == ModelInfo(f"{other}:{alias}", other, alias)


def test_a_providers_own_alias_is_priced_and_sends_thinking(registry: Registry) -> None:
    info = registry.lookup("anthropic:claude-sonnet-4-5")
    assert (info.id, info.wire_id) == ("anthropic:claude-sonnet-4-5-20250929", "claude-sonnet-4-5")
    assert info.reasoning and info.supports_pdf
    assert info.cost(Usage(1_000_000, 1_000_000)) == pytest.approx(3.0 + 15.0)
    # The same name under OpenAI is OpenAI's business: nothing is known of it.
    other = registry.lookup("openai:claude-sonnet-4-5")
    assert (other.id, other.wire_id, other.reasoning) == (
        "openai:claude-sonnet-4-5",
        "claude-sonnet-4-5",
        False,
    )
    assert other.cost(Usage(1, 1)) is None


@pytest.mark.parametrize(
    ("name", "fragments"),
    [
        ("nosuch:claude", ["unknown provider 'nosuch'", "known providers: anthropic, bedrock"]),
        (":gpt-4o", ["unknown provider ''"]),
        ("gpt-9", ["unknown model 'gpt-9'", "as provider:model", "did you mean gpt-5"]),
        ("openai:", ["unknown model 'openai:'", "provider:model"]),
        ("", ["unknown model ''", "lm-deluge models"]),
    ],
)  # fmt: skip
def test_lookup_errors_say_what_to_write(
    registry: Registry, name: str, fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        registry.lookup(name)
    for fragment in fragments:
        assert fragment in str(info.value)


# --- cost ------------------------------------------------------------------------------

MINI = ModelInfo(
    id="openai:gpt-4.1-mini",
    provider="openai",
    wire_id="gpt-4.1-mini",
    input_per_mtok=0.40,
    cached_input_per_mtok=0.10,
    output_per_mtok=1.60,
)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (Usage(), 0.0),
        (Usage(input_tokens=1_000_000), 0.40),
        (Usage(output_tokens=1_000_000), 1.60),
        (Usage(input_tokens=1_000_000, output_tokens=500_000), 1.20),
        # Cached tokens are part of input_tokens, billed at the cached price.
        (Usage(input_tokens=1_000_000, cached_input_tokens=500_000), 0.25),
        (Usage(input_tokens=1_000_000, cached_input_tokens=1_000_000), 0.10),
        # More cached than input (a provider quirk) cannot make the cost negative.
        (Usage(input_tokens=1_000, cached_input_tokens=5_000), 0.0001),
        # Reasoning tokens are already in output_tokens: not billed twice.
        (Usage(output_tokens=1_000_000, reasoning_tokens=800_000), 1.60),
        (Usage(input_tokens=2006, output_tokens=300, cached_input_tokens=1920), 0.0007064),
    ],
)
def test_cost(usage: Usage, expected: float) -> None:
    cost = MINI.cost(usage)
    assert cost is not None
    assert cost == pytest.approx(expected)


# Anthropic's published prices for Claude Sonnet 4.5: reads 0.1x the input price, five-minute
# writes 1.25x, one-hour writes 2x.
SONNET = ModelInfo(
    id="anthropic:claude-sonnet-4-5-20250929",
    provider="anthropic",
    wire_id="claude-sonnet-4-5-20250929",
    input_per_mtok=3.0,
    cached_input_per_mtok=0.30,
    cache_write_per_mtok=3.75,
    cache_write_1h_per_mtok=6.0,
    output_per_mtok=15.0,
    batch_discount=0.5,
)
NO_CACHE_PRICES = ModelInfo("x:y", "x", "y", input_per_mtok=1.0, output_per_mtok=2.0)
M = 1_000_000


def tokens(inp: int, out: int = 0, read: int = 0, write: int = 0, write_1h: int = 0) -> Usage:
    """Usage by its parts: `read`, `write` and `write_1h` (one of `write`) are in `inp`."""
    return Usage(
        inp, out, cached_input_tokens=read, cache_write_tokens=write, cache_write_1h_tokens=write_1h
    )


@pytest.mark.parametrize(
    ("model", "usage", "batch", "expected"),
    [
        (SONNET, tokens(M), False, 3.0),
        (SONNET, tokens(M, read=M), False, 0.30),
        (SONNET, tokens(M, write=M), False, 3.75),
        (SONNET, tokens(M, write=M, write_1h=M), False, 6.0),
        # 4M in: 1M read, 2M written (0.5M of them for an hour), 1M plain; 1M out.
        (SONNET, tokens(4 * M, M, M, 2 * M, M // 2), False, 3.0 + 0.30 + 5.625 + 3.0 + 15.0),
        (SONNET, tokens(4 * M, M, M, 2 * M, M // 2), True, (3.0 + 0.30 + 5.625 + 3.0 + 15.0) / 2),
        # Odd counts are clipped to the input: no token is billed twice.
        (SONNET, tokens(M, read=600_000, write=600_000), False, 0.6 * 0.30 + 0.4 * 3.75),
        (SONNET, tokens(M, write=200_000, write_1h=500_000), False, 0.8 * 3.0 + 0.2 * 6.0),
        # OpenAI's GPT-4.1 mini: reads are cheaper, writes cost the input price.
        (MINI, tokens(M, read=M // 2, write=M // 2), False, 0.05 + 0.20),
        (MINI, tokens(M, write=M, write_1h=M // 2), False, 0.40),
        # No cache prices at all: every input token at the input price.
        (NO_CACHE_PRICES, tokens(M, M, M // 4, M // 4, 1), False, 3.0),
    ],
)
def test_cost_of_prompt_cache_reads_and_writes(
    model: ModelInfo, usage: Usage, batch: bool, expected: float
) -> None:
    assert model.cost(usage, batch=batch) == pytest.approx(expected)


def test_one_hour_writes_without_their_own_price_cost_the_write_price() -> None:
    model = dataclasses.replace(SONNET, cache_write_1h_per_mtok=None)
    assert model.cost(tokens(M, write=M, write_1h=M)) == pytest.approx(3.75)


def test_cost_of_cache_writes_from_the_registry(registry: Registry) -> None:
    usage = tokens(3 * M, read=M, write=2 * M, write_1h=M)
    assert registry.lookup("claude-sonnet-4.5").cost(usage) == pytest.approx(0.30 + 3.75 + 6.0)
    # Bedrock keeps no one-hour cache for Claude Opus 4.1: its writes are all five-minute ones.
    assert registry.lookup("claude-opus-4.1-bedrock").cost(usage) == pytest.approx(1.5 + 2 * 18.75)


def test_cost_matches_the_registry_prices(registry: Registry) -> None:
    assert registry.lookup("gpt-4.1-mini").cost(Usage(1_000_000, 1_000_000, 500_000)) == (
        pytest.approx(0.25 + 1.60)
    )


def test_cost_without_a_cached_price_bills_cached_tokens_as_input() -> None:
    model = ModelInfo("x:y", "x", "y", input_per_mtok=1.0, output_per_mtok=2.0)
    assert model.cost(Usage(1_000_000, 0, cached_input_tokens=400_000)) == pytest.approx(1.0)


class Prices(TypedDict, total=False):
    input_per_mtok: float
    cached_input_per_mtok: float
    output_per_mtok: float


@pytest.mark.parametrize(
    "prices",
    [
        {},
        {"input_per_mtok": 1.0},
        {"output_per_mtok": 1.0},
        {"cached_input_per_mtok": 1.0, "output_per_mtok": 1.0},
    ],
)
def test_cost_is_unknown_without_both_prices(prices: Prices) -> None:
    assert ModelInfo("x:y", "x", "y", **prices).cost(Usage(10, 10)) is None


# --- parse_registry and models.toml ------------------------------------------------------


def test_parse_registry_from_data() -> None:
    registry = parse_registry(
        {
            "providers": {
                "local": {"wire_format": "openai_chat", "base_url": "http://127.0.0.1:1/v1/"}
            },
            "models": [
                {
                    "id": "local:big",
                    "wire_id": "big-2025-01-01",
                    "aliases": ["big", "large"],
                    "input_per_mtok": 1,
                    "output_per_mtok": 2,
                    "reasoning": True,
                }
            ],
        }
    )
    assert registry.provider("local") == ProviderInfo(
        name="local",
        wire_format="openai_chat",
        base_url="http://127.0.0.1:1/v1/",
        base_url_env="",
        api_key_env="",
    )
    big = registry.lookup("large")
    assert big is registry.lookup("big")
    assert big.wire_id == "big-2025-01-01"
    assert big.reasoning
    assert base_url_for(registry.provider("local"), None, {}) == "http://127.0.0.1:1/v1"


def test_load_registry_is_parsed_once() -> None:
    assert load_registry() is load_registry()


def test_models_toml_is_consistent() -> None:
    data = models_toml()
    providers = data["providers"]
    ids = [spec["id"] for spec in data["models"]]
    aliases = [alias for spec in data["models"] for alias in spec.get("aliases", [])]
    assert len(ids) == len(set(ids)), "duplicate model ids"
    assert len(aliases) == len(set(aliases)), "an alias is listed twice"
    assert not set(aliases) & set(ids), "an alias shadows a model id"
    for name, spec in providers.items():
        assert spec["wire_format"] in WIRE_FORMATS, name
        assert not spec["base_url"].endswith("/"), name
    for spec in data["models"]:
        provider, sep, wire_id = spec["id"].partition(":")
        assert sep and wire_id, spec["id"]
        assert provider in providers, spec["id"]
        prices = {k: v for k, v in spec.items() if k.endswith("_per_mtok")}
        assert all(v >= 0 for v in prices.values()), spec["id"]
        if "cached_input_per_mtok" in prices:
            assert prices["cached_input_per_mtok"] <= prices["input_per_mtok"], spec["id"]
        if "cache_write_1h_per_mtok" in prices:
            assert prices["cache_write_per_mtok"] <= prices["cache_write_1h_per_mtok"], spec["id"]


def test_every_alias_and_id_resolves_to_its_entry(registry: Registry) -> None:
    for spec in models_toml()["models"]:
        assert registry.lookup(spec["id"]).id == spec["id"]
        for alias in spec.get("aliases", []):
            assert registry.lookup(alias).id == spec["id"]


def test_openai_provider_matches_the_official_sdk_settings(registry: Registry) -> None:
    assert registry.provider("openai") == ProviderInfo(
        name="openai",
        wire_format="openai_chat",
        base_url=OFFICIAL,
        base_url_env="OPENAI_BASE_URL",
        api_key_env="OPENAI_API_KEY",
        batch_discount=0.5,
    )


# --- iter_models -------------------------------------------------------------------------


def test_iter_models_lists_every_model_in_data_file_order(registry: Registry) -> None:
    ids = [model.id for model in registry.iter_models()]
    assert ids == [spec["id"] for spec in models_toml()["models"]]


def test_iter_models_of_one_provider(registry: Registry) -> None:
    groq = list(registry.iter_models("groq"))
    assert groq and all(model.provider == "groq" for model in groq)
    assert "groq:openai/gpt-oss-120b" in [model.id for model in groq]


def test_iter_models_of_an_unknown_provider_names_the_known_ones(registry: Registry) -> None:
    with pytest.raises(ConfigError) as info:
        list(registry.iter_models("nosuch"))
    assert "unknown provider 'nosuch'" in str(info.value)
    assert "known providers: anthropic, bedrock, cerebras" in str(info.value)
    assert isinstance(info.value, UsageError)


# --- batch cost --------------------------------------------------------------------------

HALF = ModelInfo(
    id="x:y",
    provider="x",
    wire_id="y",
    input_per_mtok=2.0,
    cached_input_per_mtok=0.5,
    output_per_mtok=8.0,
    batch_discount=0.5,
)


@pytest.mark.parametrize(
    ("usage", "batch", "expected"),
    [
        (Usage(1_000_000, 1_000_000), False, 10.0),
        (Usage(1_000_000, 1_000_000), True, 5.0),
        (Usage(1_000_000, 0, cached_input_tokens=1_000_000), True, 0.25),
        (Usage(2_000_000, 500_000, cached_input_tokens=1_000_000), True, 3.25),
        (Usage(), True, 0.0),
    ],
)
def test_batch_cost_applies_the_discount(usage: Usage, batch: bool, expected: float) -> None:
    assert HALF.cost(usage, batch=batch) == pytest.approx(expected)


def test_batch_cost_without_a_discount_is_the_standard_cost() -> None:
    assert MINI.cost(Usage(1_000_000, 1_000_000), batch=True) == pytest.approx(2.0)


def test_batch_cost_from_the_registry(registry: Registry) -> None:
    mini = registry.lookup("gpt-4.1-mini")
    usage = Usage(1_000_000, 1_000_000, 500_000)
    assert mini.cost(usage, batch=True) == pytest.approx((0.25 + 1.60) / 2)
    assert registry.lookup("openai:some-future-model").cost(usage, batch=True) is None
