"""The short ways the simulator answers its most common requests (a text answer to text
messages) agree with the long way, byte for byte.

Each shortcut is one guarded branch; turning its guard off sends every request the long
way. Varied requests, most of them near the edge of what a shortcut takes, are answered
both ways and must get the same status, headers, body and counts.
"""

from __future__ import annotations

import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_deluge_cli.mock import structured, wire
from lm_deluge_cli.mock.formats import match_route, mistral, openai, openai_request
from lm_deluge_cli.mock.formats.base import (
    INT_HOLE,
    JSON_HOLE,
    ChatRequest,
    WireFormat,
    json_template,
)
from lm_deluge_cli.mock.formats.mistral import MistralFormat
from lm_deluge_cli.mock.formats.openai import OpenAIFormat
from lm_deluge_cli.mock.simulator import MockSettings, Simulator
from tests.mock import chats

# (module or class, name, what the name is replaced with to turn its shortcut off)
SHORTCUTS: list[tuple[Any, str, Any]] = [
    (OpenAIFormat, "plain_chat", WireFormat.plain_chat),
    (MistralFormat, "plain_chat", WireFormat.plain_chat),
    (openai, "plain_request", lambda request: None),
    (mistral, "plain_request", lambda request: None),
    (openai, "_text_only", lambda request, choice: False),
    (ChatRequest, "plain", property(lambda request: False)),
    (OpenAIFormat, "plain_completion", WireFormat.plain_completion),
    (MistralFormat, "plain_completion", WireFormat.plain_completion),
]
# The formats whose bodies plain_request reads.
PLAIN_FORMATS = ["mistral", "openai"]


@contextmanager
def the_long_way() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for module, name, off in SHORTCUTS:
            patch.setattr(module, name, off)
        yield


def answered(provider: str, body: bytes, **mock: Any) -> tuple[Any, ...]:
    """Everything a fresh simulator says to `body`, ids and the time fixed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(secrets, "token_hex", lambda _n=None: "0123456789abcdef")
        patch.setattr(time, "time", lambda: 1_750_000_000.0)
        sim = Simulator(MockSettings(**mock), clock=lambda: 1000.0)
        route = match_route(chats.PATHS[provider])
        assert route is not None
        headers = {"authorization": "Bearer sk-x", **chats.HEADERS.get(provider, {})}
        response = sim.handle(route, headers, body)
    return (*response, sim.statistics())


def both_ways(provider: str, body: bytes, **mock: Any) -> tuple[Any, Any]:
    short = answered(provider, body, **mock)
    with the_long_way():
        long = answered(provider, body, **mock)
    return short, long


# --- varied requests ---------------------------------------------------------------------

TEXTS = st.sampled_from(
    [
        "Prompt number 0: say something.",
        "Is it blue? Yes or no.",
        "is it BLUE?  yes\n or   NO",
        "Answer yeſ or no.",  # a long s: case-insensitively an "s"
        "yes",
        "or no",
        "Answer with one valid JSON object.",
        'Reply in this JSON schema: {"type": "object", "required": ["n"], '
        '"properties": {"n": {"type": "integer"}}}',
        "Return ＪＳＯＮ please.",
        "",
        "   spaced\t\tout   text  ",
        "ünïcödé, 日本語 and 😀 emoji",
        "x" * 300,
        "100% sure, %s %d %b",
    ]
) | st.text(max_size=50)
PLAIN_ROLES = ["system", "developer", "user", "assistant"]
PLAIN_MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(PLAIN_ROLES), "content": TEXTS})
PLAIN_BODY = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["fast", "gpt-4.1-mini", "mödel-ünï"]),
        "messages": st.lists(PLAIN_MESSAGE, min_size=1, max_size=4),
    },
    optional={
        "max_completion_tokens": st.sampled_from([1, 3, 16, 512]),
        "max_tokens": st.sampled_from([1, 7, 512]),
        "temperature": st.just(0.0),
        "top_p": st.just(1.0),
    },
)


def _message(body: dict[str, Any], message: Any) -> dict[str, Any]:
    return {**body, "messages": [*body["messages"], message]}


# One change that takes a plain body off the short way (or makes it invalid).
CHANGES: list[Callable[[dict[str, Any]], Any]] = [
    lambda body: {**body, "n": 2},
    lambda body: {**body, "n": 1},
    lambda body: {**body, "logprobs": True, "top_logprobs": 2},
    lambda body: {**body, "logprobs": False},
    lambda body: {**body, "reasoning_effort": "low"},
    lambda body: {**body, "reasoning_effort": "none"},
    lambda body: {**body, "response_format": {"type": "json_object"}},
    lambda body: {
        **body,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "n", "schema": {"type": "object", "required": ["n"]}},
        },
    },
    lambda body: {**body, "tools": [], "tool_choice": "none"},
    lambda body: {**body, "seed": 3, "stream": False},
    lambda body: {**body, "model": ""},
    lambda body: {**body, "model": 5},
    lambda body: {key: value for key, value in body.items() if key != "model"},
    lambda body: {**body, "messages": []},
    lambda body: {**body, "messages": None},
    lambda body: {**body, "max_tokens": 0},
    lambda body: {**body, "max_completion_tokens": True},
    lambda body: {**body, "max_tokens": 2.0},
    lambda body: {**body, "max_completion_tokens": "7"},
    lambda body: {**body, "max_tokens": -1},
    lambda body: _message(body, {"role": "tool", "tool_call_id": "call_1", "content": "42"}),
    lambda body: _message(body, {"role": "tool", "content": "42"}),
    lambda body: _message(body, {"role": "user", "content": "Hi", "name": "someone"}),
    lambda body: _message(body, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}),
    lambda body: _message(body, {"role": "user", "content": None}),
    lambda body: _message(body, {"role": "bot", "content": "Hi"}),
    lambda body: _message(body, {"role": ["user"], "content": "Hi"}),
    lambda body: _message(body, {"role": {"user": 1}, "content": "Hi"}),
    lambda body: _message(body, {"role": "user"}),
    lambda body: _message(body, "not a message"),
    lambda body: body["messages"],
]


# Settings under which the short ways are taken (the first two) or not.
MOCKS = st.sampled_from(
    [
        {},
        {"latency_s": 0.2, "latency_jitter_s": 0.1, "seed": 3},
        {"requests_per_minute": 600.0, "tokens_per_minute": 100_000.0},
        {"api_key": "sk-x"},
        {"error_rate": 0.5, "seed": 3},
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PLAIN_FORMATS), PLAIN_BODY, MOCKS)
def test_plain_requests_get_the_same_answer_both_ways(
    provider: str, body: Any, mock: dict[str, Any]
) -> None:
    assert openai_request.plain_request(body) is not None
    short, long = both_ways(provider, orjson.dumps(body), **mock)
    assert short == long


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PLAIN_FORMATS), PLAIN_BODY, st.sampled_from(CHANGES))
def test_nearly_plain_requests_get_the_same_answer_both_ways(
    provider: str, body: Any, change: Callable[[dict[str, Any]], Any]
) -> None:
    short, long = both_ways(provider, orjson.dumps(change(body)))
    assert short == long


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(chats.PROVIDERS),
    TEXTS,
    st.sampled_from([(), chats.TOOLS]),
    st.sampled_from([None, "Be brief.", "Answer in JSON.", "Say yes or no."]),
    st.sampled_from([1, 16, 512]),
    st.booleans(),
)
def test_every_format_gets_the_same_answer_both_ways(
    provider: str, text: str, tools: Any, system: str | None, max_tokens: int, cached: bool
) -> None:
    body = chats.request(provider, text, tools=tools, system=system, max_tokens=max_tokens)
    if cached and provider in ("anthropic", "bedrock"):
        # A prompt-cache breakpoint on the system prompt, which the cache then keeps.
        cache = {"type": "ephemeral"}
        body["system"] = [{"type": "text", "text": system or "Be brief.", "cache_control": cache}]
    short, long = both_ways(provider, orjson.dumps(body), prompt_cache_min_tokens=1)
    assert short == long


@pytest.mark.parametrize("provider", PLAIN_FORMATS)
@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"model": "fast"}',
        b'{"model": "fast", "messages": []}',
        b'{"model": "fast", "messages": [{"role": "user", "content": "hi"}], "stream": false}',
    ],
)
def test_bad_and_unusual_bodies_get_the_same_answer_both_ways(provider: str, body: bytes) -> None:
    short, long = both_ways(provider, body)
    assert short == long


@pytest.mark.parametrize("provider", PLAIN_FORMATS)
def test_the_shortcuts_are_taken(provider: str) -> None:
    """The engine's own request takes every shortcut (else the tests above prove little):
    read by plain_chat, plain, and written from the template, not by `completion`."""
    body = {
        "model": "fast",
        "messages": [{"role": "user", "content": "Prompt number 0: say something."}],
        "max_completion_tokens": 512,
        "temperature": 0.0,
        "top_p": 1.0,
    }
    request = OpenAIFormat().plain_chat(orjson.dumps(body))
    assert request is not None and request.plain

    def long_way(*_: Any) -> Any:
        raise AssertionError("written by completion")

    with pytest.MonkeyPatch.context() as patch:
        for cls in (OpenAIFormat, MistralFormat):
            patch.setattr(cls, "completion", long_way)
        status, *_ = answered(provider, orjson.dumps(body))
    assert status == 200


# --- the pieces the shortcuts rest on ----------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "word"),
    [
        (wire._YES_OR_NO, "yes"),
        (structured._PROMPTED_SCHEMA, "json"),
        (structured._PROMPTED_JSON, "json"),
    ],
)
def test_a_case_insensitive_match_folds_to_the_word(pattern: re.Pattern[str], word: str) -> None:
    """Every character a letter of `word` matches case-insensitively folds to that letter,
    so a text the pattern matches holds `word` once folded: the search is skipped for the
    others."""
    assert pattern.flags & re.IGNORECASE
    assert re.search(word, pattern.pattern, re.IGNORECASE)
    letters = re.compile(f"[{word}]", re.IGNORECASE)
    matched = [chr(c) for c in range(sys.maxunicode + 1) if letters.fullmatch(chr(c))]
    for letter in word:
        for char in matched:
            if re.fullmatch(letter, char, re.IGNORECASE):
                assert char.casefold() == letter, (letter, char)


ROLES = st.sampled_from([*PLAIN_ROLES, "tool", "bot"])
CONTENT = TEXTS | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": TEXTS}))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.fixed_dictionaries({"role": ROLES, "content": CONTENT | st.none()}), max_size=4))
def test_the_question_is_the_instructions_then_the_last_user_text(
    messages: list[dict[str, Any]],
) -> None:
    users = [m for m in messages if m["role"] == "user"]
    last = wire.content_text(users[-1]["content"]) if users else ""
    expected = wire.prompt_text(messages, ("system", "developer")) + "\n" + last
    assert wire.asked_text(messages) == expected
    asked = wire._YES_OR_NO.search(expected) is not None
    assert (wire.yes_probability(messages) is not None) == asked


def test_a_json_template_writes_what_orjson_writes() -> None:
    def payload(count: Any, text: Any) -> dict[str, Any]:
        return {"n": count, "nested": [{"text": text, "fixed": "100% %s"}], "none": None}

    template = json_template(payload(INT_HOLE, JSON_HOLE))
    for count, text in [(0, ""), (-3, 'quote " and \\ and \x00'), (10**12, "ünï %d 😀")]:
        filled = template % (count, orjson.dumps(text))
        assert filled == orjson.dumps(payload(count, text))
