"""Files in the mock's wire formats: Anthropic (and Bedrock) document blocks and Gemini
inlineData are read and counted, and malformed ones refused with a 400, as the APIs do."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.mock.formats import match_route
from lm_deluge_cli.mock.simulator import MockSettings, SimResponse, Simulator
from lm_deluge_cli.mock.wire import (
    FILE_TOKENS,
    MESSAGE_OVERHEAD_TOKENS,
    count_text_tokens,
)

FIXTURES = Path(__file__).parents[1] / "providers" / "fixtures"
PATHS = {
    "openai": "/v1/chat/completions",
    "anthropic": "/anthropic/v1/messages",
    "gemini": "/gemini/v1beta/models/gemini-2.5-flash:generateContent",
    "bedrock": "/bedrock/model/anthropic.claude-sonnet-4-6/invoke",
}
HEADERS = {
    "openai": {},
    "anthropic": {"anthropic-version": "2023-06-01"},
    "gemini": {},
    "bedrock": {
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIA/x, SignedHeaders=h, Signature=s"
    },
}
PDF = base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode()
QUESTION = "What is in it?"


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def send(provider: str, payload: Any) -> tuple[SimResponse, Any]:
    route = match_route(PATHS[provider])
    assert route is not None
    response = Simulator(MockSettings()).handle(route, HEADERS[provider], orjson.dumps(payload))
    return response, orjson.loads(response.body)


def messages_body(provider: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    """A Messages (or InvokeModel) body with one user turn of `content`."""
    body: dict[str, Any] = {"max_tokens": 64, "messages": [{"role": "user", "content": content}]}
    if provider == "bedrock":
        return {"anthropic_version": "bedrock-2023-05-31", **body}
    return {"model": "claude-sonnet-4-6", **body}


def _document(**source: Any) -> dict[str, Any]:
    return {"type": "document", "source": source}


def prompt_tokens(provider: str, data: dict[str, Any]) -> int:
    if provider == "gemini":
        count: int = data["usageMetadata"]["promptTokenCount"]
    elif provider == "openai":
        count = data["usage"]["prompt_tokens"]
    else:
        count = data["usage"]["input_tokens"]
    return count


@pytest.mark.parametrize(
    ("provider", "request_fixture"),
    [
        ("anthropic", "anthropic/messages_request_pdf.json"),
        ("gemini", "gemini/request_inline_pdf.json"),
    ],
)
def test_documented_pdf_requests_are_answered_and_the_pdf_counted(
    provider: str, request_fixture: str
) -> None:
    response, data = send(provider, fixture(request_fixture))
    assert response.status == 200, data
    question = (
        "What are the key findings in this document?"
        if provider == "anthropic"
        else "Summarize this document"
    )
    expected = FILE_TOKENS + count_text_tokens(question) + MESSAGE_OVERHEAD_TOKENS
    assert prompt_tokens(provider, data) == expected


def test_a_text_document_counts_its_text() -> None:
    documented = fixture("anthropic/messages_request_text_document.json")
    response, data = send("anthropic", documented)
    assert response.status == 200, data
    block, question = documented["messages"][0]["content"]
    expected = count_text_tokens(block["source"]["data"]) + count_text_tokens(question["text"])
    assert prompt_tokens("anthropic", data) == expected + MESSAGE_OVERHEAD_TOKENS


def test_one_pdf_prompt_counts_the_same_in_every_format() -> None:
    openai = {
        "model": "gpt-4.1",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}"}},
                    {"type": "text", "text": QUESTION},
                ],
            }
        ],
    }
    document = _document(type="base64", media_type="application/pdf", data=PDF)
    anthropic = messages_body("anthropic", [document, {"type": "text", "text": QUESTION}])
    inline = {"inlineData": {"mimeType": "application/pdf", "data": PDF}}
    gemini = {"contents": [{"role": "user", "parts": [inline, {"text": QUESTION}]}]}
    counts = {
        provider: prompt_tokens(provider, send(provider, payload)[1])
        for provider, payload in (("openai", openai), ("anthropic", anthropic), ("gemini", gemini))
    }
    assert set(counts.values()) == {
        FILE_TOKENS + count_text_tokens(QUESTION) + MESSAGE_OVERHEAD_TOKENS
    }


def test_gemini_counts_an_inline_text_file_as_its_text() -> None:
    text = "col,val\n" * 40
    inline = {
        "inlineData": {"mimeType": "text/csv", "data": base64.b64encode(text.encode()).decode()}
    }
    response, data = send("gemini", {"contents": [{"parts": [inline]}]})
    assert response.status == 200, data
    assert prompt_tokens("gemini", data) == count_text_tokens(text) + MESSAGE_OVERHEAD_TOKENS


@pytest.mark.parametrize(
    ("block", "says"),
    [
        (
            _document(type="base64", media_type="text/plain", data=PDF),
            "messages.0.content.0.document.source.base64.media_type: Input should be "
            "'application/pdf'",
        ),
        (
            _document(type="base64", media_type="application/pdf"),
            "messages.0.content.0.document.source.base64.data: Field required",
        ),
        (
            _document(type="base64", media_type="application/pdf", data="%%%"),
            "document.source.base64.data: Input should be valid base64",
        ),
        (
            _document(type="text", media_type="text/csv", data="a,b"),
            "document.source.text.media_type: Input should be 'text/plain'",
        ),
        (_document(type="url"), "document.source.url.url: Field required"),
        (
            _document(type="pdf", data=PDF),
            "document.source: Input tag 'pdf' found using 'type' does not match any of the "
            "expected tags",
        ),
        ({"type": "document"}, "messages.0.content.0.document.source: Field required"),
        (
            {**_document(type="text", media_type="text/plain", data="x"), "title": 5},
            "document.title: Input should be a valid string",
        ),
    ],
)
def test_anthropic_refuses_malformed_document_blocks(block: dict[str, Any], says: str) -> None:
    response, data = send("anthropic", messages_body("anthropic", [block]))
    assert response.status == 400
    assert data["error"]["type"] == "invalid_request_error"
    assert says in data["error"]["message"]


@pytest.mark.parametrize(
    "source",
    [
        {"type": "url", "url": "https://example.com/a.pdf"},
        {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"},
    ],
)
def test_bedrock_refuses_url_and_file_sources(source: dict[str, Any]) -> None:
    response, data = send("bedrock", messages_body("bedrock", [_document(**source)]))
    assert response.status == 400
    assert response.headers["x-amzn-errortype"].startswith("ValidationException:")
    assert (
        f"document.source.{source['type']}: {source['type']} sources are not supported"
        in (data["message"])
    )
    # The same blocks are well-formed for Anthropic's own API.
    assert send("anthropic", messages_body("anthropic", [_document(**source)]))[0].status == 200


def test_bedrock_reads_base64_and_text_documents() -> None:
    blocks = [
        _document(type="base64", media_type="application/pdf", data=PDF),
        _document(type="text", media_type="text/plain", data="Some notes."),
    ]
    response, data = send("bedrock", messages_body("bedrock", blocks))
    assert response.status == 200, data
    expected = FILE_TOKENS + count_text_tokens("Some notes.") + MESSAGE_OVERHEAD_TOKENS
    assert prompt_tokens("bedrock", data) == expected


@pytest.mark.parametrize(
    ("inline", "says"),
    [
        (
            {"mimeType": "application/pdf", "data": "%%%"},
            "inline_data.data: Base64 decoding failed",
        ),
        ({"data": PDF}, "inline_data.mime_type: a MIME type is required"),
        ("JVBER", "inline_data.mime_type: a MIME type is required"),
    ],
)
def test_gemini_refuses_malformed_inline_data(inline: Any, says: str) -> None:
    parts = [{"text": QUESTION}, {"inlineData": inline}]
    response, data = send("gemini", {"contents": [{"parts": parts}]})
    assert response.status == 400
    assert data["error"]["status"] == "INVALID_ARGUMENT"
    assert f"GenerateContentRequest.contents[0].parts[1].{says}" in data["error"]["message"]


def test_gemini_reads_url_safe_unpadded_base64() -> None:
    # proto3 JSON reads bytes in either base64 alphabet, with or without padding.
    inline = {"inline_data": {"mime_type": "application/pdf", "data": "-_8"}}
    response, data = send("gemini", {"contents": [{"parts": [inline]}]})
    assert response.status == 200, data
