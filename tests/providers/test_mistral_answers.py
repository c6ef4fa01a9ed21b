"""The Mistral adapter's reading of answers: the documented responses, every choice, tool
calls, thinking, finish reasons and usage (fixtures/mistral/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import APIResponseValidationError, InternalServerError
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.providers.mistral import MistralAdapter
from lm_deluge_cli.providers.registry import ModelInfo, ProviderInfo
from lm_deluge_cli.results import Answer, Completion, Reasoning, ToolCall, Usage
from lm_deluge_cli.types import HttpResponse

FIXTURES = Path(__file__).parent / "fixtures" / "mistral"
ADAPTER = MistralAdapter()
OFFICIAL = "https://api.mistral.ai"
PROVIDER = ProviderInfo("mistral", "mistral", OFFICIAL, "MISTRAL_BASE_URL", "MISTRAL_API_KEY")
MODEL = ModelInfo("mistral:magistral-medium-latest", "mistral", "magistral-medium-latest")
ENDPOINT = Endpoint(MODEL.id, MODEL, PROVIDER, OFFICIAL, api_key="k")


KEY = "mistral-canary-qN7h6rEWlmjs5iL67Y4rt"


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def endpoint() -> Endpoint:
    model = ModelInfo("mistral:mistral-large-latest", "mistral", "mistral-large-latest")
    return Endpoint(model.id, model, PROVIDER, OFFICIAL, api_key=KEY)


def ok(body: Any) -> HttpResponse:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return HttpResponse(200, {"content-type": "application/json"}, raw)


def parse(body: Any) -> Completion:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return ADAPTER.parse_response(ENDPOINT, HttpResponse(200, {}, raw))


def test_every_choice_is_an_answer() -> None:
    documented = fixture("chat_completion_n")
    completion = parse(documented)
    assert [answer.text for answer in completion.answers] == [
        choice["message"]["content"] for choice in documented["choices"]
    ]
    assert [answer.finish_reason for answer in completion.answers] == ["stop", "length"]
    # Input is billed once for every choice: one usage for the response.
    assert completion.usage == Usage(input_tokens=16, output_tokens=41)


def test_choices_are_read_in_index_order() -> None:
    documented = fixture("chat_completion_n")
    documented["choices"].reverse()
    assert parse(documented).answers[0].text == "Claude Monet, who founded Impressionism."


def test_one_failed_choice_fails_the_response() -> None:
    documented = fixture("chat_completion_n")
    documented["choices"][1]["finish_reason"] = "error"
    with pytest.raises(InternalServerError) as caught:
        parse(documented)
    assert caught.value.retryable


def test_several_tool_calls() -> None:
    answer = parse(fixture("chat_completion_parallel_tool_calls")).answer
    assert answer.tool_calls == (
        ToolCall("VvvODy9mT", "retrieve_payment_status", {"transaction_id": "T1001"}),
        ToolCall("X1c7d2KqP", "retrieve_payment_date", {"transaction_id": "T1001"}),
    )
    assert (answer.finish_reason, answer.provider_finish_reason) == ("tool_calls", "tool_calls")
    assert not answer.empty


@pytest.mark.parametrize(
    ("arguments", "parsed", "raw"),
    [
        ('{"transaction_id": "T10', None, '{"transaction_id": "T10'),
        ("[1, 2]", None, "[1, 2]"),
        # The SDK types arguments as a string or an object: an object is taken as it is.
        ({"transaction_id": "T1001"}, {"transaction_id": "T1001"}, None),
        ("", {}, None),
    ],
)
def test_tool_call_arguments(arguments: Any, parsed: Any, raw: str | None) -> None:
    documented = fixture("chat_completion_tool_calls")
    call = documented["choices"][0]["message"]["tool_calls"][0]
    call["function"]["arguments"] = arguments
    assert parse(documented).answer.tool_calls == (
        ToolCall("D681PevKs", "retrieve_payment_status", parsed, raw),
    )


def test_a_tool_call_without_an_id_gets_one_by_position() -> None:
    documented = fixture("chat_completion_parallel_tool_calls")
    del documented["choices"][0]["message"]["tool_calls"][1]["id"]
    assert parse(documented).answer.tool_calls[1].id == "call_1"


def test_a_signed_thinking_chunk_is_reasoning_kept_whole() -> None:
    documented = fixture("chat_completion_thinking_signed")
    completion = parse(documented)
    answer = completion.answer
    chunk = documented["choices"][0]["message"]["content"][0]
    assert answer.text is None
    assert answer.reasoning == Reasoning(
        "The user asks about transaction T1001. I should look up its payment status first.",
        ({"format": "mistral", "chunk": chunk},),
    )
    assert [call.name for call in answer.tool_calls] == ["retrieve_payment_status"]
    assert completion.usage == Usage(212, 96, cached_input_tokens=128, reasoning_tokens=71)


def test_several_thinking_chunks_are_paragraphs_and_references_are_not_text() -> None:
    documented = fixture("chat_completion_thinking")
    content = documented["choices"][0]["message"]["content"]
    content.insert(1, {"type": "thinking", "thinking": [{"type": "text", "text": "Check."}]})
    content.append({"type": "reference", "reference_ids": [1, 2]})
    answer = parse(documented).answer
    assert answer.text == "Each of Alice's brothers has 3 sisters."
    assert answer.reasoning is not None
    assert answer.reasoning.text is not None and answer.reasoning.text.endswith("3.\n\nCheck.")
    assert answer.reasoning.parts == ()  # unsigned: the text says it all


def test_an_empty_thinking_chunk_is_no_reasoning() -> None:
    documented = fixture("chat_completion_thinking")
    documented["choices"][0]["message"]["content"][0]["thinking"] = []
    assert parse(documented).answer.reasoning is None


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": 9, "completion_tokens": 2, "num_cached_tokens": 4}, Usage(9, 2, 4)),
        (
            {"prompt_tokens": 9, "completion_tokens": 2, "prompt_tokens_details": None},
            Usage(9, 2),
        ),
        (
            {
                "prompt_tokens": 9,
                "completion_tokens": 2,
                "prompt_tokens_details": {"cached_tokens": 0},
                "num_cached_tokens": 4,
            },
            Usage(9, 2),
        ),
    ],
)
def test_usage_details(usage: dict[str, Any], expected: Usage) -> None:
    documented = fixture("chat_completion")
    documented["usage"] = usage
    assert parse(documented).usage == expected


@pytest.mark.parametrize(
    "message",
    [
        {"content": [{"type": "thinking", "thinking": 5}]},
        {"content": [{"type": "thinking", "thinking": [{"type": "text", "text": 5}]}]},
        {"content": [{"type": "thinking"}]},
        {"content": None, "tool_calls": [{"id": "a", "function": {"arguments": "{}"}}]},
        {"content": None, "tool_calls": [{"id": "a", "function": {"name": 5}}]},
    ],
)
def test_unreadable_answers_are_validation_errors(message: dict[str, Any]) -> None:
    documented = fixture("chat_completion")
    documented["choices"][0]["message"] = message
    with pytest.raises(APIResponseValidationError):
        parse(documented)


# --- parse_response --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "chat_completion",
            Completion(
                (
                    Answer(
                        "Claude Monet is often considered one of the best French painters, "
                        "known for founding Impressionism.",
                        finish_reason="stop",
                        provider_finish_reason="stop",
                    ),
                ),
                Usage(input_tokens=16, output_tokens=34),
            ),
        ),
        (
            "chat_completion_length",
            Completion(
                (
                    Answer(
                        fixture("chat_completion_length")["choices"][0]["message"]["content"],
                        finish_reason="length",
                        provider_finish_reason="length",
                    ),
                ),
                Usage(input_tokens=34, output_tokens=100),
            ),
        ),
        (
            "chat_completion_thinking",
            Completion(
                (
                    Answer(
                        "Each of Alice's brothers has 3 sisters.",
                        # The thinking is the reasoning, never the text.
                        reasoning=Reasoning(
                            "Alice has 3 brothers and 2 sisters. Each brother has Alice and "
                            "her 2 sisters as sisters, so 3."
                        ),
                        finish_reason="stop",
                        provider_finish_reason="stop",
                    ),
                ),
                Usage(input_tokens=29, output_tokens=512),
            ),
        ),
        (
            "chat_completion_tool_calls",
            Completion(
                (
                    Answer(
                        "",
                        tool_calls=(
                            ToolCall(
                                "D681PevKs", "retrieve_payment_status", {"transaction_id": "T1001"}
                            ),
                        ),
                        finish_reason="tool_calls",
                        provider_finish_reason="tool_calls",
                    ),
                ),
                Usage(167, 24),
            ),
        ),
    ],
)
def test_parse_documented_responses(name: str, expected: Completion) -> None:
    assert ADAPTER.parse_response(endpoint(), ok(fixture_bytes(name))) == expected


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("model_length", "length"),
        ("tool_calls", "tool_calls"),
        ("something_new", "other"),
        (None, None),
    ],
)
def test_finish_reasons(reason: str | None, expected: str | None) -> None:
    body = fixture("chat_completion")
    body["choices"][0]["finish_reason"] = reason
    answer = ADAPTER.parse_response(endpoint(), ok(body)).answer
    assert (answer.finish_reason, answer.provider_finish_reason) == (expected, reason)


def test_finish_reason_error_is_a_retryable_server_error() -> None:
    body = fixture("chat_completion")
    body["choices"][0]["finish_reason"] = "error"
    with pytest.raises(InternalServerError) as info:
        ADAPTER.parse_response(endpoint(), ok(body))
    assert (info.value.retryable, info.value.fatal, info.value.status_code) == (True, False, 200)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}, Usage(5, 6)),
        ({"prompt_tokens": 5}, Usage(5, 0)),
        (None, Usage()),
    ],
)
def test_usage(usage: Any, expected: Usage) -> None:
    body = fixture("chat_completion")
    body["usage"] = usage
    assert ADAPTER.parse_response(endpoint(), ok(body)).usage == expected


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"null",
        b"{}",
        b'{"choices": []}',
        b'{"choices": [{}]}',
        b'{"choices": [{"message": null}]}',
        b'{"choices": [{"message": {"content": 5}}]}',
        b'{"choices": [{"message": {"content": [{"type": "text", "text": 5}]}}]}',
        b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "abc"}}',
        b'{"choices": [{"message": {"content": "x"}}], "usage": []}',
        b'{"object": "error", "message": "inside a 200", "type": "api_error"}',
    ],
)
def test_malformed_2xx_bodies_are_validation_errors(body: bytes) -> None:
    with pytest.raises(APIResponseValidationError) as info:
        ADAPTER.parse_response(endpoint(), ok(body))
    assert info.value.status_code == 200
    assert "unreadable Mistral chat completion" in str(info.value)


def test_validation_error_never_quotes_the_key() -> None:
    body = b'{"echo": "Bearer ' + KEY.encode() + b'"}'
    with pytest.raises(APIResponseValidationError) as info:
        ADAPTER.parse_response(endpoint(), ok(body))
    assert KEY not in str(info.value)
