"""The shared translations of the OpenAI chat format used by several adapters."""

from __future__ import annotations

from typing import Any

import pytest

from lm_deluge_cli.errors import APIError, APIResponseValidationError
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.providers.parts import (
    DataUrl,
    count,
    function_tools,
    header_int,
    image_url,
    media_type_of_url,
    named_function,
    openai_usage,
    parse_arguments,
    parse_data_url,
    schema_response_format,
    text_of,
    unreadable,
    unsupported,
)
from lm_deluge_cli.providers.registry import ModelInfo, ProviderInfo
from lm_deluge_cli.results import Usage
from lm_deluge_cli.types import HttpResponse

PNG = "iVBORw0KGgo="  # the PNG signature, base64


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"data:image/png;base64,{PNG}", DataUrl("image/png", PNG)),
        (f"data:image/JPEG;base64,{PNG}", DataUrl("image/jpeg", PNG)),
        (f"data:image/png;name=a.png;base64,{PNG}", DataUrl("image/png", PNG)),
        (f" data:image/webp;base64,{PNG} ", DataUrl("image/webp", PNG)),
        ("data:;base64,aGk=", DataUrl("text/plain", "aGk=")),
        ("https://example.com/cat.png", None),
        ("http://example.com/data:image/png;base64,xx", None),
        ("gs://bucket/cat.png", None),
    ],
)
def test_parse_data_url(url: str, expected: DataUrl | None) -> None:
    assert parse_data_url(url) == expected


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("data:image/png,rawbytes", "not base64"),
        ("data:image/png;base64,***not base64***", "invalid base64"),
        ("data:image/png;base64,abc", "invalid base64"),
    ],
)
def test_broken_data_urls_are_refused(url: str, says: str) -> None:
    with pytest.raises(APIError) as info:
        parse_data_url(url)
    assert says in str(info.value)
    assert info.value.retryable is False
    assert info.value.fatal is False


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        ({"type": "image_url", "image_url": {"url": "https://x/y.png"}}, ("https://x/y.png", None)),
        (
            {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
            ("https://x/y.png", "low"),
        ),
        ({"type": "image_url", "image_url": "https://x/y.png"}, ("https://x/y.png", None)),
    ],
)
def test_image_url(part: dict[str, Any], expected: tuple[str, str | None]) -> None:
    assert image_url(part) == expected


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url"},
        {"type": "image_url", "image_url": {}},
        {"type": "image_url", "image_url": {"url": ""}},
        {"type": "image_url", "image_url": 5},
    ],
)
def test_image_url_without_a_url(part: dict[str, Any]) -> None:
    with pytest.raises(APIError, match=r"image_url\.url"):
        image_url(part)


@pytest.mark.parametrize(
    ("url", "media_type"),
    [
        ("https://example.com/a/cat.png", "image/png"),
        ("https://example.com/cat.JPG?size=large#top", "image/jpeg"),
        ("https://example.com/cat.webp", "image/webp"),
        ("https://example.com/image", None),
    ],
)
def test_media_type_of_url(url: str, media_type: str | None) -> None:
    assert media_type_of_url(url) == media_type


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("plain", "plain"),
        (None, ""),
        ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "a\nb"),
    ],
)
def test_text_of(content: Any, expected: str) -> None:
    assert text_of(content, "system") == expected


@pytest.mark.parametrize(
    "content",
    [
        [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
        [{"type": "text", "text": 5}],
        ["bare string"],
        5,
    ],
)
def test_text_of_refuses_what_is_not_text(content: Any) -> None:
    with pytest.raises(APIError, match="system"):
        text_of(content, "system")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"city": "Paris"}', {"city": "Paris"}),
        ({"city": "Paris"}, {"city": "Paris"}),
        ("", {}),
        (None, {}),
    ],
)
def test_parse_arguments(raw: Any, expected: dict[str, Any]) -> None:
    assert parse_arguments(raw, "weather") == expected


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", "42", 42])
def test_parse_arguments_refuses_what_is_not_an_object(raw: Any) -> None:
    with pytest.raises(APIError, match="weather"):
        parse_arguments(raw, "weather")


def test_schema_response_format_is_strict() -> None:
    schema = {"type": "object", "properties": {}, "additionalProperties": False}
    assert schema_response_format(schema) == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema, "strict": True},
    }


def test_function_tools_keep_what_every_provider_understands() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {}},
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "now"}},
    ]
    assert function_tools(tools, "X") == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {}},
        },
        {"name": "now"},
    ]


@pytest.mark.parametrize(
    ("tools", "says"),
    [
        ({"type": "function"}, "list"),
        ([{"type": "web_search"}], "only function tools"),
        (["get_weather"], "only function tools"),
        ([{"type": "function", "function": {"description": "no name"}}], "function.name"),
    ],
)
def test_function_tools_refuse_the_rest(tools: Any, says: str) -> None:
    with pytest.raises(APIError, match=says):
        function_tools(tools, "X")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"type": "function", "function": {"name": "f", "x": 1}}, {"name": "f", "x": 1}),
        (
            {"id": "c1", "function": {"name": "", "arguments": "{}"}},
            {"name": "", "arguments": "{}"},
        ),
        ({"function": {"name": 3}}, None),
        ({"function": "f"}, None),
        ({"name": "f"}, None),
        ("required", None),
        (None, None),
    ],
)
def test_named_function(value: Any, expected: dict[str, Any] | None) -> None:
    assert named_function(value) == expected


@pytest.mark.parametrize(
    ("raw", "names", "expected"),
    [
        (None, ("input_tokens", "output_tokens"), Usage()),
        (
            {
                "input_tokens": 30,
                "output_tokens": 12,
                "input_tokens_details": {"cached_tokens": 20, "cache_write_tokens": 5},
                "output_tokens_details": {"reasoning_tokens": 8},
            },
            ("input_tokens", "output_tokens"),
            Usage(30, 12, cached_input_tokens=20, reasoning_tokens=8, cache_write_tokens=5),
        ),
        (
            {
                "prompt_tokens": 9,
                "completion_tokens": 2,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": None,
            },
            ("prompt_tokens", "completion_tokens"),
            Usage(9, 2, cached_input_tokens=4),
        ),
    ],
)
def test_openai_usage(raw: Any, names: tuple[str, str], expected: Usage) -> None:
    assert openai_usage(raw, *names) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 0), (0, 0), (12, 12), (418.0, 418), ("7", 7)],
)
def test_count(value: Any, expected: int) -> None:
    assert count(value) == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [("abc", ValueError), (1e400, OverflowError), ([1], TypeError), (True, TypeError)],
)
def test_count_refuses_junk(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        count(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("720", 720), ("1.5e3", 1500), ("abc", None), ("inf", None), ("nan", None)],
)
def test_header_int(value: str | None, expected: int | None) -> None:
    assert header_int(value) == expected


def test_unsupported_is_a_plain_final_api_error() -> None:
    error = unsupported("cannot")
    assert type(error) is APIError
    assert (error.retryable, error.fatal, str(error)) == (False, False, "cannot")


def test_unreadable_redacts_the_key_and_quotes_the_body() -> None:
    key = "secret-canary-key-123456"
    target = Endpoint(
        name="x",
        model=ModelInfo(id="p:m", provider="p", wire_id="m"),
        provider=ProviderInfo("p", "w", "https://h", "", ""),
        base_url="https://h",
        api_key=key,
    )
    body = b'{"echo": "' + key.encode() + b'"}'
    error = unreadable(target, HttpResponse(200, {}, body), "thing", KeyError(key))
    assert isinstance(error, APIResponseValidationError)
    assert error.status_code == 200
    assert "unreadable thing (KeyError" in str(error)
    assert key not in str(error)
    assert "[redacted]" in str(error)


@pytest.mark.parametrize(
    ("schema", "strict"),
    [
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "required": ["a"],
                "additionalProperties": False,
            },
            True,
        ),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}, False),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
                "required": ["a"],
                "additionalProperties": False,
            },
            False,
        ),
        (
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["xs"],
                "properties": {
                    "xs": {"type": "array", "items": {"type": "object", "properties": {"n": {}}}}
                },
            },
            False,
        ),
        ({"type": "array", "items": {"type": "number"}}, True),
    ],
)
def test_strict_mode_only_for_schemas_that_meet_its_rules(
    schema: dict[str, Any], strict: bool
) -> None:
    from lm_deluge_cli.providers.parts import schema_response_format

    assert schema_response_format(schema)["json_schema"]["strict"] is strict
