"""Where a model's requests go and with which key, worked out one way for chat and retrieval
endpoints: the base URL chosen (the entry's, the environment's, the provider's), URLs that
carry credentials refused, the key read from its variable and checked fit for a header."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol, TypedDict
from urllib.parse import urlsplit

from lm_deluge_cli.errors import ConfigError, MissingAPIKeyError

__all__ = [
    "MOCK_SCHEME",
    "Access",
    "Host",
    "access",
    "base_url_for",
    "is_mock_url",
    "key_variable",
]

# A base URL with this scheme is answered in-process by the mock (lm_deluge_cli.mock), never
# sent over the network, whatever the model's provider.
MOCK_SCHEME = "mock"


class Host(Protocol):
    """A provider as its registry describes where it is (a chat or a retrieval provider)."""

    @property
    def base_url(self) -> str: ...  # the official default
    @property
    def base_url_env(self) -> str: ...  # "" = none
    @property
    def api_key_env(self) -> str: ...  # "" = no key sent


class Access(TypedDict):
    """An endpoint's fields that say where its requests go and with which key."""

    base_url: str
    api_key: str | None
    # The variable the key came from ("" when none is sent), for messages that say what to fix.
    api_key_env: str
    # base_url is not the provider's official one (an OpenAI-compatible server).
    compatible: bool


def access(
    name: str,
    host: Host,
    base_url: str | None,
    api_key_env: str | None,
    env: Mapping[str, str] | None = None,
) -> Access:
    """Where the model `name` of `host` is reached and with which key, given its entry's own
    `base_url` and `api_key_env` (None: the provider's; "": no key sent).

    Raises MissingAPIKeyError naming the variable to set, ConfigError for a key no header can
    carry or a base URL with credentials in it. `env` defaults to os.environ; the same
    mapping is read for the base URL as for the key, so a caller's mapping is the whole truth.
    """
    env = os.environ if env is None else env
    url = base_url_for(host, base_url, env)
    key_env = key_variable(url, host.api_key_env, api_key_env)
    _check_base_url(url, name, _base_url_source(base_url, host.base_url_env, env), key_env)
    return Access(
        base_url=url,
        api_key=_read_key(key_env, name, env),
        api_key_env=key_env,
        compatible=url != host.base_url.rstrip("/"),
    )


def base_url_for(host: Host, override: str | None, env: Mapping[str, str] | None = None) -> str:
    """The entry's base_url, else $<base_url_env>, else the official default.

    The variable is read from `env` (default: os.environ); trailing slashes are dropped.
    """
    if override:
        return override.rstrip("/")
    env = os.environ if env is None else env
    from_env = env.get(host.base_url_env) if host.base_url_env else None
    return (from_env or host.base_url).rstrip("/")


def _read_key(variable: str, model: str, env: Mapping[str, str]) -> str | None:
    if not variable:
        return None
    # Stray whitespace (a pasted newline) would make an invalid Authorization header.
    key = (env.get(variable) or "").strip()
    if not key:
        raise MissingAPIKeyError(variable, model)
    if not _header_safe(key):
        # Name the variable, never the value.
        raise ConfigError(
            f"{variable} (the key for {model}) contains spaces, control or non-ASCII "
            "characters, which an HTTP header cannot carry; check that it was pasted whole"
        )
    return key


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


def _check_base_url(url: str, model: str, source: str, key_env: str) -> None:
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


def _base_url_source(override: str | None, variable: str, env: Mapping[str, str]) -> str:
    """Where the base URL in force came from, as `base_url_for` chose it."""
    if override:
        return "its base_url"
    if variable and env.get(variable):
        return f"${variable}"
    return "its provider's base_url in the registry"


def _header_safe(key: str) -> bool:
    return key.isascii() and key.isprintable() and not any(c.isspace() for c in key)
