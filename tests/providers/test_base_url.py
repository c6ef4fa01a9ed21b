"""The pure base-URL checks shared by chat and retrieval endpoints: which URLs the in-process
mock answers, and which variable a model's key is read from."""

from __future__ import annotations

import pytest

from lm_deluge_cli.providers.base_url import is_mock_url, key_variable


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
