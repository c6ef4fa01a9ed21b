"""The adapter contract's shared pieces: error-body reading (keys redacted), and Endpoint."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.providers.base import (
    MAX_ERROR_MESSAGE_CHARS,
    MAX_SNIPPET_CHARS,
    Endpoint,
    error_object,
    error_text,
    registered,
    response_snippet,
)
from lm_deluge_cli.providers.registry import ModelInfo, ProviderInfo, load_registry

# The suite's canary key (the same value as the shared conftest's CANARY_KEY).
KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
# A key with no recognisable shape: only the exact-secret replacement can catch it.
PLAIN_SECRET = "hunter2-local-secret-0123456789"


def _json(obj: object) -> bytes:
    return orjson.dumps(obj)


@pytest.mark.parametrize(
    ("body", "message", "code"),
    [
        # OpenAI's shape: code wins over type; type stands in for a null code.
        (
            _json({"error": {"message": "m1", "type": "insufficient_quota", "code": "x_code"}}),
            "m1",
            "x_code",
        ),
        (
            _json({"error": {"message": "m2", "type": "server_error", "code": None}}),
            "m2",
            "server_error",
        ),
        # vLLM's shape: the error object at the top level, with an integer code.
        (
            _json({"object": "error", "message": "m3", "type": "BadRequestError", "code": 400}),
            "m3",
            "BadRequestError",
        ),
        (_json({"error": "Unauthorized"}), "Unauthorized", None),
        (_json({"error": {"message": 5, "code": 7}}), '{"error":{"message":5,"code":7}}', None),
        (_json({"detail": "Not Found"}), '{"detail":"Not Found"}', None),
        (_json(["a", "list"]), '["a","list"]', None),
        (b"upstream connect error", "upstream connect error", None),
        (b"  \n ", "empty response body", None),
        (b"", "empty response body", None),
        (b"\xff\xfe bad bytes", "\ufffd\ufffd bad bytes", None),
    ],
)
def test_error_text(body: bytes, message: str, code: str | None) -> None:
    assert error_text(body, None) == (message, code)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (b'{"detail": "Invalid model", "code": 7}', {"detail": "Invalid model", "code": 7}),
        (b"[1, 2]", {}),
        (b"<html>502 Bad Gateway</html>", {}),
        (b"", {}),
    ],
)
def test_error_object(body: bytes, fields: dict[str, object]) -> None:
    assert error_object(body) == fields


def test_error_text_cuts_long_messages_after_redacting() -> None:
    long_message = "x" * 600 + KEY
    text, _ = error_text(_json({"error": {"message": long_message}}), KEY)
    assert text == "x" * MAX_ERROR_MESSAGE_CHARS + "…"
    text, _ = error_text(_json({"error": {"message": "y" * 490 + KEY}}), KEY)
    assert KEY[:6] not in text
    assert text.startswith("y" * 490 + "[redac")


def test_error_text_of_an_html_page_is_its_text_and_short() -> None:
    html = b"<html><head><title>502 Bad Gateway</title></head>" + b"<p>filler</p>" * 100
    text, code = error_text(html, None)
    assert code is None
    assert text.startswith("HTML page: 502 Bad Gateway filler filler")
    assert MAX_SNIPPET_CHARS - 1 <= len(text) <= MAX_SNIPPET_CHARS


def test_a_gateway_page_reads_as_one_line_of_text() -> None:
    page = (
        b"<!DOCTYPE html>\r\n<html>\r\n<head><title>502 Bad Gateway</title>"
        b"<style>body { color: red }</style></head>\r\n<body>\r\n"
        b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare &amp; co</center>"
        b"\r\n</body>\r\n</html>\r\n"
    )
    text, _ = error_text(page, None)
    assert text == "HTML page: 502 Bad Gateway 502 Bad Gateway cloudflare & co"


@pytest.mark.parametrize("secret", [KEY, PLAIN_SECRET])
def test_a_key_in_an_html_page_is_redacted(secret: str) -> None:
    page = f"<html><body><p>{'x' * 180} {secret} tail</p></body></html>"
    text, _ = error_text(page.encode(), secret)
    assert secret[:6] not in text
    assert text.startswith("HTML page: xxx")


@pytest.mark.parametrize("offset", [MAX_SNIPPET_CHARS - 20, MAX_SNIPPET_CHARS - 6, 150])
@pytest.mark.parametrize("secret", [KEY, PLAIN_SECRET])
def test_no_piece_of_a_key_survives_the_snippet_cut(offset: int, secret: str) -> None:
    # The key straddles the place where the snippet is cut: redacting after cutting would
    # leave its first characters in the message.
    raw = b"<" + b"x" * (offset - 1) + secret.encode() + b" tail>"
    for body in (raw, _json({"detail": raw.decode()})):
        text, _ = error_text(body, secret)
        assert secret[:6] not in text
        assert len(text) <= MAX_SNIPPET_CHARS


def test_response_snippet_limit_and_redaction() -> None:
    body = b"abc " + PLAIN_SECRET.encode() + b" def"
    assert response_snippet(body, PLAIN_SECRET) == "abc [redacted] def"
    assert response_snippet(body, PLAIN_SECRET, 6) == "abc [r"
    assert response_snippet(b"  padded  ", None) == "padded"


def _endpoint(key: str | None) -> Endpoint:
    registry = load_registry()
    return Endpoint(
        name="openai:gpt-4.1-mini",
        model=registry.lookup("openai:gpt-4.1-mini"),
        provider=registry.provider("openai"),
        base_url="https://api.openai.com/v1",
        api_key=key,
    )


def test_endpoint_repr_never_shows_the_key() -> None:
    endpoint = _endpoint(KEY)
    for shown in (repr(endpoint), str(endpoint), f"{endpoint!r}", repr([endpoint])):
        assert KEY not in shown
        assert "api_key=" not in shown
    assert "openai:gpt-4.1-mini" in repr(endpoint)
    assert endpoint.api_key == KEY


def test_endpoint_is_frozen() -> None:
    endpoint = _endpoint(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        endpoint.api_key = KEY  # type: ignore[misc]


def test_an_endpoint_speaks_its_model_s_wire_format_else_its_provider_s() -> None:
    provider = ProviderInfo("openai", "openai_chat", "https://api.openai.com/v1", "", "")
    own = ModelInfo("openai:o3-pro", "openai", "o3-pro", wire_format="openai_responses")
    plain = ModelInfo("openai:gpt-4o", "openai", "gpt-4o")
    assert Endpoint("a", own, provider, provider.base_url).wire_format == "openai_responses"
    assert Endpoint("b", plain, provider, provider.base_url).wire_format == "openai_chat"


def test_registered_finds_an_adapter_or_names_the_kind_missing() -> None:
    adapters = {"openai_chat": "chat adapter"}
    assert registered(adapters, "openai_chat", "adapter") == "chat adapter"
    with pytest.raises(ConfigError, match=r"^no adapter for wire format 'smoke_signals'$"):
        registered(adapters, "smoke_signals", "adapter")
