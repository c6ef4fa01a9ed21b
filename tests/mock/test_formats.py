"""Every wire format of the simulator against the providers' documented payloads (the
adapters' fixtures), driven directly with fake clocks."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from lm_deluge_cli.mock.formats import BASE_PATHS, FORMATS, base_url, match_route
from lm_deluge_cli.mock.simulator import (
    MockSettings,
    SimResponse,
    Simulator,
    mock_completion,
)
from lm_deluge_cli.mock.wire import count_prompt_tokens, count_text_tokens

FIXTURES = Path(__file__).parents[1] / "providers" / "fixtures"
KEY = "sk-mock-expected-key-0123"
AWS_KEY_ID = "AKIAMOCKEXPECTED0000"
WALL = 1_750_000_000.0  # 2025-06-15T15:06:40Z
SIGNATURE = "AWS4-HMAC-SHA256 Credential={}/20250615/us-east-1/bedrock/aws4_request, "
SIGNATURE += "SignedHeaders=content-type;host;x-amz-date, Signature=" + "0" * 64

PATHS = {
    "openai": "/v1/chat/completions",
    "anthropic": "/anthropic/v1/messages",
    "gemini": "/gemini/v1beta/models/gemini-2.5-flash:generateContent",
    "mistral": "/mistral/v1/chat/completions",
    "cohere": "/cohere/v2/chat",
    "bedrock": "/bedrock/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke",
}
MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-sonnet-4-20250514",
    "gemini": "gemini-2.5-flash",
    "mistral": "mistral-large-latest",
    "cohere": "command-a-03-2025",
    "bedrock": "anthropic.claude-3-5-sonnet-20240620-v1:0",
}
PROVIDERS = list(PATHS)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def make(**settings: Any) -> Simulator:
    return Simulator(MockSettings(**settings), clock=FakeClock(), wall_clock=lambda: WALL)


def credentials(provider: str, key: str = KEY) -> dict[str, str]:
    """The headers a client of `provider` authenticates with."""
    if provider == "anthropic":
        return {"x-api-key": key, "anthropic-version": "2023-06-01"}
    if provider == "gemini":
        return {"x-goog-api-key": key}
    if provider == "bedrock":
        return {"authorization": SIGNATURE.format(key)}
    return {"authorization": f"Bearer {key}"}


def body(provider: str, messages: list[dict[str, str]], max_tokens: int = 512) -> dict[str, Any]:
    """A request for `messages` (a system message, then user turns) in `provider`'s format."""
    system = [m["content"] for m in messages if m["role"] == "system"]
    turns = [m for m in messages if m["role"] != "system"]
    if provider in ("anthropic", "bedrock"):
        request: dict[str, Any] = {"max_tokens": max_tokens, "messages": turns}
        if system:
            request["system"] = system[0]
        if provider == "bedrock":
            return {"anthropic_version": "bedrock-2023-05-31", **request}
        return {"model": MODELS[provider], **request}
    if provider == "gemini":
        contents = [{"role": "user", "parts": [{"text": m["content"]}]} for m in turns]
        request = {"contents": contents, "generationConfig": {"maxOutputTokens": max_tokens}}
        if system:
            request["systemInstruction"] = {"parts": [{"text": system[0]}]}
        return request
    return {"model": MODELS[provider], "messages": messages, "max_tokens": max_tokens}


def send(
    sim: Simulator,
    provider: str,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> tuple[SimResponse, Any]:
    route = match_route(PATHS[provider])
    assert route is not None
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    sent = credentials(provider) if headers is None else dict(headers)
    response = sim.handle(route, sent, raw, query)
    return response, orjson.loads(response.body) if response.body else None


MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello there"},
]


# --- routes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "provider", "model"),
    [
        ("/v1/chat/completions", "openai", None),
        ("/chat/completions", "openai", None),
        ("/openai/v1/chat/completions", "openai", None),
        ("/mistral/v1/chat/completions", "mistral", None),
        ("/v1/messages", "anthropic", None),
        ("/anthropic/v1/messages", "anthropic", None),
        ("/v1beta/models/gemini-2.5-flash:generateContent", "gemini", "gemini-2.5-flash"),
        ("/gemini/v1/models/gemini-x:generateContent", "gemini", "gemini-x"),
        ("/v2/chat", "cohere", None),
        ("/cohere/v2/chat", "cohere", None),
        ("/model/anthropic.claude-v2%3A1/invoke", "bedrock", "anthropic.claude-v2:1"),
        (
            "/bedrock/model/arn%3Aaws%3Abedrock%2Fprofile/invoke",
            "bedrock",
            "arn:aws:bedrock/profile",
        ),
    ],
)
def test_each_path_reaches_its_format(path: str, provider: str, model: str | None) -> None:
    route = match_route(path)
    assert route is not None
    assert (route.format.name, route.model) == (provider, model)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/v1/models",
        "/mistral/chat/completions",
        "/gemini/v1beta/models/x:streamGenerateContent",
    ],
)
def test_other_paths_reach_nothing(path: str) -> None:
    assert match_route(path) is None


def test_base_urls_lead_each_adapter_to_its_route() -> None:
    # What each adapter appends to its base_url, as its module docstring says.
    appended = {
        "openai": "/chat/completions",
        "anthropic": "/v1/messages",
        "gemini": "/v1beta/models/gemini-x:generateContent",
        "mistral": "/v1/chat/completions",
        "cohere": "/v2/chat",
        "bedrock": "/model/anthropic.claude-x/invoke",
        # Embeddings and rerank only.
        "voyage": "/embeddings",
        "jina": "/rerank",
    }
    assert set(BASE_PATHS) == set(appended)
    assert set(FORMATS) <= set(BASE_PATHS)
    for provider, rest in appended.items():
        url = base_url("http://127.0.0.1:8000/", provider) + rest
        route = match_route(url.removeprefix("http://127.0.0.1:8000"))
        assert route is not None and route.format.name.startswith(provider)


# --- completions -----------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_same_prompt_gets_the_same_reply_and_usage_in_every_format(provider: str) -> None:
    response, data = send(make(), provider, body(provider, MESSAGES))
    assert response.status == 200, data
    text = mock_completion(MESSAGES, MODELS[provider])
    assert _text(provider, data) == text
    assert _usage(provider, data) == (count_prompt_tokens(MESSAGES), count_text_tokens(text))


def _text(provider: str, data: dict[str, Any]) -> str:
    if provider in ("openai", "mistral"):
        text: str = data["choices"][0]["message"]["content"]
    elif provider in ("anthropic", "bedrock"):
        text = data["content"][0]["text"]
    elif provider == "gemini":
        text = data["candidates"][0]["content"]["parts"][0]["text"]
    else:
        text = data["message"]["content"][0]["text"]
    return text


def _usage(provider: str, data: dict[str, Any]) -> tuple[int, int]:
    if provider in ("openai", "mistral"):
        return data["usage"]["prompt_tokens"], data["usage"]["completion_tokens"]
    if provider in ("anthropic", "bedrock"):
        return data["usage"]["input_tokens"], data["usage"]["output_tokens"]
    if provider == "gemini":
        meta = data["usageMetadata"]
        return meta["promptTokenCount"], meta["candidatesTokenCount"]
    billed = data["usage"]["billed_units"]
    return billed["input_tokens"], billed["output_tokens"]


@pytest.mark.parametrize(
    ("provider", "request_fixture", "response_fixture"),
    [
        ("anthropic", "anthropic/messages_request.json", "anthropic/message.json"),
        ("gemini", "gemini/request_system_instruction.json", "gemini/response_text.json"),
        ("mistral", "mistral/chat_request.json", "mistral/chat_completion.json"),
        ("cohere", "cohere/chat_request.json", "cohere/chat_response.json"),
        ("bedrock", "bedrock/invoke_request.json", "bedrock/invoke_response.json"),
    ],
)
def test_documented_requests_get_documented_responses(
    provider: str, request_fixture: str, response_fixture: str
) -> None:
    response, data = send(make(), provider, fixture(request_fixture))
    assert response.status == 200, data
    assert response.headers["content-type"] == "application/json"
    documented = fixture(response_fixture)
    assert set(data) >= set(documented)
    for name, value in documented.items():
        if isinstance(value, dict):
            # proto3 JSON leaves zero counts out: the mock never thinks.
            assert set(data[name]) >= set(value) - {"thoughtsTokenCount"}, name


def test_anthropic_message_shape() -> None:
    response, data = send(make(), "anthropic", body("anthropic", MESSAGES))
    assert data["id"].startswith("msg_")
    assert (data["type"], data["role"], data["stop_reason"]) == ("message", "assistant", "end_turn")
    assert data["stop_sequence"] is None
    assert data["content"] == [
        {"type": "text", "text": mock_completion(MESSAGES, MODELS["anthropic"])}
    ]
    assert (
        data["usage"]["cache_creation_input_tokens"]
        == data["usage"]["cache_read_input_tokens"]
        == 0
    )
    assert response.headers["request-id"].startswith("req_")


def test_gemini_reads_snake_case_and_names_the_path_model() -> None:
    _, data = send(make(), "gemini", fixture("gemini/request_system_instruction.json"))
    messages = [
        {"role": "system", "content": "You are a cat. Your name is Neko."},
        {"role": "user", "content": "Hello there"},
    ]
    [candidate] = data["candidates"]
    assert candidate["content"] == {
        "parts": [{"text": mock_completion(messages, "gemini-2.5-flash")}],
        "role": "model",
    }
    assert candidate["finishReason"] == "STOP"
    assert data["modelVersion"] == "gemini-2.5-flash"


def test_bedrock_answers_with_token_count_headers() -> None:
    response, data = send(make(), "bedrock", body("bedrock", MESSAGES))
    assert data["id"].startswith("msg_bdrk_")
    assert data["model"] == MODELS["bedrock"]
    assert response.headers["x-amzn-bedrock-input-token-count"] == str(
        count_prompt_tokens(MESSAGES)
    )
    assert (
        int(response.headers["x-amzn-bedrock-output-token-count"]) == data["usage"]["output_tokens"]
    )
    assert len(response.headers["x-amzn-requestid"]) == 36


@pytest.mark.parametrize(
    ("provider", "finish"),
    [
        ("openai", ("choices", 0, "finish_reason", "length")),
        ("mistral", ("choices", 0, "finish_reason", "length")),
        ("anthropic", ("stop_reason", "max_tokens")),
        ("bedrock", ("stop_reason", "max_tokens")),
        ("gemini", ("candidates", 0, "finishReason", "MAX_TOKENS")),
        ("cohere", ("finish_reason", "MAX_TOKENS")),
    ],
)
def test_a_reply_is_cut_at_max_tokens(provider: str, finish: tuple[Any, ...]) -> None:
    _, data = send(make(), provider, body(provider, MESSAGES, max_tokens=3))
    *path, expected = finish
    value = data
    for step in path:
        value = value[step]
    assert value == expected
    assert _usage(provider, data)[1] == 3


# --- refusals, failures and limits -----------------------------------------------------


def test_anthropic_rate_limit_headers_and_429() -> None:
    sim = make(requests_per_minute=60, tokens_per_minute=6000)
    ok, _ = send(sim, "anthropic", body("anthropic", MESSAGES, max_tokens=10))
    headers = ok.headers
    assert headers["anthropic-ratelimit-requests-limit"] == "60"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    # Full again in one second: the wall clock plus the bucket's refill, in RFC 3339.
    reset = datetime.datetime.fromtimestamp(WALL + 1, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert headers["anthropic-ratelimit-requests-reset"] == reset
    assert headers["anthropic-ratelimit-tokens-limit"] == "6000"
    assert int(headers["anthropic-ratelimit-tokens-remaining"]) == 100 - 10 - count_prompt_tokens(
        MESSAGES
    )
    refused, error = send(sim, "anthropic", body("anthropic", MESSAGES))
    assert refused.status == 429
    assert refused.headers["retry-after"] == "1"
    assert "anthropic-ratelimit-requests-reset" in refused.headers
    documented = fixture("anthropic/error_429_rate_limit.json")
    assert error["type"] == documented["type"] == "error"
    assert error["error"]["type"] == documented["error"]["type"]
    assert "60 requests per minute" in error["error"]["message"]


def test_gemini_429_carries_the_wait_in_retry_info() -> None:
    sim = make(requests_per_minute=30)
    assert send(sim, "gemini", body("gemini", MESSAGES))[0].status == 200
    refused, error = send(sim, "gemini", body("gemini", MESSAGES))
    assert refused.status == 429
    assert not any("ratelimit" in name or name == "retry-after" for name in refused.headers)
    documented = fixture("gemini/error_429_per_minute.json")["error"]
    assert (error["error"]["code"], error["error"]["status"]) == (429, documented["status"])
    assert error["error"]["message"] == documented["message"]
    types = [detail["@type"] for detail in error["error"]["details"]]
    assert types == [detail["@type"] for detail in documented["details"]]
    quota, _, retry = error["error"]["details"]
    assert quota["violations"][0]["quotaValue"] == "30"
    assert "PerMinute" in quota["violations"][0]["quotaId"]
    assert retry["retryDelay"] == "2s"


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
def test_a_request_no_wait_admits_says_no_wait(provider: str) -> None:
    sim = make(tokens_per_minute=100)
    refused, error = send(sim, provider, body(provider, MESSAGES, max_tokens=500))
    assert refused.status == 429
    assert "retry-after" not in refused.headers
    if provider == "gemini":
        assert all("RetryInfo" not in d["@type"] for d in error["error"]["details"])


def test_mistral_limits_and_429_match_the_documented_ones() -> None:
    sim = make(requests_per_minute=60, tokens_per_minute=6000)
    ok, _ = send(sim, "mistral", body("mistral", MESSAGES, max_tokens=10))
    names = set(fixture("mistral/rate_limit_headers.json")) - {"x-ratelimit-tokens-query-cost"}
    assert names <= set(ok.headers)
    assert ok.headers["x-ratelimit-remaining-req-minute"] == "0"
    refused, error = send(sim, "mistral", body("mistral", MESSAGES))
    assert refused.status == 429
    assert error == fixture("mistral/error_429_rate_limited.json")


def test_cohere_trial_headers_are_absent_from_429s() -> None:
    sim = make(requests_per_minute=60)
    ok, _ = send(sim, "cohere", body("cohere", MESSAGES))
    assert ok.headers["x-trial-endpoint-call-limit"] == "60"
    assert ok.headers["x-trial-endpoint-call-remaining"] == "0"
    refused, error = send(sim, "cohere", body("cohere", MESSAGES))
    assert refused.status == 429
    assert not any(name.startswith("x-trial") for name in refused.headers)
    assert set(error) == set(fixture("cohere/error_429_trial.json"))


def test_bedrock_throttling_matches_the_documented_one() -> None:
    sim = make(requests_per_minute=60)
    assert send(sim, "bedrock", body("bedrock", MESSAGES))[0].status == 200
    refused, error = send(sim, "bedrock", body("bedrock", MESSAGES))
    documented = fixture("bedrock/error_429_throttling.json")
    assert refused.status == documented["status"]
    assert refused.headers["x-amzn-errortype"] == documented["headers"]["x-amzn-errortype"]
    assert error == documented["body"]


@pytest.mark.parametrize(
    ("provider", "status", "documented"),
    [
        ("anthropic", 529, "anthropic/error_529_overloaded.json"),
        ("gemini", 503, "gemini/error_503_unavailable.json"),
        ("mistral", 429, "mistral/error_429_capacity.json"),
        ("cohere", 503, None),
        ("bedrock", 503, "bedrock/error_503_service_unavailable.json"),
    ],
)
def test_overloads_are_the_providers_own(
    provider: str, status: int, documented: str | None
) -> None:
    sim = make(overload_rate=1.0)
    response, error = send(sim, provider, body(provider, MESSAGES))
    assert response.status == status
    assert sim.statistics().errors == 1
    if documented is None:
        assert set(error) == {"id", "message"}
        return
    expected = fixture(documented)
    if provider == "bedrock":
        assert response.headers["x-amzn-errortype"] == expected["headers"]["x-amzn-errortype"]
        expected = expected["body"]
    expected.pop("request_id", None)
    assert error == expected


@pytest.mark.parametrize(
    ("provider", "status", "type_path", "type_"),
    [
        ("anthropic", 500, ("error", "type"), "api_error"),
        ("gemini", 500, ("error", "status"), "INTERNAL"),
        ("mistral", 500, ("object",), "error"),
        ("cohere", 500, (), None),
    ],
)
def test_internal_errors(
    provider: str, status: int, type_path: tuple[str, ...], type_: str | None
) -> None:
    response, error = send(make(error_rate=1.0), provider, body(provider, MESSAGES))
    assert response.status == status
    for step in type_path:
        error = error[step]
    if type_ is not None:
        assert error == type_


# --- keys and bad requests -------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "status", "documented"),
    [
        ("anthropic", 401, "anthropic/error_401_authentication.json"),
        ("gemini", 400, "gemini/error_400_api_key_invalid.json"),
        ("mistral", 401, "mistral/error_401_unauthorized.json"),
        ("cohere", 401, "cohere/error_401_unauthorized.json"),
        ("bedrock", 403, "bedrock/error_403_unrecognized_client.json"),
    ],
)
def test_a_wrong_key_gets_the_documented_refusal(
    provider: str, status: int, documented: str
) -> None:
    sim = make(api_key=AWS_KEY_ID if provider == "bedrock" else KEY)
    wrong = "AKIAWRONGWRONG000000" if provider == "bedrock" else "sk-wrong-key-never-echoed"
    response, error = send(sim, provider, body(provider, MESSAGES), credentials(provider, wrong))
    assert response.status == status
    assert wrong.encode() not in response.body
    expected = fixture(documented)
    if provider == "bedrock":
        assert response.headers["x-amzn-errortype"] == expected["headers"]["x-amzn-errortype"]
        assert error == expected["body"]
    elif provider == "gemini":
        assert error["error"]["status"] == expected["error"]["status"]
        assert error["error"]["details"][0] == expected["error"]["details"][0]
    elif provider == "anthropic":
        assert error["error"] == expected["error"]
    else:
        assert set(error) == set(expected)
        assert error["message"] == expected["message"]
    right = credentials(provider, AWS_KEY_ID if provider == "bedrock" else KEY)
    assert send(sim, provider, body(provider, MESSAGES), right)[0].status == 200


@pytest.mark.parametrize(
    ("provider", "headers", "status"),
    [
        ("anthropic", {"anthropic-version": "2023-06-01"}, 401),
        ("gemini", {}, 403),
        ("mistral", {}, 401),
        ("cohere", {}, 401),
        ("bedrock", {}, 403),
    ],
)
def test_a_missing_key_is_refused(provider: str, headers: dict[str, str], status: int) -> None:
    sim = make(api_key=KEY)
    assert send(sim, provider, body(provider, MESSAGES), headers)[0].status == status


def test_gemini_takes_the_key_from_the_query_too() -> None:
    sim = make(api_key=KEY)
    assert send(sim, "gemini", body("gemini", MESSAGES), {}, {"key": KEY})[0].status == 200


def test_bedrock_always_wants_a_signature() -> None:
    sim = make()  # no key set: any signature will do, but there must be one
    response, error = send(sim, "bedrock", body("bedrock", MESSAGES), {})
    assert response.status == 403
    assert response.headers["x-amzn-errortype"].startswith("MissingAuthenticationTokenException:")
    assert error == {"message": "Missing Authentication Token"}
    bearer = {"authorization": "Bearer sk-not-a-signature"}
    response, _ = send(sim, "bedrock", body("bedrock", MESSAGES), bearer)
    assert response.headers["x-amzn-errortype"].startswith("IncompleteSignatureException:")
    assert send(sim, "bedrock", body("bedrock", MESSAGES))[0].status == 200


def _without(request: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in request.items() if key != name}


@pytest.mark.parametrize(
    ("provider", "payload", "headers", "status", "says"),
    [
        ("anthropic", body("anthropic", MESSAGES), {"x-api-key": KEY}, 400, "anthropic-version"),
        (
            "anthropic",
            _without(body("anthropic", MESSAGES), "max_tokens"),
            None,
            400,
            "max_tokens: Field required",
        ),
        (
            "anthropic",
            _without(body("anthropic", MESSAGES), "model"),
            None,
            400,
            "model: Field required",
        ),
        (
            "anthropic",
            {**body("anthropic", MESSAGES), "messages": [{"role": "system", "content": "x"}]},
            None,
            400,
            "messages.0.role",
        ),
        ("anthropic", b"not json", None, 400, "not valid JSON"),
        ("gemini", {"contents": []}, None, 400, "contents is not specified"),
        (
            "gemini",
            {"contents": [{"role": "bot", "parts": [{"text": "x"}]}]},
            None,
            400,
            "valid role",
        ),
        ("mistral", _without(body("mistral", MESSAGES), "messages"), None, 422, "field required"),
        ("mistral", b"{", None, 422, "jsondecode"),
        (
            "cohere",
            _without(body("cohere", MESSAGES), "model"),
            None,
            400,
            "model must be specified",
        ),
        ("cohere", {**body("cohere", MESSAGES), "stream": True}, None, 400, "stream"),
        (
            "bedrock",
            {**body("bedrock", MESSAGES), "model": "x"},
            None,
            400,
            "extraneous key [model]",
        ),
        (
            "bedrock",
            _without(body("bedrock", MESSAGES), "anthropic_version"),
            None,
            400,
            "[anthropic_version] not found",
        ),
        (
            "bedrock",
            _without(body("bedrock", MESSAGES), "messages"),
            None,
            400,
            "[messages] not found",
        ),
    ],
)
def test_bad_requests_are_refused_in_the_providers_words(
    provider: str, payload: Any, headers: dict[str, str] | None, status: int, says: str
) -> None:
    sim = make(requests_per_minute=60)
    response, _ = send(sim, provider, payload, headers)
    assert response.status == status
    assert says.encode() in response.body
    assert send(sim, provider, body(provider, MESSAGES))[0].status == 200  # no quota spent


def test_mistral_validation_error_is_the_documented_422() -> None:
    _, error = send(make(), "mistral", _without(body("mistral", MESSAGES), "messages"))
    assert error == fixture("mistral/error_422_validation.json")
