"""The model registry's data file: size, providers, batch discounts, capabilities, aliases."""

from __future__ import annotations

import pytest

from lm_deluge_cli.providers.registry import Registry, load_registry
from lm_deluge_cli.results import Usage


@pytest.fixture
def registry() -> Registry:
    return load_registry()


# --- the data file: size, providers, capabilities ----------------------------------------

REQUIRED_PROVIDERS = [
    "openai", "anthropic", "gemini", "mistral", "cohere", "meta", "together", "groq",
    "deepseek", "fireworks", "xai", "openrouter", "cerebras", "bedrock", "mock",
]  # fmt: skip


def test_the_registry_knows_at_least_100_models_from_every_provider(registry: Registry) -> None:
    assert len(registry.models) >= 100
    assert sorted(registry.providers) == sorted(REQUIRED_PROVIDERS)
    for name in REQUIRED_PROVIDERS:
        assert list(registry.iter_models(name)), f"no models for {name}"


@pytest.mark.parametrize(
    ("name", "wire_format", "base_url", "base_url_env", "api_key_env"),
    [
        (
            "anthropic",
            "anthropic_messages",
            "https://api.anthropic.com",
            "ANTHROPIC_BASE_URL",
            "ANTHROPIC_API_KEY",
        ),
        (
            "gemini",
            "gemini",
            "https://generativelanguage.googleapis.com",
            "GOOGLE_GEMINI_BASE_URL",
            "GEMINI_API_KEY",
        ),
        ("mistral", "mistral", "https://api.mistral.ai", "", "MISTRAL_API_KEY"),
        ("cohere", "cohere", "https://api.cohere.com", "CO_API_URL", "CO_API_KEY"),
        ("meta", "openai_chat", "https://api.llama.com/compat/v1", "", "LLAMA_API_KEY"),
        (
            "together",
            "openai_chat",
            "https://api.together.xyz/v1",
            "TOGETHER_BASE_URL",
            "TOGETHER_API_KEY",
        ),
        ("groq", "openai_chat", "https://api.groq.com/openai/v1", "", "GROQ_API_KEY"),
        ("deepseek", "openai_chat", "https://api.deepseek.com/v1", "", "DEEPSEEK_API_KEY"),
        (
            "fireworks",
            "openai_chat",
            "https://api.fireworks.ai/inference/v1",
            "",
            "FIREWORKS_API_KEY",
        ),
        ("xai", "openai_chat", "https://api.x.ai/v1", "", "XAI_API_KEY"),
        ("openrouter", "openai_chat", "https://openrouter.ai/api/v1", "", "OPENROUTER_API_KEY"),
        ("cerebras", "openai_chat", "https://api.cerebras.ai/v1", "", "CEREBRAS_API_KEY"),
        (
            "bedrock",
            "bedrock_anthropic",
            "https://bedrock-runtime.{region}.amazonaws.com",
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
            "",
        ),
    ],
)
def test_provider_settings(
    registry: Registry,
    name: str,
    wire_format: str,
    base_url: str,
    base_url_env: str,
    api_key_env: str,
) -> None:
    provider = registry.provider(name)
    assert (provider.wire_format, provider.base_url) == (wire_format, base_url)
    assert (provider.base_url_env, provider.api_key_env) == (base_url_env, api_key_env)


def test_batch_discounts_are_inherited_from_the_provider(registry: Registry) -> None:
    assert registry.lookup("gpt-4.1-mini").batch_discount == 0.5
    assert registry.lookup("claude-haiku-4.5").batch_discount == 0.5
    assert registry.lookup("openrouter:openai/gpt-4.1-mini").batch_discount == 0.0
    assert registry.lookup("mock:fast").batch_discount == 0.0


@pytest.mark.parametrize(
    ("name", "flags"),
    [
        (
            "gpt-4.1",
            {
                "supports_json",
                "supports_json_schema",
                "supports_images",
                "supports_pdf",
                "supports_logprobs",
            },
        ),
        (
            "gpt-5",
            {
                "reasoning",
                "supports_json",
                "supports_json_schema",
                "supports_images",
                "supports_pdf",
            },
        ),
        (
            "claude-sonnet-4.5",
            {"reasoning", "supports_json_schema", "supports_images", "supports_pdf"},
        ),
        ("llama-3.1-8b-groq", {"supports_json"}),
        (
            "magistral-medium-1.2",
            {"reasoning", "supports_json", "supports_json_schema", "supports_images"},
        ),
        ("deepseek-v4-pro", {"reasoning", "supports_json"}),
        ("o3-pro", {"reasoning", "supports_json", "supports_json_schema", "supports_images"}),
    ],
)
def test_capability_flags_come_from_the_data(
    registry: Registry, name: str, flags: set[str]
) -> None:
    info = registry.lookup(name)
    names: tuple[str, ...] = ("reasoning", "supports_json", "supports_json_schema")
    names += ("supports_images", "supports_pdf", "supports_logprobs")
    assert {flag for flag in names if getattr(info, flag)} == flags


def test_a_model_of_a_priced_provider_may_have_unknown_prices(registry: Registry) -> None:
    llama = registry.lookup("llama-4-maverick")
    assert llama.provider == "meta"
    assert llama.cost(Usage(1000, 1000)) is None


def test_aliases_of_a_model(registry: Registry) -> None:
    assert registry.aliases("anthropic:claude-opus-4-5-20251101") == (
        "claude-opus-4-5",
        "claude-opus-4.5",
        "claude-4.5-opus",
    )
    assert registry.aliases("mock:fast") == ()


# --- the data file: prompt-cache prices --------------------------------------------------------

# Anthropic models whose cache reads cost less than the usual 0.1x the input price.
CHEAP_CACHE_READS = {
    "anthropic:claude-fable-5-1": 0.025,
    "anthropic:claude-opus-5-5": 0.05,
    "anthropic:claude-sonnet-5-5": 0.05,
}
# Claude models on Bedrock that keep no prompt cache for an hour.
NO_ONE_HOUR_CACHE = {
    "bedrock:global.anthropic.claude-sonnet-4-20250514-v1:0",
    "bedrock:us.anthropic.claude-opus-4-1-20250805-v1:0",
}


def test_every_claude_model_prices_cache_reads_and_both_writes(registry: Registry) -> None:
    claude = [m for m in registry.iter_models() if m.provider in ("anthropic", "bedrock")]
    assert len(claude) == 21
    for model in claude:
        full = model.input_per_mtok
        assert full is not None, model.id
        read = CHEAP_CACHE_READS.get(model.id, 0.1) * full
        assert model.cached_input_per_mtok == pytest.approx(read), model.id
        assert model.cache_write_per_mtok == pytest.approx(1.25 * full), model.id
        one_hour = None if model.id in NO_ONE_HOUR_CACHE else pytest.approx(2 * full)
        assert model.cache_write_1h_per_mtok == one_hour, model.id


def test_openai_prices_cache_writes_from_gpt_6_on(registry: Registry) -> None:
    for model in registry.iter_models("openai"):
        assert model.cache_write_1h_per_mtok is None, model.id
        if model.id.startswith("openai:gpt-6"):
            assert model.input_per_mtok is not None, model.id
            assert model.cache_write_per_mtok == pytest.approx(1.25 * model.input_per_mtok)
        else:
            assert model.cache_write_per_mtok is None, model.id


# --- the data file: wire formats and thinking modes ------------------------------------------

# OpenAI models with no Chat Completions endpoint, only the Responses API.
RESPONSES_ONLY = {"openai:gpt-5.5-pro", "openai:gpt-5-pro", "openai:o3-pro"}

# Claude models that take only adaptive thinking and refuse temperature, top_p and budgets.
ADAPTIVE_ONLY = {
    "anthropic:claude-fable-5-1", "anthropic:claude-opus-5-5", "anthropic:claude-sonnet-5-5",
    "anthropic:claude-haiku-5-5", "anthropic:claude-fable-5", "anthropic:claude-opus-5",
    "anthropic:claude-sonnet-5", "anthropic:claude-opus-4-8", "anthropic:claude-opus-4-7",
}  # fmt: skip


def test_a_model_wire_format_is_one_its_provider_allows(registry: Registry) -> None:
    for model in registry.iter_models():
        if not model.wire_format:
            continue
        own = registry.provider(model.provider).wire_format
        allowed = {own} | ({"openai_responses"} if own == "openai_chat" else set())
        assert model.wire_format in allowed, model.id


def test_the_responses_only_models(registry: Registry) -> None:
    marked = {m.id for m in registry.iter_models() if m.wire_format == "openai_responses"}
    assert marked == RESPONSES_ONLY
    for model_id in RESPONSES_ONLY:
        assert registry.lookup(model_id).reasoning, model_id


def test_the_adaptive_thinking_models(registry: Registry) -> None:
    adaptive = {m.id for m in registry.iter_models() if m.adaptive_thinking}
    assert adaptive == ADAPTIVE_ONLY
    for model_id in adaptive:
        info = registry.lookup(model_id)
        assert registry.provider(info.provider).wire_format == "anthropic_messages", model_id
        assert info.reasoning, model_id


def test_openai_reasoning_models_claim_no_logprobs(registry: Registry) -> None:
    for model in registry.iter_models("openai"):
        assert not (model.reasoning and model.supports_logprobs), model.id
