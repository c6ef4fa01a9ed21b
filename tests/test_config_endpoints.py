"""Model entries → endpoints: keys, base URLs, the compatible flag, and errors naming the fix."""

from __future__ import annotations

import pytest

from lm_deluge_cli.config import ModelEntry
from lm_deluge_cli.config.endpoints import resolve_endpoint, resolve_endpoints
from lm_deluge_cli.errors import ConfigError, MissingAPIKeyError
from lm_deluge_cli.providers.bedrock import BedrockAnthropicAdapter
from lm_deluge_cli.providers.openai_chat import OpenAIChatAdapter
from lm_deluge_cli.types import Prompt, SamplingParams

KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
SAMPLING = SamplingParams()
OFFICIAL = "https://api.openai.com/v1"


def test_known_model_with_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    endpoint = resolve_endpoint(ModelEntry("openai:gpt-4.1-mini"))
    assert endpoint.name == "openai:gpt-4.1-mini"
    assert endpoint.model.id == "openai:gpt-4.1-mini"
    assert endpoint.provider.name == "openai"
    assert endpoint.base_url == OFFICIAL
    assert endpoint.api_key == KEY
    assert endpoint.compatible is False


def test_alias_keeps_the_entry_name() -> None:
    endpoint = resolve_endpoint(ModelEntry("gpt-4.1-mini"), env={"OPENAI_API_KEY": KEY})
    assert endpoint.name == "gpt-4.1-mini"
    assert endpoint.model.id == "openai:gpt-4.1-mini"


@pytest.mark.parametrize("value", [None, "", "   ", "\n"])
def test_missing_key_names_the_variable(value: str | None) -> None:
    env = {} if value is None else {"OPENAI_API_KEY": value}
    with pytest.raises(MissingAPIKeyError) as info:
        resolve_endpoint(ModelEntry("openai:gpt-4.1-mini"), env=env)
    assert info.value.variable == "OPENAI_API_KEY"
    assert info.value.model == "openai:gpt-4.1-mini"
    assert "set OPENAI_API_KEY" in str(info.value)
    assert info.value.exit_code == 2


def test_missing_key_is_reported_from_os_environ_by_default() -> None:
    # The autouse fixture cleared every *_API_KEY variable.
    with pytest.raises(MissingAPIKeyError):
        resolve_endpoint(ModelEntry("openai:gpt-4o"))


def test_own_key_variable() -> None:
    entry = ModelEntry("openai:my-llama", api_key_env="LOCAL_LLM_KEY")
    endpoint = resolve_endpoint(entry, env={"LOCAL_LLM_KEY": "local-key-123"})
    assert endpoint.api_key == "local-key-123"
    with pytest.raises(MissingAPIKeyError) as info:
        resolve_endpoint(entry, env={"OPENAI_API_KEY": KEY})
    assert info.value.variable == "LOCAL_LLM_KEY"
    assert "LOCAL_LLM_KEY" in str(info.value)


def test_empty_key_variable_sends_no_key() -> None:
    entry = ModelEntry("openai:my-llama", base_url="http://127.0.0.1:8080/v1", api_key_env="")
    endpoint = resolve_endpoint(entry, env={"OPENAI_API_KEY": KEY})
    assert endpoint.api_key is None
    request = OpenAIChatAdapter().build_request(
        endpoint, Prompt(id=1, line=1, messages=[]), SamplingParams(), 5.0
    )
    assert "authorization" not in request.headers
    assert KEY.encode() not in request.body


def test_mock_models_need_no_key() -> None:
    endpoint = resolve_endpoint(ModelEntry("mock:fast"), env={})
    assert endpoint.api_key is None
    assert endpoint.base_url == "mock://in-process/v1"
    assert endpoint.compatible is False


@pytest.mark.parametrize(
    ("entry", "env"),
    [
        (ModelEntry("gpt-4.1-mini", base_url="mock://in-process/v1"), {}),
        (ModelEntry("gpt-4.1-mini"), {"OPENAI_BASE_URL": "MOCK://in-process/v1"}),
        (ModelEntry("claude-sonnet-4-5", base_url="mock://in-process/anthropic"), {}),
    ],
)
def test_any_provider_at_a_mock_url_reads_no_key(entry: ModelEntry, env: dict[str, str]) -> None:
    # The in-process mock needs none: the provider's real key is not required, nor read.
    for real in ({}, {"OPENAI_API_KEY": KEY, "ANTHROPIC_API_KEY": KEY}):
        endpoint = resolve_endpoint(entry, env={**env, **real})
        assert (endpoint.api_key, endpoint.api_key_env) == (None, "")


def test_a_mock_url_still_reads_the_variable_its_entry_names() -> None:
    # For a mock whose api_key setting checks the key it is sent.
    entry = ModelEntry("gpt-4.1-mini", base_url="mock://in-process/v1", api_key_env="MOCK_KEY")
    assert resolve_endpoint(entry, env={"MOCK_KEY": "sk-for-the-mock"}).api_key == "sk-for-the-mock"
    with pytest.raises(MissingAPIKeyError, match="MOCK_KEY"):
        resolve_endpoint(entry, env={"OPENAI_API_KEY": KEY})


def test_key_whitespace_is_stripped() -> None:
    endpoint = resolve_endpoint(ModelEntry("gpt-4o"), env={"OPENAI_API_KEY": f"  {KEY}\n"})
    assert endpoint.api_key == KEY


@pytest.mark.parametrize(
    "value", [f"{KEY[:10]} {KEY[10:]}", f"{KEY}é", f"{KEY[:10]}\x00{KEY[10:]}"]
)
def test_a_key_no_header_can_carry_is_a_config_error_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_endpoint(ModelEntry("gpt-4o"), env={"OPENAI_API_KEY": value})
    message = str(info.value)
    assert "OPENAI_API_KEY" in message
    assert KEY[:10] not in message
    assert KEY[10:] not in message


@pytest.mark.parametrize(
    ("entry_base_url", "env", "base_url", "compatible"),
    [
        (None, {}, OFFICIAL, False),
        (None, {"OPENAI_BASE_URL": f"{OFFICIAL}/"}, OFFICIAL, False),
        (f"{OFFICIAL}/", {}, OFFICIAL, False),
        (None, {"OPENAI_BASE_URL": "https://proxy.example/v1"}, "https://proxy.example/v1", True),
        ("http://127.0.0.1:8000/v1/", {}, "http://127.0.0.1:8000/v1", True),
        # The entry's own base_url beats the environment.
        (
            "http://127.0.0.1:8000/v1",
            {"OPENAI_BASE_URL": "https://proxy.example/v1"},
            "http://127.0.0.1:8000/v1",
            True,
        ),
        (OFFICIAL, {"OPENAI_BASE_URL": "https://proxy.example/v1"}, OFFICIAL, False),
    ],
)
def test_base_url_and_compatible(
    entry_base_url: str | None, env: dict[str, str], base_url: str, compatible: bool
) -> None:
    entry = ModelEntry("openai:gpt-4.1-mini", base_url=entry_base_url)
    endpoint = resolve_endpoint(entry, env={"OPENAI_API_KEY": KEY, **env})
    assert endpoint.base_url == base_url
    assert endpoint.compatible is compatible


def test_base_url_comes_from_the_same_env_as_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://from-os-environ/v1")
    endpoint = resolve_endpoint(
        ModelEntry("gpt-4o"),
        env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": "http://from-mapping/v1"},
    )
    assert endpoint.base_url == "http://from-mapping/v1"
    endpoint = resolve_endpoint(ModelEntry("gpt-4o"), env={"OPENAI_API_KEY": KEY})
    assert endpoint.base_url == OFFICIAL


def test_os_environ_base_url_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    endpoint = resolve_endpoint(ModelEntry("gpt-4o"))
    assert endpoint.base_url == "http://127.0.0.1:9/v1"
    assert endpoint.compatible is True


def test_sampling_overrides_are_a_copy() -> None:
    sampling = {"temperature": 0.3}
    endpoint = resolve_endpoint(ModelEntry("mock:fast", sampling=sampling), env={})
    assert endpoint.sampling_overrides == {"temperature": 0.3}
    sampling["temperature"] = 1.0
    assert endpoint.sampling_overrides == {"temperature": 0.3}


def test_unknown_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_endpoint(ModelEntry("claude-sonnet"), env={})
    assert "provider:model" in str(info.value)


def test_resolve_endpoints_keeps_order_and_names_every_missing_key() -> None:
    entries = [ModelEntry("mock:fast"), ModelEntry("gpt-4o", weight=2), ModelEntry("mock:standard")]
    endpoints = resolve_endpoints(entries, env={"OPENAI_API_KEY": KEY})
    assert [e.name for e in endpoints] == ["mock:fast", "gpt-4o", "mock:standard"]
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        resolve_endpoints(entries, env={})
    two = [ModelEntry("gpt-4o"), ModelEntry("openai:local", api_key_env="LOCAL_KEY")]
    with pytest.raises(MissingAPIKeyError) as caught:
        resolve_endpoints(two, env={})
    assert "LOCAL_KEY, OPENAI_API_KEY" in str(caught.value)
    assert "gpt-4o, openai:local" in str(caught.value)


def test_no_endpoint_repr_or_error_shows_the_key() -> None:
    endpoint = resolve_endpoint(ModelEntry("gpt-4o"), env={"OPENAI_API_KEY": KEY})
    assert KEY not in repr(endpoint)
    with pytest.raises(MissingAPIKeyError) as info:
        resolve_endpoint(ModelEntry("gpt-4o", api_key_env="OTHER_KEY"), env={"OPENAI_API_KEY": KEY})
    assert KEY not in str(info.value)


def test_bedrock_needs_aws_credentials_before_any_request() -> None:
    entry = ModelEntry("bedrock:global.anthropic.claude-sonnet-4-6")
    with pytest.raises(MissingAPIKeyError, match="AWS_ACCESS_KEY_ID"):
        resolve_endpoint(entry, env={})
    endpoint = resolve_endpoint(
        entry, env={"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret-x"}
    )
    assert endpoint.api_key is None
    assert "secret-x" not in repr(endpoint)


AWS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret-x"}


@pytest.mark.parametrize(
    ("region", "env", "expected"),
    [
        # The model entry's region wins over the environment's…
        ("eu-central-1", {"AWS_REGION": "us-west-2"}, "eu-central-1"),
        # …and without one, AWS_REGION, then AWS_DEFAULT_REGION, then us-east-1.
        (None, {"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "eu-west-1"}, "us-west-2"),
        (None, {"AWS_DEFAULT_REGION": "eu-west-1"}, "eu-west-1"),
        (None, {}, "us-east-1"),
    ],
)
def test_bedrock_region_from_the_model_entry(
    region: str | None, env: dict[str, str], expected: str
) -> None:
    env = {**AWS, **env}
    entry = ModelEntry("bedrock:global.anthropic.claude-sonnet-4-6", region=region)
    endpoint = resolve_endpoint(entry, env=env)
    assert endpoint.region == region
    request = BedrockAnthropicAdapter(env=env).build_request(
        endpoint, Prompt(id=1, line=1, messages=[{"role": "user", "content": "hi"}]), SAMPLING, 30
    )
    assert request.url.startswith(f"https://bedrock-runtime.{expected}.amazonaws.com/model/")
    assert f"/{expected}/bedrock/aws4_request" in request.headers["authorization"]


def test_an_entry_region_overrides_the_region_in_a_custom_host() -> None:
    entry = ModelEntry("bedrock:m", base_url="http://127.0.0.1:9000", region="ap-south-1")
    endpoint = resolve_endpoint(entry, env=AWS)
    request = BedrockAnthropicAdapter(env=AWS).build_request(
        endpoint, Prompt(id=1, line=1, messages=[{"role": "user", "content": "hi"}]), SAMPLING, 30
    )
    assert request.url.startswith("http://127.0.0.1:9000/model/m/invoke")
    assert "/ap-south-1/bedrock/aws4_request" in request.headers["authorization"]


def test_region_is_refused_for_models_that_are_not_on_bedrock() -> None:
    with pytest.raises(ConfigError, match="region applies only to Bedrock models"):
        resolve_endpoint(ModelEntry("gpt-4o", region="us-east-1"), env={"OPENAI_API_KEY": KEY})


@pytest.mark.parametrize(
    ("entry_base_url", "env", "source"),
    [
        (f"http://user:{KEY}@proxy.example:8080/v1", {}, "its base_url"),
        (None, {"OPENAI_BASE_URL": f"https://{KEY}@proxy.example/v1"}, "$OPENAI_BASE_URL"),
    ],
)
def test_a_base_url_with_credentials_is_refused_without_showing_them(
    entry_base_url: str | None, env: dict[str, str], source: str
) -> None:
    entry = ModelEntry("openai:gpt-4.1-mini", base_url=entry_base_url)
    with pytest.raises(ConfigError) as info:
        resolve_endpoint(entry, env={"OPENAI_API_KEY": KEY, **env})
    message = str(info.value)
    assert "user name or password" in message and source in message
    assert "proxy.example" in message and "OPENAI_API_KEY" in message
    assert "://***@proxy.example" in message
    assert KEY not in message and KEY[-12:] not in message and "user:" not in message


def test_an_embedding_base_url_with_credentials_is_refused() -> None:
    from lm_deluge_cli.providers.retrieval.registry import resolve_embedding_endpoint

    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": f"http://user:{KEY}@127.0.0.1:9/v1"}
    with pytest.raises(ConfigError, match="user name or password") as info:
        resolve_embedding_endpoint("openai:text-embedding-3-small", env=env)
    assert KEY not in str(info.value)
