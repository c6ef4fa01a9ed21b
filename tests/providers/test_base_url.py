"""Where chat and retrieval endpoints are reached: the base URL chosen, which URLs the
in-process mock answers, and which variable a model's key is read from."""

from __future__ import annotations

from typing import Any

import pytest

from lm_deluge_cli.errors import ConfigError, MissingAPIKeyError
from lm_deluge_cli.providers.base_url import access, base_url_for, is_mock_url, key_variable
from lm_deluge_cli.providers.registry import load_registry
from lm_deluge_cli.providers.retrieval import load_retrieval_registry

OFFICIAL = "https://api.openai.com/v1"


@pytest.mark.parametrize(
    ("url", "mock"),
    [
        ("mock://in-process/v1", True),
        ("mock://in-process", True),
        ("MOCK://in-process/anthropic", True),
        ("https://api.openai.com/v1", False),
        ("http://127.0.0.1:8089/v1", False),
        ("http://mock/v1", False),
        ("mock:in-process", False),
        ("http://[::1/v1", False),
        ("", False),
    ],
)
def test_is_mock_url(url: str, mock: bool) -> None:
    assert is_mock_url(url) is mock


@pytest.mark.parametrize(
    ("url", "entry_variable", "expected"),
    [
        ("https://api.openai.com/v1", None, "OPENAI_API_KEY"),
        ("https://api.openai.com/v1", "MY_KEY", "MY_KEY"),
        ("https://api.openai.com/v1", "", ""),
        # The mock needs no key: the provider's is not read, an entry's own variable is.
        ("mock://in-process/v1", None, ""),
        ("mock://in-process/v1", "MOCK_KEY", "MOCK_KEY"),
        ("mock://in-process/v1", "", ""),
    ],
)
def test_key_variable(url: str, entry_variable: str | None, expected: str) -> None:
    assert key_variable(url, "OPENAI_API_KEY", entry_variable) == expected


# --- base URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "env", "expected"),
    [
        ("http://127.0.0.1:8000/v1", {"OPENAI_BASE_URL": "http://proxy/v1"}, "http://127.0.0.1:8000/v1"),
        ("http://127.0.0.1:8000/v1///", {}, "http://127.0.0.1:8000/v1"),
        (None, {"OPENAI_BASE_URL": "http://proxy/v1/"}, "http://proxy/v1"),
        ("", {"OPENAI_BASE_URL": "http://proxy/v1"}, "http://proxy/v1"),
        (None, {"OPENAI_BASE_URL": ""}, OFFICIAL),
        (None, {"OTHER_BASE_URL": "http://other/v1"}, OFFICIAL),
        (None, {}, OFFICIAL),
    ],
)  # fmt: skip
def test_base_url_precedence(override: str | None, env: dict[str, str], expected: str) -> None:
    registry = load_registry()
    assert base_url_for(registry.provider("openai"), override, env) == expected


def test_base_url_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    openai = load_registry().provider("openai")
    assert base_url_for(openai, None) == OFFICIAL
    monkeypatch.setenv("OPENAI_BASE_URL", "http://from-env:9/v1/")
    assert base_url_for(openai, None) == "http://from-env:9/v1"
    # An explicit mapping is the whole truth: os.environ is not consulted.
    assert base_url_for(openai, None, {}) == OFFICIAL


def test_a_provider_without_a_base_url_variable_ignores_the_environment() -> None:
    mock = load_registry().provider("mock")
    env = {"OPENAI_BASE_URL": "http://proxy/v1", "": "x"}
    assert base_url_for(mock, None, env) == "mock://in-process/v1"


# --- access: one path for chat and retrieval providers --------------------------------


@pytest.mark.parametrize(
    "host",
    [load_registry().provider("openai"), load_retrieval_registry().providers["openai"]],
    ids=["chat", "retrieval"],
)
def test_access_is_the_same_for_chat_and_retrieval_providers(host: Any) -> None:
    env = {"OPENAI_API_KEY": " sk-abc\n", "OPENAI_BASE_URL": "http://proxy/v1/"}
    assert access("m", host, None, None, env) == {
        "base_url": "http://proxy/v1",
        "api_key": "sk-abc",
        "api_key_env": "OPENAI_API_KEY",
        "compatible": True,
    }
    assert access("m", host, "mock://in-process/v1", None, {}) == {
        "base_url": "mock://in-process/v1",
        "api_key": None,
        "api_key_env": "",
        "compatible": True,
    }
    with pytest.raises(MissingAPIKeyError, match="set OPENAI_API_KEY"):
        access("m", host, None, None, {})
    with pytest.raises(ConfigError, match="OPENAI_API_KEY \\(the key for m\\)") as caught:
        access("m", host, None, None, {"OPENAI_API_KEY": "sk-a b"})
    assert "sk-a" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"base URL of m \(its base_url\)") as caught:
        access("m", host, "http://u:sk-secret@h/v1", None, {"OPENAI_API_KEY": "k"})
    assert "sk-secret" not in str(caught.value)
