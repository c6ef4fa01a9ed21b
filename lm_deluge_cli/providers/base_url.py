"""A model's base URL and key as given: where the URL came from, URLs that carry
credentials refused, keys an HTTP header can carry. Pure checks shared by chat and
retrieval endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from lm_deluge_cli.errors import ConfigError

__all__ = [
    "MOCK_SCHEME",
    "base_url_source",
    "check_base_url",
    "header_safe",
    "is_mock_url",
    "key_variable",
]

# A base URL with this scheme is answered in-process by the mock (lm_deluge_cli.mock), never
# sent over the network, whatever the model's provider.
MOCK_SCHEME = "mock"


def is_mock_url(url: str) -> bool:
    """Whether requests to `url` are answered by the in-process mock (``mock://…``)."""
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme.lower() == MOCK_SCHEME


def key_variable(url: str, provider_variable: str, entry_variable: str | None) -> str:
    """The variable a model's key is read from ("" = none): the entry's own `entry_variable`
    if it names one, else its provider's, except at a mock URL.

    The mock needs no key, so a model of any provider sent to ``mock://`` reads none unless
    its entry names one (for a mock whose ``api_key`` setting checks it): a job is tried on
    the mock without the provider's real key set, and that key is never read for it.
    """
    if entry_variable is not None:
        return entry_variable
    return "" if is_mock_url(url) else provider_variable


def check_base_url(url: str, model: str, source: str, key_env: str) -> None:
    """Refuse a base URL with a user name or password in it (``http://user:KEY@host/v1``),
    naming where it came from (`source`) but showing nothing of the credentials.

    The key goes in the provider's own header; an HTTP client given credentials in the URL
    too either refuses every request ("Cannot combine AUTHORIZATION header") or sends both,
    and a URL is quoted in error messages and logs where a key must never appear.
    """
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        netloc = url  # unparsable: only the "@" test below matters
    if "@" not in netloc:
        return
    host = netloc.rpartition("@")[2]
    scheme = url.partition("://")[0] if "://" in url else "http"
    where = f"the key variable {key_env}" if key_env else "a key variable (api_key_env)"
    raise ConfigError(
        f"the base URL of {model} ({source}) has a user name or password in it "
        f"({scheme}://***@{host}/…); remove the part before '@' and put the key in {where}, "
        "which is sent in the provider's own header"
    )


def base_url_source(override: str | None, variable: str, env: Mapping[str, str]) -> str:
    """Where the base URL in force came from, as `Registry.base_url` chose it."""
    if override:
        return "its base_url"
    if variable and env.get(variable):
        return f"${variable}"
    return "its provider's base_url in the registry"


def header_safe(key: str) -> bool:
    return key.isascii() and key.isprintable() and not any(c.isspace() for c in key)
