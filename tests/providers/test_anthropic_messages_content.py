"""The Messages API adapter's content blocks: images, files, tools and tool results, refused
prompts.

Fixtures under fixtures/anthropic/ are the examples of Anthropic's guides: the base64 PDF of
"PDF support" (messages_request_pdf.json) and the plain text document of "Citations"
(messages_request_text_document.json).
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.conversation import Conversation
from lm_deluge_cli.errors import APIError
from lm_deluge_cli.providers.anthropic_messages import AnthropicMessagesAdapter, translate_messages
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.types import Prompt, SamplingParams


@pytest.fixture
def endpoint(anthropic_endpoint: Callable[..., Endpoint]) -> Callable[..., Endpoint]:
    return anthropic_endpoint


@pytest.fixture
def body(anthropic_body: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    return anthropic_body


# 2025-08-21T12:40:41Z: 18 s before the documented requests reset.
NOW = datetime.datetime(2025, 8, 21, 12, 40, 41, tzinfo=datetime.UTC).timestamp()


ADAPTER = AnthropicMessagesAdapter(clock=lambda: NOW)


def prompt(messages: list[dict[str, Any]], extra_body: dict[str, Any] | None = None) -> Prompt:
    return Prompt(id=1, line=1, messages=messages, extra_body=dict(extra_body or {}))


HELLO = [{"role": "user", "content": "Hello, world"}]


# A 1×1 PNG.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAC"
    "hwGA60e6kgAAAABJRU5ErkJggg=="
)


FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def file_part(media_type: str, data: bytes | str, filename: str | None = None) -> dict[str, Any]:
    """An OpenAI file part holding `data` (bytes are encoded, a string is the base64)."""
    encoded = base64.b64encode(data).decode() if isinstance(data, bytes) else data
    spec = {"file_data": f"data:{media_type};base64,{encoded}"}
    return {"type": "file", "file": spec | ({"filename": filename} if filename else {})}


def base64_source(media_type: str, data: str) -> dict[str, str]:
    return {"type": "base64", "media_type": media_type, "data": data}


def user_image(url: str) -> list[dict[str, Any]]:
    """One user message holding one image_url part."""
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]


def tool_call(arguments: str, call_id: str | None = "c", name: str | None = "f") -> dict[str, Any]:
    """An assistant message with one tool call; None leaves a field out."""
    function = {"arguments": arguments} | ({"name": name} if name else {})
    call = {"type": "function", "function": function} | ({"id": call_id} if call_id else {})
    return {"role": "assistant", "tool_calls": [call]}


@pytest.mark.parametrize(
    ("url", "source"),
    [
        (f"data:image/png;base64,{PNG}", base64_source("image/png", PNG)),
        ("data:image/JPEG;base64,/9j/4AAQ", base64_source("image/jpeg", "/9j/4AAQ")),
        ("data:image/webp;name=x.webp;base64,UklG", base64_source("image/webp", "UklG")),
        ("https://example.com/a.jpg", {"type": "url", "url": "https://example.com/a.jpg"}),
        ("http://example.com/b.gif", {"type": "url", "url": "http://example.com/b.gif"}),
    ],
)
def test_images(body: Callable[..., dict[str, Any]], url: str, source: dict[str, str]) -> None:
    parts = [
        {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
        {"type": "text", "text": "Describe this image."},
    ]
    sent = body([{"role": "user", "content": parts}])
    assert sent["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": source},
                {"type": "text", "text": "Describe this image."},
            ],
        }
    ]


def test_a_pdf_becomes_the_documented_document_block(body: Callable[..., dict[str, Any]]) -> None:
    documented = fixture("messages_request_pdf")
    block, question = documented["messages"][0]["content"]
    parts = [
        file_part("application/pdf", block["source"]["data"]),
        {"type": "text", "text": question["text"]},
    ]
    sent = body([{"role": "user", "content": parts}], SamplingParams(max_new_tokens=1024))
    assert sent["messages"] == documented["messages"]
    assert sent["max_tokens"] == documented["max_tokens"]


def test_a_text_file_becomes_the_documented_text_document(
    body: Callable[..., dict[str, Any]],
) -> None:
    documented = fixture("messages_request_text_document")
    block, question = documented["messages"][0]["content"]
    text = block["source"]["data"].encode()
    parts = [
        file_part("text/plain", text, block["title"]),
        {"type": "text", "text": question["text"]},
    ]
    sent = body([{"role": "user", "content": parts}])
    # context and citations are the API's own options: an OpenAI file part has neither.
    sent_block = sent["messages"][0]["content"][0]
    assert sent_block == {key: block[key] for key in ("type", "source", "title")}
    assert sent["messages"][0]["content"][1] == question


def test_a_filename_is_the_pdf_title(body: Callable[..., dict[str, Any]]) -> None:
    sent = body([{"role": "user", "content": [file_part("application/pdf", b"%PDF", "q3.pdf")]}])
    assert sent["messages"][0]["content"] == [
        {
            "type": "document",
            "source": base64_source("application/pdf", base64.b64encode(b"%PDF").decode()),
            "title": "q3.pdf",
        }
    ]


@pytest.mark.parametrize(
    ("media_type", "data", "text"),
    [
        ("text/plain", "héllo\n".encode(), "héllo\n"),
        ("text/csv", b"a,b\n1,2\n", "a,b\n1,2\n"),
        ("text/markdown", b"# Title\n", "# Title\n"),
        # A byte-order mark is not part of the text.
        ("text/plain", b"\xef\xbb\xbfbom", "bom"),
    ],
)
def test_text_files_are_sent_as_plain_text(
    body: Callable[..., dict[str, Any]], media_type: str, data: bytes, text: str
) -> None:
    sent = body([{"role": "user", "content": [file_part(media_type, data, "notes")]}])
    assert sent["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": text},
            "title": "notes",
        }
    ]


def test_an_image_file_becomes_an_image_block(body: Callable[..., dict[str, Any]]) -> None:
    sent = body([{"role": "user", "content": [file_part("image/png", PNG, "dot.png")]}])
    assert sent["messages"][0]["content"] == [
        {"type": "image", "source": base64_source("image/png", PNG)}
    ]


def test_an_anthropic_pdf_line_comes_back_as_it_went_in() -> None:
    block = fixture("messages_request_pdf")["messages"][0]["content"][0]
    content = [{**block, "title": "report.pdf"}, {"type": "text", "text": "Summarize."}]
    turns = [{"role": "user", "content": content}]
    assert Conversation.from_anthropic(turns).to_anthropic() == (None, turns)


WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"location": {"type": "string"}},
    "required": ["location"],
}


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "parameters": WEATHER_SCHEMA,
    },
}


TOOL_CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a weather bot."},
    {"role": "user", "content": "Weather in San Francisco and Paris?"},
    {
        "role": "assistant",
        "content": "I'll check both.",
        "tool_calls": [
            {
                "id": "toolu_01A09q90qw90lq917835lq9",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location": "San Francisco"}'},
            },
            {
                "id": "toolu_01B",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "15 degrees"},
    {"role": "tool", "tool_call_id": "toolu_01B", "content": [{"type": "text", "text": "20"}]},
    {"role": "user", "content": "Which is warmer?"},
]


def test_tool_calls_and_results_become_tool_use_and_tool_result_blocks(
    body: Callable[..., dict[str, Any]],
) -> None:
    sent = body(TOOL_CONVERSATION, extra_body={"tools": [WEATHER_TOOL], "tool_choice": "auto"})
    assert sent["system"] == "You are a weather bot."
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "input_schema": WEATHER_SCHEMA,
        }
    ]
    assert sent["tool_choice"] == {"type": "auto"}
    assert sent["messages"] == [
        {"role": "user", "content": "Weather in San Francisco and Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "I'll check both."},
                {
                    "type": "tool_use",
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "name": "get_weather",
                    "input": {"location": "San Francisco"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_01B",
                    "name": "get_weather",
                    "input": {"location": "Paris"},
                },
            ],
        },
        # Tool results are user turns, merged with the user's next words.
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                    "content": [{"type": "text", "text": "15 degrees"}],
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01B",
                    "content": [{"type": "text", "text": "20"}],
                },
                {"type": "text", "text": "Which is warmer?"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
        ({"function": {"name": "f"}}, {"type": "tool", "name": "f"}),
        (None, None),
    ],
)
def test_tool_choice(
    body: Callable[..., dict[str, Any]], choice: Any, expected: dict[str, str] | None
) -> None:
    sent = body(extra_body={"tools": [WEATHER_TOOL], "tool_choice": choice})
    assert sent.get("tool_choice") == expected


@pytest.mark.parametrize(
    "choice",
    [
        "sometimes",
        "",
        {"type": "function", "function": {}},
        {"type": "function", "function": "f"},
        {"type": "function"},
        {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [WEATHER_TOOL]}},
        {"type": "custom", "custom": {"name": "f"}},
        5,
    ],
)
def test_a_tool_choice_anthropic_cannot_express_is_refused(
    body: Callable[..., dict[str, Any]], choice: Any
) -> None:
    with pytest.raises(APIError) as info:
        body(extra_body={"tools": [WEATHER_TOOL], "tool_choice": choice})
    assert f"tool_choice {choice!r} is not supported" in str(info.value)
    assert '"auto", "none", "required" or one function' in str(info.value)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", {"type": "any", "disable_parallel_tool_use": True}),
        (
            {"type": "function", "function": {"name": "f"}},
            {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        ),
        ("none", {"type": "none"}),
    ],
)
def test_parallel_tool_calls_false_asks_for_one_call(
    body: Callable[..., dict[str, Any]], choice: Any, expected: dict[str, Any]
) -> None:
    extra = {"tools": [WEATHER_TOOL], "tool_choice": choice, "parallel_tool_calls": False}
    assert body(extra_body=extra)["tool_choice"] == expected


@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_a_forced_tool_call_cannot_come_with_thinking(
    endpoint: Callable[..., Endpoint], body: Callable[..., dict[str, Any]], choice: Any
) -> None:
    thinking = SamplingParams(reasoning_effort="low")
    extra = {"tools": [WEATHER_TOOL], "tool_choice": choice}
    with pytest.raises(APIError, match="forces a tool call, which extended thinking"):
        body(sampling=thinking, target=endpoint(reasoning=True), extra_body=extra)
    # auto and none go with thinking; without thinking, forcing is fine.
    for allowed in ("auto", "none"):
        sent = body(
            sampling=thinking,
            target=endpoint(reasoning=True),
            extra_body={**extra, "tool_choice": allowed},
        )
        assert sent["thinking"]["type"] == "enabled"
    assert body(sampling=thinking, target=endpoint(), extra_body=extra)["tool_choice"]


def test_parallel_tool_calls_without_tools_or_true_changes_nothing(
    body: Callable[..., dict[str, Any]],
) -> None:
    assert "tool_choice" not in body(extra_body={"parallel_tool_calls": False})
    sent = body(extra_body={"tools": [WEATHER_TOOL], "parallel_tool_calls": True})
    assert "tool_choice" not in sent


def test_a_tool_without_parameters_gets_an_empty_schema_and_openai_keys_are_dropped(
    body: Callable[..., dict[str, Any]],
) -> None:
    bare = {"type": "function", "function": {"name": "now"}}
    extra = {"tools": [bare], "seed": 7, "response_format": {"type": "json_object"}, "n": 2}
    sent = body(extra_body=extra)
    assert sent["tools"] == [{"name": "now", "input_schema": {"type": "object", "properties": {}}}]
    assert not {"seed", "response_format", "n", "tool_choice"} & set(sent)


def test_an_assistant_tool_call_without_content() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "now", "arguments": ""}}
    _, messages = translate_messages(
        [*HELLO, {"role": "assistant", "content": None, "tool_calls": [call]}]
    )
    assert messages[1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "call_1", "name": "now", "input": {}}],
    }


@pytest.mark.parametrize(
    ("messages", "says"),
    [
        ([{"role": "narrator", "content": "x"}], "messages[0] has role 'narrator'"),
        ([{"role": "user", "content": 5}], "messages[0].content"),
        ([{"role": "user", "content": [{"type": "input_audio"}]}], "'input_audio' part"),
        ([{"role": "user", "content": ["text"]}], "messages[0].content[0]"),
        ([{**user_image("https://x/y.png")[0], "role": "system"}], "'image_url' part"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], "image_url.url"),
        (user_image("ftp://x/y.png"), "http(s)"),
        (user_image("data:image/svg+xml;base64,PHN2Zz4="), "JPEG, PNG, GIF or WebP"),
        (user_image("data:image/png,rawbytes"), "base64"),
        (
            [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}],
            "OpenAI upload (file_id 'file-abc'), which Anthropic cannot read",
        ),
        (
            [{"role": "user", "content": [file_part("application/zip", b"PK")]}],
            "Anthropic cannot read application/zip files; it reads PDFs, text files",
        ),
        ([{"role": "user", "content": [file_part("text/plain", b"\xff\xfe")]}], "not UTF-8"),
        ([{"role": "user", "content": [file_part("application/pdf", "%%%")]}], "invalid base64"),
        ([{"role": "user", "content": [{"type": "file"}]}], "without a 'file' object"),
        (
            [{"role": "user", "content": [{"type": "file", "file": {"file_data": "x.pdf"}}]}],
            "needs file.file_data as a base64 data: URL",
        ),
        ([{"role": "assistant", "content": [file_part("application/pdf", b"%")]}], "'file' part"),
        ([{"role": "system", "content": [file_part("application/pdf", b"%")]}], "'file' part"),
        ([tool_call("{oops")], "JSON object arguments"),
        ([tool_call("[1]")], "JSON object arguments"),
        ([tool_call("{}", call_id=None)], "an id"),
        ([tool_call("{}", name=None)], "function.name"),
        ([{"role": "tool", "content": "15 degrees"}], "without tool_call_id"),
    ],
)
def test_prompts_the_api_cannot_take_fail_before_sending(
    endpoint: Callable[..., Endpoint], messages: list[dict[str, Any]], says: str
) -> None:
    with pytest.raises(APIError) as info:
        ADAPTER.build_request(endpoint(), prompt(messages), SamplingParams(), 5.0)
    error = info.value
    assert type(error) is APIError
    assert not error.retryable
    assert not error.fatal
    assert str(error).startswith("cannot send this prompt to Anthropic: ")
    assert says in str(error)


def test_non_function_tools_fail_before_sending(
    body: Callable[..., dict[str, Any]],
) -> None:
    with pytest.raises(APIError, match="only function tools"):
        body(extra_body={"tools": [{"type": "web_search"}]})


def test_the_prompt_is_left_as_it_was(
    body: Callable[..., dict[str, Any]],
) -> None:
    messages = orjson.loads(orjson.dumps(TOOL_CONVERSATION))
    body(messages, extra_body={"tools": [WEATHER_TOOL]})
    assert messages == TOOL_CONVERSATION
