"""The simulator, driven directly with a fake clock: wire format, limits, failures, settings."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.mock.settings import mock_settings
from lm_deluge_cli.mock.simulator import (
    MockSettings,
    MockStats,
    SimResponse,
    Simulator,
    format_duration,
    mock_completion,
)

MODEL = "gpt-4o-mini"
KEY = "sk-mock-expected-key-0123"


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def user(content: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": content}]


def chat_body(content: Any = "Hello", model: str = MODEL, /, **extra: Any) -> bytes:
    return orjson.dumps({"model": model, "messages": user(content), **extra})


def make(clock: FakeClock | None = None, /, **settings: Any) -> Simulator:
    return Simulator(MockSettings(**settings), clock=clock or FakeClock())


def send(sim: Simulator, body: bytes | None = None, /, **headers: str) -> tuple[SimResponse, Any]:
    response = sim.handle_openai_chat(headers, chat_body() if body is None else body)
    return response, orjson.loads(response.body) if response.body else None


# --- completions and usage -------------------------------------------------------------


def test_completion_is_deterministic_and_depends_on_messages_and_model() -> None:
    first = mock_completion(user("Tell me a joke"), MODEL)
    assert first == mock_completion(user("Tell me a joke"), MODEL)
    assert first != mock_completion(user("Tell me a joke"), "gpt-4o")
    assert first != mock_completion(user("Tell me a poem"), MODEL)
    assert 'You said: "Tell me a joke"' in first


def test_completion_reads_content_parts_and_echoes_the_last_user_message() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in   this\nimage?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
    ]
    text = mock_completion(messages, MODEL)
    assert text.endswith('You said: "What is in this image?"')


def test_success_has_the_openai_chat_completion_shape() -> None:
    response, body = send(make())
    assert (response.status, response.action, response.delay_s) == (200, "respond", 0.0)
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    assert not any(name.startswith("x-ratelimit") for name in response.headers)
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == MODEL
    [choice] = body["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["logprobs"] is None
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["refusal"] is None
    assert choice["message"]["content"] == mock_completion(user("Hello"), MODEL)
    usage = body["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_ids_are_unique() -> None:
    sim = make()
    ids = {send(sim)[1]["id"] for _ in range(50)}
    assert len(ids) == 50


@pytest.mark.parametrize(
    ("content", "prompt_tokens"),
    [
        ("Hello", 2 + 4),  # 5 bytes → 2 tokens, plus 4 per message
        ("", 4),
        ("abcdefgh", 2 + 4),
        ("é", 1 + 4),  # 2 UTF-8 bytes
        ("x" * 401, 101 + 4),
        ([{"type": "text", "text": "abcd"}], 1 + 4),
        ([{"type": "text", "text": "abcd"}, {"type": "image_url", "image_url": {}}], 1 + 85 + 4),
    ],
)
def test_usage_counts_prompt_tokens(content: Any, prompt_tokens: int) -> None:
    _, body = send(make(), chat_body(content))
    text = body["choices"][0]["message"]["content"]
    assert body["usage"]["prompt_tokens"] == prompt_tokens
    assert body["usage"]["completion_tokens"] == math.ceil(len(text.encode()) / 4)


def test_prompt_tokens_add_up_over_messages() -> None:
    messages = [{"role": "system", "content": "abcd"}, {"role": "user", "content": "abcdefgh"}]
    body = orjson.dumps({"model": MODEL, "messages": messages})
    assert send(make(), body)[1]["usage"]["prompt_tokens"] == (1 + 4) + (2 + 4)


@pytest.mark.parametrize(
    ("extra", "limit"),
    [
        ({"max_tokens": 3}, 3),
        ({"max_completion_tokens": 5}, 5),
        ({"max_completion_tokens": 2, "max_tokens": 7}, 2),  # the newer field wins
    ],
)
def test_a_small_maximum_truncates_and_finishes_with_length(
    extra: dict[str, int], limit: int
) -> None:
    _, body = send(make(), chat_body(**extra))
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == limit
    full = mock_completion(user("Hello"), MODEL)
    assert full.startswith(choice["message"]["content"])
    assert len(choice["message"]["content"].encode()) <= limit * 4


def test_a_large_maximum_does_not_truncate() -> None:
    _, body = send(make(), chat_body(max_tokens=1000))
    assert body["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("top", [0, 1, 3])
def test_logprobs_when_requested(top: int) -> None:
    _, body = send(make(), chat_body(logprobs=True, top_logprobs=top))
    choice = body["choices"][0]
    content = choice["logprobs"]["content"]
    assert "".join(entry["token"] for entry in content) == choice["message"]["content"]
    for entry in content:
        assert entry["logprob"] <= 0
        assert bytes(entry["bytes"]).decode() == entry["token"]
        assert len(entry["top_logprobs"]) == top
        if top:
            assert entry["top_logprobs"][0]["token"] == entry["token"]


# --- rate limits -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rpm", "burst_s", "admitted"),
    [(60, 1.0, 1), (600, 1.0, 10), (60, 60.0, 60), (120, 30.0, 60), (6000, 0.5, 50)],
)
def test_the_request_bucket_holds_burst_seconds_of_the_rate(
    rpm: float, burst_s: float, admitted: int
) -> None:
    sim = make(requests_per_minute=rpm, burst_s=burst_s)
    statuses = [send(sim)[0].status for _ in range(admitted + 3)]
    assert statuses == [200] * admitted + [429] * 3


def test_the_bucket_refills_continuously() -> None:
    clock = FakeClock()
    sim = make(clock, requests_per_minute=60)
    assert send(sim)[0].status == 200
    clock.advance(0.5)
    refused, _ = send(sim)
    assert refused.status == 429
    assert refused.headers["retry-after-ms"] == "500"
    clock.advance(0.5)
    assert send(sim)[0].status == 200
    clock.advance(100)  # a long idle period refills only up to capacity
    assert [send(sim)[0].status for _ in range(2)] == [200, 429]


def test_a_429_looks_like_openais() -> None:
    sim = make(requests_per_minute=60)
    send(sim)
    response, body = send(sim)
    assert response.status == 429
    assert response.delay_s == 0
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert body["error"]["type"] == "requests"
    assert body["error"]["param"] is None
    assert body["error"]["message"].startswith(
        f"Rate limit reached for {MODEL} in organization org-mock on requests per min (RPM): "
        "Limit 60, Used 60, Requested 1. Please try again in 1s."
    )
    headers = response.headers
    assert headers["retry-after"] == "1"
    assert headers["retry-after-ms"] == "1000"
    assert headers["x-ratelimit-limit-requests"] == "60"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "1s"
    assert headers["x-request-id"].startswith("req_")


def test_token_limit_counts_prompt_plus_maximum() -> None:
    # 6000 TPM and one second of burst: the bucket holds 100 tokens.
    clock = FakeClock()
    sim = make(clock, tokens_per_minute=6000)
    first, _ = send(sim, chat_body(max_tokens=50))  # 6 prompt + 50 = 56
    assert first.status == 200
    assert first.headers["x-ratelimit-limit-tokens"] == "6000"
    assert first.headers["x-ratelimit-remaining-tokens"] == "44"
    assert first.headers["x-ratelimit-reset-tokens"] == "560ms"
    assert "x-ratelimit-limit-requests" not in first.headers
    second, body = send(sim, chat_body(max_tokens=50))
    assert second.status == 429
    # "Used" is the share of the bucket spent (56 of 100), in per-minute units.
    assert body["error"]["type"] == "tokens"
    message = body["error"]["message"]
    assert "on tokens per min (TPM): Limit 6000, Used 3360, Requested 56." in message
    assert "Please try again in 120ms." in message
    assert second.headers["retry-after"] == "1"
    assert second.headers["retry-after-ms"] == "120"
    third, _ = send(sim)  # without a maximum OpenAI reserves 16: 6 + 16 = 22 ≤ 44
    assert third.status == 200
    assert third.headers["x-ratelimit-remaining-tokens"] == "22"


def test_a_request_passes_only_if_both_buckets_can_pay() -> None:
    sim = make(requests_per_minute=600, tokens_per_minute=600)  # 10 requests, 10 tokens
    response, body = send(sim, chat_body(max_tokens=5))  # costs 11 tokens
    assert response.status == 200  # a full bucket admits a request bigger than itself
    response, body = send(sim, chat_body(max_tokens=1))
    assert response.status == 429
    assert body["error"]["type"] == "tokens"


def test_a_request_bigger_than_a_minute_of_tokens_is_too_large() -> None:
    sim = make(tokens_per_minute=600)
    response, body = send(sim, chat_body(max_tokens=1000))
    assert response.status == 429
    assert body["error"]["message"].startswith(
        f"Request too large for {MODEL} in organization org-mock on tokens per min (TPM): "
        "Limit 600, Requested 1006."
    )
    assert "retry-after" not in response.headers


def test_an_oversized_request_drives_the_bucket_negative() -> None:
    clock = FakeClock()
    sim = make(clock, tokens_per_minute=6000)  # holds 100
    assert send(sim, chat_body(max_tokens=500))[0].status == 200  # level 100 - 506 = -406
    refused, _ = send(sim)
    assert refused.headers["retry-after-ms"] == str(math.ceil((406 + 22) / 100 * 1000))
    assert refused.headers["x-ratelimit-remaining-tokens"] == "0"


@pytest.mark.parametrize(("refusals", "retry_after"), [(0, "2"), (10, "12"), (100, "61")])
def test_charged_refusals_drive_the_bucket_negative(refusals: int, retry_after: str) -> None:
    sim = make(requests_per_minute=60, charge_refusals=True)
    send(sim)  # level 0
    for _ in range(refusals):
        send(sim)
    # Each refusal, this one included, costs a second; the debt stops at a minute's worth.
    response, _ = send(sim)
    assert response.headers["retry-after"] == retry_after


def test_uncharged_refusals_cost_nothing() -> None:
    sim = make(requests_per_minute=60)
    for _ in range(20):
        send(sim)
    assert send(sim)[0].headers["retry-after"] == "1"


def test_headers_can_be_turned_off() -> None:
    sim = make(requests_per_minute=60, rate_limit_headers=False, retry_after=False)
    ok, _ = send(sim)
    refused, _ = send(sim)
    assert refused.status == 429
    for response in (ok, refused):
        assert not any(name.startswith(("x-ratelimit", "retry-after")) for name in response.headers)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-1, "0s"),
        (0.02, "20ms"),
        (0.0201, "21ms"),  # rounded up: waiting the advertised time must be enough
        (0.9994, "1s"),
        (1, "1s"),
        (1.25, "1.25s"),
        (59.9996, "1m0s"),
        (90.5, "1m30.5s"),
        (360, "6m0s"),
        (3725, "1h2m5s"),
    ],
)
def test_reset_duration_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# --- authentication and bad requests -------------------------------------------------------


def test_a_missing_or_wrong_key_gets_401_without_echoing_it() -> None:
    sim = make(api_key=KEY)
    wrong = "sk-wrong-key-that-must-not-be-echoed"
    for headers in ({}, {"authorization": f"Bearer {wrong}"}, {"authorization": KEY}):
        response, body = send(sim, **headers)
        assert response.status == 401
        assert body["error"]["code"] == "invalid_api_key"
        assert body["error"]["type"] == "invalid_request_error"
        assert wrong.encode() not in response.body
        assert wrong[:8].encode() not in response.body
        assert KEY[:8].encode() not in response.body
    assert send(sim, authorization=f"Bearer {KEY}")[0].status == 200
    assert send(sim, authorization=f"bearer {KEY}")[0].status == 200


def test_without_an_api_key_setting_any_key_is_accepted() -> None:
    assert send(make(), authorization="Bearer anything")[0].status == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"not json", None),
        (b"[1, 2]", None),
        (orjson.dumps({"messages": user("hi")}), "model"),
        (orjson.dumps({"model": MODEL}), "messages"),
        (orjson.dumps({"model": MODEL, "messages": []}), "messages"),
        (orjson.dumps({"model": MODEL, "messages": ["hi"]}), "messages[0]"),
        (chat_body(max_tokens=0), "max_tokens"),
        (chat_body(max_completion_tokens="5"), "max_completion_tokens"),
        (chat_body(logprobs=True, top_logprobs=21), "top_logprobs"),
    ],
)
def test_bad_bodies_get_400(body: bytes, param: str | None) -> None:
    sim = make(requests_per_minute=60)
    response, error = send(sim, body)
    assert response.status == 400
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["param"] == param
    assert send(sim)[0].status == 200  # a bad request costs no quota


# --- injected failures and latency -------------------------------------------------------


def test_error_and_overload_rates_follow_the_seed() -> None:
    def statuses(seed: int) -> list[int]:
        sim = make(error_rate=0.3, overload_rate=0.2, seed=seed)
        return [send(sim)[0].status for _ in range(2000)]

    first = statuses(7)
    assert first == statuses(7)
    assert first != statuses(8)
    assert 0.25 < first.count(500) / 2000 < 0.35
    assert 0.15 < first.count(529) / 2000 < 0.25
    assert first.count(200) == 2000 - first.count(500) - first.count(529)


def test_failure_bodies() -> None:
    _, error = send(make(error_rate=1.0))
    assert error["error"]["type"] == "server_error"
    assert error["error"]["code"] is None
    response, overloaded = send(make(overload_rate=1.0))
    assert response.status == 529
    assert overloaded == {"error": {"type": "overloaded_error", "message": "Overloaded"}}


@pytest.mark.parametrize(("setting", "action"), [("drop_rate", "drop"), ("hang_rate", "hang")])
def test_connection_failures_are_actions_for_the_server(setting: str, action: str) -> None:
    sim = make(**{setting: 1.0})
    response, _ = send(sim)
    assert response.action == action
    stats = sim.statistics()
    assert (stats.dropped, stats.hung) == ((1, 0) if action == "drop" else (0, 1))


def test_latency_and_jitter() -> None:
    sim = make(latency_s=0.5, latency_jitter_s=0.1)
    delays = {send(sim)[0].delay_s for _ in range(20)}
    assert len(delays) > 1
    assert all(0.5 <= delay <= 0.6 for delay in delays)
    sim = make(latency_s=0.5, requests_per_minute=60)
    assert send(sim)[0].delay_s == 0.5
    refused, _ = send(sim)
    assert refused.status == 429 and refused.delay_s == 0  # refusals are immediate


def test_statistics_snapshot_and_reset() -> None:
    sim = make(requests_per_minute=120)  # two admitted, then refused
    for body in (chat_body(), chat_body(), chat_body(), b"junk"):
        send(sim, body)
    stats = sim.statistics()
    assert isinstance(stats, MockStats)
    assert stats.requests_seen == 4
    assert (stats.ok, stats.rate_limited, stats.errors) == (2, 1, 0)
    assert stats.tokens_in == 12
    assert stats.tokens_out > 0
    with pytest.raises(AttributeError):
        stats.ok = 5  # type: ignore[misc]
    sim.reset_statistics()
    assert sim.statistics() == MockStats()
    assert stats.ok == 2  # an old snapshot does not change


# --- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"latency_s": -1}, "latency_s"),
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"tokens_per_minute": -5}, "tokens_per_minute"),
        ({"burst_s": 0}, "burst_s"),
        ({"error_rate": 1.5}, "error_rate"),
        ({"hang_rate": -0.1}, "hang_rate"),
        ({"error_rate": 0.6, "drop_rate": 0.6}, "drop_rate"),
    ],
)
def test_settings_reject_bad_values(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        MockSettings(**fields)


def test_settings_from_mapping() -> None:
    settings = MockSettings.from_mapping(
        {"requests_per_minute": 600, "latency_s": 1, "charge_refusals": True, "api_key": None}
    )
    assert settings.requests_per_minute == 600.0
    assert isinstance(settings.latency_s, float)
    assert settings.charge_refusals is True
    assert MockSettings.from_mapping({}) == MockSettings()


def test_a_model_s_settings_are_its_entry_s_over_the_defaults() -> None:
    # mock:fast answers at once; any other model on the mock takes a realistic time.
    assert mock_settings({}, "fast") == MockSettings()
    assert mock_settings({}, "gpt-4.1-mini") == MockSettings(latency_s=0.2, latency_jitter_s=0.1)
    ours = mock_settings({"latency_s": 0, "requests_per_minute": 60}, "standard")
    assert ours == MockSettings(latency_jitter_s=0.1, requests_per_minute=60.0)
    with pytest.raises(ConfigError, match="latncy_s"):
        mock_settings({"latncy_s": 1}, "fast")


@pytest.mark.parametrize(
    ("mapping", "named"),
    [
        ({"rpm": 60}, "'rpm'"),
        ({"latency_s": "fast"}, "mock.latency_s must be a number"),
        ({"latency_s": True}, "mock.latency_s must be a number"),
        ({"latency_s": None}, "mock.latency_s"),
        ({"seed": 1.5}, "mock.seed must be an integer"),
        ({"charge_refusals": 1}, "mock.charge_refusals must be true or false"),
        ({"api_key": 123}, "mock.api_key must be a string or null"),
        ({"requests_per_minute": "60"}, "mock.requests_per_minute must be a number or null"),
        ({"error_rate": 2}, "mock.error_rate must be between 0 and 1"),
    ],
)
def test_settings_from_mapping_names_the_bad_key(mapping: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("(", r"\(")):
        MockSettings.from_mapping(mapping)
