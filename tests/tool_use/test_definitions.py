"""Tool definitions and choices: both shapes become OpenAI's, and every problem is named."""

from __future__ import annotations

from typing import Any

import pytest

from lm_deluge_cli.tool_use.definitions import (
    ToolDefinitionError,
    check_tool_choice,
    check_tools,
)

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
OPENAI_SHAPE = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather now.", "parameters": WEATHER},
}


def test_both_shapes_become_openais() -> None:
    short = {"name": "get_weather", "description": "Weather now.", "parameters": WEATHER}
    assert check_tools([short], "tools") == [OPENAI_SHAPE]
    assert check_tools([OPENAI_SHAPE], "tools") == [OPENAI_SHAPE]


def test_no_parameters_is_an_empty_object_and_markers_are_kept() -> None:
    marker = {"type": "ephemeral"}
    (tool,) = check_tools([{"name": "now", "cache_control": marker, "strict": True}], "tools")
    assert tool == {
        "type": "function",
        "function": {
            "name": "now",
            "parameters": {"type": "object", "properties": {}},
            "strict": True,
        },
        "cache_control": marker,
    }


@pytest.mark.parametrize(
    ("tools", "fragment"),
    [
        ({"name": "x"}, "tools must be a list"),
        (["x"], "tools[0] must be an object"),
        ([{"description": "no name"}], "tools[0].name must be 1 to 64"),
        ([{"name": "has space"}], "tools[0].name must be 1 to 64"),
        ([{"name": "x" * 65}], "tools[0].name"),
        ([{"name": "f", "parameters": {"type": "string"}}], "tools[0].parameters must be a JSON"),
        ([{"name": "f", "parameters": "schema.json"}], "tools[0].parameters"),
        ([{"name": "f", "description": 3}], "tools[0].description must be a string"),
        ([{"name": "f", "params": {}}], "unknown key 'params'"),
        ([{"type": "function", "name": "f"}], 'needs "type": "function" and a "function"'),
        ([{"type": "function", "function": {"name": "f", "args": {}}}], "tools[0].function"),
        ([{"name": "f"}, {"name": "f"}], "'f' is used twice"),
    ],
)
def test_problems_are_named(tools: Any, fragment: str) -> None:
    with pytest.raises(ToolDefinitionError) as info:
        check_tools(tools, "tools")
    assert fragment in str(info.value)


@pytest.mark.parametrize("mode", ["auto", "none", "required"])
def test_modes_pass_as_they_are(mode: str) -> None:
    assert check_tool_choice(mode, ["f"], "tool_choice") == mode


@pytest.mark.parametrize(
    "value", ["get_weather", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_a_named_tool_is_openais_function_choice(value: Any) -> None:
    expected = {"type": "function", "function": {"name": "get_weather"}}
    assert check_tool_choice(value, ["get_weather"], "tool_choice") == expected
    # Without the tools at hand (a line whose tools come from the job), any name is taken.
    assert check_tool_choice(value, None, "tool_choice") == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("get_time", "names 'get_time', which is not one of the tools (get_weather)"),
        (3, "must be one of auto, none, required or a tool's name"),
        ({"type": "tool", "name": "x"}, 'must be {"type": "function"'),
    ],
)
def test_bad_choices_say_what_to_use(value: Any, fragment: str) -> None:
    with pytest.raises(ToolDefinitionError) as info:
        check_tool_choice(value, ["get_weather"], "tool_choice")
    assert fragment in str(info.value)
