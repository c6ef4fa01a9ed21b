"""Anthropic's prompt cache as the mock emulates it (Messages and Bedrock): breakpoints on
tools, system and messages, writes then reads, TTLs on the simulator's clock, requests that
arrive together, the minimum cacheable length, the breakpoint limit, and the statistics."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import ConfigError
from lm_deluge_cli.mock.formats import match_route
from lm_deluge_cli.mock.formats.chat import Breakpoint, CacheUsage
from lm_deluge_cli.mock.prompt_cache import PromptCache
from lm_deluge_cli.mock.simulator import MockSettings, SimResponse, Simulator
from tests.mock.chats import HEADERS, PATHS

# About 1,500 tokens (four bytes a token): long enough to cache.
MANUAL = " ".join(f"Rule {i}: answer plainly and cite the section you used." for i in range(110))
EPHEMERAL = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def simulator(clock: Clock | None = None, **settings: Any) -> Simulator:
    return Simulator(MockSettings(**settings), clock=clock or Clock())


def body(
    question: str = "What does rule 7 say?",
    system_control: dict[str, Any] | None = EPHEMERAL,
    message_control: dict[str, Any] | None = None,
    provider: str = "anthropic",
    **extra: Any,
) -> dict[str, Any]:
    system_block: dict[str, Any] = {"type": "text", "text": MANUAL}
    if system_control is not None:
        system_block["cache_control"] = system_control
    user_block: dict[str, Any] = {"type": "text", "text": question}
    if message_control is not None:
        user_block["cache_control"] = message_control
    request = {
        "max_tokens": 256,
        "system": [system_block],
        "messages": [{"role": "user", "content": [user_block]}],
        **extra,
    }
    if provider == "bedrock":
        return {"anthropic_version": "bedrock-2023-05-31", **request}
    return {"model": "claude-sonnet-4-20250514", **request}


def post(sim: Simulator, payload: Any, provider: str = "anthropic") -> SimResponse:
    route = match_route(PATHS[provider])
    assert route is not None
    return sim.handle(route, dict(HEADERS[provider]), orjson.dumps(payload))


def usage(sim: Simulator, payload: Any, provider: str = "anthropic") -> dict[str, Any]:
    response = post(sim, payload, provider)
    assert response.status == 200, response.body
    found: dict[str, Any] = orjson.loads(response.body)["usage"]
    return found


def total(found: dict[str, Any]) -> int:
    return int(
        found["input_tokens"]
        + found["cache_read_input_tokens"]
        + found["cache_creation_input_tokens"]
    )


# --- writes and reads ----------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["anthropic", "bedrock"])
def test_the_first_request_writes_and_the_next_reads(provider: str) -> None:
    sim = simulator()
    uncached = usage(simulator(), body(system_control=None, provider=provider), provider)
    first = usage(sim, body(provider=provider), provider)
    written = first["cache_creation_input_tokens"]
    assert written > 1024 and first["cache_read_input_tokens"] == 0
    assert first["cache_creation"] == {
        "ephemeral_5m_input_tokens": written,
        "ephemeral_1h_input_tokens": 0,
    }
    assert total(first) == uncached["input_tokens"]  # the same prompt, split three ways
    second = usage(sim, body("And rule 9?", provider=provider), provider)
    assert (second["cache_read_input_tokens"], second["cache_creation_input_tokens"]) == (
        written,
        0,
    )
    plain = usage(
        simulator(), body("And rule 9?", system_control=None, provider=provider), provider
    )
    assert total(second) == plain["input_tokens"]
    stats = sim.statistics()
    assert (stats.cache_write_tokens, stats.cache_read_tokens) == (written, written)
    assert (stats.cache_write_5m_tokens, stats.cache_write_1h_tokens) == (written, 0)


def test_input_tokens_count_only_what_follows_the_last_breakpoint() -> None:
    sim = simulator()
    found = usage(sim, body(message_control=EPHEMERAL))
    assert found["input_tokens"] == 0  # the breakpoint is on the last block
    again = usage(sim, body(message_control=EPHEMERAL))
    assert again["cache_read_input_tokens"] == found["cache_creation_input_tokens"]


def test_the_longest_cached_prefix_is_read_and_the_rest_written() -> None:
    sim = simulator()
    first = usage(sim, body("Question one?", message_control=EPHEMERAL))
    system_only = usage(simulator(), body())["cache_creation_input_tokens"]
    second = usage(sim, body("Question two, longer?", message_control=EPHEMERAL))
    assert second["cache_read_input_tokens"] == system_only
    assert second["cache_creation_input_tokens"] == total(second) - system_only
    third = usage(sim, body("Question two, longer?", message_control=EPHEMERAL))
    assert third["cache_read_input_tokens"] == total(third)
    assert first["cache_creation_input_tokens"] == total(first)


def test_tools_come_first_in_the_prefix() -> None:
    tool = {
        "name": "lookup",
        "description": MANUAL,
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
        "cache_control": EPHEMERAL,
    }
    sim = simulator()
    first = usage(sim, body(system_control=None, tools=[tool]))
    assert first["cache_creation_input_tokens"] > 1024
    # Another system prompt after the tools still reads them.
    other = body(system_control=None, tools=[tool])
    other["system"] = [{"type": "text", "text": "Be brief."}]
    assert usage(sim, other)["cache_read_input_tokens"] == first["cache_creation_input_tokens"]


def test_a_changed_prefix_misses() -> None:
    sim = simulator()
    usage(sim, body())
    changed = body()
    changed["system"][0]["text"] = MANUAL + " Also, be kind."
    assert usage(sim, changed)["cache_read_input_tokens"] == 0


def test_moving_the_breakpoint_does_not_change_the_prefix() -> None:
    sim = simulator()
    usage(sim, body(system_control=EPHEMERAL))
    # The same system prompt, now cached through the user message too: the system part is read.
    found = usage(sim, body(message_control=EPHEMERAL))
    assert found["cache_read_input_tokens"] > 1024


def test_each_model_has_its_own_cache() -> None:
    sim = simulator()
    usage(sim, body())
    other = {**body(), "model": "claude-opus-4-1-20250805"}
    assert usage(sim, other)["cache_read_input_tokens"] == 0


# --- TTLs ----------------------------------------------------------------------------------


def test_five_minutes_on_the_simulators_clock() -> None:
    clock = Clock()
    sim = simulator(clock)
    usage(sim, body())
    clock.now += 299
    assert usage(sim, body())["cache_read_input_tokens"] > 0
    clock.now += 299  # the read refreshed the TTL
    assert usage(sim, body())["cache_read_input_tokens"] > 0
    clock.now += 301
    expired = usage(sim, body())
    assert expired["cache_read_input_tokens"] == 0 and expired["cache_creation_input_tokens"] > 0


def test_an_hour_when_asked() -> None:
    clock = Clock()
    sim = simulator(clock)
    first = usage(sim, body(system_control=HOUR))
    assert (
        first["cache_creation"]["ephemeral_1h_input_tokens"] == first["cache_creation_input_tokens"]
    )
    assert first["cache_creation"]["ephemeral_5m_input_tokens"] == 0
    clock.now += 3000
    assert usage(sim, body(system_control=HOUR))["cache_read_input_tokens"] > 0
    clock.now += 3601
    assert usage(sim, body(system_control=HOUR))["cache_read_input_tokens"] == 0
    assert sim.statistics().cache_write_1h_tokens == 2 * first["cache_creation_input_tokens"]


def test_writes_split_by_the_ttl_of_the_breakpoint_that_ends_them() -> None:
    found = usage(simulator(), body(system_control=HOUR, message_control=EPHEMERAL))
    split = found["cache_creation"]
    system_only = usage(simulator(), body())["cache_creation_input_tokens"]
    assert split["ephemeral_1h_input_tokens"] == system_only
    assert split["ephemeral_5m_input_tokens"] == total(found) - system_only


# --- requests that arrive together ---------------------------------------------------------


def test_requests_before_the_first_answer_all_miss_and_write() -> None:
    clock = Clock()
    sim = simulator(clock, latency_s=2.0)
    first = usage(sim, body("Question one?"))
    clock.now += 1.0  # the first answer is still a second away
    second = usage(sim, body("Question two?"))
    assert first["cache_read_input_tokens"] == second["cache_read_input_tokens"] == 0
    assert second["cache_creation_input_tokens"] == first["cache_creation_input_tokens"]
    clock.now += 1.0  # the first answer is out: its write is readable
    assert usage(sim, body("Question three?"))["cache_read_input_tokens"] > 0
    assert sim.statistics().cache_write_tokens == 2 * first["cache_creation_input_tokens"]


# --- the minimum length and the limits -----------------------------------------------------


def test_a_prefix_below_the_minimum_is_not_cached() -> None:
    short = body()
    short["system"][0]["text"] = "Be brief. " * 50  # 125 tokens
    sim = simulator()
    for _ in range(2):
        found = usage(sim, short)
        assert (found["cache_creation_input_tokens"], found["cache_read_input_tokens"]) == (0, 0)
        assert found["input_tokens"] == total(found)
    lenient = simulator(prompt_cache_min_tokens=100)
    assert usage(lenient, short)["cache_creation_input_tokens"] > 100
    assert usage(lenient, short)["cache_read_input_tokens"] > 100


def test_more_than_four_breakpoints_is_refused() -> None:
    payload = body(message_control=EPHEMERAL)
    payload["system"] = [
        {"type": "text", "text": f"Part {i}.", "cache_control": EPHEMERAL} for i in range(4)
    ]
    response = post(simulator(), payload)
    assert response.status == 400
    assert orjson.loads(response.body)["error"] == {
        "type": "invalid_request_error",
        "message": "A maximum of 4 blocks with cache_control may be provided. Found 5.",
    }
    payload["anthropic_version"] = "bedrock-2023-05-31"
    del payload["model"]
    refused = post(simulator(), payload, "bedrock")
    assert refused.status == 400
    assert refused.headers["x-amzn-errortype"].startswith("ValidationException:")
    assert orjson.loads(refused.body)["message"] == (
        "The model returned the following errors: A maximum of 4 blocks with cache_control "
        "may be provided. Found 5."
    )


@pytest.mark.parametrize(
    ("system_control", "message_control", "says"),
    [
        (
            EPHEMERAL,
            HOUR,
            "messages.0.content.0.cache_control.ttl: a ttl='1h' cache_control block must not "
            "come after a ttl='5m' cache_control block.",
        ),
        ({"type": "ephemeral", "ttl": "10m"}, None, "system.0.cache_control.ttl: Input should be"),
        ({"type": "persistent"}, None, "system.0.cache_control.type: Input should be 'ephemeral'"),
    ],
)
def test_bad_breakpoints_are_refused(
    system_control: dict[str, Any], message_control: dict[str, Any] | None, says: str
) -> None:
    response = post(
        simulator(), body(system_control=system_control, message_control=message_control)
    )
    assert response.status == 400
    assert orjson.loads(response.body)["error"]["message"].startswith(says)


def test_bedrock_reports_the_cache_in_its_headers() -> None:
    sim = simulator()
    first = post(sim, body(provider="bedrock"), "bedrock")
    second = post(sim, body(provider="bedrock"), "bedrock")
    written = first.headers["x-amzn-bedrock-cache-write-input-token-count"]
    assert (
        int(written) > 1024 and first.headers["x-amzn-bedrock-cache-read-input-token-count"] == "0"
    )
    assert second.headers["x-amzn-bedrock-cache-read-input-token-count"] == written
    input_tokens = orjson.loads(second.body)["usage"]["input_tokens"]
    assert second.headers["x-amzn-bedrock-input-token-count"] == str(input_tokens)
    plain = post(sim, body(system_control=None, provider="bedrock"), "bedrock")
    assert "x-amzn-bedrock-cache-read-input-token-count" not in plain.headers


def test_the_cache_setting_is_checked() -> None:
    with pytest.raises(ConfigError, match="prompt_cache_min_tokens"):
        MockSettings(prompt_cache_min_tokens=-1)
    assert (
        MockSettings.from_mapping({"prompt_cache_min_tokens": 2048}).prompt_cache_min_tokens == 2048
    )


# --- the cache itself ----------------------------------------------------------------------


def point(key: bytes, tokens: int, ttl_s: float = 300.0) -> Breakpoint:
    return Breakpoint(key, tokens, ttl_s)


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    cache = PromptCache(max_entries=3)
    for key in (b"a", b"b", b"c"):
        cache.use([point(key, 2000)], 0.0, 0.0, 1024)
    assert cache.use([point(b"a", 2000)], 1.0, 1.0, 1024) == CacheUsage(read=2000)
    cache.use([point(b"d", 2000)], 2.0, 2.0, 1024)  # "b" is the least recently used
    assert len(cache) == 3
    assert cache.use([point(b"b", 2000)], 3.0, 3.0, 1024) == CacheUsage(written_5m=2000)
    assert cache.use([point(b"a", 2000)], 4.0, 4.0, 1024) == CacheUsage(read=2000)


def test_expired_entries_are_dropped() -> None:
    cache = PromptCache()
    cache.use([point(b"a", 2000)], 0.0, 0.0, 1024)
    assert cache.use([point(b"b", 2000)], 301.0, 301.0, 1024) == CacheUsage(written_5m=2000)
    assert cache.use([point(b"a", 2000)], 302.0, 302.0, 1024).read == 0
    assert len(cache) == 2
