"""The Responses API adapter's requests, against OpenAI's documented request payloads.

Fixtures under fixtures/openai_responses/ (see the README there): the API reference's text
example, Playground bodies with a function result and a PDF. Responses and errors are in
test_openai_responses_responses.py.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import APIError
from lm_deluge_cli.providers import adapter_for, max_output_tokens
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.providers.capabilities import supported_sampling
from lm_deluge_cli.providers.openai_responses import OpenAIResponsesAdapter
from lm_deluge_cli.providers.registry import ModelInfo, load_registry
from lm_deluge_cli.types import Prompt, SamplingParams

FIXTURES = Path(__file__).parent / "fixtures" / "openai_responses"
KEY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
OFFICIAL = "https://api.openai.com/v1"
ADAPTER = OpenAIResponsesAdapter()
PRICED: dict[str, Any] = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(24)).decode()


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def endpoint(
    wire_id: str = "gpt-4.1",
    *,
    reasoning: bool = False,
    key: str | None = KEY,
    base_url: str = OFFICIAL,
    compatible: bool = False,
    **flags: Any,
) -> Endpoint:
    """An OpenAI model the registry sends to the Responses API."""
    model = ModelInfo(
        f"openai:{wire_id}",
        "openai",
        wire_id,
        reasoning=reasoning,
        wire_format="openai_responses",
        **flags,
    )
    provider = load_registry().provider("openai")
    return Endpoint(model.id, model, provider, base_url, api_key=key, compatible=compatible)


def body(
    messages: list[dict[str, Any]],
    sampling: SamplingParams | None = None,
    target: Endpoint | None = None,
    extra_body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    prompt = Prompt(id=1, line=1, messages=messages, extra_body=dict(extra_body or {}))
    request = ADAPTER.build_request(target or endpoint(), prompt, sampling or SamplingParams(), 5.0)
    parsed: dict[str, Any] = orjson.loads(request.body)
    return parsed


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


# --- the request -----------------------------------------------------------------------


def test_the_documented_text_example() -> None:
    documented = fixture("request_text")
    prompt = Prompt(id=1, line=1, messages=[user(documented["input"])])
    request = ADAPTER.build_request(endpoint(documented["model"]), prompt, SamplingParams(), 9.5)
    assert request.method == "POST"
    assert request.url == "https://api.openai.com/v1/responses"
    assert dict(request.headers) == {
        "content-type": "application/json",
        "accept": "application/json",
        "authorization": f"Bearer {KEY}",
    }
    assert request.timeout == 9.5
    assert orjson.loads(request.body) == {
        "model": documented["model"],
        "input": [{"role": "user", "content": documented["input"]}],
        "max_output_tokens": 512,
        "store": False,
        "temperature": 0.0,
        "top_p": 1.0,
    }


def test_the_registry_sends_a_responses_model_to_this_adapter() -> None:
    target = endpoint("o3-pro", reasoning=True)
    assert target.provider.wire_format == "openai_chat"
    assert isinstance(adapter_for(target.wire_format), OpenAIResponsesAdapter)


def test_no_key_no_authorization_and_a_compatible_server_at_its_own_url() -> None:
    target = endpoint(key=None, base_url="http://127.0.0.1:8000/v1", compatible=True)
    prompt = Prompt(id=1, line=1, messages=[user("hi")])
    request = ADAPTER.build_request(target, prompt, SamplingParams(), 5.0)
    assert request.url == "http://127.0.0.1:8000/v1/responses"
    assert "authorization" not in request.headers


def test_leading_system_messages_are_the_instructions_later_ones_stay_in_place() -> None:
    sent = body(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            user("Hello"),
            {"role": "assistant", "content": "Bonjour"},
            {"role": "developer", "content": "Now in German."},
            user("Again"),
        ]
    )
    assert sent["instructions"] == "Be brief.\n\nAnswer in French."
    assert sent["input"] == [
        {"role": "user", "content": "Hello"},
        {
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Bonjour", "annotations": []}],
        },
        {"role": "developer", "content": "Now in German."},
        {"role": "user", "content": "Again"},
    ]


def test_without_system_messages_there_are_no_instructions() -> None:
    assert "instructions" not in body([user("Hello")])


@pytest.mark.parametrize(
    ("effort", "reasoning"),
    [
        (None, None),
        # A summary is asked for: without one the API returns no reasoning text.
        ("high", {"effort": "high", "summary": "auto"}),
        ("minimal", {"effort": "minimal", "summary": "auto"}),
    ],
)
def test_reasoning_models_get_effort_and_no_sampling_parameters(
    effort: str | None, reasoning: dict[str, str] | None
) -> None:
    sampling = SamplingParams(temperature=0.7, top_p=0.5, reasoning_effort=effort)
    sent = body([user("hi")], sampling, endpoint("o3-pro", reasoning=True))
    assert "temperature" not in sent and "top_p" not in sent
    assert sent.get("reasoning") == reasoning


def test_other_models_get_temperature_and_top_p_and_no_reasoning() -> None:
    sampling = SamplingParams(temperature=0.7, top_p=0.5, reasoning_effort="high")
    sent = body([user("hi")], sampling)
    assert (sent["temperature"], sent["top_p"]) == (0.7, 0.5)
    assert "reasoning" not in sent


def test_stop_is_never_sent() -> None:
    sent = body([user("hi")], SamplingParams(stop=("END",)))
    assert "stop" not in sent and "stop" not in orjson.dumps(sent).decode()


@pytest.mark.parametrize(("asked", "sent"), [(512, 512), (16, 16), (5, 16), (1, 16)])
def test_max_output_tokens_is_at_least_the_apis_minimum(asked: int, sent: int) -> None:
    sampling = SamplingParams(max_new_tokens=asked)
    assert body([user("hi")], sampling)["max_output_tokens"] == sent
    # The token estimate reserves what is really asked for.
    assert max_output_tokens(endpoint(), sampling) == sent


def test_json_mode_is_a_json_object_text_format() -> None:
    sent = body([user("hi")], SamplingParams(json_mode=True))
    assert sent["text"] == {"format": {"type": "json_object"}}


@pytest.mark.parametrize(
    ("schema", "strict"),
    [
        (
            {
                "type": "object",
                "properties": {"answer": {"type": "string"}},
                "required": ["answer"],
                "additionalProperties": False,
            },
            True,
        ),
        # An open object would be refused in strict mode: sent non-strict instead.
        ({"type": "object", "properties": {"answer": {"type": "string"}}}, False),
    ],
)
def test_a_json_schema_is_a_json_schema_text_format(schema: dict[str, Any], strict: bool) -> None:
    # json_mode too: the schema is the more specific of the two.
    sent = body([user("hi")], SamplingParams(json_schema=schema, json_mode=True))
    assert sent["text"] == {
        "format": {"type": "json_schema", "name": "response", "schema": schema, "strict": strict}
    }


def test_no_text_format_by_default() -> None:
    assert "text" not in body([user("hi")])


@pytest.mark.parametrize(
    ("sampling", "include", "top"),
    [
        (SamplingParams(logprobs=True), ["message.output_text.logprobs"], None),
        (SamplingParams(logprobs=True, top_logprobs=3), ["message.output_text.logprobs"], 3),
        (SamplingParams(logprobs=True, top_logprobs=0), ["message.output_text.logprobs"], 0),
        (SamplingParams(top_logprobs=3), None, None),  # means nothing without logprobs
        (SamplingParams(), None, None),
    ],
)
def test_logprobs_are_included_output(
    sampling: SamplingParams, include: list[str] | None, top: int | None
) -> None:
    sent = body([user("hi")], sampling)
    assert sent.get("include") == include
    assert sent.get("top_logprobs") == top


def test_extra_body_fields_pass_only_when_the_api_has_them() -> None:
    extra = {
        "metadata": {"batch": "7"},
        "user": "user-1234",
        "service_tier": "flex",
        "parallel_tool_calls": False,
        "seed": 7,
        "logit_bias": {"50256": -100},
        "n": 2,
        "response_format": {"type": "json_object"},
        "model": "gpt-3.5-turbo",
        "messages": [user("injected")],
        "input": "injected",
        "store": True,
    }
    sent = body([user("hi")], extra_body=extra)
    assert sent["metadata"] == {"batch": "7"}
    assert (sent["user"], sent["service_tier"], sent["parallel_tool_calls"]) == (
        "user-1234",
        "flex",
        False,
    )
    for refused in ("seed", "logit_bias", "n", "response_format", "messages"):
        assert refused not in sent
    assert sent["model"] == "gpt-4.1"
    assert sent["input"] == [{"role": "user", "content": "hi"}]
    assert sent["store"] is False


# --- content parts ---------------------------------------------------------------------


def test_text_and_image_parts() -> None:
    sent = body(
        [
            user(
                [
                    {"type": "text", "text": "What is in these?"},
                    {"type": "image_url", "image_url": {"url": PNG}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://x.test/a.jpg", "detail": "low"},
                    },
                    {"type": "image_url", "image_url": "https://x.test/b.webp"},
                ]
            )
        ]
    )
    assert sent["input"][0]["content"] == [
        {"type": "input_text", "text": "What is in these?"},
        {"type": "input_image", "image_url": PNG, "detail": "auto"},
        {"type": "input_image", "image_url": "https://x.test/a.jpg", "detail": "low"},
        {"type": "input_image", "image_url": "https://x.test/b.webp", "detail": "auto"},
    ]


def test_the_documented_pdf_input() -> None:
    documented = fixture("request_file_input")
    text, pdf = documented["input"][0]["content"]
    chat_file = {"filename": pdf["filename"], "file_data": pdf["file_data"]}
    messages = [user([{"type": "text", "text": text["text"]}, {"type": "file", "file": chat_file}])]
    sampling = SamplingParams(max_new_tokens=documented["max_output_tokens"])
    sent = body(messages, sampling, endpoint(documented["model"]))
    assert sent["input"] == documented["input"]
    assert sent["max_output_tokens"] == documented["max_output_tokens"]


def test_an_uploaded_file_goes_by_its_id() -> None:
    sent = body([user([{"type": "file", "file": {"file_id": "file-abc123"}}])])
    assert sent["input"][0]["content"] == [{"type": "input_file", "file_id": "file-abc123"}]


@pytest.mark.parametrize(
    ("part", "says"),
    [
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}, "base64"),
        ({"type": "image_url", "image_url": {"url": "ftp://x.test/a.png"}}, "http(s)"),
        ({"type": "image_url"}, "image_url.url"),
        ({"type": "file", "file": {"filename": "a.pdf"}}, "file_id"),
        ({"type": "file", "file": {"file_data": "JVBERi0x"}}, "data URL"),
        ({"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}, "input_audio"),
        ("just a string", "None"),
    ],
)
def test_parts_the_api_cannot_take_are_refused_before_sending(part: Any, says: str) -> None:
    with pytest.raises(APIError) as caught:
        body([user([part])])
    assert says in str(caught.value)
    assert not caught.value.retryable and not caught.value.fatal


# --- tools -----------------------------------------------------------------------------


def test_the_documented_function_call_round_trip() -> None:
    documented = fixture("request_function_call_output")
    system, asked, call, output = documented["input"]
    tool = documented["tools"][0]
    messages = [
        {"role": "system", "content": system["content"][0]["text"]},
        user([{"type": "text", "text": asked["content"][0]["text"]}]),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call["call_id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
            ],
        },
        {"role": "tool", "tool_call_id": output["call_id"], "content": output["output"]},
    ]
    chat_tool = {
        "type": "function",
        "function": {k: tool[k] for k in ("name", "description", "parameters", "strict")},
    }
    sent = body(messages, target=endpoint(documented["model"]), extra_body={"tools": [chat_tool]})
    assert sent["instructions"] == system["content"][0]["text"]
    assert sent["input"] == [asked, call, output]
    assert sent["tools"] == documented["tools"]


def test_a_tool_without_strict_stays_non_strict() -> None:
    # Left out, strict would mean true here, and the schema would be made strict.
    tool = {"type": "function", "function": {"name": "lookup"}}
    sent = body([user("hi")], extra_body={"tools": [tool]})
    assert sent["tools"] == [
        {
            "type": "function",
            "name": "lookup",
            "parameters": {"type": "object", "properties": {}},
            "strict": False,
        }
    ]


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        (
            {"type": "function", "function": {"name": "lookup"}},
            {"type": "function", "name": "lookup"},
        ),
    ],
)
def test_tool_choice(choice: Any, sent: Any) -> None:
    tool = {"type": "function", "function": {"name": "lookup"}}
    assert (
        body([user("hi")], extra_body={"tools": [tool], "tool_choice": choice})["tool_choice"]
        == sent
    )


def test_an_assistant_turn_with_text_and_object_arguments() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
    sent = body(
        [user("hi"), {"role": "assistant", "content": "Let me look.", "tool_calls": [call]}]
    )
    assert sent["input"][1:] == [
        {
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Let me look.", "annotations": []}],
        },
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"a":1}'},
    ]


@pytest.mark.parametrize(
    ("messages", "extra", "says"),
    [
        (
            [
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}],
                }
            ],
            {},
            "not valid JSON",
        ),
        ([{"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}], {}, "an id"),
        ([{"role": "tool", "content": "42"}], {}, "tool_call_id"),
        ([{"role": "function", "name": "f", "content": "42"}], {}, "'function' role"),
        ([user("hi")], {"tools": [{"type": "web_search"}]}, "function tools"),
        ([user("hi")], {"tool_choice": {"type": "allowed_tools"}}, "tool_choice"),
    ],
)
def test_what_cannot_be_sent_is_refused(
    messages: list[dict[str, Any]], extra: dict[str, Any], says: str
) -> None:
    with pytest.raises(APIError) as caught:
        body(messages, extra_body=extra)
    assert says in str(caught.value)


# --- what the Requester leaves out first ----------------------------------------------


@pytest.mark.parametrize(
    ("target", "dropped"),
    [
        # No stop sequences in this API, whatever is known of the model.
        (endpoint(), ["stop"]),
        (endpoint(supports_logprobs=True, supports_json=True, **PRICED), ["stop"]),
        (
            endpoint("o3-pro", reasoning=True, supports_json=True, **PRICED),
            ["logprobs", "stop", "temperature", "top_p"],
        ),
        # A compatible server still cannot take stop, but may take the rest.
        (
            endpoint("o3-pro", reasoning=True, compatible=True, supports_json=True, **PRICED),
            ["logprobs", "stop"],
        ),
    ],
)
def test_stop_is_left_out_with_a_warning_for_every_model(
    target: Endpoint, dropped: list[str]
) -> None:
    asked = SamplingParams(temperature=0.5, top_p=0.9, logprobs=True, stop=("END",))
    kept, names = supported_sampling(target, asked)
    assert names == dropped
    assert kept.stop is None
    assert kept.temperature == (0.0 if "temperature" in dropped else 0.5)


def test_without_stop_nothing_is_left_out_of_an_unknown_model() -> None:
    asked = SamplingParams(temperature=0.5, logprobs=True)
    assert supported_sampling(endpoint(), asked) == (asked, [])


def test_chat_completions_models_keep_their_stop() -> None:
    registry = load_registry()
    info = registry.lookup("openai:gpt-4.1-mini")
    chat = Endpoint(info.id, info, registry.provider("openai"), OFFICIAL)
    kept, names = supported_sampling(chat, SamplingParams(stop=("END",)))
    assert (kept.stop, names) == (("END",), [])
