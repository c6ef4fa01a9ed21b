"""The Gemini adapter against Google's documented generateContent requests (fixtures/gemini/)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import APIError
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.providers.gemini import THINKING_BUDGETS, GeminiAdapter
from lm_deluge_cli.types import Prompt, SamplingParams


@pytest.fixture
def endpoint(gemini_endpoint: Callable[..., Endpoint]) -> Callable[..., Endpoint]:
    return gemini_endpoint


FIXTURES = Path(__file__).parent / "fixtures" / "gemini"


KEY = "AIzaSyCanary-7f3a9c1e5b2d4f6a8c0e1234"


ADAPTER = GeminiAdapter()


OFFICIAL = "https://generativelanguage.googleapis.com"


PNG = "iVBORw0KGgo="  # the PNG signature, base64


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def prompt(messages: list[dict[str, Any]] | None = None, **extra: Any) -> Prompt:
    messages = messages or [{"role": "user", "content": "Hello there"}]
    return Prompt(id=1, line=1, messages=messages, extra_body=dict(extra))


@pytest.fixture
def build(endpoint: Callable[..., Endpoint]) -> Callable[..., dict[str, Any]]:
    """Build a request (on the default endpoint unless `target` is given) and return its body."""

    def build(
        messages: list[dict[str, Any]] | None = None,
        sampling: SamplingParams | None = None,
        target: Endpoint | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        request = ADAPTER.build_request(
            target or endpoint(), prompt(messages, **extra), sampling or SamplingParams(), 5.0
        )
        body: dict[str, Any] = orjson.loads(request.body)
        return body

    return build


# --- build_request ---------------------------------------------------------------------


def test_build_request_matches_the_documented_example(
    endpoint: Callable[..., Endpoint],
) -> None:
    documented = fixture("request_system_instruction")
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a cat. Your name is Neko."},
        {"role": "user", "content": "Hello there"},
    ]
    request = ADAPTER.build_request(endpoint(), prompt(messages), SamplingParams(), timeout=12.5)
    assert request.method == "POST"
    assert request.url == f"{OFFICIAL}/v1beta/models/gemini-2.5-flash:generateContent"
    assert dict(request.headers) == {"content-type": "application/json", "x-goog-api-key": KEY}
    assert request.timeout == 12.5
    body = orjson.loads(request.body)
    # The JSON mapping accepts both spellings; we send the canonical lowerCamelCase one.
    assert body["systemInstruction"] == documented["system_instruction"]
    assert body["contents"] == [{"role": "user", **documented["contents"][0]}]
    assert body["generationConfig"] == {"temperature": 0.0, "topP": 1.0, "maxOutputTokens": 512}
    assert set(body) == {"systemInstruction", "contents", "generationConfig"}


@pytest.mark.parametrize(
    ("wire_id", "path"),
    [
        ("gemini-2.0-flash", "models/gemini-2.0-flash"),
        ("models/gemini-2.0-flash", "models/gemini-2.0-flash"),
        ("tunedModels/my-model-abc", "tunedModels/my-model-abc"),
    ],
)
def test_model_path(endpoint: Callable[..., Endpoint], wire_id: str, path: str) -> None:
    request = ADAPTER.build_request(
        endpoint(wire_id, base_url="http://127.0.0.1:9000"), prompt(), SamplingParams(), 5.0
    )
    assert request.url == f"http://127.0.0.1:9000/v1beta/{path}:generateContent"


def test_no_key_means_no_key_header(
    endpoint: Callable[..., Endpoint],
) -> None:
    request = ADAPTER.build_request(endpoint(key=None), prompt(), SamplingParams(), 5.0)
    assert dict(request.headers) == {"content-type": "application/json"}


def test_the_key_never_goes_into_the_url_or_body(
    endpoint: Callable[..., Endpoint],
) -> None:
    request = ADAPTER.build_request(endpoint(), prompt(), SamplingParams(), 5.0)
    assert KEY not in request.url
    assert KEY.encode() not in request.body


@pytest.mark.parametrize(
    ("sampling", "reasoning", "present", "absent"),
    [
        (
            SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=64),
            False,
            {"temperature": 0.7, "topP": 0.9, "maxOutputTokens": 64},
            ["responseMimeType", "responseLogprobs", "logprobs", "thinkingConfig"],
        ),
        (SamplingParams(json_mode=True), False, {"responseMimeType": "application/json"}, []),
        (SamplingParams(logprobs=True), False, {"responseLogprobs": True}, ["logprobs"]),
        (
            SamplingParams(logprobs=True, top_logprobs=5),
            False,
            {"responseLogprobs": True, "logprobs": 5},
            [],
        ),
        (SamplingParams(logprobs=True, top_logprobs=0), False, {"logprobs": 0}, []),
        # top_logprobs means nothing without logprobs.
        (SamplingParams(top_logprobs=3), False, {}, ["responseLogprobs", "logprobs"]),
        (SamplingParams(reasoning_effort="high"), False, {}, ["thinkingConfig"]),
        (SamplingParams(reasoning_effort=None), True, {}, ["thinkingConfig"]),
        *(
            (
                SamplingParams(reasoning_effort=effort),
                True,
                # Thought summaries are asked for, or no reasoning comes back to read.
                {"thinkingConfig": {"thinkingBudget": budget, "includeThoughts": True}},
                [],
            )
            for effort, budget in THINKING_BUDGETS.items()
        ),
    ],
)
def test_sampling_maps_onto_generation_config(
    endpoint: Callable[..., Endpoint],
    build: Callable[..., dict[str, Any]],
    sampling: SamplingParams,
    reasoning: bool,
    present: dict[str, Any],
    absent: list[str],
) -> None:
    config = build(sampling=sampling, target=endpoint(reasoning=reasoning))["generationConfig"]
    for key, value in present.items():
        assert config[key] == value
    for key in absent:
        assert key not in config
    # Thinking models still take temperature and topP (unlike OpenAI's reasoning models).
    assert config["temperature"] == sampling.temperature
    assert config["topP"] == sampling.top_p
    assert config["maxOutputTokens"] == sampling.max_new_tokens


@pytest.mark.parametrize(("samples", "count"), [(1, None), (2, 2), (8, 8)])
def test_several_samples_are_candidates_of_one_request(
    build: Callable[..., dict[str, Any]], samples: int, count: int | None
) -> None:
    config = build(sampling=SamplingParams(samples=samples))["generationConfig"]
    assert config.get("candidateCount") == count


def test_the_documented_effort_budgets() -> None:
    assert THINKING_BUDGETS == {"minimal": 1024, "low": 1024, "medium": 8192, "high": 24576}


def test_json_schema_becomes_response_json_schema(
    build: Callable[..., dict[str, Any]],
) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    config = build(sampling=SamplingParams(json_schema=schema))["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == schema


def test_batch_line_fields_gemini_has(
    build: Callable[..., dict[str, Any]],
) -> None:
    config = build(seed=7, presence_penalty=0.5, frequency_penalty=0.25)["generationConfig"]
    assert config["seed"] == 7
    assert config["presencePenalty"] == 0.5
    assert config["frequencyPenalty"] == 0.25


def test_openai_only_fields_are_left_out(
    build: Callable[..., dict[str, Any]],
) -> None:
    body = build(user="u-1", store=True, metadata={"a": "b"}, logit_bias={"1": 2}, n=2)
    assert set(body) == {"contents", "generationConfig"}


def test_function_tools_become_declarations(
    build: Callable[..., dict[str, Any]],
) -> None:
    parameters = {"type": "object", "properties": {"location": {"type": "string"}}}
    tools = [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "Weather", "parameters": parameters},
        }
    ]
    body = build(tools=tools, tool_choice="required")
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather",
                    "parametersJsonSchema": parameters,
                }
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice(
    build: Callable[..., dict[str, Any]], choice: Any, config: dict[str, Any]
) -> None:
    assert build(tool_choice=choice)["toolConfig"] == {"functionCallingConfig": config}


@pytest.mark.parametrize(
    "extra",
    [
        {"tool_choice": "sometimes"},
        {"tool_choice": {"type": "function", "function": "x"}},
        {"tools": [{"type": "code_interpreter"}]},
        {"tools": {"type": "function"}},
    ],
)
def test_what_gemini_cannot_express_is_refused(
    build: Callable[..., dict[str, Any]], extra: dict[str, Any]
) -> None:
    with pytest.raises(APIError) as info:
        build(**extra)
    assert not info.value.retryable
    assert not info.value.fatal


@pytest.mark.parametrize(
    "choice",
    [
        "sometimes",
        "",
        {"type": "function", "function": "x"},
        {"type": "function", "function": {"name": ""}},
        {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}},
        {"type": "custom", "custom": {"name": "f"}},
    ],
)
def test_a_refused_tool_choice_says_what_gemini_takes(
    build: Callable[..., dict[str, Any]], choice: Any
) -> None:
    with pytest.raises(APIError) as info:
        build(tool_choice=choice)
    assert f"Gemini cannot express tool_choice {choice!r}" in str(info.value)
    assert '"auto", "none", "required" or one function' in str(info.value)


def test_roles_become_user_and_model_turns_and_system_instruction(
    build: Callable[..., dict[str, Any]],
) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
        {"role": "user", "content": "Bonjour"},
        {"role": "assistant", "content": "Salut !"},
        {"role": "user", "content": "Ça va ?"},
        {"role": "user", "content": [{"type": "text", "text": "Et toi ?"}]},
    ]
    body = build(messages)
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Use French."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Bonjour"}]},
        {"role": "model", "parts": [{"text": "Salut !"}]},
        # Consecutive turns of one role merge: Gemini wants them to alternate.
        {"role": "user", "parts": [{"text": "Ça va ?"}, {"text": "Et toi ?"}]},
    ]


@pytest.mark.parametrize(
    ("url", "part"),
    [
        (f"data:image/png;base64,{PNG}", {"inlineData": {"mimeType": "image/png", "data": PNG}}),
        (
            "https://example.com/photos/cat.jpg",
            {
                "fileData": {
                    "fileUri": "https://example.com/photos/cat.jpg",
                    "mimeType": "image/jpeg",
                }
            },
        ),
        (
            "https://example.com/image?id=4",
            {"fileData": {"fileUri": "https://example.com/image?id=4"}},
        ),
        (
            "gs://bucket/cat.png",
            {"fileData": {"fileUri": "gs://bucket/cat.png", "mimeType": "image/png"}},
        ),
    ],
)
def test_images(build: Callable[..., dict[str, Any]], url: str, part: dict[str, Any]) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
    ]
    body = build([{"role": "user", "content": content}])
    assert body["contents"] == [{"role": "user", "parts": [{"text": "What is this?"}, part]}]


@pytest.mark.parametrize(
    "content",
    [
        [{"type": "image_url", "image_url": {"url": "ftp://example.com/cat.png"}}],
        [{"type": "image_url", "image_url": {"url": "data:image/png;base64,%%%"}}],
        [{"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}],
        [{"type": "text"}],
        5,
    ],
)
def test_user_content_gemini_cannot_take(
    build: Callable[..., dict[str, Any]], content: Any
) -> None:
    with pytest.raises(APIError):
        build([{"role": "user", "content": content}])


def test_system_messages_must_be_text(
    build: Callable[..., dict[str, Any]],
) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://x/y.png"}}
    with pytest.raises(APIError, match="system"):
        build([{"role": "system", "content": [image]}, {"role": "user", "content": "hi"}])


def file_part(media_type: str, data: str = PNG, **spec: str) -> dict[str, Any]:
    """An OpenAI file part holding base64 `data` as a data URL."""
    return {"type": "file", "file": {"file_data": f"data:{media_type};base64,{data}", **spec}}


def test_a_pdf_becomes_the_documented_inline_data(build: Callable[..., dict[str, Any]]) -> None:
    documented = fixture("request_inline_pdf")["contents"][0]["parts"]
    inline = documented[0]["inline_data"]
    content = [
        file_part(inline["mime_type"], inline["data"], filename="paper.pdf"),
        {"type": "text", "text": documented[1]["text"]},
    ]
    body = build([{"role": "user", "content": content}])
    # The JSON mapping accepts both spellings; we send the canonical lowerCamelCase one.
    pdf = {"inlineData": {"mimeType": inline["mime_type"], "data": inline["data"]}}
    assert body["contents"] == [{"role": "user", "parts": [pdf, documented[1]]}]


@pytest.mark.parametrize(
    ("media_type", "sent_as"),
    [
        ("text/plain", "text/plain"),
        ("text/csv", "text/csv"),
        ("text/html", "text/html"),
        ("application/x-python", "application/x-python"),
        # Not among the documented text types: plain text is what Gemini reads it as anyway.
        ("text/markdown", "text/plain"),
        ("text/x-rst", "text/plain"),
        ("image/webp", "image/webp"),
        ("image/heic", "image/heic"),
    ],
)
def test_file_media_types(
    build: Callable[..., dict[str, Any]], media_type: str, sent_as: str
) -> None:
    body = build([{"role": "user", "content": [file_part(media_type)]}])
    assert body["contents"][0]["parts"] == [{"inlineData": {"mimeType": sent_as, "data": PNG}}]


@pytest.mark.parametrize(
    ("part", "says"),
    [
        (
            {"type": "file", "file": {"file_id": "file-abc"}},
            "file_id 'file-abc' names an OpenAI upload, which Gemini cannot read",
        ),
        (file_part("application/zip"), "Gemini cannot read application/zip files"),
        (file_part("audio/mpeg"), "it reads PDFs, text files and PNG"),
        (file_part("application/pdf", "%%%"), "invalid base64"),
        ({"type": "file", "file": {"file_data": "report.pdf"}}, "a base64 data: URL"),
        ({"type": "file"}, "needs a 'file' object"),
    ],
)
def test_files_gemini_cannot_take(
    build: Callable[..., dict[str, Any]], part: dict[str, Any], says: str
) -> None:
    with pytest.raises(APIError, match=says) as info:
        build([{"role": "user", "content": [part]}])
    assert not info.value.retryable and not info.value.fatal


def test_an_assistant_turn_cannot_hold_a_file(build: Callable[..., dict[str, Any]]) -> None:
    with pytest.raises(APIError, match="'file'"):
        build([*prompt().messages, {"role": "assistant", "content": [file_part("text/plain")]}])


def _tool_turns(result: str) -> list[dict[str, Any]]:
    calls = [
        {
            "id": "call_abc",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
        },
        {"id": "call_def", "type": "function", "function": {"name": "now", "arguments": ""}},
    ]
    return [
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_abc", "content": result},
        {"role": "tool", "tool_call_id": "call_def", "content": "12:00"},
    ]


def test_tool_calls_become_function_call_and_response_parts(
    build: Callable[..., dict[str, Any]],
) -> None:
    contents = build(_tool_turns('{"temperature": 21, "sky": "clear"}'))["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}},
            {"functionCall": {"name": "now", "args": {}}},
        ],
    }
    # Both results answer one model turn, so they travel in one user turn, by name.
    assert contents[2] == {
        "role": "user",
        "parts": [
            {
                "functionResponse": {
                    "name": "get_weather",
                    "response": {"temperature": 21, "sky": "clear"},
                }
            },
            {"functionResponse": {"name": "now", "response": {"result": "12:00"}}},
        ],
    }
    assert len(contents) == 3


@pytest.mark.parametrize(
    ("result", "response"),
    [("[1, 2]", {"result": [1, 2]}), ("21", {"result": 21}), ("sunny", {"result": "sunny"})],
)
def test_tool_results_that_are_not_objects_are_wrapped(
    build: Callable[..., dict[str, Any]], result: str, response: Any
) -> None:
    parts = build(_tool_turns(result))["contents"][2]["parts"]
    assert parts[0]["functionResponse"]["response"] == response


def test_a_tool_result_names_its_function_when_the_call_is_unknown(
    build: Callable[..., dict[str, Any]],
) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "lost", "name": "lookup", "content": "{}"},
    ]
    parts = build(messages)["contents"][0]["parts"]
    assert parts[1] == {"functionResponse": {"name": "lookup", "response": {}}}


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "tool", "tool_call_id": "lost", "content": "{}"}],
        [{"role": "assistant", "content": None, "tool_calls": [{"id": "a", "function": {}}]}],
        [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{oops"}}],
            }
        ],
        [{"role": "critic", "content": "hm"}],
    ],
)
def test_tool_turns_gemini_cannot_express(
    build: Callable[..., dict[str, Any]], messages: list[dict[str, Any]]
) -> None:
    with pytest.raises(APIError):
        build(messages)


def test_stop_sequences_go_in_the_generation_config(
    build: Callable[..., dict[str, Any]],
) -> None:
    config = build(sampling=SamplingParams(stop=("END", "###")))["generationConfig"]
    assert config["stopSequences"] == ["END", "###"]
    assert "stopSequences" not in build()["generationConfig"]
