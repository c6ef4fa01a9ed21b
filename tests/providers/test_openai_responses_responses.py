"""The Responses API adapter's reading of responses, errors and rate-limit headers.

Fixtures under fixtures/openai_responses/ (see the README there) and, for what the Responses
API shares with Chat Completions (error bodies, x-ratelimit-* headers), fixtures/openai/.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import (
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    OverloadedError,
    QuotaExhaustedError,
    RateLimitError,
)
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.providers.openai_responses import OpenAIResponsesAdapter
from lm_deluge_cli.providers.openai_responses_output import FORMAT
from lm_deluge_cli.providers.registry import ModelInfo, load_registry
from lm_deluge_cli.results import Answer, Completion, Reasoning, ToolCall, Usage
from lm_deluge_cli.types import HttpResponse, RateLimitInfo

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
ADAPTER = OpenAIResponsesAdapter()
ENDPOINT = Endpoint(
    "openai:o3-pro",
    ModelInfo("openai:o3-pro", "openai", "o3-pro", reasoning=True, wire_format="openai_responses"),
    load_registry().provider("openai"),
    "https://api.openai.com/v1",
    api_key=KEY,
)
JSON = {"content-type": "application/json"}


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def parse(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Completion:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return ADAPTER.parse_response(ENDPOINT, HttpResponse(status, headers or JSON, raw))


def documented_text() -> str:
    text: str = fixture("openai_responses/response_text")["output"][0]["content"][0]["text"]
    return text


# --- completions -----------------------------------------------------------------------


def test_the_documented_response() -> None:
    assert parse(fixture("openai_responses/response_text")) == Completion(
        (Answer(documented_text(), finish_reason="stop", provider_finish_reason="completed"),),
        Usage(input_tokens=36, output_tokens=87),
    )


def test_a_reasoning_item_is_not_the_answer_but_is_kept_whole() -> None:
    documented = fixture("openai_responses/response_reasoning")
    completion = parse(documented)
    assert completion.text == documented["output"][1]["content"][0]["text"]
    assert completion.finish_reason == "stop"
    # No summary asked for: no reasoning text, the item itself still kept.
    item = documented["output"][0]
    assert completion.answer.reasoning == Reasoning(None, ({"format": FORMAT, "item": item},))
    # logprobs: [] comes back when none were asked for; the record stays null.
    assert completion.logprobs is None
    assert completion.usage == Usage(input_tokens=9, output_tokens=606, reasoning_tokens=448)


def test_a_function_call_is_a_tool_call_with_parsed_arguments() -> None:
    completion = parse(fixture("openai_responses/response_function_call"))
    assert completion.answers == (
        Answer(
            text=None,
            # The call_id, which a function_call_output answers, not the item's own id.
            tool_calls=(ToolCall("call_12345xyz", "get_weather", {"location": "Paris, France"}),),
            finish_reason="tool_calls",
            provider_finish_reason="completed",
        ),
    )
    assert completion.usage == Usage(input_tokens=291, output_tokens=23)


def test_reasoning_summaries_and_several_function_calls() -> None:
    documented = fixture("openai_responses/response_reasoning_function_calls")
    answer = parse(documented).answer
    assert answer.tool_calls == (
        ToolCall("call_Xq9TzBv2kLmN8pR4sW6yA1cD", "get_weather", {"location": "Paris, France"}),
        ToolCall("call_Fh3JkLpQ7rStU2vWx5yZ8aBc", "get_weather", {"location": "Bogotá, Colombia"}),
    )
    assert (answer.text, answer.finish_reason) == (None, "tool_calls")
    summaries = [entry["text"] for entry in documented["output"][0]["summary"]]
    assert answer.reasoning is not None
    assert answer.reasoning.text == "\n\n".join(summaries)
    # The item exactly as returned, encrypted_content included, to be sent back.
    assert answer.reasoning.parts == ({"format": FORMAT, "item": documented["output"][0]},)
    assert answer.reasoning.parts[0]["item"]["encrypted_content"].startswith("gAAAA")
    assert answer.reasoning.parts[0]["format"] == "openai_responses"


def test_each_reasoning_item_is_a_part_of_its_own() -> None:
    documented = fixture("openai_responses/response_reasoning_function_calls")
    first = documented["output"][0]
    second = {**first, "id": "rs_2", "summary": [{"type": "summary_text", "text": "Then B."}]}
    documented["output"] = [first, documented["output"][1], second, documented["output"][2]]
    reasoning = parse(documented).answer.reasoning
    assert reasoning is not None
    assert [part["item"]["id"] for part in reasoning.parts] == [first["id"], "rs_2"]
    assert reasoning.text is not None and reasoning.text.endswith("\n\nThen B.")


def test_reasoning_text_without_a_summary_is_read() -> None:
    # What open-weight models behind compatible servers return: the raw reasoning as content.
    documented = fixture("openai_responses/response_reasoning")
    documented["output"][0]["content"] = [{"type": "reasoning_text", "text": "Rust is..."}]
    reasoning = parse(documented).answer.reasoning
    assert reasoning is not None and reasoning.text == "Rust is..."


@pytest.mark.parametrize("raw", ['{"location": "Par', "[1, 2]", "Paris"])
def test_arguments_that_are_not_a_json_object_are_kept_raw(raw: str) -> None:
    documented = fixture("openai_responses/response_function_call")
    documented["output"][0]["arguments"] = raw
    assert parse(documented).answer.tool_calls == (
        ToolCall("call_12345xyz", "get_weather", None, raw),
    )


def test_empty_arguments_are_an_empty_object() -> None:
    documented = fixture("openai_responses/response_function_call")
    documented["output"][0]["arguments"] = ""
    assert parse(documented).answer.tool_calls[0].arguments == {}


def test_text_beside_a_function_call_is_kept() -> None:
    documented = fixture("openai_responses/response_function_call")
    message = fixture("openai_responses/response_text")["output"][0]
    documented["output"].insert(0, message)
    answer = parse(documented).answer
    assert (answer.text, answer.finish_reason) == (documented_text(), "tool_calls")
    assert len(answer.tool_calls) == 1


def test_an_incomplete_response_was_cut_at_max_output_tokens() -> None:
    completion = parse(fixture("openai_responses/response_incomplete"))
    assert (completion.text, completion.finish_reason) == (None, "length")
    assert completion.answer.provider_finish_reason == "max_output_tokens"
    assert completion.usage == Usage(input_tokens=21, output_tokens=400, reasoning_tokens=400)


@pytest.mark.parametrize(
    ("details", "finish", "own"),
    [
        ({"reason": "content_filter"}, "content_filter", "content_filter"),
        ({"reason": "max_output_tokens"}, "length", "max_output_tokens"),
        ({"reason": "something_new"}, "other", "something_new"),
        (None, "length", "incomplete"),
        ({"reason": None}, "length", "incomplete"),
    ],
)
def test_incomplete_reasons(details: Any, finish: str, own: str) -> None:
    documented = fixture("openai_responses/response_text")
    documented.update(status="incomplete", incomplete_details=details)
    answer = parse(documented).answer
    assert (answer.finish_reason, answer.provider_finish_reason) == (finish, own)
    assert answer.text == documented_text()  # the text so far is kept


def test_no_status_is_a_natural_stop_without_a_provider_reason() -> None:
    documented = fixture("openai_responses/response_text")
    del documented["status"]
    answer = parse(documented).answer
    assert (answer.finish_reason, answer.provider_finish_reason) == ("stop", None)


def test_logprobs_are_read_in_chat_completions_shape() -> None:
    documented = fixture("openai_responses/response_logprobs")
    tokens = documented["output"][0]["content"][0]["logprobs"]
    completion = parse(documented)
    assert completion.text == "Hello!"
    assert completion.logprobs == tokens
    assert [t["token"] for t in completion.logprobs] == ["Hello", "!"]
    assert completion.logprobs[0]["top_logprobs"][1] == {
        "token": "Hi",
        "bytes": [72, 105],
        "logprob": -1.3190403,
    }


def test_the_text_and_logprobs_of_several_parts_and_messages_are_joined() -> None:
    documented = fixture("openai_responses/response_logprobs")
    message = documented["output"][0]
    second = copy.deepcopy(message)
    second["content"][0]["text"] = " Bye."
    second["content"][0]["logprobs"] = [{"token": " Bye.", "bytes": [], "logprob": -0.5}]
    documented["output"] = [{"type": "reasoning", "id": "rs_1", "summary": []}, message, second]
    completion = parse(documented)
    assert completion.text == "Hello! Bye."
    assert completion.logprobs is not None
    assert [t["token"] for t in completion.logprobs] == ["Hello", "!", " Bye."]


def test_cached_input_tokens() -> None:
    documented = fixture("openai_responses/response_text")
    documented["usage"]["input_tokens"] = 2006
    documented["usage"]["input_tokens_details"]["cached_tokens"] = 1920
    usage = parse(documented).usage
    assert (usage.input_tokens, usage.cached_input_tokens) == (2006, 1920)


def test_a_refusal_is_its_own_finish_reason() -> None:
    answer = parse(fixture("openai_responses/response_refusal")).answer
    assert answer == Answer(
        refusal="I'm sorry, I cannot assist with that request.",
        finish_reason="refusal",
        provider_finish_reason="completed",
    )
    assert not answer.empty


def test_a_refusal_beside_text_is_kept_and_the_answer_stops() -> None:
    documented = fixture("openai_responses/response_refusal")
    documented["output"][0]["content"].insert(0, {"type": "output_text", "text": "Partly: "})
    answer = parse(documented).answer
    assert (answer.text, answer.refusal) == (
        "Partly: ",
        "I'm sorry, I cannot assist with that request.",
    )
    assert answer.finish_reason == "stop"


def test_cache_reads_and_writes_are_in_usage() -> None:
    documented = fixture("openai_responses/response_text")
    documented["usage"] = {
        "input_tokens": 3000,
        "input_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 1900},
        "output_tokens": 12,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 3012,
    }
    assert parse(documented).usage == Usage(
        3000, 12, cached_input_tokens=1024, cache_write_tokens=1900
    )


def test_no_usage_reads_as_zero() -> None:
    documented = fixture("openai_responses/response_text")
    documented["usage"] = None
    assert parse(documented).usage == Usage()


# --- failed and unfinished responses ---------------------------------------------------


@pytest.mark.parametrize(
    ("code", "cls", "retryable"),
    [
        ("server_error", InternalServerError, True),
        ("rate_limit_exceeded", RateLimitError, True),
        ("vector_store_timeout", InternalServerError, True),
        # The input itself is refused: the same prompt fails again.
        ("invalid_prompt", BadRequestError, False),
        ("invalid_base64_image", BadRequestError, False),
    ],
)
def test_a_failed_response_is_an_error_by_its_code(
    code: str, cls: type[APIStatusError], retryable: bool
) -> None:
    documented = fixture("openai_responses/response_failed")
    documented["error"]["code"] = code
    with pytest.raises(cls) as caught:
        parse(documented)
    error = caught.value
    assert type(error) is cls
    assert (error.status_code, error.code, error.retryable) == (200, code, retryable)
    assert not error.fatal
    assert "The model failed to generate a response." in error.message


def test_a_failed_status_without_details_is_a_server_error() -> None:
    documented = fixture("openai_responses/response_failed")
    documented["error"] = None
    with pytest.raises(InternalServerError) as caught:
        parse(documented)
    assert caught.value.retryable
    assert "no error details" in caught.value.message


def test_an_error_object_fails_whatever_the_status() -> None:
    documented = fixture("openai_responses/response_text")
    documented["error"] = {"code": "server_error", "message": "boom"}
    with pytest.raises(InternalServerError):
        parse(documented)


def test_a_failed_response_never_shows_the_key() -> None:
    documented = fixture("openai_responses/response_failed")
    documented["error"]["message"] = f"bad key {KEY} in sk-proj-abcdefghijklmnop"
    with pytest.raises(InternalServerError) as caught:
        parse(documented)
    assert KEY not in caught.value.message
    assert "sk-proj-abcdefghijklmnop" not in caught.value.message


@pytest.mark.parametrize("status", ["queued", "in_progress", "cancelled"])
def test_an_unfinished_response_is_retried(status: str) -> None:
    documented = fixture("openai_responses/response_text")
    documented.update(status=status, output=[])
    with pytest.raises(APIResponseValidationError) as caught:
        parse(documented)
    assert caught.value.retryable
    assert repr(status) in caught.value.message


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: b"<html>502 Bad Gateway</html>",
        lambda d: b"[]",
        lambda d: {**d, "output": {"text": "x"}},
        lambda d: {k: v for k, v in d.items() if k != "output"},
        lambda d: {**d, "output": [{"content": []}]},
        lambda d: {**d, "output": [{"type": "message", "content": [{"type": "output_text"}]}]},
        lambda d: {
            **d,
            "output": [{"type": "message", "content": [{"type": "output_text", "text": 5}]}],
        },
        lambda d: {**d, "usage": {"input_tokens": "many"}},
        lambda d: {**d, "output": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
        lambda d: {**d, "output": [{"type": "function_call", "call_id": "c", "name": 5}]},
        lambda d: {
            **d,
            "output": [{"type": "message", "content": [{"type": "refusal", "refusal": None}]}],
        },
        lambda d: {
            **d,
            "output": [
                {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text"}]},
            ],
        },
        lambda d: {**d, "usage": {"input_tokens": 1, "output_tokens": [1]}},
    ],
)
def test_an_unreadable_body_is_a_validation_error(mangle: Any) -> None:
    payload = mangle(fixture("openai_responses/response_text"))
    with pytest.raises(APIResponseValidationError) as caught:
        parse(payload)
    assert caught.value.retryable
    assert "Responses API response" in caught.value.message


def test_an_unreadable_body_never_shows_the_key() -> None:
    with pytest.raises(APIResponseValidationError) as caught:
        parse(f"not json {KEY}".encode())
    assert KEY not in caught.value.message


# --- error statuses: Chat Completions' own ---------------------------------------------


def test_a_wrong_key_is_fatal_and_never_shown() -> None:
    body = (FIXTURES / "openai" / "error_401_invalid_api_key.json").read_bytes()
    with pytest.raises(AuthenticationError) as caught:
        parse(body, 401)
    assert caught.value.fatal and not caught.value.retryable
    assert caught.value.code == "invalid_api_key"
    assert "sk-VKMIs" not in caught.value.message


def test_no_quota_left_is_fatal() -> None:
    body = (FIXTURES / "openai" / "error_429_insufficient_quota.json").read_bytes()
    with pytest.raises(QuotaExhaustedError) as caught:
        parse(body, 429)
    assert caught.value.fatal and not caught.value.retryable


def test_a_429_waits_as_the_headers_say() -> None:
    body = (FIXTURES / "openai" / "error_429_rate_limit_exceeded.json").read_bytes()
    headers = {
        **JSON,
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1m30s",
        "x-ratelimit-remaining-tokens": "100",
        "x-ratelimit-reset-tokens": "2s",
    }
    with pytest.raises(RateLimitError) as caught:
        parse(body, 429, headers)
    assert caught.value.retryable and not caught.value.fatal
    assert caught.value.retry_after == 90.0
    with pytest.raises(RateLimitError) as told:
        parse(body, 429, {**headers, "retry-after-ms": "1500"})
    assert told.value.retry_after == 1.5


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("error_400_max_output_tokens", "integer_below_min_value"),
        ("error_400_response_format", "unsupported_parameter"),
        ("error_400_temperature", "unsupported_parameter"),
    ],
)
def test_documented_400s_are_bad_requests(name: str, code: str) -> None:
    body = (FIXTURES / "openai_responses" / f"{name}.json").read_bytes()
    with pytest.raises(BadRequestError) as caught:
        parse(body, 400)
    assert caught.value.code == code
    assert not caught.value.retryable and not caught.value.fatal
    assert orjson.loads(body)["error"]["message"][:40] in caught.value.message


@pytest.mark.parametrize(
    ("status", "cls"),
    [(500, InternalServerError), (503, InternalServerError), (529, OverloadedError)],
)
def test_server_errors_are_retried(status: int, cls: type[APIStatusError]) -> None:
    body = orjson.dumps({"error": {"message": "Overloaded", "type": "server_error"}})
    with pytest.raises(cls) as caught:
        parse(body, status)
    assert caught.value.retryable


def test_rate_limit_headers() -> None:
    headers = fixture("openai/rate_limit_headers")
    assert ADAPTER.rate_limit_info(headers) == RateLimitInfo(
        limit_requests=60,
        limit_tokens=150000,
        remaining_requests=59,
        remaining_tokens=149984,
        reset_requests_s=1.0,
        reset_tokens_s=360.0,
    )
    assert ADAPTER.rate_limit_info({}).empty
