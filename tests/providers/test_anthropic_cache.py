"""Prompt caching in Messages bodies (Anthropic and Bedrock): the breakpoints a line carries
reach the request untouched, and the job's are added where its prompt_cache says, never past
the API's four.

The shapes are those of Anthropic's prompt-caching guide: ``cache_control`` on a system text
block, a tool definition, a message's content block or a tool_result block.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from lm_deluge_cli.errors import APIError
from lm_deluge_cli.providers.anthropic_cache import MAX_CACHE_BREAKPOINTS, breakpoints
from lm_deluge_cli.providers.base import Endpoint
from lm_deluge_cli.providers.bedrock import AwsCredentials, BedrockAnthropicAdapter
from lm_deluge_cli.types import Prompt, PromptCache, SamplingParams

from .conftest import ANTHROPIC_ADAPTER, _anthropic_endpoint


@pytest.fixture
def body(anthropic_body: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    return anthropic_body


EPHEMERAL = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}
# A 1×1 PNG and the start of a PDF.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAC"
    "hwGA60e6kgAAAABJRU5ErkJggg=="
)
PDF = "JVBERi0xLjQK"
TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}
TOOL_DEFINITION = {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}


def cached(endpoint: Endpoint, placement: str, ttl: str = "5m") -> Endpoint:
    return dataclasses.replace(endpoint, prompt_cache=PromptCache(placement, ttl))


# --- breakpoints a line carries --------------------------------------------------------


def test_content_parts_keep_their_breakpoints(body: Callable[..., dict[str, Any]]) -> None:
    parts = [
        {"type": "text", "text": "A long document.", "cache_control": EPHEMERAL},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"},
         "cache_control": EPHEMERAL},
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}"},
         "cache_control": HOUR},
        {"type": "text", "text": "What does it say?"},
    ]  # fmt: skip
    sent = body([{"role": "user", "content": parts}])
    assert sent["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "A long document.", "cache_control": EPHEMERAL},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    "cache_control": EPHEMERAL,
                },
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                    "cache_control": HOUR,
                },
                {"type": "text", "text": "What does it say?"},
            ],
        }
    ]


def test_a_lone_cached_text_part_stays_a_block(body: Callable[..., dict[str, Any]]) -> None:
    part = {"type": "text", "text": "Hello", "cache_control": EPHEMERAL}
    sent = body([{"role": "user", "content": [part]}, {"role": "assistant", "content": [part]}])
    assert [turn["content"] for turn in sent["messages"]] == [[part], [part]]


def test_system_parts_with_a_breakpoint_make_a_list_of_blocks(
    body: Callable[..., dict[str, Any]],
) -> None:
    messages = [
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "You are a contracts lawyer."},
                {"type": "text", "text": "<the whole contract>", "cache_control": HOUR},
            ],
        },
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "Hello"},
    ]
    sent = body(messages, SamplingParams(json_mode=True))
    assert sent["system"][:3] == [
        {"type": "text", "text": "You are a contracts lawyer."},
        {"type": "text", "text": "<the whole contract>", "cache_control": HOUR},
        {"type": "text", "text": "Answer in French."},
    ]
    # The JSON instruction comes last, a block of its own.
    assert sent["system"][3]["text"].startswith("Answer with one valid JSON object")
    assert sent["messages"] == [{"role": "user", "content": "Hello"}]


def test_a_tool_message_breakpoint_is_on_its_tool_result(
    body: Callable[..., dict[str, Any]],
) -> None:
    call = {"id": "toolu_1", "type": "function", "function": {"name": "get_weather"}}
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "15 degrees",
         "cache_control": EPHEMERAL},
    ]  # fmt: skip
    sent = body(messages, extra_body={"tools": [TOOL]})
    assert sent["messages"][-1] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_1",
                "content": [{"type": "text", "text": "15 degrees"}],
                "cache_control": EPHEMERAL,
            }
        ],
    }


def test_a_tool_breakpoint_is_on_its_definition(body: Callable[..., dict[str, Any]]) -> None:
    tools = [{"type": "function", "function": {"name": "now"}}, {**TOOL, "cache_control": HOUR}]
    sent = body(extra_body={"tools": tools})
    assert sent["tools"] == [
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
        {**TOOL_DEFINITION, "cache_control": HOUR},
    ]


@pytest.mark.parametrize(
    ("messages", "extra", "says"),
    [
        ([{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": "yes"}]}],
         {}, "messages[0].content[0].cache_control must be an object"),
        ([{"role": "user", "content": "x"}], {"tools": [{**TOOL, "cache_control": True}]},
         "tools[0].cache_control must be an object"),
    ],
)  # fmt: skip
def test_a_breakpoint_that_is_not_an_object_is_refused(
    body: Callable[..., dict[str, Any]], messages: Any, extra: dict[str, Any], says: str
) -> None:
    with pytest.raises(APIError, match=says.replace("[", r"\[").replace("]", r"\]")):
        body(messages, extra_body=extra)


# --- the job's breakpoints -------------------------------------------------------------


CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "First question"},
    {"role": "assistant", "content": "First answer"},
    {
        "role": "user",
        "content": [{"type": "text", "text": "Second"}, {"type": "text", "text": "?"}],
    },
]


@pytest.mark.parametrize(
    ("placement", "ttl", "system", "tools", "last_user"),
    [
        ("system", "5m", [{"type": "text", "text": "You are terse.", "cache_control": EPHEMERAL}],
         [TOOL_DEFINITION], None),
        ("system", "1h", [{"type": "text", "text": "You are terse.", "cache_control": HOUR}],
         [TOOL_DEFINITION], None),
        ("tools", "5m", "You are terse.", [{**TOOL_DEFINITION, "cache_control": EPHEMERAL}], None),
        ("system_and_tools", "1h",
         [{"type": "text", "text": "You are terse.", "cache_control": HOUR}],
         [{**TOOL_DEFINITION, "cache_control": HOUR}], None),
        ("last_user", "5m", "You are terse.", [TOOL_DEFINITION], EPHEMERAL),
    ],
)  # fmt: skip
def test_each_placement(
    body: Callable[..., dict[str, Any]],
    placement: str,
    ttl: str,
    system: Any,
    tools: list[dict[str, Any]],
    last_user: dict[str, str] | None,
) -> None:
    target = cached(_anthropic_endpoint(), placement, ttl)
    sent = body(CONVERSATION, target=target, extra_body={"tools": [TOOL]})
    assert sent["system"] == system
    assert sent["tools"] == tools
    last = sent["messages"][-1]["content"]
    assert last[-1].get("cache_control") == last_user
    assert "cache_control" not in last[0]
    # Nothing else is marked.
    assert len(breakpoints(sent)) == (2 if placement == "system_and_tools" else 1)


def test_last_user_marks_a_string_turn_and_tool_results(
    body: Callable[..., dict[str, Any]],
) -> None:
    target = cached(_anthropic_endpoint(), "last_user")
    sent = body([{"role": "user", "content": "Hi"}], target=target)
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": EPHEMERAL}]}
    ]
    call = {"id": "t1", "type": "function", "function": {"name": "get_weather"}}
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "t1", "content": "15 degrees"},
    ]
    sent = body(messages, target=target, extra_body={"tools": [TOOL]})
    assert sent["messages"][-1]["content"][-1]["type"] == "tool_result"
    assert sent["messages"][-1]["content"][-1]["cache_control"] == EPHEMERAL


@pytest.mark.parametrize("placement", ["system", "tools", "system_and_tools"])
def test_nothing_to_mark_adds_nothing(body: Callable[..., dict[str, Any]], placement: str) -> None:
    sent = body(
        [{"role": "user", "content": "Hi"}], target=cached(_anthropic_endpoint(), placement)
    )
    assert sent["messages"] == [{"role": "user", "content": "Hi"}]
    assert "system" not in sent and "tools" not in sent


def test_the_schema_tool_is_the_last_tool(body: Callable[..., dict[str, Any]]) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    target = cached(_anthropic_endpoint(), "tools")
    sent = body(target=target, sampling=SamplingParams(json_schema=schema))
    assert sent["tools"][-1]["name"] == "respond"
    assert sent["tools"][-1]["cache_control"] == EPHEMERAL


def test_a_breakpoint_the_line_put_there_is_kept(body: Callable[..., dict[str, Any]]) -> None:
    system = [{"type": "text", "text": "Be brief.", "cache_control": EPHEMERAL}]
    target = cached(_anthropic_endpoint(), "system", "1h")
    sent = body([{"role": "system", "content": system}, *CONVERSATION[1:]], target=target)
    assert sent["system"] == system


def many_breakpoints(count: int) -> list[dict[str, Any]]:
    """A user turn of `count` cached text blocks, then an uncached question."""
    parts = [{"type": "text", "text": f"doc {i}", "cache_control": EPHEMERAL} for i in range(count)]
    return [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [*parts, {"type": "text", "text": "Question?"}]},
    ]


@pytest.mark.parametrize(
    ("own", "placement", "added"),
    [
        (4, "system", 0),
        (3, "system", 1),
        (3, "system_and_tools", 1),  # the system prompt's: its prefix holds the tools
        (2, "system_and_tools", 2),
        (4, "last_user", 0),
        (3, "last_user", 1),
    ],
)
def test_never_more_than_four_breakpoints(
    body: Callable[..., dict[str, Any]], own: int, placement: str, added: int
) -> None:
    target = cached(_anthropic_endpoint(), placement)
    sent = body(many_breakpoints(own), target=target, extra_body={"tools": [TOOL]})
    marked = breakpoints(sent)
    assert len(marked) == own + added <= MAX_CACHE_BREAKPOINTS
    # The line's own are all there.
    own_texts = [block.get("text") for block in marked if block.get("text", "").startswith("doc")]
    assert own_texts == [f"doc {i}" for i in range(own)]
    if added and placement != "last_user":
        assert sent["system"][-1]["cache_control"] == EPHEMERAL
    if added == 1 and placement == "system_and_tools":
        assert "cache_control" not in sent["tools"][-1]
    if not added:
        assert sent["system"] == "You are terse."  # left as it was


def test_breakpoints_inside_tool_results_count(body: Callable[..., dict[str, Any]]) -> None:
    call = {"id": "t1", "type": "function", "function": {"name": "get_weather"}}
    parts = [{"type": "text", "text": f"r{i}", "cache_control": EPHEMERAL} for i in range(4)]
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "t1", "content": parts},
    ]
    target = cached(_anthropic_endpoint(), "system")
    sent = body(messages, target=target, extra_body={"tools": [TOOL]})
    assert sent["system"] == "You are terse."
    assert len(breakpoints(sent)) == 4


@pytest.mark.parametrize(
    ("placement", "ttl", "line", "sent_ttl"),
    [
        # A 1-hour breakpoint after the line's 5-minute one would be refused: 5 minutes.
        ("last_user", "1h", "system", None),
        # A 5-minute one before the line's 1-hour one would be refused: an hour.
        ("system", "5m", "user", "1h"),
        # In the order the API wants them already.
        ("system", "1h", "user", "1h"),
        ("last_user", "5m", "system", None),
    ],
)
def test_longer_ttls_come_first(
    body: Callable[..., dict[str, Any]],
    placement: str,
    ttl: str,
    line: str,
    sent_ttl: str | None,
) -> None:
    line_ttl = {"cache_control": HOUR if line == "user" else EPHEMERAL}
    rules = {"type": "text", "text": "Rules.", **(line_ttl if line == "system" else {})}
    doc = {"type": "text", "text": "Doc.", **(line_ttl if line == "user" else {})}
    messages = [
        {"role": "system", "content": [rules]},
        {"role": "user", "content": [doc, {"type": "text", "text": "Question?"}]},
    ]
    sent = body(messages, target=cached(_anthropic_endpoint(), placement, ttl))
    job = sent["system"][-1] if placement == "system" else sent["messages"][-1]["content"][-1]
    assert job["cache_control"].get("ttl") == sent_ttl
    ttls = [block["cache_control"].get("ttl", "5m") for block in breakpoints(sent)]
    assert ttls == sorted(ttls, key=lambda t: t != "1h")


def test_no_prompt_cache_adds_nothing(body: Callable[..., dict[str, Any]]) -> None:
    sent = body(CONVERSATION, extra_body={"tools": [TOOL]})
    assert breakpoints(sent) == []
    assert sent["system"] == "You are terse."


def test_the_1h_ttl_needs_no_beta_header() -> None:
    # The 1-hour TTL is generally available: cache_control's ttl alone asks for it.
    target = cached(_anthropic_endpoint(), "system", "1h")
    prompt = Prompt(id=1, line=1, messages=CONVERSATION)
    request = ANTHROPIC_ADAPTER.build_request(target, prompt, SamplingParams(), 5.0)
    assert set(request.headers) == {"content-type", "anthropic-version", "x-api-key"}
    assert orjson.loads(request.body)["system"][0]["cache_control"] == HOUR


def test_bedrock_gets_the_same_breakpoints() -> None:
    model_endpoint = _anthropic_endpoint("anthropic.claude-sonnet-4-5-20250929-v1:0")
    target = cached(
        dataclasses.replace(
            model_endpoint, base_url="https://bedrock-runtime.us-east-1.amazonaws.com"
        ),
        "system_and_tools",
        "1h",
    )
    adapter = BedrockAnthropicAdapter(AwsCredentials("AKIDEXAMPLE", "secret"), env={})
    request = adapter.build_request(
        target,
        Prompt(id=1, line=1, messages=CONVERSATION, extra_body={"tools": [TOOL]}),
        SamplingParams(),
        5.0,
    )
    sent = orjson.loads(request.body)
    assert sent["system"] == [{"type": "text", "text": "You are terse.", "cache_control": HOUR}]
    assert sent["tools"] == [{**TOOL_DEFINITION, "cache_control": HOUR}]
    assert not any(name.startswith("anthropic-beta") for name in request.headers)
    assert "anthropic_beta" not in sent
